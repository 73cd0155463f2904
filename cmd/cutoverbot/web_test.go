package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu/webtest"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
)

// The tests in this file use the bot through the Slack emulator's web view in headless
// Chromium, as a team would use it in Slack; they skip when no Chromium is installed.

var updateScreenshot = flag.Bool("update-screenshot", false, "write the README's screenshot of the web view, docs/web-view.png")

const screenshotPath = "../../docs/web-view.png"

func TestWebViewStatusAnswerIsEphemeral(t *testing.T) {
	e := startBot(t, nil)
	p := webtest.Open(t, e.sb.slack.WebURL())
	p.ActAs("ann")
	p.Send("/cutover status")
	p.Message(webtest.Channel, "Only visible to you", "web01", "Continuous Data Replication", "db01")
	p.ActAs("eve")
	if p.Has(webtest.Channel, "Continuous Data Replication") {
		t.Error("eve sees ann's status answer")
	}
}

// TestWebViewLaunchThenCutover plays the demo's workflow in the browser: ann's test launch of
// web01 followed in its thread to the new instance's IPs; her cutover request for db01;
// eve's click on Confirm refused; bob's click, through Slack's dialog, starting the cutover.
func TestWebViewLaunchThenCutover(t *testing.T) {
	// MGN's clock starts now, so that the times the bot shows (elapsed, ages) read naturally in
	// the screenshot.
	e := startBotOn(t, newE2E(t, time.Now().UTC().Truncate(time.Second)), socketMode, nil)
	p := webtest.Open(t, e.sb.slack.WebURL())
	p.ActAs("ann")

	p.Send("/cutover launch web01 test")
	p.Message(webtest.Channel, "Test launch of web01", "@ann", "Phase:")
	e.finishJobs(1)
	target := targetOf(t, e, mgnemu.SampleWeb01)
	// The parent, edited in place with the outcome; "replied to a thread" quotes its first line too.
	launch := p.Message(webtest.Channel, "Test launch of web01", "Launched after", "(edited)", "replies")
	p.OpenThread(launch)
	p.Message(webtest.Thread, "web01", "launched", target.InstanceID, "private "+target.PrivateIPAddress, "public "+target.PublicIPAddress)
	p.Message(webtest.Channel, "replied to a thread", target.PrivateIPAddress) // the final report is broadcast

	p.Send("/cutover launch db01 cutover")
	card := p.Message(webtest.Channel, "Cutover requested: db01", "Pre-flight checks")
	p.Message(webtest.Channel, "Only visible to you", "waits for an approver")
	if *updateScreenshot {
		p.Screenshot(screenshotPath)
		t.Logf("wrote %s", screenshotPath)
	}

	p.ActAs("eve")
	p.Click(card, "button", "Confirm cutover")
	p.WaitText(webtest.Dialog, "Start cutover?")
	p.WaitText(webtest.Dialog, "Cut over db01 now?")
	p.Click(webtest.Dialog, "button", "Cut over")
	p.Message(webtest.Channel, "Only visible to you", "Sorry, only the cutover approvers may")
	if n := e.sb.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover called %d times after eve's click, want 0", n)
	}

	p.ActAs("bob")
	p.Click(card, "button", "Confirm cutover")
	p.Click(webtest.Dialog, "button", "Cut over")
	p.Message(webtest.Channel, "Cutover requested: db01", "@bob", "(edited)") // the card, closed with its approver
	// Who the thread names depends on who sees the job first: the click's handler (bob) or
	// the watcher of MGN's jobs (the requester, ann, from the job's tags).
	p.Message(webtest.Channel, "Cutover of db01", "Phase:")
	if n := p.Count(webtest.Channel, "button", "Confirm cutover"); n != 0 {
		t.Errorf("the confirmed card still offers %d Confirm cutover buttons", n)
	}
	e.finishJobs(2)
	db := targetOf(t, e, mgnemu.SampleDB01)
	p.OpenThread(p.Message(webtest.Channel, "Cutover of db01", "Launched after", "replies"))
	p.Message(webtest.Thread, "db01", "launched", "private "+db.PrivateIPAddress)
	if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover called %d times, want 1", n)
	}
}

// targetOf returns the instance MGN launched last for a source server.
func targetOf(t *testing.T, e *e2e, serverID string) mgnemu.Instance {
	t.Helper()
	var found *mgnemu.Instance
	for _, in := range e.sb.mgn.Instances() {
		if in.Tags["AWSApplicationMigrationServiceSourceServerID"] == serverID {
			found = &in
		}
	}
	if found == nil {
		t.Fatalf("MGN launched no instance for %s", serverID)
	}
	return *found
}

// TestWebViewShowsBotTextAsText sends markup through a server's Name tag (AWS data the bot
// shows) and through a command's text: the page shows it literally and runs none of it.
func TestWebViewShowsBotTextAsText(t *testing.T) {
	e := startBot(t, nil)
	const name = `<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">`
	const typed = `<img src=x onerror="window.pwned = 3"><script>window.pwned = 4</script>`
	e.sb.mgn.Update(mgnemu.SampleWeb01, func(s *mgnemu.SourceServer) { s.Tags["Name"] = name })
	p := webtest.Open(t, e.sb.slack.WebURL())
	p.Send("/cutover status web01")
	p.Message(webtest.Channel, "Only visible to you", name)
	p.Send("/cutover status " + typed)
	p.Message(webtest.Channel, "Only visible to you", "No server matches", typed)
	var ran struct {
		Pwned    bool
		Elements int
	}
	p.Eval(`({ Pwned: window.pwned !== undefined,
		Elements: document.querySelectorAll("#messages script, #messages img, #messages iframe").length })`, &ran)
	if ran.Pwned || ran.Elements != 0 {
		t.Errorf("markup from the bot ran: pwned %v, %d script/img/iframe elements", ran.Pwned, ran.Elements)
	}
}

// TestEmulatePrintsWebView: `cutoverbot emulate` says where the web view is, and serves it.
func TestEmulatePrintsWebView(t *testing.T) {
	out := &testrig.SyncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"emulate", "-listen", "127.0.0.1:0", "-slack-listen", "127.0.0.1:0"}, nil, strings.NewReader(""), out, out)
	}()
	var url string
	testrig.WaitUntil(t, "emulate to print the web view's address", 0, func() bool {
		if m := webViewLine.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<label for="acting-as">Acting as</label>`) {
		t.Errorf("GET %s: got %d, want the web view", url, resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("emulate returned %v, want nil on interrupt", err)
	}
}

var webViewLine = regexp.MustCompile(`Web view of the Slack workspace \(act as ann, bob or eve\): (http://127\.0\.0\.1:\d+/)`)

// TestWebViewLargeChannel loads the page on a fleet of 3,000 more servers and a channel of 600
// messages (100 launch threads of 5 replies each, one of them broadcast), with the bot's status
// answer for the whole fleet: everything arrives, a long answer is folded, and new answers
// still appear live. It logs how long each step took and how much of that the page spent
// rendering; speed goals live in logs and benchmarks, not in assertions.
func TestWebViewLargeChannel(t *testing.T) {
	const servers, threads, replies = 3000, 100, 5
	// Servers are watched at the default pace: every 100 ms, as the other tests do, listing
	// 3,000 servers would leave little machine for anything else.
	e := startBotOn(t, newE2EFleet(t, e2eStart, servers), socketMode, map[string]string{"CUTOVER_WATCH_INTERVAL": "1m"})
	active := 0
	for _, s := range e.sb.mgn.Servers() {
		if !s.IsArchived {
			active++
		}
	}
	header := fmt.Sprintf("Migration status · %d servers", active)
	// The bot's first listing of 3,000 servers can take tens of seconds on a loaded machine
	// with the race detector, longer than e.command waits.
	start := time.Now()
	d, err := e.sb.slack.SlashCommand(t.Context(), sandboxOperator, sandboxChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	e.acked(d)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := e.sb.slack.WaitFor(ctx, func(s *slackemu.Server) bool { return len(s.Ephemerals(sandboxOperator)) > 0 }); err != nil {
		t.Fatal("no answer to /cutover status")
	}
	botStatus := time.Since(start)
	if status := e.sb.slack.Ephemerals(sandboxOperator)[0]; !strings.Contains(status.PlainText(), header) {
		t.Fatalf("status answer does not start with %q:\n%.300s", header, status.PlainText())
	}
	fillChannel(t, e, threads, replies)

	p := webtest.Open(t, e.sb.slack.WebURL())
	p.WaitUntil("every message of the channel", fmt.Sprintf(`document.querySelectorAll("#messages article.msg").length === %d &&
		[...document.querySelectorAll("#messages .thread-summary .replies")].reduce((n, b) => n + parseInt(b.textContent, 10), 0) === %d`,
		2*threads+1, threads*replies))
	var load struct {
		Arrived float64 // ms since navigation
		Stats   webStats
	}
	p.Eval(`({ Arrived: performance.now(), Stats: slackemuWeb.stats })`, &load)
	answer := p.Message(webtest.Channel, "Only visible to you", header, "Page 1 of", "Show more", "Next page")

	step := func(what string, do func()) string {
		t.Helper()
		var before, after webStats
		p.Eval(`slackemuWeb.stats`, &before)
		start := time.Now()
		do()
		took := time.Since(start)
		p.Eval(`slackemuWeb.stats`, &after)
		return fmt.Sprintf("%s: %v, of which %.0f ms rendering in %d batches (longest %.0f ms)", what, took.Round(time.Millisecond),
			after.ApplyMs-before.ApplyMs, after.Applies-before.Applies, after.MaxApplyMs)
	}
	var botTyped time.Duration
	typed := step("a typed /cutover status answered", func() {
		before := len(e.sb.slack.Ephemerals(sandboxOperator))
		answered := make(chan time.Duration, 1)
		go func() {
			start := time.Now()
			_ = e.sb.slack.WaitFor(t.Context(), func(s *slackemu.Server) bool { return len(s.Ephemerals(sandboxOperator)) > before })
			answered <- time.Since(start)
		}()
		p.Send("/cutover status")
		p.WaitUntil("a second status answer", `[...document.querySelectorAll("#messages article.msg.ephemeral")].filter((a) => a.textContent.includes("Page 1 of")).length === 2`)
		botTyped = <-answered
	})
	typed += fmt.Sprintf("; the answer reached the Slack emulator after %v", botTyped.Round(time.Millisecond))
	paged := step("its Next page shown", func() {
		p.Click(answer, "button", "Next page")
		p.Message(webtest.Channel, "Only visible to you", "Page 2 of", "(edited)")
	})
	live := step("a new channel message shown", func() {
		if _, _, err := botAPI(e).PostMessage(sandboxChannel, slack.MsgOptionText("one more message", false)); err != nil {
			t.Fatal(err)
		}
		p.Message(webtest.Channel, "one more message")
	})
	thread := step("a thread opened", func() {
		p.OpenThread(p.Message(webtest.Channel, "Test launch of srv-00050", "5 replies"))
		p.Message(webtest.Thread, "srv-00050: conversion finished")
	})
	var dom struct{ Elements, HeapMB int }
	p.Eval(`({ Elements: document.getElementsByTagName("*").length,
		HeapMB: performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : 0 })`, &dom)
	t.Logf("%d servers listed, %d messages in the channel; the bot answered /cutover status in %v.\n"+
		"page load: everything shown %.0f ms after navigation; %d fetches (%.0f ms), rendering %.0f ms in %d batches (longest %.0f ms)\n%s\n%s\n%s\n%s\n"+
		"%d DOM elements, %d MB JS heap",
		active, threads*(1+replies), botStatus.Round(time.Millisecond),
		load.Arrived, load.Stats.Fetches, load.Stats.FetchMs, load.Stats.ApplyMs, load.Stats.Applies, load.Stats.MaxApplyMs,
		typed, paged, live, thread, dom.Elements, dom.HeapMB)
}

// webStats is the web view's count of its own work (slackemuWeb.stats).
type webStats struct {
	Fetches    int     `json:"fetches"`
	FetchMs    float64 `json:"fetchMs"`
	Applies    int     `json:"applies"`
	ApplyMs    float64 `json:"applyMs"`
	MaxApplyMs float64 `json:"maxApplyMs"`
}

// botAPI is a Web API client with the bot's token, to fill the channel as the bot would.
func botAPI(e *e2e) *slack.Client {
	return slack.New(e.sb.slack.BotToken(), slack.OptionAPIURL(e.sb.slack.URL()))
}

// fillChannel posts launch threads shaped like the bot's: a parent with a section and a
// context, replies in plain words, and a final report broadcast to the channel with buttons.
func fillChannel(t *testing.T, e *e2e, threads, replies int) {
	t.Helper()
	api := botAPI(e)
	for i := 1; i <= threads; i++ {
		name := fmt.Sprintf("srv-%05d", i)
		_, parent, err := api.PostMessage(sandboxChannel, slack.MsgOptionText("Test launch of "+name, false), slack.MsgOptionBlocks(
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("*Test launch* of %s started by <@%s> — job `mgnjob-%017x`", name, sandboxOperator, i), false, false), nil, nil),
			slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "Phase: launching · Elapsed: 4 min", false, false))))
		if err != nil {
			t.Fatal(err)
		}
		for r := 1; r <= replies; r++ {
			opts := []slack.MsgOption{slack.MsgOptionTS(parent), slack.MsgOptionText(fmt.Sprintf("%s: %s", name, []string{"snapshot taken", "converter started", "conversion finished", "launching the target instance", "finished"}[r-1]), false)}
			if r == replies {
				opts = append(opts, slack.MsgOptionBroadcast(), slack.MsgOptionBlocks(
					slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("*%s*: :white_check_mark: launched `i-%017x` (running) · private 10.0.%d.%d · public 3.120.%d.%d", name, i, i/250, i%250, i/250, i%250), false, false), nil, nil),
					slack.NewActionBlock(fmt.Sprintf("next-%d", i),
						slack.NewButtonBlockElement("mark_ready", name, slack.NewTextBlockObject(slack.PlainTextType, "Mark ready for cutover", false, false)).WithStyle(slack.StylePrimary),
						slack.NewButtonBlockElement("revert_test", name, slack.NewTextBlockObject(slack.PlainTextType, "Revert to ready for testing", false, false)))))
			}
			if _, _, err := api.PostMessage(sandboxChannel, opts...); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(e.sb.slack.Messages(sandboxChannel)); n != 2*threads {
		t.Fatalf("channel holds %d messages outside threads, want %d", n, 2*threads)
	}
}
