package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

const (
	testChannel = "C0MIGRATE"
	testUser    = "U0ANN"
)

// startEmulator starts a Slack emulator with one channel and one user.
func startEmulator(t testing.TB, opts slackemu.Options) *slackemu.Server {
	t.Helper()
	if opts.PingInterval == 0 {
		opts.PingInterval = 200 * time.Millisecond
	}
	emu := slackemu.New(opts)
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(emu.Close)
	emu.AddChannel(testChannel, "migrations")
	emu.AddUser(testUser, "ann")
	return emu
}

func apiFor(emu *slackemu.Server) *slack.Client {
	return slack.New(emu.BotToken(), slack.OptionAppLevelToken(emu.AppToken()), slack.OptionAPIURL(emu.URL()))
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startBot runs a Socket Mode Bot against emu until the test ends, and waits
// until it is connected. At cleanup it stops the bot and checks Run's result.
func startBot(t testing.TB, emu *slackemu.Server, d Dispatcher, cfg Config) *Bot {
	t.Helper()
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 2 * time.Second
	}
	b := New(testLogger(t), apiFor(emu), d, cfg)
	runBot(t, b)
	eventually(t, "bot connected", func() bool { return b.Connected() && emu.Connections() == 1 })
	return b
}

// startHTTPBot runs an HTTP mode Bot behind a loopback server at emu's
// request URL until the test ends, and waits until Slack's url_verification
// passes. At cleanup it stops the bot and checks Run's result.
func startHTTPBot(t testing.TB, emu *slackemu.Server, d Dispatcher, cfg Config) *Bot {
	t.Helper()
	b := NewHTTP(testLogger(t), apiFor(emu), d, cfg, emu.SigningSecret())
	mux := http.NewServeMux()
	mux.Handle("POST /slack/events", b)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	emu.SetRequestURL(srv.URL + "/slack/events")
	runBot(t, b)
	eventually(t, "bot serving", b.Ready)
	if err := emu.VerifyURL(context.Background()); err != nil {
		t.Fatalf("url_verification: %v", err)
	}
	return b
}

// runBot runs b until the test ends, then stops it and checks Run's result.
func runBot(t testing.TB, b *Bot) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
}

// transports are the two ways a Bot receives Slack's requests, for tests that
// must hold in both.
var transports = []struct {
	name  string
	start func(t testing.TB, emu *slackemu.Server, d Dispatcher, cfg Config) *Bot
}{
	{"socket", startBot},
	{"http", startHTTPBot},
}

// eventually polls cond until it holds, failing the test after 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitStats polls b's counters until ok holds, failing after 5 s with the
// counters and what was wanted.
func waitStats(t testing.TB, b *Bot, want string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s := b.Stats(); !ok(s); s = b.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("got stats %+v, want %s", s, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder is a Dispatcher that records what it is handed. While gate is
// open (not closed) handlers block on it, or on their ctx.
type recorder struct {
	gate    chan struct{}
	entered chan string // receives the command text or action ID on entry; may be nil
	respond func(ctx context.Context, cmd slack.SlashCommand)

	mu     sync.Mutex
	cmds   []string
	clicks []string
	events []string
	ctxErr []error
}

func newRecorder() *recorder { return &recorder{gate: make(chan struct{})} }

func (r *recorder) SlashCommand(ctx context.Context, cmd slack.SlashCommand) {
	if r.entered != nil {
		r.entered <- cmd.Text
	}
	select {
	case <-r.gate:
	case <-ctx.Done():
	}
	if r.respond != nil {
		r.respond(ctx, cmd)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, cmd.Text)
	r.ctxErr = append(r.ctxErr, ctx.Err())
}

func (r *recorder) Interaction(ctx context.Context, cb slack.InteractionCallback) {
	id := ""
	if len(cb.ActionCallback.BlockActions) > 0 {
		id = cb.ActionCallback.BlockActions[0].ActionID
	}
	if r.entered != nil {
		r.entered <- id
	}
	select {
	case <-r.gate:
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clicks = append(r.clicks, id)
}

func (r *recorder) EventsAPI(_ context.Context, ev slackevents.EventsAPIEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev.InnerEvent.Type)
}

func (r *recorder) handled() (cmds, clicks, events int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cmds), len(r.clicks), len(r.events)
}

// postButton posts a message with one button and returns its ts.
func postButton(t testing.TB, p *Poster, actionID string) string {
	t.Helper()
	btn := slack.NewButtonBlockElement(actionID, "v1", slack.NewTextBlockObject(slack.PlainTextType, "Press", false, false))
	ts, err := p.Post(t.Context(), testChannel, Message{
		Text:   "card",
		Blocks: []slack.Block{slack.NewActionBlock("card-1", btn)},
	})
	if err != nil {
		t.Fatalf("post card: %v", err)
	}
	return ts
}

func TestAckBeforeDispatch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			emu := startEmulator(t, slackemu.Options{AckDeadline: 2 * time.Second, PostInterval: -1})
			rec := newRecorder() // handlers block until the end of the test
			rec.entered = make(chan string, 4)
			t.Cleanup(func() { close(rec.gate) })
			b := tr.start(t, emu, rec, Config{})
			ts := postButton(t, NewPoster(testLogger(t), apiFor(emu), PosterConfig{}), "approve")

			tests := []struct {
				name  string
				send  func(ctx context.Context) (*slackemu.Delivery, error)
				enter string
			}{
				{"slash command", func(ctx context.Context) (*slackemu.Delivery, error) {
					return emu.SlashCommand(ctx, testUser, testChannel, "status web01")
				}, "status web01"},
				{"button click", func(ctx context.Context) (*slackemu.Delivery, error) {
					return emu.Click(ctx, testUser, testChannel, ts, "approve")
				}, "approve"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					d, err := tt.send(t.Context())
					if err != nil {
						t.Fatalf("send: %v", err)
					}
					ack, err := d.WaitAck(t.Context())
					if err != nil {
						t.Fatalf("wait ack: %v", err)
					}
					if ack.TimedOut || ack.Error != "" {
						t.Fatalf("got ack %+v, want acked while the handler is blocked", ack)
					}
					if ack.Payload != nil {
						t.Errorf("got ack payload %s, want none", ack.Payload)
					}
					select {
					case got := <-rec.entered:
						if got != tt.enter {
							t.Errorf("handler got %q, want %q", got, tt.enter)
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("handler never ran")
					}
				})
			}
			if got := b.Stats(); got.Acked != 2 || got.Received != 2 {
				t.Errorf("got stats %+v, want 2 received and 2 acked", got)
			}
		})
	}
}

func TestConcurrentSlashCommands(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			emu := startEmulator(t, slackemu.Options{AckDeadline: 3 * time.Second})
			rec := newRecorder()
			b := tr.start(t, emu, rec, Config{Workers: 4})

			const n = 40
			acks := make([]slackemu.Ack, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					d, err := emu.SlashCommand(t.Context(), testUser, testChannel, fmt.Sprintf("status s%d", i))
					if err != nil {
						errs[i] = err
						return
					}
					acks[i], errs[i] = d.WaitAck(t.Context())
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("command %d: %v", i, errs[i])
				}
				if acks[i].TimedOut || acks[i].Error != "" {
					t.Errorf("command %d: got ack %+v, want acked", i, acks[i])
				}
			}
			if got := emu.Timeouts(); len(got) != 0 {
				t.Errorf("got %d operation_timeouts, want 0", len(got))
			}
			// Every handler is still blocked: acks did not wait for them.
			if cmds, _, _ := rec.handled(); cmds != 0 {
				t.Errorf("got %d commands handled before the gate opened, want 0", cmds)
			}
			close(rec.gate)
			eventually(t, "all commands handled", func() bool { c, _, _ := rec.handled(); return c == n })
			waitStats(t, b, fmt.Sprintf("%d dispatched, 0 busy", n), func(s Stats) bool { return s.Dispatched == n && s.Busy == 0 })
		})
	}
}

func TestReconnect(t *testing.T) {
	tests := []struct {
		name string
		cut  func(ctx context.Context, emu *slackemu.Server)
	}{
		{"refresh_requested", func(_ context.Context, emu *slackemu.Server) { emu.Disconnect("refresh_requested") }},
		{"warning", func(_ context.Context, emu *slackemu.Server) { emu.Disconnect("warning") }},
		{"dropped socket", func(_ context.Context, emu *slackemu.Server) { emu.DropSockets() }},
		{"pings stop", func(ctx context.Context, emu *slackemu.Server) {
			emu.StopPings(true)
			// Resume once the bot has dialled again, so the next socket stays up.
			dials := emu.Dials()
			go func() {
				_ = emu.WaitFor(ctx, func(s *slackemu.Server) bool { return s.Dials() > dials })
				emu.StopPings(false)
			}()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := startEmulator(t, slackemu.Options{})
			rec := newRecorder()
			close(rec.gate)
			b := startBot(t, emu, rec, Config{PingInterval: 500 * time.Millisecond})

			send := func(text string) {
				t.Helper()
				d, err := emu.SlashCommand(t.Context(), testUser, testChannel, text)
				if err != nil {
					t.Fatalf("send %q: %v", text, err)
				}
				if ack, err := d.WaitAck(t.Context()); err != nil || ack.TimedOut {
					t.Fatalf("ack %q: got %+v, %v; want acked", text, ack, err)
				}
			}
			send("before")
			tt.cut(t.Context(), emu)
			eventually(t, "reconnect", func() bool {
				return b.Stats().Reconnects >= 1 && b.Connected() && emu.Connections() == 1
			})
			send("after")
			eventually(t, "both handled", func() bool { c, _, _ := rec.handled(); return c == 2 })
			rec.mu.Lock()
			got := slices.Clone(rec.cmds)
			rec.mu.Unlock()
			if want := []string{"before", "after"}; !slices.Equal(got, want) {
				t.Errorf("handled %q, want %q", got, want)
			}
		})
	}
}

// TestTooManyWebsockets fills the app's 10 sockets so that every connection
// the bot opens is answered with a too_many_websockets disconnect, and checks
// that the bot's redials are paced instead of looping.
func TestTooManyWebsockets(t *testing.T) {
	emu := startEmulator(t, slackemu.Options{PingInterval: time.Second})
	api := apiFor(emu)
	var others []*websocket.Conn
	for range 10 {
		_, u, err := api.StartSocketModeContext(t.Context())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		c, _, err := websocket.DefaultDialer.DialContext(t.Context(), u, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		others = append(others, c)
	}
	closeOthers := sync.OnceFunc(func() {
		for _, c := range others {
			c.Close()
		}
	})
	t.Cleanup(closeOthers)

	// An interval well above one refused attempt's round trip, even on a
	// loaded machine, so that the third and fourth dials must wait.
	const interval = 500 * time.Millisecond
	b := New(testLogger(t), api, newRecorder(), Config{ReconnectInterval: interval, ReconnectBurst: 2})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	start := time.Now()
	eventually(t, "a few refused dials", func() bool { return emu.Dials() >= 10+4 })
	elapsed := time.Since(start)
	// Burst 2, then one dial per interval: 4 dials take at least 2 intervals.
	if elapsed < 2*interval {
		t.Errorf("4 dials took %v, want at least %v", elapsed, 2*interval)
	}
	if got := b.Stats().Throttled; got == 0 {
		t.Errorf("got 0 throttled dials, want some")
	}
	if b.Connected() {
		t.Errorf("got connected while every socket is refused")
	}

	closeOthers()
	eventually(t, "connected after the other sockets closed", func() bool { return b.Connected() })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
}

func TestBusy(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			emu := startEmulator(t, slackemu.Options{PostInterval: -1})
			rec := newRecorder()
			rec.entered = make(chan string, 8)
			t.Cleanup(func() { close(rec.gate) })
			b := tr.start(t, emu, rec, Config{Workers: 1, QueueSize: 1})
			ts := postButton(t, NewPoster(testLogger(t), apiFor(emu), PosterConfig{}), "approve")

			send := func(text string) slackemu.Ack {
				t.Helper()
				d, err := emu.SlashCommand(t.Context(), testUser, testChannel, text)
				if err != nil {
					t.Fatalf("send %q: %v", text, err)
				}
				ack, err := d.WaitAck(t.Context())
				if err != nil || ack.TimedOut || ack.Error != "" {
					t.Fatalf("ack %q: got %+v, %v; want acked", text, ack, err)
				}
				return ack
			}
			send("first") // taken by the only worker, which blocks
			<-rec.entered
			if ack := send("second"); ack.Payload != nil { // fills the queue
				t.Errorf("second: got ack payload %s, want none", ack.Payload)
			}
			ack := send("third")
			if !strings.Contains(string(ack.Payload), "busy") {
				t.Errorf("third: got ack payload %s, want a busy answer", ack.Payload)
			}

			d, err := emu.Click(t.Context(), testUser, testChannel, ts, "approve")
			if err != nil {
				t.Fatalf("click: %v", err)
			}
			if ack, err := d.WaitAck(t.Context()); err != nil || ack.TimedOut || ack.Error != "" {
				t.Fatalf("click ack: got %+v, %v; want acked", ack, err)
			}
			eventually(t, "busy answers shown", func() bool { return len(emu.Ephemerals(testUser)) == 2 })
			for _, m := range emu.Ephemerals(testUser) {
				if !strings.Contains(m.Text, "busy") {
					t.Errorf("got ephemeral %q, want a busy answer", m.Text)
				}
			}
			waitStats(t, b, "2 busy, 4 acked", func(s Stats) bool { return s.Busy == 2 && s.Acked == 4 })
		})
	}
}

// TestUnreadableEnvelopeAcked sends an envelope slack-go cannot parse: the bot
// acks it anyway and keeps the socket.
func TestUnreadableEnvelopeAcked(t *testing.T) {
	emu := startEmulator(t, slackemu.Options{})
	b := startBot(t, emu, newRecorder(), Config{})
	emu.SendRaw([]byte(`{"envelope_id":"env-unknown-1","type":"mystery_type","payload":{}}`))
	emu.SendRaw([]byte(`not json at all`))
	eventually(t, "unreadable envelope acked", func() bool { return b.Stats().Acked == 1 })
	if got := b.Stats(); got.Received != 1 || got.Reconnects != 0 || !b.Connected() {
		t.Errorf("got stats %+v connected=%v, want 1 received, no reconnect, connected", got, b.Connected())
	}
}

// TestEventsAPIRedelivery sends one Events API event, then Slack's retry of
// it (same event_id): the handler sees it once, both deliveries are acked.
func TestEventsAPIRedelivery(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			emu := startEmulator(t, slackemu.Options{})
			rec := newRecorder()
			b := tr.start(t, emu, rec, Config{})
			d, err := emu.Event(t.Context(), map[string]any{
				"type": "app_mention", "user": testUser, "text": "hi", "ts": "1712000000.000100",
				"channel": testChannel, "event_ts": "1712000000.000100",
			})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := emu.Redeliver(t.Context(), d)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []*slackemu.Delivery{d, retry} {
				if ack, err := d.WaitAck(t.Context()); err != nil || ack.TimedOut || ack.Error != "" {
					t.Fatalf("ack of attempt %d: got %+v, %v; want acked", d.Attempt, ack, err)
				}
			}
			eventually(t, "event handled", func() bool { _, _, e := rec.handled(); return e == 1 })
			waitStats(t, b, "1 duplicate, 2 acked, 1 dispatched", func(s Stats) bool {
				return s.Duplicates == 1 && s.Acked == 2 && s.Dispatched == 1
			})
		})
	}
}

func TestInvalidAppToken(t *testing.T) {
	emu := startEmulator(t, slackemu.Options{})
	api := slack.New(emu.BotToken(), slack.OptionAppLevelToken("xapp-wrong"), slack.OptionAPIURL(emu.URL()))
	b := New(testLogger(t), api, newRecorder(), Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := b.Run(ctx)
	se, ok := errors.AsType[slack.SlackErrorResponse](err)
	if !ok || se.Err != "invalid_auth" {
		t.Fatalf("Run returned %v, want invalid_auth", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Run returned only after its context ended, want at once")
	}
}

// TestHandlerAnswers drives a slash command whose handler answers through the
// response URL, and checks the handler's context carries the command timeout.
func TestHandlerAnswers(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			emu := startEmulator(t, slackemu.Options{})
			p := NewPoster(testLogger(t), apiFor(emu), PosterConfig{})
			rec := newRecorder()
			close(rec.gate)
			var deadline time.Duration
			rec.respond = func(ctx context.Context, cmd slack.SlashCommand) {
				if d, ok := ctx.Deadline(); ok {
					deadline = time.Until(d)
				}
				if err := p.Respond(ctx, cmd.ResponseURL, Message{Text: "web01 is in sync"}, RespondOptions{}); err != nil {
					t.Errorf("respond: %v", err)
				}
			}
			b := tr.start(t, emu, rec, Config{CommandTimeout: 30 * time.Second})
			if _, err := emu.SlashCommand(t.Context(), testUser, testChannel, "status web01"); err != nil {
				t.Fatalf("send: %v", err)
			}
			eventually(t, "answer shown", func() bool { return len(emu.Ephemerals(testUser)) == 1 })
			if got := emu.Ephemerals(testUser)[0].Text; got != "web01 is in sync" {
				t.Errorf("got ephemeral %q, want %q", got, "web01 is in sync")
			}
			eventually(t, "handler done", func() bool { return b.Stats().Dispatched == 1 })
			if deadline <= 20*time.Second || deadline > 30*time.Second {
				t.Errorf("got handler deadline in %v, want about 30s", deadline)
			}
		})
	}
}

// BenchmarkAckLatency sends 500 slash commands per iteration over each
// transport, with 1, 20 or 50 of them in flight at once, while every handler
// takes 2 s, and reports the ack latency the emulator measured.
func BenchmarkAckLatency(b *testing.B) {
	for _, tr := range transports {
		for _, inFlight := range []int{1, 20, 50} {
			b.Run(fmt.Sprintf("transport=%s/inflight=%d", tr.name, inFlight), func(b *testing.B) {
				benchAckLatency(b, inFlight, tr.start)
			})
		}
	}
}

func benchAckLatency(b *testing.B, inFlight int, start func(testing.TB, *slackemu.Server, Dispatcher, Config) *Bot) {
	emu := startEmulator(b, slackemu.Options{AckDeadline: 3 * time.Second})
	slow := dispatcherFunc(func(ctx context.Context) {
		t := time.NewTimer(2 * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	})
	start(b, emu, slow, Config{Workers: 16, QueueSize: 4096})

	const n = 500
	var lat []time.Duration
	timeouts := 0
	for b.Loop() {
		acks := make([]slackemu.Ack, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, inFlight)
		for i := range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d, err := emu.SlashCommand(context.Background(), testUser, testChannel, "status")
				if err != nil {
					b.Errorf("send: %v", err)
					return
				}
				acks[i], err = d.WaitAck(context.Background())
				if err != nil {
					b.Errorf("wait ack: %v", err)
				}
			})
		}
		wg.Wait()
		for _, a := range acks {
			if a.TimedOut || a.Error != "" {
				timeouts++
				continue
			}
			lat = append(lat, a.Latency)
		}
	}
	if timeouts > 0 {
		b.Errorf("got %d ack timeouts or errors, want 0", timeouts)
	}
	if len(lat) == 0 {
		b.Fatal("no acks measured")
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ack-ms")
	b.ReportMetric(pct(0.99), "p99-ack-ms")
}

// dispatcherFunc is a Dispatcher running one function for every envelope.
type dispatcherFunc func(ctx context.Context)

func (f dispatcherFunc) SlashCommand(ctx context.Context, _ slack.SlashCommand)       { f(ctx) }
func (f dispatcherFunc) Interaction(ctx context.Context, _ slack.InteractionCallback) { f(ctx) }
