package slackemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// httpApp is an app in HTTP mode: it checks every request's signature with
// slack-go's verifier, as an app must, records what arrived and answers with
// answer (200 with an empty body when nil). A badly signed request is answered
// 401 and recorded with its verification error.
type httpApp struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request, body []byte)

	mu   sync.Mutex
	got  []received
	seen chan received
}

type received struct {
	header    http.Header
	body      []byte
	verifyErr error
}

func startHTTPApp(t *testing.T, s *Server, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *httpApp {
	t.Helper()
	a := &httpApp{answer: answer, seen: make(chan received, 100)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sv, err := slack.NewSecretsVerifier(r.Header, s.SigningSecret())
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		rec := received{header: r.Header.Clone(), body: body, verifyErr: err}
		a.mu.Lock()
		a.got = append(a.got, rec)
		a.mu.Unlock()
		a.seen <- rec
		switch {
		case err != nil:
			http.Error(w, "bad signature", http.StatusUnauthorized)
		case a.answer != nil:
			a.answer(w, r, body)
		}
	}))
	t.Cleanup(a.srv.Close)
	s.SetRequestURL(a.srv.URL + "/slack/events")
	return a
}

// next returns the next request that reached the app.
func (a *httpApp) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-a.seen:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the app within 5s")
		return received{}
	}
}

func TestHTTPSlashCommandSigned(t *testing.T) {
	s := startServer(t, Options{})
	app := startHTTPApp(t, s, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"text":"checking web01"}`)
	})
	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status web01")
	if err != nil {
		t.Fatal(err)
	}
	req := app.next(t)
	if req.verifyErr != nil {
		t.Fatalf("slack-go's verifier refused the emulator's signature: %v", req.verifyErr)
	}
	if ct := req.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("content type: got %q, want a form", ct)
	}
	// The form carries what the Socket Mode envelope carries.
	hr := httptest.NewRequest(http.MethodPost, "/slack/events", bytes.NewReader(req.body))
	hr.Header.Set("Content-Type", req.header.Get("Content-Type"))
	cmd, err := slack.SlashCommandParse(hr)
	if err != nil {
		t.Fatal(err)
	}
	var want slack.SlashCommand
	if err := json.Unmarshal(d.Payload, &want); err != nil {
		t.Fatal(err)
	}
	if cmd != want || cmd.Text != "status web01" || cmd.UserID != testUser || cmd.ResponseURL != d.ResponseURL {
		t.Errorf("slash command from the form:\n got %+v\nwant %+v", cmd, want)
	}

	ack, err := d.WaitAck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ack.TimedOut || ack.Status != http.StatusOK || ack.Error != "" || ack.Latency <= 0 || d.Sent.IsZero() {
		t.Errorf("ack: got %+v (sent %v), want a timely 200 with a latency", ack, d.Sent)
	}
	if eph := s.Ephemerals(testUser); len(eph) != 1 || eph[0].Text != "checking web01" {
		t.Errorf("ephemerals after the response body: got %+v, want one \"checking web01\"", eph)
	}
	if s.Connections() != 0 || len(s.Timeouts()) != 0 || len(s.Failures()) != 0 {
		t.Errorf("got %d sockets, timeouts %v, failures %v; want none", s.Connections(), s.Timeouts(), s.Failures())
	}
}

func TestHTTPPlainTextAnswer(t *testing.T) {
	s := startServer(t, Options{})
	startHTTPApp(t, s, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "on it")
	})
	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitAck(t.Context()); err != nil {
		t.Fatal(err)
	}
	if eph := s.Ephemerals(testUser); len(eph) != 1 || eph[0].Text != "on it" {
		t.Errorf("ephemerals after a plain-text answer: got %+v, want one \"on it\"", eph)
	}
}

// TestHTTPForgeries signs requests wrongly in each way: slack-go's verifier
// refuses each one for its reason, and the app's 401 is what the user sees.
func TestHTTPForgeries(t *testing.T) {
	tests := []struct {
		name string
		f    Forgery
		want error
	}{
		{"wrong secret", ForgeWrongSecret, slack.ErrInvalidSignature},
		{"stale timestamp", ForgeStaleTimestamp, slack.ErrExpiredTimestamp},
		{"no signature", ForgeNoSignature, slack.ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{})
			app := startHTTPApp(t, s, nil)
			s.Forge(1, tt.f)
			d, err := s.SlashCommand(t.Context(), testUser, testChannel, "launch web01 test")
			if err != nil {
				t.Fatal(err)
			}
			if req := app.next(t); !errors.Is(req.verifyErr, tt.want) {
				t.Errorf("verifier: got %v, want %v", req.verifyErr, tt.want)
			}
			ack, err := d.WaitAck(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ack.Status != http.StatusUnauthorized || ack.Error != "http_client_error" {
				t.Errorf("ack: got %+v, want 401 shown as http_client_error", ack)
			}
			want := Failure{EnvelopeID: d.EnvelopeID, Type: "slash_commands", User: testUser, Status: 401, Error: "http_client_error"}
			if got := s.Failures(); len(got) != 1 || got[0] != want {
				t.Errorf("failures: got %+v, want [%+v]", got, want)
			}

			// Only the next request was forged.
			d, err = s.SlashCommand(t.Context(), testUser, testChannel, "status")
			if err != nil {
				t.Fatal(err)
			}
			if req := app.next(t); req.verifyErr != nil {
				t.Errorf("the request after the forged one: verifier says %v, want valid", req.verifyErr)
			}
			if ack, _ := d.WaitAck(t.Context()); ack.Status != http.StatusOK {
				t.Errorf("the request after the forged one: got %+v, want 200", ack)
			}
		})
	}
}

func TestHTTPTimeoutAndUnreachable(t *testing.T) {
	s := startServer(t, Options{AckDeadline: 100 * time.Millisecond})
	release := make(chan struct{})
	startHTTPApp(t, s, func(w http.ResponseWriter, r *http.Request, body []byte) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := d.WaitAck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !ack.TimedOut || ack.Error != "operation_timeout" {
		t.Errorf("ack of a slow answer: got %+v, want timed out", ack)
	}
	if got := s.Timeouts(); len(got) != 1 || got[0] != d.EnvelopeID {
		t.Errorf("timeouts: got %v, want [%s]", got, d.EnvelopeID)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s.SetRequestURL("http://" + addr + "/slack/events")
	d, err = s.Click(t.Context(), testUser, testChannel, postCard(t, s), "cutover_confirm")
	if err != nil {
		t.Fatal(err)
	}
	if ack, _ := d.WaitAck(t.Context()); ack.Error != "dispatch_failed" || ack.Status != 0 {
		t.Errorf("ack from an unreachable request URL: got %+v, want dispatch_failed", ack)
	}
}

// postCard posts the confirmation card as the bot and returns its ts.
func postCard(t *testing.T, s *Server) string {
	t.Helper()
	_, ts, err := apiClient(s).PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("cutover web01?", false), slack.MsgOptionBlocks(cardBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestHTTPClick(t *testing.T) {
	s := startServer(t, Options{})
	app := startHTTPApp(t, s, nil)
	ts := postCard(t, s)
	d, err := s.Click(t.Context(), otherUser, testChannel, ts, "cutover_confirm")
	if err != nil {
		t.Fatal(err)
	}
	req := app.next(t)
	if req.verifyErr != nil {
		t.Fatalf("verifier: %v", req.verifyErr)
	}
	hr := httptest.NewRequest(http.MethodPost, "/slack/events", bytes.NewReader(req.body))
	hr.Header.Set("Content-Type", req.header.Get("Content-Type"))
	var ic slack.InteractionCallback
	if err := json.Unmarshal([]byte(hr.FormValue("payload")), &ic); err != nil {
		t.Fatalf("form field payload: %v", err)
	}
	if len(ic.ActionCallback.BlockActions) != 1 || ic.ActionCallback.BlockActions[0].ActionID != "cutover_confirm" ||
		ic.User.ID != otherUser || ic.Container.MessageTs != ts || ic.ResponseURL != d.ResponseURL {
		t.Errorf("interaction from the form: got %+v", ic)
	}
	if ack, _ := d.WaitAck(t.Context()); ack.Status != http.StatusOK || ack.Payload != nil {
		t.Errorf("ack: got %+v, want 200 without payload", ack)
	}
	// A duplicate delivery carries the same payload, freshly signed.
	if _, err := s.Redeliver(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if again := app.next(t); again.verifyErr != nil || !bytes.Equal(again.body, req.body) || again.header.Get("X-Slack-Retry-Num") != "" {
		t.Errorf("redelivered click: verifier %v, same body %v, retry %q; want valid, same, none",
			again.verifyErr, bytes.Equal(again.body, req.body), again.header.Get("X-Slack-Retry-Num"))
	}
}

func TestEventsAndRetries(t *testing.T) {
	mention := map[string]any{"type": "app_mention", "user": testUser, "text": "<@U0BOB> status", "channel": testChannel, "ts": "1712000000.000100", "event_ts": "1712000000.000100"}
	t.Run("http", func(t *testing.T) {
		s := startServer(t, Options{})
		app := startHTTPApp(t, s, nil)
		d, err := s.Event(t.Context(), mention)
		if err != nil {
			t.Fatal(err)
		}
		first := app.next(t)
		if first.verifyErr != nil || first.header.Get("Content-Type") != "application/json" || first.header.Get("X-Slack-Retry-Num") != "" {
			t.Errorf("event: verifier %v, content type %q, retry %q; want valid JSON, no retry",
				first.verifyErr, first.header.Get("Content-Type"), first.header.Get("X-Slack-Retry-Num"))
		}
		ev, err := slackevents.ParseEvent(first.body, slackevents.OptionNoVerifyToken())
		if err != nil {
			t.Fatal(err)
		}
		cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
		if !ok || cb.EventID == "" || ev.InnerEvent.Type != "app_mention" {
			t.Fatalf("event: got %+v, want an app_mention callback with an event_id", ev)
		}
		if _, err := s.Redeliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		retry := app.next(t)
		again, _ := slackevents.ParseEvent(retry.body, slackevents.OptionNoVerifyToken())
		if id := again.Data.(*slackevents.EventsAPICallbackEvent).EventID; id != cb.EventID {
			t.Errorf("retry event_id: got %q, want %q", id, cb.EventID)
		}
		if n, reason := retry.header.Get("X-Slack-Retry-Num"), retry.header.Get("X-Slack-Retry-Reason"); n != "1" || reason != "http_timeout" {
			t.Errorf("retry headers: got %q %q, want 1 http_timeout", n, reason)
		}
	})
	t.Run("socket", func(t *testing.T) {
		s := startServer(t, Options{})
		ws := dial(t, s)
		readFrame(t, ws) // hello
		d, err := s.Event(t.Context(), mention)
		if err != nil {
			t.Fatal(err)
		}
		first := readFrame(t, ws)
		if _, err := s.Redeliver(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		retry := readFrame(t, ws)
		if first.Type != "events_api" || first.RetryAttempt != 0 || retry.RetryAttempt != 1 || retry.RetryReason != "timeout" {
			t.Errorf("envelopes: got %s attempt %d, then attempt %d reason %q; want events_api 0, then 1 timeout",
				first.Type, first.RetryAttempt, retry.RetryAttempt, retry.RetryReason)
		}
		id := func(p json.RawMessage) string {
			var v struct {
				EventID string `json:"event_id"`
			}
			_ = json.Unmarshal(p, &v)
			return v.EventID
		}
		if id(first.Payload) == "" || id(first.Payload) != id(retry.Payload) {
			t.Errorf("event_ids: got %q then %q, want the same", id(first.Payload), id(retry.Payload))
		}
	})
}

func TestVerifyURL(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, challenge string)
		ok     bool
	}{
		{"json", func(w http.ResponseWriter, c string) { json.NewEncoder(w).Encode(map[string]string{"challenge": c}) }, true},
		{"plain text", func(w http.ResponseWriter, c string) { io.WriteString(w, c) }, true},
		{"form", func(w http.ResponseWriter, c string) { io.WriteString(w, "challenge="+c) }, true},
		{"wrong", func(w http.ResponseWriter, c string) { io.WriteString(w, "ok") }, false},
		{"refused", func(w http.ResponseWriter, c string) { http.Error(w, "no", http.StatusForbidden) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{})
			startHTTPApp(t, s, func(w http.ResponseWriter, r *http.Request, body []byte) {
				var v struct{ Type, Challenge string }
				if err := json.Unmarshal(body, &v); err != nil || v.Type != "url_verification" {
					http.Error(w, "not a url_verification", http.StatusBadRequest)
					return
				}
				tt.answer(w, v.Challenge)
			})
			if err := s.VerifyURL(t.Context()); (err == nil) != tt.ok {
				t.Errorf("VerifyURL: got %v, want ok=%v", err, tt.ok)
			}
		})
	}
	s := startServer(t, Options{})
	if err := s.VerifyURL(t.Context()); err == nil {
		t.Errorf("VerifyURL in Socket Mode: got nil, want an error")
	}
}

func TestHTTPCloseEndsRequests(t *testing.T) {
	s := New(Options{AckDeadline: time.Minute})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.AddChannel(testChannel, "migrations")
	stuck := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // so that the server notices the client going away
		close(stuck)
		<-r.Context().Done()
	}))
	defer app.Close()
	s.SetRequestURL(app.URL)
	if _, err := s.SlashCommand(t.Context(), testUser, testChannel, "status"); err != nil {
		t.Fatal(err)
	}
	<-stuck
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a request waiting for its answer")
	}
	if _, err := s.SlashCommand(t.Context(), testUser, testChannel, "status"); !errors.Is(err, ErrClosed) {
		t.Errorf("SlashCommand after Close: got %v, want ErrClosed", err)
	}
}
