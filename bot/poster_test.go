package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

// fastPoster paces posts well inside the emulator's limit (10 ms, burst 3).
func fastPoster(t testing.TB, api *slack.Client) *Poster {
	return NewPoster(testLogger(t), api, PosterConfig{
		ChannelInterval: 20 * time.Millisecond, Burst: 3,
		UpdateInterval: time.Millisecond, EphemeralInterval: time.Millisecond, ReadInterval: time.Millisecond,
		RetryBackoff: 10 * time.Millisecond,
	})
}

func texts(ms []slackemu.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

// TestPostOrderUnder429 queues 30 thread replies behind one another while
// Slack answers the first with 429 Retry-After 1s: all arrive, in call order.
func TestPostOrderUnder429(t *testing.T) {
	t.Parallel()
	// No per-channel pacing in the emulator: the one 429 is the injected one, however slowly
	// a loaded machine runs the calls.
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	p := fastPoster(t, apiFor(emu))
	parent, err := p.Post(t.Context(), testChannel, Message{Text: "launch web01"})
	if err != nil {
		t.Fatalf("post parent: %v", err)
	}
	emu.RateLimit("chat.postMessage", 1, time.Second)

	const n = 30
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = p.Post(t.Context(), testChannel, Message{Text: fmt.Sprintf("step %02d", i), ThreadTS: parent})
		})
		// The next call starts only once this one is queued, so call order is i.
		eventually(t, fmt.Sprintf("call %d queued", i), func() bool { return p.Pending(testChannel) == i+1 })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("post %d: %v", i, err)
		}
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("step %02d", i))
	}
	if got := texts(emu.Replies(testChannel, parent)); !slices.Equal(got, want) {
		t.Errorf("got replies %q, want %q", got, want)
	}
	if got, want := emu.Calls("chat.postMessage"), 1+n+1; got != want {
		t.Errorf("got %d chat.postMessage calls, want %d (one refused with 429)", got, want)
	}
	if got := p.Pending(testChannel); got != 0 {
		t.Errorf("got %d pending after all posts, want 0", got)
	}
}

func TestPermanentErrorsNotRetried(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	p := fastPoster(t, apiFor(emu))
	badBlocks := make([]slack.Block, 51)
	for i := range badBlocks {
		badBlocks[i] = slack.NewDividerBlock()
	}
	tests := []struct {
		name    string
		channel string
		m       Message
		want    string
	}{
		{"channel_not_found", "C0NOWHERE", Message{Text: "hi"}, "channel_not_found"},
		{"msg_too_long", testChannel, Message{Text: strings.Repeat("x", 40001)}, "msg_too_long"},
		{"no_text", testChannel, Message{}, "no_text"},
		{"invalid_blocks", testChannel, Message{Text: "t", Blocks: badBlocks}, "invalid_blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := emu.Calls("chat.postMessage")
			_, err := p.Post(t.Context(), tt.channel, tt.m)
			se, ok := errors.AsType[slack.SlackErrorResponse](err)
			if !ok || se.Err != tt.want {
				t.Fatalf("got error %v, want %s", err, tt.want)
			}
			if got := emu.Calls("chat.postMessage") - before; got != 1 {
				t.Errorf("got %d calls, want 1 (no retry)", got)
			}
		})
	}
}

// faultProxy forwards to the emulator but answers the first fail requests
// for chat.postMessage with HTTP 500.
func faultProxy(t *testing.T, emu *slackemu.Server, fail int64) (apiURL string, served *atomic.Int64) {
	target, err := url.Parse(emu.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	var left, n atomic.Int64
	left.Store(fail)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/chat.postMessage") {
			n.Add(1)
			if left.Add(-1) >= 0 {
				http.Error(w, "<html>upstream error</html>", http.StatusInternalServerError)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/", &n
}

func TestTransientErrorsRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fail      int64
		wantCalls int64
		wantErr   bool
	}{
		{"recovers", 2, 3, false},
		{"gives up after MaxRetries", 100, 4, true}, // 1 + MaxRetries (3)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := startEmulator(t, slackemu.Options{PostInterval: -1})
			u, calls := faultProxy(t, emu, tt.fail)
			p := fastPoster(t, slack.New(emu.BotToken(), slack.OptionAPIURL(u)))
			_, err := p.Post(t.Context(), testChannel, Message{Text: "hello"})
			if tt.wantErr {
				se, ok := errors.AsType[slack.StatusCodeError](err)
				if !ok || se.Code != http.StatusInternalServerError {
					t.Errorf("got error %v, want HTTP 500", err)
				}
			} else if err != nil {
				t.Errorf("got error %v, want success", err)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("got %d calls, want %d", got, tt.wantCalls)
			}
			wantPosted := 1
			if tt.wantErr {
				wantPosted = 0
			}
			if got := len(emu.Messages(testChannel)); got != wantPosted {
				t.Errorf("got %d messages posted, want %d", got, wantPosted)
			}
		})
	}
}

// TestCancelWhileQueued gives up on a call waiting behind a rate-limited one;
// the calls around it still go out, in order.
func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	p := fastPoster(t, apiFor(emu))
	emu.RateLimit("chat.postMessage", 1, time.Second)

	var wg sync.WaitGroup
	var firstErr, thirdErr, cancelledErr error
	wg.Go(func() { _, firstErr = p.Post(t.Context(), testChannel, Message{Text: "first"}) })
	eventually(t, "first holds the channel", func() bool { return p.Pending(testChannel) == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	wg.Go(func() { _, cancelledErr = p.Post(ctx, testChannel, Message{Text: "cancelled"}) })
	eventually(t, "second queued", func() bool { return p.Pending(testChannel) == 2 })
	wg.Go(func() { _, thirdErr = p.Post(t.Context(), testChannel, Message{Text: "third"}) })
	eventually(t, "third queued", func() bool { return p.Pending(testChannel) == 3 })
	cancel()
	eventually(t, "cancelled call left the queue", func() bool { return p.Pending(testChannel) == 2 })
	wg.Wait()

	if firstErr != nil || thirdErr != nil {
		t.Errorf("got errors %v, %v; want none", firstErr, thirdErr)
	}
	if !errors.Is(cancelledErr, context.Canceled) {
		t.Errorf("got %v for the cancelled call, want context.Canceled", cancelledErr)
	}
	if got, want := texts(emu.Messages(testChannel)), []string{"first", "third"}; !slices.Equal(got, want) {
		t.Errorf("got messages %q, want %q", got, want)
	}
}

func TestUpdateAndEphemeral(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	p := fastPoster(t, apiFor(emu))
	ts := postButton(t, p, "approve")
	if err := p.Update(t.Context(), testChannel, ts, Message{Text: "launch finished"}); err != nil {
		t.Fatalf("update: %v", err)
	}
	got := emu.Messages(testChannel)
	if len(got) != 1 || got[0].Text != "launch finished" || len(got[0].Blocks) != 0 || got[0].Edits != 1 {
		t.Errorf("got %+v, want one message with the new text, no blocks, 1 edit", got)
	}
	err := p.Update(t.Context(), testChannel, "1.000001", Message{Text: "x"})
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || se.Err != "message_not_found" {
		t.Errorf("update of a missing message: got %v, want message_not_found", err)
	}

	if err := p.Ephemeral(t.Context(), testChannel, testUser, Message{Text: "only you"}); err != nil {
		t.Fatalf("ephemeral: %v", err)
	}
	if got := texts(emu.Ephemerals(testUser)); !slices.Equal(got, []string{"only you"}) {
		t.Errorf("got ephemerals %q, want [only you]", got)
	}
}

func TestRespond(t *testing.T) {
	tests := []struct {
		name string
		opts RespondOptions
		// check inspects the card message and the user's ephemerals.
		check func(card slackemu.Message, channel []slackemu.Message, eph []slackemu.Message) string
	}{
		{"ephemeral", RespondOptions{}, func(card slackemu.Message, ch, eph []slackemu.Message) string {
			if len(eph) != 1 || eph[0].Text != "answer" {
				return fmt.Sprintf("ephemerals %q, want [answer]", texts(eph))
			}
			return ""
		}},
		{"in channel", RespondOptions{InChannel: true}, func(card slackemu.Message, ch, eph []slackemu.Message) string {
			if got := texts(ch); !slices.Equal(got, []string{"card", "answer"}) {
				return fmt.Sprintf("channel %q, want [card answer]", got)
			}
			return ""
		}},
		{"replace original", RespondOptions{ReplaceOriginal: true}, func(card slackemu.Message, ch, eph []slackemu.Message) string {
			if card.Text != "answer" || card.Edits != 1 {
				return fmt.Sprintf("card %q with %d edits, want answer, 1 edit", card.Text, card.Edits)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := startEmulator(t, slackemu.Options{PostInterval: -1})
			rec := newRecorder()
			close(rec.gate)
			startBot(t, emu, rec, Config{})
			p := fastPoster(t, apiFor(emu))
			ts := postButton(t, p, "approve")
			d, err := emu.Click(t.Context(), testUser, testChannel, ts, "approve")
			if err != nil {
				t.Fatalf("click: %v", err)
			}
			if err := p.Respond(t.Context(), d.ResponseURL, Message{Text: "answer"}, tt.opts); err != nil {
				t.Fatalf("respond: %v", err)
			}
			ch := emu.Messages(testChannel)
			if msg := tt.check(ch[0], ch, emu.Ephemerals(testUser)); msg != "" {
				t.Errorf("got %s", msg)
			}
		})
	}
}

// TestRespondHidesTheURL: a response URL lets anyone holding it post for 30 minutes, and
// net/http's errors quote the URL they called. When a response URL cannot be reached, neither
// the error Respond returns nor the Poster's logs show it; the error still says what happened
// and is still retried as a network error.
func TestRespondHidesTheURL(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections are refused from now on
	const secretPath = "/actions/T0EMULATOR/1234567/aSecretResponsePath"
	responseURL := "http://" + addr + secretPath

	var logs bytes.Buffer // the Poster logs on the caller's goroutine
	p := NewPoster(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		slack.New("xoxb-1"), PosterConfig{RetryBackoff: time.Millisecond, MaxRetries: 2})
	err = p.Respond(t.Context(), responseURL, Message{Text: "answer"}, RespondOptions{})
	if err == nil {
		t.Fatal("Respond to a refused address succeeded, want an error")
	}
	for what, text := range map[string]string{"error": err.Error(), "%+v of the error": fmt.Sprintf("%+v", err), "logs": logs.String()} {
		if strings.Contains(text, "aSecretResponsePath") {
			t.Errorf("%s shows the response URL:\n%s", what, text)
		}
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say which host refused", err)
	}
	if _, ok := errors.AsType[*url.Error](err); !ok {
		t.Errorf("error %v does not unwrap to *url.Error", err)
	}
	if n := strings.Count(logs.String(), "will retry"); n != 2 {
		t.Errorf("logged %d retries, want 2 (MaxRetries):\n%s", n, logs.String())
	}
}

func TestHideURL(t *testing.T) {
	const secret = "https://hooks.slack.com/commands/T1/42/s3cretPath?x=1"
	reset := errors.New("connection reset by peer")
	inner := &url.Error{Op: "Post", URL: secret, Err: reset}
	pathAlone := errors.New("POST /commands/T1/42/s3cretPath?x=1 failed")
	tests := []struct {
		name       string
		err, cause error
	}{
		{"url.Error", inner, reset},
		{"wrapped url.Error", fmt.Errorf("send: %w", inner), reset},
		{"path alone", pathAlone, pathAlone},
	}
	for _, tt := range tests {
		got := hideURL(tt.err, secret)
		if strings.Contains(got.Error(), "s3cretPath") {
			t.Errorf("%s: %q shows the URL", tt.name, got)
		}
		if !errors.Is(got, tt.cause) {
			t.Errorf("%s: %v no longer unwraps to its cause", tt.name, got)
		}
	}
	if got := hideURL(inner, secret).Error(); got != `Post "https://hooks.slack.com/REDACTED": connection reset by peer` {
		t.Errorf("got %q, want the host kept and the rest redacted", got)
	}
	if hideURL(nil, secret) != nil {
		t.Error("hideURL(nil) is not nil")
	}
}

// TestPostWithMetadataAfterLostReply has Slack take a post and lose its answer (HTTP 503): a
// post with metadata is found and not sent again, in a thread and at the top level; a post
// without metadata is sent again, as Slack offers no idempotency key.
func TestPostWithMetadataAfterLostReply(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	p := fastPoster(t, apiFor(emu))
	parent, err := p.Post(t.Context(), testChannel, Message{Text: "parent"})
	if err != nil {
		t.Fatal(err)
	}
	md := func(n int) slack.SlackMetadata {
		return slack.SlackMetadata{EventType: "test_event", EventPayload: map[string]any{"n": n}}
	}
	tests := []struct {
		name       string
		m          Message
		lost       int
		wantCopies int
	}{
		{"reply, one answer lost", Message{Text: "reply 1", ThreadTS: parent, Metadata: md(1)}, 1, 1},
		{"top level, one answer lost", Message{Text: "top 2", Metadata: md(2)}, 1, 1},
		{"reply, every answer lost", Message{Text: "reply 3", ThreadTS: parent, Metadata: md(3)}, 100, 1},
		{"no metadata", Message{Text: "plain 4", ThreadTS: parent}, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu.LoseReplies("chat.postMessage", tt.lost)
			defer emu.LoseReplies("chat.postMessage", 0)
			ts, err := p.Post(t.Context(), testChannel, tt.m)
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			var copies []string
			for _, m := range append(emu.Messages(testChannel), emu.Replies(testChannel, parent)...) {
				if m.Text == tt.m.Text && !(m.ThreadTS == "" && tt.m.ThreadTS != "") {
					copies = append(copies, m.TS)
				}
			}
			if len(copies) != tt.wantCopies {
				t.Fatalf("got %d copies of %q, want %d", len(copies), tt.m.Text, tt.wantCopies)
			}
			if !slices.Contains(copies, ts) {
				t.Errorf("post returned ts %s, want one of the posted messages %v", ts, copies)
			}
		})
	}
}

// TestRepliesAndFind reads a thread of 450 replies, more than two pages, and finds messages
// by their metadata in a thread and in the channel's history.
func TestRepliesAndFind(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	api := apiFor(emu)
	p := fastPoster(t, api)
	start := time.Now()
	parent, err := p.Post(t.Context(), testChannel, Message{Text: "parent", Metadata: slack.SlackMetadata{EventType: "parent", EventPayload: map[string]any{"job_id": "j1"}}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 450
	for i := range n {
		_, _, err := api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText(fmt.Sprint(i), false), slack.MsgOptionTS(parent),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "reply", EventPayload: map[string]any{"i": i}}))
		if err != nil {
			t.Fatal(err)
		}
	}
	before := emu.Calls("conversations.replies")
	msgs, err := p.Replies(t.Context(), testChannel, parent)
	if err != nil {
		t.Fatal(err)
	}
	if got := emu.Calls("conversations.replies") - before; got != 3 {
		t.Errorf("read the thread in %d calls, want 3 pages of %d", got, readPage)
	}
	if len(msgs) != n+1 || msgs[0].Timestamp != parent {
		t.Fatalf("got %d messages, want the parent and %d replies", len(msgs), n)
	}
	for i, m := range msgs[1:] {
		if m.Text != fmt.Sprint(i) || m.Metadata.EventType != "reply" || m.Metadata.EventPayload["i"] != float64(i) {
			t.Fatalf("message %d: got %q with metadata %+v", i+1, m.Text, m.Metadata)
		}
	}

	tests := []struct {
		name     string
		threadTS string
		md       slack.SlackMetadata
		want     string
	}{
		{"reply in the thread", parent, slack.SlackMetadata{EventType: "reply", EventPayload: map[string]any{"i": 300}}, msgs[301].Timestamp},
		{"parent in the history", "", slack.SlackMetadata{EventType: "parent", EventPayload: map[string]any{"job_id": "j1"}}, parent},
		{"other payload", "", slack.SlackMetadata{EventType: "parent", EventPayload: map[string]any{"job_id": "j2"}}, ""},
		{"reply not in the history", "", slack.SlackMetadata{EventType: "reply", EventPayload: map[string]any{"i": 3}}, ""},
	}
	for _, tt := range tests {
		got, err := p.Find(t.Context(), testChannel, tt.threadTS, start.Add(-time.Minute), tt.md)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if got, err := p.Find(t.Context(), testChannel, "", start.Add(time.Hour), slack.SlackMetadata{EventType: "parent", EventPayload: map[string]any{"job_id": "j1"}}); err != nil || got != "" {
		t.Errorf("parent posted before oldest: got %q, %v; want none", got, err)
	}
	if _, err := p.Replies(t.Context(), testChannel, "1.000001"); err == nil {
		t.Error("replies of an unknown thread: got no error, want thread_not_found")
	}
}

func TestUpdateKeepsOrReplacesMetadata(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t, slackemu.Options{PostInterval: -1})
	p := fastPoster(t, apiFor(emu))
	md := slack.SlackMetadata{EventType: "parent", EventPayload: map[string]any{"job_id": "j1"}}
	ts, err := p.Post(t.Context(), testChannel, Message{Text: "running", Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Update(t.Context(), testChannel, ts, Message{Text: "done", Metadata: md}); err != nil {
		t.Fatal(err)
	}
	got := emu.Messages(testChannel)[0]
	if got.Text != "done" || got.Metadata == nil || got.Metadata.EventType != "parent" || got.Metadata.EventPayload["job_id"] != "j1" {
		t.Errorf("after update: got %q with metadata %+v, want done with %+v", got.Text, got.Metadata, md)
	}
}

func TestSameMetadata(t *testing.T) {
	a := slack.SlackMetadata{EventType: "e", EventPayload: map[string]any{"job_id": "j", "first": 3, "last": 4}}
	tests := []struct {
		name string
		b    slack.SlackMetadata
		want bool
	}{
		{"read back with float numbers", slack.SlackMetadata{EventType: "e", EventPayload: map[string]any{"last": 4.0, "first": 3.0, "job_id": "j"}}, true},
		{"other type", slack.SlackMetadata{EventType: "f", EventPayload: a.EventPayload}, false},
		{"other value", slack.SlackMetadata{EventType: "e", EventPayload: map[string]any{"job_id": "j", "first": 3, "last": 5}}, false},
		{"missing key", slack.SlackMetadata{EventType: "e", EventPayload: map[string]any{"job_id": "j", "first": 3}}, false},
	}
	for _, tt := range tests {
		if got := SameMetadata(a, tt.b); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
