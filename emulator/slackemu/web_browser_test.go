package slackemu

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu/webtest"
)

// The tests in this file drive the web view in headless Chromium; they skip when none is
// installed.

// TestWebViewMrkdwn runs the page's mrkdwn renderer over Slack's rules, in the browser.
func TestWebViewMrkdwn(t *testing.T) {
	s := startServer(t, Options{})
	s.AddChannel("C0OPS", "ops")
	p := webtest.Open(t, s.WebURL())
	a := `target="_blank" rel="noopener noreferrer"`
	tests := []struct{ name, in, want string }{
		{"styles", "*bold* _italic_ ~strike~ `code`", "<b>bold</b> <i>italic</i> <s>strike</s> <code>code</code>"},
		{"nested", "*bold _and italic_*", "<b>bold <i>and italic</i></b>"},
		{"punctuation around markers", "(*bold*), _it_!", "(<b>bold</b>), <i>it</i>!"},
		{"markers inside words", "2*3*4 snake_case_name a~b~c", "2*3*4 snake_case_name a~b~c"},
		{"marker glued to a word", "*bold*s and x_y_", "*bold*s and x_y_"},
		{"space inside the markers", "* not bold* *not bold *", "* not bold* *not bold *"},
		{"no span across lines", "*one\ntwo*", "*one\ntwo*"},
		{"code keeps markers", "`*not bold* _x_`", "<code>*not bold* _x_</code>"},
		{"entities shown literally", "&lt;script&gt;alert(1)&lt;/script&gt; &amp;lt; &amp;", "&lt;script&gt;alert(1)&lt;/script&gt; &amp;lt; &amp;"},
		{"escaped mention stays text", "&lt;!channel&gt; &lt;@U0ANN&gt;", "&lt;!channel&gt; &lt;@U0ANN&gt;"},
		{"mentions", "<@U0ANN> <@U0BOB|bobby> <@U0NOBODY>",
			`<span class="mention self" data-user="U0ANN">@ann</span> <span class="mention" data-user="U0BOB">@bob</span> <span class="mention" data-user="U0NOBODY">@U0NOBODY</span>`},
		{"channels", "<#C0OPS> <#C0GONE|old-name>", `<a class="channel-link" href="?channel=C0OPS">#ops</a> <a class="channel-link" href="?channel=C0GONE">#old-name</a>`},
		{"special mentions", "<!here> <!channel> <!subteam^S0OPS|@ops-team>",
			`<span class="mention broadcast">@here</span> <span class="mention broadcast">@channel</span> <span class="mention">@ops-team</span>`},
		{"links", "<https://example.com/a?b=1&amp;c=2|the *label*> <https://example.com>",
			`<a href="https://example.com/a?b=1&amp;c=2" ` + a + `>the *label*</a> <a href="https://example.com" ` + a + `>https://example.com</a>`},
		{"no script links", "<javascript:alert(1)|click me> <data:text/html,x>", "click me data:text/html,x"},
		{"link in bold", "*<https://x.example|bold link>*", `<b><a href="https://x.example" ` + a + `>bold link</a></b>`},
		{"date", "<!date^1392734382^{date_num} {time_secs}, {date_long}|Feb 18>",
			`<time datetime="2014-02-18T14:39:42.000Z">2014-02-18 2:39:42 PM, Tuesday, February 18th, 2014</time>`},
		{"date short and link", "<!date^1392734382^{date_short} at {time}^https://example.com/e|fallback>",
			`<a href="https://example.com/e" ` + a + `><time datetime="2014-02-18T14:39:42.000Z">Feb 18, 2014 at 2:39 PM</time></a>`},
		{"bad date falls back", "<!date^soon^{date}|some day>", "some day"},
		{"emoji", ":white_check_mark: :x: :warning: :hourglass_flowing_sand: :nosuch: 10:30:00",
			`<span class="emoji" role="img" aria-label="white check mark" title=":white_check_mark:">✅</span> ` +
				`<span class="emoji" role="img" aria-label="x" title=":x:">❌</span> ` +
				"<span class=\"emoji\" role=\"img\" aria-label=\"warning\" title=\":warning:\">\u26a0\ufe0f</span> " +
				`<span class="emoji" role="img" aria-label="hourglass flowing sand" title=":hourglass_flowing_sand:">⏳</span> :nosuch: 10:30:00`},
		{"code block", "before\n```\n*not bold* &lt;tag&gt; <@U0ANN>\n```\nafter",
			"before<pre class=\"code-block\">*not bold* &lt;tag&gt; @ann</pre>after"},
		{"quote", "> quoted *text*\n> more\nnot quoted", "<blockquote>quoted <b>text</b>\nmore</blockquote>not quoted"},
		{"escaped quote is text", "&gt; not a quote", "&gt; not a quote"},
		{"raw html is text", "<b>bold?</b> <img src=x onerror=alert(1)>", "bbold?/b img src=x onerror=alert(1)"},
	}
	noTitle := regexp.MustCompile(` title="[^"]*"`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			p.Eval(fmt.Sprintf("slackemuWeb.mrkdwnHTML(%s)", jsonString(tt.in)), &got)
			if tt.name != "emoji" {
				got = noTitle.ReplaceAllString(got, "")
			}
			if got != tt.want {
				t.Errorf("mrkdwn %q:\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestWebViewShowsTheChannel: Block Kit, threads, edits and ephemeral messages as the Slack
// client shows them, updated live.
func TestWebViewShowsTheChannel(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	ctx := t.Context()
	card := append(cardBlocks(),
		slack.NewSectionBlock(mrkdwn("*Servers*"), []*slack.TextBlockObject{mrkdwn("*web01*\nready"), mrkdwn("*db01*\nsyncing")},
			slack.NewAccessory(slack.NewButtonBlockElement("details", "web01", plain("Details")))),
		slack.NewDividerBlock(),
		slack.NewActionBlock("go", slack.NewButtonBlockElement("go", "1", plain("Go ahead")).WithStyle(slack.StylePrimary)))
	if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("card", false), slack.MsgOptionBlocks(card...)); err != nil {
		t.Fatal(err)
	}
	_, parent, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("Launching *web01*", false))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"Job started", "snapshot taken"} {
		if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText(text, false), slack.MsgOptionTS(parent)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := api.PostEphemeralContext(ctx, testChannel, testUser, slack.MsgOptionText("status: all *green*", false)); err != nil {
		t.Fatal(err)
	}

	p := webtest.Open(t, s.WebURL())
	p.Message(webtest.Channel, "Cutover web01", "Replication CONTINUOUS", "lag 0s", "web01\nready", "Details")
	for _, b := range []struct{ name, class string }{
		{"Confirm cutover", "btn danger"}, {"Go ahead", "btn primary"}, {"Cancel", "btn"}, {"Details", "btn"},
	} {
		var class string
		p.Eval(fmt.Sprintf(`[...document.querySelectorAll("#messages button")].find((b) => b.textContent === %s).className`, jsonString(b.name)), &class)
		if class != b.class || p.Count(webtest.Channel, "button", b.name) != 1 {
			t.Errorf("button %q: class %q, want one with class %q", b.name, class, b.class)
		}
	}
	var meta struct{ Messages, Named, Timed int }
	p.Eval(`(() => { const a = [...document.querySelectorAll("#messages article.msg")];
		return { Messages: a.length, Named: a.filter((m) => m.querySelector(".author").textContent === "cutoverbot").length,
			Timed: a.filter((m) => /^\d{1,2}:\d\d [AP]M$/.test(m.querySelector(".meta time").textContent)).length }; })()`, &meta)
	if meta.Messages != 3 || meta.Named != 3 || meta.Timed != 3 {
		t.Errorf("messages %d, with the bot's name %d, with a time %d: want 3 each (card, launch, ephemeral)", meta.Messages, meta.Named, meta.Timed)
	}

	p.Message(webtest.Channel, "Only visible to you", "status: all green")
	p.ActAs("bob")
	if p.Has(webtest.Channel, "status: all green") {
		t.Error("bob sees ann's ephemeral message")
	}
	p.ActAs("ann")
	p.Message(webtest.Channel, "Only visible to you", "status: all green")

	launch := p.Message(webtest.Channel, "Launching web01", "2 replies")
	p.Click(launch, "button", "2 replies") // the reply count, named as it reads
	p.Message(webtest.Thread, "Launching web01")
	p.Message(webtest.Thread, "snapshot taken")

	// Live: a reply broadcast to the channel, and an edit of the parent.
	if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("finished: *launched*", false),
		slack.MsgOptionTS(parent), slack.MsgOptionBroadcast()); err != nil {
		t.Fatal(err)
	}
	p.Message(webtest.Channel, "Launching web01", "3 replies")
	p.Message(webtest.Channel, "replied to a thread: Launching web01", "finished: launched")
	p.Message(webtest.Thread, "Also sent to the channel", "finished: launched")
	if _, _, _, err := api.UpdateMessageContext(ctx, testChannel, parent, slack.MsgOptionText("Launched *web01* in 4 min", false)); err != nil {
		t.Fatal(err)
	}
	p.Message(webtest.Channel, "Launched web01 in 4 min", "(edited)", "3 replies")
	p.Message(webtest.Thread, "Launched web01 in 4 min", "(edited)")
	p.Click(webtest.Document, "button", "Close thread")
	p.WaitUntil("the thread pane to close", `document.getElementById("thread").hidden`)
}

// TestWebViewActs: a slash command typed in the composer, a button with a confirm dialog
// (denied, then confirmed) and a button on an ephemeral message reach the app as Slack's
// envelopes; what the app answers shows up.
func TestWebViewActs(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	a := connect(t, s, 2*time.Second)
	ctx := t.Context()
	p := webtest.Open(t, s.WebURL())

	p.Send("/cutover status web01")
	e := a.next(t)
	if cmd, ok := e.Data.(slack.SlashCommand); !ok || cmd.Text != "status web01" || cmd.UserID != testUser || cmd.ChannelID != testChannel {
		t.Fatalf("typed command arrived as %+v, want status web01 from ann in the channel", e.Data)
	}
	if err := a.sm.Ack(*e.Request, map[string]any{"text": "web01 is *fine*"}); err != nil {
		t.Fatal(err)
	}
	p.Message(webtest.Channel, "Only visible to you", "web01 is fine")
	var composer string
	p.Eval(`document.getElementById("composer").value`, &composer)
	if composer != "" {
		t.Errorf("composer after sending: got %q, want it empty", composer)
	}

	_, ts, err := a.api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("card", false), slack.MsgOptionBlocks(cardBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	p.ActAs("bob")
	card := p.Message(webtest.Channel, "Cutover web01")
	p.Click(card, "button", "Confirm cutover")
	p.WaitText(webtest.Dialog, "Start cutover?")
	p.WaitText(webtest.Dialog, "This launches web01.")
	p.Click(webtest.Dialog, "button", "Cancel") // denied: nothing is sent
	p.WaitUntil("the dialog to close", `!document.querySelector("dialog[open]")`)
	p.Click(card, "button", "Confirm cutover")
	p.Click(webtest.Dialog, "button", "Cut over")
	e = a.next(t) // the first envelope since the command: the confirmed click, not the denied one
	ic, ok := e.Data.(slack.InteractionCallback)
	if !ok || ic.User.ID != otherUser || ic.Container.MessageTs != ts || len(ic.ActionCallback.BlockActions) != 1 ||
		ic.ActionCallback.BlockActions[0].ActionID != "cutover_confirm" || ic.ActionCallback.BlockActions[0].Value != "job-42" {
		t.Fatalf("confirmed click arrived as %+v, want bob's cutover_confirm on %s", e.Data, ts)
	}
	if err := a.sm.Ack(*e.Request); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.api.PostMessageContext(ctx, "", slack.MsgOptionReplaceOriginal(ic.ResponseURL), slack.MsgOptionText("Cutover confirmed by <@U0BOB>", false)); err != nil {
		t.Fatal(err)
	}
	p.Message(webtest.Channel, "Cutover confirmed by @bob", "(edited)")
	if n := p.Count(webtest.Channel, "button", "Confirm cutover"); n != 0 {
		t.Errorf("after the card was replaced: %d Confirm cutover buttons, want 0", n)
	}

	if _, err := a.api.PostEphemeralContext(ctx, testChannel, otherUser, slack.MsgOptionText("page 1", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("pages", slack.NewButtonBlockElement("status_page", "2", plain("Next page"))))); err != nil {
		t.Fatal(err)
	}
	p.Click(p.Message(webtest.Channel, "Only visible to you", "Next page"), "button", "Next page")
	e = a.next(t)
	if ic, ok := e.Data.(slack.InteractionCallback); !ok || !ic.Container.IsEphemeral || ic.User.ID != otherUser {
		t.Fatalf("click on an ephemeral message arrived as %+v, want bob's click on his ephemeral message", e.Data)
	}
	if err := a.sm.Ack(*e.Request); err != nil {
		t.Fatal(err)
	}

	p.Send("/remind me later")
	p.Message(webtest.Channel, "/remind is not a valid command")
	p.Send("hello <b>team</b> & all")
	p.Message(webtest.Channel, "bob", "hello <b>team</b> & all")
	if msgs := s.Messages(testChannel); msgs[len(msgs)-1].User != otherUser {
		t.Errorf("typed message posted as %q, want bob", msgs[len(msgs)-1].User)
	}
}

func TestWebViewWithoutApp(t *testing.T) {
	s := startServer(t, Options{AckDeadline: 200 * time.Millisecond})
	p := webtest.Open(t, s.WebURL())
	p.Send("/cutover status")
	p.Message(webtest.Channel, "Only visible to you", `/cutover failed with the error "dispatch_failed"`)
}

// TestWebViewShowsMarkupAsText: markup in every text a message carries (mrkdwn, plain text,
// buttons, a confirm dialog, links) is shown as text and never runs.
func TestWebViewShowsMarkupAsText(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	const script = `<script>window.pwned = 1</script>`
	const img = `<img src=x onerror="window.pwned = 2">`
	esc := webEscaper.Replace // what the bot does to text it did not write
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(esc(script))),
		slack.NewSectionBlock(mrkdwn("escaped "+esc(img)+" raw "+img+" <javascript:window.pwned=3|a link>"), nil, nil),
		slack.NewContextBlock("", plain(script)),
		slack.NewActionBlock("x", slack.NewButtonBlockElement("x", "x", plain(esc(img))).
			WithConfirm(confirm(esc(script), esc(img), "Yes", "No"))),
	}
	if _, _, err := api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText(script, false), slack.MsgOptionBlocks(blocks...)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("text "+esc(img)+" "+script, false)); err != nil {
		t.Fatal(err)
	}
	p := webtest.Open(t, s.WebURL())
	p.Message(webtest.Channel, script, "escaped "+img, "a link", script)
	p.Message(webtest.Channel, "text "+img)
	p.Click(webtest.Channel, "button", img)
	p.WaitText(webtest.Dialog, script)
	p.WaitText(webtest.Dialog, img)
	p.Click(webtest.Dialog, "button", "No")
	var found struct {
		Pwned    bool
		Elements int
		Hrefs    []string
	}
	p.Eval(`({ Pwned: window.pwned !== undefined,
		Elements: document.querySelectorAll("#messages script, #messages img, #messages iframe, dialog script, dialog img").length,
		Hrefs: [...document.querySelectorAll("#messages a[href]")].map((a) => a.getAttribute("href")) })`, &found)
	if found.Pwned || found.Elements != 0 {
		t.Errorf("markup ran: pwned %v, %d script/img elements in messages", found.Pwned, found.Elements)
	}
	for _, h := range found.Hrefs {
		if !strings.HasPrefix(h, "?channel=") && !strings.HasPrefix(h, "https://") {
			t.Errorf("a link to %q, want only http(s) links", h)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
