package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/render"
)

// e2e is the real program (through run) against both emulators on loopback.
type e2e struct {
	t     testing.TB
	sb    *sandbox
	clock *mgnemu.ManualClock
	logs  *testrig.SyncBuffer
}

// newE2EFleet is newE2E with that many generated servers besides the sample fleet.
func newE2EFleet(t testing.TB, start time.Time, servers int) *e2e {
	return newE2E(t, start, func(o *sandboxOptions) { o.Servers = servers })
}

// newE2E starts the emulators on loopback, with MGN's jobs on a manual clock set to start; they
// stop when the test ends. The test starts the bot itself. opts change the sandbox.
func newE2E(t testing.TB, start time.Time, opts ...func(*sandboxOptions)) *e2e {
	t.Helper()
	clock := mgnemu.NewManualClock(start)
	o := sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: -1, Now: clock.Now}
	for _, opt := range opts {
		opt(&o)
	}
	sb, err := startSandbox(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return &e2e{t: t, sb: sb, clock: clock, logs: &testrig.SyncBuffer{}}
}

// botEnv is the bot's configuration on top of the sandbox's: a fresh SQLite store, short
// intervals, no HTTP listener, text logs; extra overrides it.
func botEnv(t testing.TB, extra map[string]string) map[string]string {
	env := map[string]string{
		"CUTOVER_DB":             filepath.Join(t.TempDir(), "cutoverbot.db"),
		"CUTOVER_POLL_INTERVAL":  "50ms",
		"CUTOVER_WATCH_INTERVAL": "100ms",
		"CUTOVER_HTTP_ADDR":      "off",
		"CUTOVER_LOG_FORMAT":     "text",
		"CUTOVER_LOG_LEVEL":      "debug",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// transport is how the bot under test receives Slack's requests: the configuration that picks
// it, on top of botEnv's.
type transport struct {
	name string
	env  map[string]string
}

var (
	socketMode = transport{"socket", nil}
	// HTTP mode needs the listener for Slack's posts, and no app token.
	httpMode   = transport{"http", map[string]string{"CUTOVER_SLACK_MODE": "http", "CUTOVER_HTTP_ADDR": "127.0.0.1:0", "SLACK_APP_TOKEN": ""}}
	transports = []transport{socketMode, httpMode}
)

// e2eStart is when the end-to-end tests' MGN clock starts.
var e2eStart = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// startBot starts the emulators and `cutoverbot run` against them over Socket Mode; the bot
// stops, and must stop cleanly, when the test ends.
func startBot(t testing.TB, extra map[string]string) *e2e {
	t.Helper()
	return startBotOn(t, newE2E(t, e2eStart), socketMode, extra)
}

// startBotAt is startBot with MGN's clock set to start.
func startBotAt(t testing.TB, start time.Time, extra map[string]string) *e2e {
	t.Helper()
	return startBotOn(t, newE2E(t, start), socketMode, extra)
}

// startBotOver is startBot receiving Slack's requests over tr.
func startBotOver(t testing.TB, tr transport, extra map[string]string) *e2e {
	t.Helper()
	return startBotOn(t, newE2E(t, e2eStart), tr, extra)
}

// startBotOn starts `cutoverbot run` against e's emulators, receiving Slack's requests over
// tr, and waits until they reach it: the socket is open, or the Slack emulator posts to the
// bot's request URL, which passed Slack's url_verification, and /readyz says ready. The bot
// stops, and must stop cleanly, when the test ends.
func startBotOn(t testing.TB, e *e2e, tr transport, extra map[string]string) *e2e {
	t.Helper()
	env := botEnv(t, tr.env)
	for k, v := range extra {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, runEmulated, e.sb.getenv(env), strings.NewReader(""), e.logs, e.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("cutoverbot run returned %v, want nil on shutdown", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("cutoverbot run did not stop within 10s of cancellation")
		}
		if t.Failed() {
			t.Logf("cutoverbot logs:\n%s", e.logs.String())
		}
	})
	if env["CUTOVER_SLACK_MODE"] != "http" {
		e.wait(func(s *slackemu.Server) bool { return s.Connections() > 0 }, "the bot to connect")
		return e
	}
	base := "http://" + e.httpAddr()
	e.sb.slack.SetRequestURL(base + "/slack/events")
	if err := e.sb.slack.VerifyURL(t.Context()); err != nil {
		t.Fatalf("Slack's url_verification of the bot's request URL: %v", err)
	}
	testrig.WaitUntil(t, "/readyz to answer 200", 0, func() bool { return httpStatus(t, base+"/readyz") == http.StatusOK })
	if n := e.sb.slack.Dials(); n != 0 {
		t.Errorf("the bot in HTTP mode opened %d Socket Mode connections, want none", n)
	}
	return e
}

// httpStatus is the status of a GET of url.
func httpStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *e2e) wait(cond func(*slackemu.Server) bool, what string) {
	e.t.Helper()
	e.waitWithin(20*time.Second, cond, what)
}

// waitWithin is wait with a bound of its own, for what takes Slack's pace: a long thread is
// posted at one message a second.
func (e *e2e) waitWithin(d time.Duration, cond func(*slackemu.Server) bool, what string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), d)
	defer cancel()
	if err := e.sb.slack.WaitFor(ctx, cond); err != nil {
		e.t.Fatalf("timed out waiting for %s", what)
	}
}

// command sends /cutover text as user, requires a timely ack and returns the user's newest
// ephemeral message once one arrives after the command.
func (e *e2e) command(user, text string) slackemu.Message {
	e.t.Helper()
	before := len(e.sb.slack.Ephemerals(user))
	d, err := e.sb.slack.SlashCommand(e.t.Context(), user, sandboxChannel, text)
	if err != nil {
		e.t.Fatal(err)
	}
	e.acked(d)
	e.wait(func(s *slackemu.Server) bool { return len(s.Ephemerals(user)) > before }, "an answer to /cutover "+text)
	eph := e.sb.slack.Ephemerals(user)
	return eph[len(eph)-1]
}

func (e *e2e) acked(d *slackemu.Delivery) slackemu.Ack {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 10*time.Second)
	defer cancel()
	ack, err := d.WaitAck(ctx)
	if err != nil {
		e.t.Fatalf("no ack: %v", err)
	}
	if ack.TimedOut {
		e.t.Fatalf("ack after Slack's deadline (%v)", ack.Latency)
	}
	if ack.Error != "" {
		e.t.Fatalf("Slack showed %q instead of an answer (HTTP %d)", ack.Error, ack.Status)
	}
	return ack
}

func (e *e2e) channel() []slackemu.Message { return e.sb.slack.Messages(sandboxChannel) }

func (e *e2e) findChannel(cond func(slackemu.Message) bool) (slackemu.Message, bool) {
	msgs := e.channel()
	for i := len(msgs) - 1; i >= 0; i-- {
		if cond(msgs[i]) {
			return msgs[i], true
		}
	}
	return slackemu.Message{}, false
}

func hasButton(m slackemu.Message, actionID string) bool {
	for _, b := range m.Buttons() {
		if b.ActionID == actionID {
			return true
		}
	}
	return false
}

// runJobs advances MGN's clock until every job has ended, then waits for the final reports.
func (e *e2e) finishJobs(threads int) {
	e.t.Helper()
	e.clock.Advance(mgnemu.FastPace().Total() + time.Minute)
	e.wait(func(s *slackemu.Server) bool {
		n := 0
		for _, m := range s.Messages(sandboxChannel) {
			if m.Broadcast && m.ThreadTS != "" {
				n++
			}
		}
		return n >= threads
	}, fmt.Sprintf("%d final launch reports", threads)+e.dumpOnFail())
}

func TestConfigNamesEveryMissingVariable(t *testing.T) {
	_, err := LoadConfig(func(string) string { return "" })
	if err == nil {
		t.Fatal("LoadConfig with an empty environment succeeded, want an error")
	}
	for _, name := range []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CUTOVER_CHANNEL", "CUTOVER_OPERATORS", "CUTOVER_APPROVERS", "AWS_REGION"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestConfigRejectsMalformedValues(t *testing.T) {
	good := map[string]string{
		"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1", "CUTOVER_CHANNEL": "C123",
		"CUTOVER_OPERATORS": "U1A", "CUTOVER_APPROVERS": "S1B", "AWS_REGION": "eu-central-1",
	}
	tests := []struct{ name, value string }{
		{"SLACK_APP_TOKEN", "xoxb-wrong"},
		{"CUTOVER_CHANNEL", "#migration"},
		{"CUTOVER_OPERATORS", "ann"},
		{"CUTOVER_REMINDER_CRON", "every monday"},
		{"CUTOVER_TZ", "Mars/Olympus"},
		{"CUTOVER_DATE", "15.12.2026"},
		{"CUTOVER_POLL_INTERVAL", "15"},
		{"CUTOVER_HTTP_ADDR", "8080"},
		{"CUTOVER_HTTP_ADDR", "localhost:http-alt"},
		{"CUTOVER_HTTP_ADDR", ":99999"},
		{"CUTOVER_APPROVERS", " , "},
		{"AWS_ENDPOINT_URL_MGN", "localhost:4566"},
		{"CUTOVER_SELF_APPROVAL", "maybe"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			env := map[string]string{tt.name: tt.value}
			for k, v := range good {
				if _, ok := env[k]; !ok {
					env[k] = v
				}
			}
			_, err := LoadConfig(func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("LoadConfig with %s=%q: got %v, want an error naming %s", tt.name, tt.value, err, tt.name)
			}
		})
	}
	c, err := LoadConfig(func(k string) string { return good[k] })
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	if c.ReminderCron != "0 9 * * MON" || c.PollInterval != 15*time.Second || c.HTTPAddr != ":8080" || c.DB != "cutoverbot.db" {
		t.Errorf("defaults: got cron %q poll %v http %q db %q", c.ReminderCron, c.PollInterval, c.HTTPAddr, c.DB)
	}
	if s := fmt.Sprint(c.BotToken); strings.Contains(s, "xoxb") {
		t.Errorf("token printed as %q, want it redacted", s)
	}
}

func TestConfigSlackMode(t *testing.T) {
	good := map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-1", "CUTOVER_CHANNEL": "C123", "CUTOVER_OPERATORS": "U1A",
		"CUTOVER_APPROVERS": "S1B", "AWS_REGION": "eu-central-1",
	}
	tests := []struct {
		name    string
		env     map[string]string
		badVar  string // "" when the configuration is good
		wantAdr string
	}{
		{"socket mode needs the app token", map[string]string{}, "SLACK_APP_TOKEN", ""},
		{"http mode needs no app token", map[string]string{"CUTOVER_SLACK_MODE": "http", "SLACK_SIGNING_SECRET": "s3cr3t"}, "", ":8080"},
		{"http mode needs the signing secret", map[string]string{"CUTOVER_SLACK_MODE": "http"}, "SLACK_SIGNING_SECRET", ""},
		{"http mode needs the listener", map[string]string{"CUTOVER_SLACK_MODE": "http", "SLACK_SIGNING_SECRET": "s3cr3t", "CUTOVER_HTTP_ADDR": "off"}, "CUTOVER_HTTP_ADDR", ""},
		{"unknown mode", map[string]string{"CUTOVER_SLACK_MODE": "websocket", "SLACK_APP_TOKEN": "xapp-1"}, "CUTOVER_SLACK_MODE", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := maps.Clone(good)
			maps.Copy(env, tt.env)
			c, err := LoadConfig(func(k string) string { return env[k] })
			switch {
			case tt.badVar == "" && err != nil:
				t.Fatalf("LoadConfig: %v", err)
			case tt.badVar != "" && (err == nil || !strings.Contains(err.Error(), tt.badVar)):
				t.Fatalf("LoadConfig: got %v, want an error naming %s", err, tt.badVar)
			case tt.badVar == "" && (c.HTTPAddr != tt.wantAdr || fmt.Sprint(c.SigningSecret) == "s3cr3t"):
				t.Errorf("got HTTP address %q and signing secret printed as %q, want %q and redacted", c.HTTPAddr, fmt.Sprint(c.SigningSecret), tt.wantAdr)
			}
		})
	}
}

// TestRunUsageListsTheEnvironment: every variable the configuration reads is in `run -h`
// (the AWS SDK's own are summed up there as its standard chain).
func TestRunUsageListsTheEnvironment(t *testing.T) {
	read := map[string]bool{}
	_, _ = LoadConfig(func(k string) string { read[k] = true; return "" })
	_, _ = LoadConfig(func(k string) string {
		read[k] = true
		return map[string]string{"CUTOVER_SLACK_MODE": "http"}[k]
	})
	for name := range read {
		if !strings.HasPrefix(name, "AWS_") && !strings.Contains(runUsage, name) {
			t.Errorf("cutoverbot run -h does not list %s", name)
		}
	}
	if !read["CUTOVER_SLACK_MODE"] || !read["SLACK_SIGNING_SECRET"] {
		t.Errorf("the configuration read %v, want CUTOVER_SLACK_MODE and SLACK_SIGNING_SECRET among them", read)
	}
}

func TestStatusAndRefusedLaunch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := startBotOver(t, tr, nil)
			status := e.command(sandboxOperator, "status")
			for _, want := range []string{"web01", "Continuous Data Replication", "file01"} {
				if !strings.Contains(status.PlainText(), want) {
					t.Errorf("status does not mention %q:\n%s", want, status.PlainText())
				}
			}
			refusal := e.command(sandboxOperator, "launch web02 test")
			if txt := refusal.PlainText(); !strings.Contains(txt, "63%") {
				t.Errorf("refusal of a syncing server does not give its progress:\n%s", txt)
			}
			if n := e.sb.mgn.Calls("StartTest"); n != 0 {
				t.Errorf("StartTest called %d times for a refused launch, want 0", n)
			}
			unknown := e.command(sandboxOperator, "launch nosuchserver test")
			if !strings.Contains(unknown.PlainText(), "nosuchserver") {
				t.Errorf("unknown server answer does not name it:\n%s", unknown.PlainText())
			}
			help := e.command(sandboxOperator, "frobnicate")
			if !strings.Contains(help.PlainText(), "/cutover launch") {
				t.Errorf("unknown input does not get usage:\n%s", help.PlainText())
			}
		})
	}
}

func TestTestLaunchFollowedToIPs(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := startBotOver(t, tr, nil)
			e.command(sandboxOperator, "launch web01 test")
			parent, ok := e.findChannel(func(m slackemu.Message) bool { return strings.Contains(m.PlainText(), "web01") && m.ThreadTS == "" })
			if !ok {
				t.Fatal("no launch announcement in the channel")
			}
			e.finishJobs(1)
			replies := e.sb.slack.Replies(sandboxChannel, parent.TS)
			var all strings.Builder
			for _, r := range replies {
				all.WriteString(r.PlainText() + "\n")
			}
			final := replies[len(replies)-1]
			if !final.Broadcast {
				t.Errorf("final reply not broadcast to the channel")
			}
			var target *mgnemu.Instance
			for _, in := range e.sb.mgn.Instances() {
				if in.Tags["AWSApplicationMigrationServiceSourceServerID"] != "" {
					target = &in
				}
			}
			if target == nil {
				t.Fatal("MGN emulator launched no target instance")
			}
			for _, want := range []string{target.InstanceID, target.PrivateIPAddress, target.PublicIPAddress, "snapshot", "conver"} {
				if !strings.Contains(all.String(), want) {
					t.Errorf("thread does not mention %q:\n%s", want, all.String())
				}
			}
			if !hasButton(final, render.ActionMarkReady) || !hasButton(final, render.ActionRevertTest) {
				t.Errorf("final reply after a test offers %v, want mark ready and revert buttons", final.Buttons())
			}
			if n := e.sb.mgn.Calls("StartTest"); n != 1 {
				t.Errorf("StartTest called %d times, want 1", n)
			}
		})
	}
}

func TestCutoverConfirmedExactlyOnce(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := startBotOver(t, tr, nil)
			e.command(sandboxOperator, "launch db01 cutover")
			card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
			if !ok {
				t.Fatal("no confirmation card in the channel")
			}
			for _, b := range card.Buttons() {
				if b.ActionID == render.ActionConfirm && (b.Style != "danger" || !b.Confirm) {
					t.Errorf("confirm button: style %q confirm dialog %v, want danger with a dialog", b.Style, b.Confirm)
				}
			}
			// Someone not allowed: refused, nothing started.
			before := len(e.sb.slack.Ephemerals(sandboxOther))
			d, err := e.sb.slack.Click(t.Context(), sandboxOther, sandboxChannel, card.TS, render.ActionConfirm)
			if err != nil {
				t.Fatal(err)
			}
			e.acked(d)
			e.wait(func(s *slackemu.Server) bool { return len(s.Ephemerals(sandboxOther)) > before }, "a refusal for eve")
			if n := e.sb.mgn.Calls("StartCutover"); n != 0 {
				t.Fatalf("StartCutover called %d times after an unauthorized click, want 0", n)
			}
			// The approver double-clicks, and Slack redelivers one of the clicks.
			var wg sync.WaitGroup
			var deliveries []*slackemu.Delivery
			var mu sync.Mutex
			for range 3 {
				wg.Go(func() {
					d, err := e.sb.slack.Click(t.Context(), sandboxApprover, sandboxChannel, card.TS, render.ActionConfirm)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					deliveries = append(deliveries, d)
					mu.Unlock()
				})
			}
			wg.Wait()
			if len(deliveries) > 0 {
				if _, err := e.sb.slack.Redeliver(t.Context(), deliveries[0]); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range deliveries {
				e.acked(d)
			}
			e.wait(func(s *slackemu.Server) bool {
				for _, m := range s.Messages(sandboxChannel) {
					if m.TS == card.TS {
						return !hasButton(m, render.ActionConfirm)
					}
				}
				return false
			}, "the card to lose its buttons")
			e.wait(func(s *slackemu.Server) bool {
				for _, m := range s.Messages(sandboxChannel) {
					if strings.Contains(m.PlainText(), "mgnjob-") && m.TS != card.TS {
						return true
					}
				}
				return false
			}, "the cutover's thread")
			e.finishJobs(1)
			if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
				t.Errorf("StartCutover called %d times, want exactly 1", n)
			}
			for _, m := range e.channel() {
				if m.TS == card.TS && !strings.Contains(m.PlainText(), "bob") && !strings.Contains(m.PlainText(), sandboxApprover) {
					t.Errorf("card does not say who confirmed:\n%s", m.PlainText())
				}
			}
		})
	}
}

// TestForgedRequestsRefused: in HTTP mode, a launch command and a confirm click signed with the
// wrong secret, or correctly but six minutes ago (a replay), are each answered 401 and change
// nothing: nothing is launched or posted, and the bot counts them as rejected.
func TestForgedRequestsRefused(t *testing.T) {
	e := startBotOver(t, httpMode, nil)
	e.command(sandboxOperator, "launch db01 cutover")
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card in the channel")
	}
	channel := len(e.channel())
	forgeries := []struct {
		name string
		f    slackemu.Forgery
	}{
		{"forged signature", slackemu.ForgeWrongSecret},
		{"stale timestamp", slackemu.ForgeStaleTimestamp},
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			ann, bob := len(e.sb.slack.Ephemerals(sandboxOperator)), len(e.sb.slack.Ephemerals(sandboxApprover))
			send := []func() (*slackemu.Delivery, error){
				func() (*slackemu.Delivery, error) {
					return e.sb.slack.SlashCommand(t.Context(), sandboxOperator, sandboxChannel, "launch web01 test")
				},
				func() (*slackemu.Delivery, error) {
					return e.sb.slack.Click(t.Context(), sandboxApprover, sandboxChannel, card.TS, render.ActionConfirm)
				},
			}
			for _, send := range send {
				e.sb.slack.Forge(1, f.f)
				d, err := send()
				if err != nil {
					t.Fatal(err)
				}
				ack, err := d.WaitAck(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if ack.Status != http.StatusUnauthorized || ack.Payload != nil {
					t.Errorf("%s request: got %+v, want 401 and nothing shown", d.Type, ack)
				}
			}
			// A signed command afterwards is answered, so the bot is up and has worked through
			// what it took in.
			e.command(sandboxOperator, "status web01")
			if n, m := e.sb.mgn.Calls("StartTest"), e.sb.mgn.Calls("StartCutover"); n+m != 0 {
				t.Errorf("StartTest called %d times, StartCutover %d times, want 0", n, m)
			}
			if got := e.channel(); len(got) != channel || !hasButton(got[len(got)-1], render.ActionConfirm) {
				t.Errorf("channel has %d messages (want %d), the card still offering confirm: %v", len(got), channel, hasButton(got[len(got)-1], render.ActionConfirm))
			}
			if n := len(e.sb.slack.Ephemerals(sandboxApprover)) - bob; n != 0 {
				t.Errorf("bob was shown %d messages after a forged click, want 0", n)
			}
			if n := len(e.sb.slack.Ephemerals(sandboxOperator)) - ann; n != 1 {
				t.Errorf("ann was shown %d messages, want 1 (the status)", n)
			}
		})
	}
	resp, err := http.Get("http://" + e.httpAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if want := `cutoverbot_slack_envelopes_total{outcome="rejected"} 4`; !strings.Contains(string(metrics), want) {
		t.Errorf("metrics do not count the forged requests: want %q", want)
	}
}

func TestConcurrentCommandsAckedWhileMGNIsSlow(t *testing.T) {
	e := startBot(t, nil)
	e.sb.mgn.SetLatency("", 2*time.Second)
	var wg sync.WaitGroup
	acks := make(chan slackemu.Ack, 40)
	for i := range 40 {
		wg.Go(func() {
			d, err := e.sb.slack.SlashCommand(t.Context(), sandboxOperator, sandboxChannel, fmt.Sprintf("status web0%d", 1+i%2))
			if err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			ack, err := d.WaitAck(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			acks <- ack
		})
	}
	wg.Wait()
	close(acks)
	n := 0
	for a := range acks {
		n++
		if a.TimedOut || a.Latency > time.Second {
			t.Errorf("ack latency %v (timed out %v), want well under Slack's 3 s", a.Latency, a.TimedOut)
		}
	}
	if n != 40 {
		t.Fatalf("got %d acks, want 40", n)
	}
	if to := e.sb.slack.Timeouts(); len(to) != 0 {
		t.Errorf("Slack recorded %d ack timeouts, want 0", len(to))
	}
	e.wait(func(s *slackemu.Server) bool { return len(s.Ephemerals(sandboxOperator)) >= 40 }, "40 answers")
}

func TestUserTextIsEscaped(t *testing.T) {
	e := startBot(t, nil)
	for _, text := range []string{"status <!channel>", "launch <!channel> test", "<!channel>"} {
		m := e.command(sandboxOperator, text)
		raw := m.Text
		for _, b := range m.Blocks {
			raw += string(b)
		}
		if strings.Contains(raw, "<!channel>") {
			t.Errorf("answer to %q contains a live <!channel>:\n%s", text, raw)
		}
	}
}

func TestReconnectWhileInUse(t *testing.T) {
	e := startBot(t, nil)
	e.command(sandboxOperator, "status")
	dials := e.sb.slack.Dials()
	e.sb.slack.Disconnect("refresh_requested")
	e.wait(func(s *slackemu.Server) bool { return s.Dials() > dials && s.Connections() > 0 }, "a reconnect")
	e.command(sandboxOperator, "status web01")
	e.sb.slack.DropSockets()
	e.wait(func(s *slackemu.Server) bool { return s.Connections() > 0 }, "a reconnect after a dropped socket")
	e.command(sandboxOperator, "help")
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo plays the whole workflow at the emulator's real-time pace")
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// -keep with nothing on standard input: the workflow, the web view's address, and an exit
	// at the end of input.
	if err := run(ctx, []string{"demo", "-keep"}, nil, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Continuous Data Replication", "63%", "public", "private", "Confirm", "reminder",
		"yours was the deciding approval", "The cutover of db01 started: job `mgnjob-", "progress follows in a thread in #migration",
		"Web view of the workspace (act as ann, bob or eve): http://127.0.0.1:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output does not show %q", want)
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("demo ran out of time")
	}
}

func (e *e2e) dump() {
	for _, m := range e.channel() {
		e.t.Logf("MSG %s thread=%s bc=%v: %s", m.TS, m.ThreadTS, m.Broadcast, m.PlainText())
		for _, r := range e.sb.slack.Replies(sandboxChannel, m.TS) {
			e.t.Logf("   REPLY %s bc=%v: %s", r.TS, r.Broadcast, r.PlainText())
		}
	}
	for _, j := range e.sb.mgn.Jobs() {
		e.t.Logf("JOB %+v", j)
	}
}

func (e *e2e) dumpOnFail() string {
	e.t.Cleanup(func() {
		if e.t.Failed() {
			e.dump()
		}
	})
	return ""
}

func TestHealthAndMetrics(t *testing.T) {
	e := startBot(t, map[string]string{"CUTOVER_HTTP_ADDR": "127.0.0.1:0"})
	e.command(sandboxOperator, "status")
	addr := e.httpAddr()
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `cutoverbot_aws_calls_total{operation="DescribeSourceServers"}`,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: got %d %q, want 200 containing %q", path, resp.StatusCode, b, want)
		}
	}
}

var httpAddrLog = regexp.MustCompile(`msg="http endpoints listening".* addr=(\S+)`)

// httpAddr is the address the bot's HTTP endpoints listen on, read from its log.
func (e *e2e) httpAddr() string {
	e.t.Helper()
	var addr string
	testrig.WaitUntil(e.t, "the bot to log its HTTP address", 0, func() bool {
		if m := httpAddrLog.FindStringSubmatch(e.logs.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

// TestListenFailureLeavesNothingRunning: when the HTTP address is taken, run fails at once and
// leaves no actor running (none of them would have an owner left to stop it).
func TestListenFailureLeavesNothingRunning(t *testing.T) {
	e := newE2E(t, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	env := botEnv(t, map[string]string{"CUTOVER_HTTP_ADDR": taken.Addr().String()})
	baseline := runtime.NumGoroutine()

	err = run(t.Context(), runEmulated, e.sb.getenv(env), strings.NewReader(""), e.logs, e.logs)
	if err == nil || !strings.Contains(err.Error(), "CUTOVER_HTTP_ADDR") {
		t.Fatalf("run with a taken HTTP address: got %v, want an error naming CUTOVER_HTTP_ADDR", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for n := runtime.NumGoroutine(); n > baseline; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines after run returned: got %d, want at most %d (as before run)\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
	if n := e.sb.slack.Connections(); n != 0 {
		t.Errorf("Socket Mode connections after a failed start: got %d, want 0", n)
	}
}

// TestSocketReconnectMidJob drops the Slack socket while a launch's thread is being written: the
// thread still gets every event once, and commands work again on the new socket.
func TestSocketReconnectMidJob(t *testing.T) {
	e := startBot(t, nil)
	e.command(sandboxOperator, "launch web01 test")
	parent, ok := e.findChannel(func(m slackemu.Message) bool { return strings.Contains(m.PlainText(), "web01") && m.ThreadTS == "" })
	if !ok {
		t.Fatal("no launch announcement in the channel")
	}
	e.clock.Advance(mgnemu.FastPace().Start + mgnemu.FastPace().Cleanup + time.Second)
	e.wait(func(s *slackemu.Server) bool { return len(s.Replies(sandboxChannel, parent.TS)) >= 2 }, "the first thread replies")
	dials := e.sb.slack.Dials()
	e.sb.slack.Disconnect("refresh_requested")
	e.sb.slack.DropSockets()
	e.wait(func(s *slackemu.Server) bool { return s.Dials() > dials && s.Connections() > 0 }, "a reconnect")
	e.finishJobs(1)
	var thread strings.Builder
	for _, r := range e.sb.slack.Replies(sandboxChannel, parent.TS) {
		thread.WriteString(r.PlainText() + "\n")
	}
	for _, phrase := range []string{"Job started", "instances from earlier launches removed", "snapshot taken", "conversion finished", "Job ended", "finished: launched"} {
		if n := strings.Count(thread.String(), phrase); n != 1 {
			t.Errorf("thread mentions %q %d times, want once:\n%s", phrase, n, thread.String())
		}
	}
	e.command(sandboxOperator, "status web01")
}

// TestReadyzFollowsTheSocket checks the watchdog: while the bot cannot reconnect to Slack,
// /readyz says so (503), and it turns ready again once the socket is back.
func TestReadyzFollowsTheSocket(t *testing.T) {
	e := startBot(t, map[string]string{"CUTOVER_HTTP_ADDR": "127.0.0.1:0"})
	url := "http://" + e.httpAddr() + "/readyz"
	pollStatus := func(want int) {
		t.Helper()
		testrig.WaitUntil(t, fmt.Sprintf("/readyz to answer %d", want), 0, func() bool { return httpStatus(t, url) == want })
	}
	pollStatus(http.StatusOK)
	e.sb.slack.RateLimit("apps.connections.open", 2, time.Second)
	e.sb.slack.DropSockets()
	pollStatus(http.StatusServiceUnavailable)
	pollStatus(http.StatusOK)
	e.command(sandboxOperator, "help")
}
