package bot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

// TestHTTPRefusesForgedRequests sends a slash command and a click signed
// wrongly in each way Slack's checks catch: each is answered 401, and no
// handler runs.
func TestHTTPRefusesForgedRequests(t *testing.T) {
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	rec := newRecorder()
	rec.entered = make(chan string, 8)
	close(rec.gate)
	b := startHTTPBot(t, emu, rec, Config{})
	ts := postButton(t, NewPoster(testLogger(t), apiFor(emu), PosterConfig{}), "approve")

	forgeries := []struct {
		name string
		f    slackemu.Forgery
	}{
		{"wrong secret", slackemu.ForgeWrongSecret},
		{"stale timestamp", slackemu.ForgeStaleTimestamp},
		{"no signature", slackemu.ForgeNoSignature},
	}
	sends := []struct {
		name string
		send func(ctx context.Context) (*slackemu.Delivery, error)
	}{
		{"slash command", func(ctx context.Context) (*slackemu.Delivery, error) {
			return emu.SlashCommand(ctx, testUser, testChannel, "launch web01 test")
		}},
		{"click", func(ctx context.Context) (*slackemu.Delivery, error) {
			return emu.Click(ctx, testUser, testChannel, ts, "approve")
		}},
	}
	for _, f := range forgeries {
		for _, s := range sends {
			t.Run(f.name+"/"+s.name, func(t *testing.T) {
				emu.Forge(1, f.f)
				d, err := s.send(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				ack, err := d.WaitAck(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if ack.Status != http.StatusUnauthorized || ack.Payload != nil {
					t.Errorf("got ack %+v, want 401 without payload", ack)
				}
			})
		}
	}
	n := uint64(len(forgeries) * len(sends))
	if got := b.Stats(); got.Rejected != n || got.Received != 0 || got.Acked != 0 {
		t.Errorf("got stats %+v, want %d rejected, nothing received or acked", got, n)
	}
	// A well-signed command still gets through, and is the only one handled.
	d, err := emu.SlashCommand(t.Context(), testUser, testChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	if ack, _ := d.WaitAck(t.Context()); ack.Status != http.StatusOK {
		t.Errorf("signed command: got ack %+v, want 200", ack)
	}
	if got := <-rec.entered; got != "status" {
		t.Errorf("handler got %q, want only the signed command", got)
	}
	select {
	case got := <-rec.entered:
		t.Errorf("handler also got %q from a forged request", got)
	default:
	}
	if len(emu.Ephemerals(testUser)) != 0 || len(emu.Messages(testChannel)) != 1 {
		t.Errorf("forged requests left %d ephemerals and %d channel messages, want 0 and the card", len(emu.Ephemerals(testUser)), len(emu.Messages(testChannel)))
	}
}

// signed returns a POST of body to target signed with secret as Slack signs,
// at time at.
func signed(t *testing.T, target, secret, contentType, body string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return req
}

// TestHTTPRequests sends requests by hand: what is refused and how, what is
// answered.
func TestHTTPRequests(t *testing.T) {
	const secret = "test-signing-secret"
	rec := newRecorder()
	close(rec.gate)
	emu := startEmulator(t, slackemu.Options{})
	b := NewHTTP(testLogger(t), apiFor(emu), rec, Config{}, secret)
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	target := srv.URL + "/slack/events"
	form := "application/x-www-form-urlencoded"
	command := url.Values{"command": {"/cutover"}, "text": {"status"}, "user_id": {testUser}, "channel_id": {testChannel}}.Encode()
	now := time.Now()

	do := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := do(signed(t, target, secret, form, command, now)); code != http.StatusServiceUnavailable {
		t.Errorf("before Run: got %d, want 503", code)
	}
	runBot(t, b)
	eventually(t, "bot serving", b.Ready)

	get, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	tooLarge := strings.Repeat("x", maxRequestBytes+1)
	tests := []struct {
		name     string
		req      *http.Request
		code     int
		contains string
	}{
		{"GET", get, http.StatusMethodNotAllowed, ""},
		{"too large", signed(t, target, secret, form, "text="+tooLarge, now), http.StatusRequestEntityTooLarge, ""},
		{"signed with another secret", signed(t, target, "other", form, command, now), http.StatusUnauthorized, ""},
		{"timestamp in the future", signed(t, target, secret, form, command, now.Add(6*time.Minute)), http.StatusUnauthorized, ""},
		{"unsigned url_verification", func() *http.Request {
			r := signed(t, target, secret, "application/json", `{"type":"url_verification","challenge":"c1"}`, now)
			r.Header.Del("X-Slack-Signature")
			return r
		}(), http.StatusUnauthorized, ""},
		{"not a form Slack sends", signed(t, target, secret, form, "hello=1", now), http.StatusBadRequest, ""},
		{"XML", signed(t, target, secret, "text/xml", "<command/>", now), http.StatusBadRequest, ""},

		{"url_verification", signed(t, target, secret, "application/json", `{"token":"x","type":"url_verification","challenge":"c1"}`, now), http.StatusOK, `"challenge":"c1"`},
		// Signed by Slack, read after the ack: acked, then logged as unreadable.
		{"unknown event", signed(t, target, secret, "application/json", `{"type":"event_callback","event_id":"Ev1","event":{"type":"no_such_event"}}`, now), http.StatusOK, ""},
		{"broken interaction", signed(t, target, secret, form, "payload=%7B", now), http.StatusOK, ""},
		{"ssl_check", signed(t, target, secret, form, "ssl_check=1&token=x", now), http.StatusOK, ""},
		{"slash command", signed(t, target, secret, form, command, now), http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.req)
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Errorf("got %d %q, want %d containing %q", code, body, tt.code, tt.contains)
			}
		})
	}
	eventually(t, "the command handled", func() bool { c, _, _ := rec.handled(); return c == 1 })
	if got := b.Stats(); got.Rejected != 7 || got.Received != 4 || got.Acked != 4 || got.Dispatched != 1 {
		t.Errorf("got stats %+v, want 7 rejected; 4 received and acked (the unknown event, the broken interaction, ssl_check, the command); 1 dispatched", got)
	}
}

func TestServeHTTPOutsideHTTPMode(t *testing.T) {
	emu := startEmulator(t, slackemu.Options{})
	b := New(testLogger(t), apiFor(emu), newRecorder(), Config{})
	w := httptest.NewRecorder()
	b.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/slack/events", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("Socket Mode bot served a request URL: got %d, want 404", w.Code)
	}
	if b.Ready() {
		t.Errorf("got ready before Run, want not")
	}
}

// panicker panics on its first slash command and records the others.
type panicker struct {
	*recorder
	once chan struct{}
}

func (p panicker) SlashCommand(ctx context.Context, cmd slack.SlashCommand) {
	select {
	case <-p.once:
		p.recorder.SlashCommand(ctx, cmd)
	default:
		close(p.once)
		panic("handler bug")
	}
}

// TestHandlerPanic: a panicking handler is logged, and the worker carries on.
func TestHandlerPanic(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			emu := startEmulator(t, slackemu.Options{})
			rec := newRecorder()
			close(rec.gate)
			b := tr.start(t, emu, panicker{rec, make(chan struct{})}, Config{Workers: 1})
			for _, text := range []string{"boom", "after"} {
				d, err := emu.SlashCommand(t.Context(), testUser, testChannel, text)
				if err != nil {
					t.Fatal(err)
				}
				if ack, err := d.WaitAck(t.Context()); err != nil || ack.TimedOut || ack.Error != "" {
					t.Fatalf("ack %q: got %+v, %v; want acked", text, ack, err)
				}
			}
			eventually(t, "the command after the panic handled", func() bool { c, _, _ := rec.handled(); return c == 1 })
			waitStats(t, b, "1 dispatched (the panicking one is not counted)", func(s Stats) bool { return s.Dispatched == 1 })
		})
	}
}

// BenchmarkHTTPAck measures the bot's own cost of acknowledging one slash command in HTTP
// mode, from the request to the flushed 200 and the request queued (its workers are all busy,
// so the work does not count), against the least an app must do: check the signature and
// answer 200.
func BenchmarkHTTPAck(b *testing.B) {
	const secret = "bench-signing-secret"
	body := url.Values{"command": {"/cutover"}, "text": {"status web01"}, "user_id": {testUser}, "channel_id": {testChannel},
		"team_id": {"T0EMULATOR"}, "response_url": {"http://127.0.0.1:1/response/r1"}, "trigger_id": {"trig.1"}}.Encode()
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	signature := "v0=" + hex.EncodeToString(mac.Sum(nil))
	request := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/slack/events", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Slack-Request-Timestamp", stamp)
		r.Header.Set("X-Slack-Signature", signature)
		return r
	}
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
		sv, err := slack.NewSecretsVerifier(r.Header, secret)
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
		}
	})
	emu := startEmulator(b, slackemu.Options{})
	busy := dispatcherFunc(func(ctx context.Context) { <-ctx.Done() })
	bot := NewHTTP(slog.New(slog.DiscardHandler), apiFor(emu), busy, Config{Workers: 1, QueueSize: 1 << 18}, secret)
	runBot(b, bot)
	eventually(b, "bot serving", bot.Ready)
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"bot", bot}} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.h.ServeHTTP(w, request())
				if w.Code != http.StatusOK {
					b.Fatalf("got %d, want 200", w.Code)
				}
			}
		})
	}
	if n := bot.Stats().Busy; n > 0 {
		b.Errorf("%d requests found the queue full and took the busy path; use a shorter -benchtime", n)
	}
}
