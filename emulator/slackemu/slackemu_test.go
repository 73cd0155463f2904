package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const (
	testChannel = "C0MIGRATE"
	testUser    = "U0ANN"
	otherUser   = "U0BOB"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 50 * time.Millisecond
	}
	s := New(opts)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddChannel(testChannel, "migrations")
	s.AddUser(testUser, "ann")
	s.AddUser(otherUser, "bob")
	return s
}

func apiClient(s *Server) *slack.Client {
	return slack.New(s.BotToken(), slack.OptionAppLevelToken(s.AppToken()), slack.OptionAPIURL(s.URL()))
}

// app is a running slack-go Socket Mode client whose slash command and
// interactive events land on events.
type app struct {
	api    *slack.Client
	sm     *socketmode.Client
	events chan socketmode.Event
}

func connect(t *testing.T, s *Server, deadman time.Duration) *app {
	t.Helper()
	a := &app{api: apiClient(s), events: make(chan socketmode.Event, 100)}
	a.sm = socketmode.New(a.api, socketmode.OptionPingInterval(deadman))
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-a.sm.Events:
				switch e.Type {
				case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive:
					select {
					case a.events <- e:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a
}

func (a *app) next(t *testing.T) socketmode.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	select {
	case e := <-a.events:
		return e
	case <-ctx.Done():
		t.Fatal("no event from the socket within 5s")
		return socketmode.Event{}
	}
}

func waitFor(t *testing.T, s *Server, what string, cond func(*Server) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestSlashCommandAck(t *testing.T) {
	s := startServer(t, Options{})
	a := connect(t, s, 2*time.Second)

	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status web01")
	if err != nil {
		t.Fatal(err)
	}
	e := a.next(t)
	cmd, ok := e.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("event data: got %T, want slack.SlashCommand", e.Data)
	}
	want := slack.SlashCommand{
		Token: "emulator-verification-token", TeamID: TeamID, TeamDomain: TeamDomain,
		ChannelID: testChannel, ChannelName: "migrations", UserID: testUser, UserName: "ann",
		Command: "/cutover", Text: "status web01", ResponseURL: d.ResponseURL, TriggerID: d.TriggerID,
		APIAppID: AppID,
	}
	if cmd != want {
		t.Errorf("slash command:\n got %+v\nwant %+v", cmd, want)
	}
	if e.Request.EnvelopeID != d.EnvelopeID || !e.Request.AcceptsResponsePayload {
		t.Errorf("envelope: got id %q accepts_response_payload %v, want %q true",
			e.Request.EnvelopeID, e.Request.AcceptsResponsePayload, d.EnvelopeID)
	}
	if err := a.sm.Ack(*e.Request, map[string]any{"text": "checking web01"}); err != nil {
		t.Fatal(err)
	}
	ack, err := d.WaitAck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ack.TimedOut || ack.Latency <= 0 || !strings.Contains(string(ack.Payload), "checking web01") {
		t.Errorf("ack: got %+v (payload %s), want acked with latency and payload", ack, ack.Payload)
	}
	eph := s.Ephemerals(testUser)
	if len(eph) != 1 || eph[0].Text != "checking web01" || eph[0].Channel != testChannel {
		t.Errorf("ephemerals after ack payload: got %+v, want one \"checking web01\"", eph)
	}
	if got := s.Timeouts(); len(got) != 0 {
		t.Errorf("timeouts: got %v, want none", got)
	}
}

func TestAckPayloadInChannel(t *testing.T) {
	s := startServer(t, Options{})
	a := connect(t, s, 2*time.Second)
	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	e := a.next(t)
	if err := a.sm.Ack(*e.Request, map[string]any{"text": "all good", "response_type": "in_channel"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitAck(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range s.Messages(testChannel) {
		got = append(got, m.User+": "+m.Text)
	}
	want := []string{testUser + ": /cutover status", BotUserID + ": all good"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("channel: got %q, want %q", got, want)
	}
}

func TestAckTimeout(t *testing.T) {
	s := startServer(t, Options{AckDeadline: 100 * time.Millisecond})
	a := connect(t, s, 2*time.Second)
	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	e := a.next(t) // received, never acked
	ack, err := d.WaitAck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !ack.TimedOut {
		t.Errorf("ack: got %+v, want TimedOut", ack)
	}
	if got := s.Timeouts(); len(got) != 1 || got[0] != d.EnvelopeID {
		t.Errorf("timeouts: got %v, want [%s]", got, d.EnvelopeID)
	}
	// A late ack changes nothing.
	if err := a.sm.Ack(*e.Request); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.WaitAck(t.Context()); !got.TimedOut {
		t.Errorf("after late ack: got %+v, want still TimedOut", got)
	}
}

func TestRedeliver(t *testing.T) {
	s := startServer(t, Options{})
	a := connect(t, s, 2*time.Second)
	d1, err := s.SlashCommand(t.Context(), testUser, testChannel, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	e1 := a.next(t)
	d2, err := s.Redeliver(t.Context(), d1)
	if err != nil {
		t.Fatal(err)
	}
	e2 := a.next(t)
	c1, c2 := e1.Data.(slack.SlashCommand), e2.Data.(slack.SlashCommand)
	if d1.EnvelopeID == d2.EnvelopeID || e2.Request.EnvelopeID != d2.EnvelopeID {
		t.Errorf("envelope IDs: got %q then %q (event %q), want distinct", d1.EnvelopeID, d2.EnvelopeID, e2.Request.EnvelopeID)
	}
	if c1 != c2 {
		t.Errorf("redelivered payload: got %+v, want %+v", c2, c1)
	}
}

func TestEnvelopesGoToOneSocket(t *testing.T) {
	s := startServer(t, Options{})
	a1 := connect(t, s, 2*time.Second)
	a2 := connect(t, s, 2*time.Second)
	waitFor(t, s, "two sockets", func(s *Server) bool { return s.Connections() == 2 })
	const n = 6
	for range n {
		if _, err := s.SlashCommand(t.Context(), testUser, testChannel, "status"); err != nil {
			t.Fatal(err)
		}
	}
	got := map[*app]int{}
	for range n {
		select {
		case <-a1.events:
			got[a1]++
		case <-a2.events:
			got[a2]++
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	if got[a1] == 0 || got[a2] == 0 || got[a1]+got[a2] != n {
		t.Errorf("envelopes per socket: got %d and %d, want %d in all, some on each", got[a1], got[a2], n)
	}
	select {
	case e := <-a1.events:
		t.Errorf("extra envelope %s: each envelope must reach one socket only", e.Request.EnvelopeID)
	case e := <-a2.events:
		t.Errorf("extra envelope %s: each envelope must reach one socket only", e.Request.EnvelopeID)
	default:
	}
}

func TestPostThreadBroadcastUpdate(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	ctx := t.Context()

	_, parent, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("launching web01", false))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d{10}\.\d{6}$`).MatchString(parent) {
		t.Errorf("ts: got %q, want <unix>.<6 digits>", parent)
	}
	_, r1, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("snapshot taken", false), slack.MsgOptionTS(parent))
	if err != nil {
		t.Fatal(err)
	}
	_, r2, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("launch finished", false),
		slack.MsgOptionTS(r1), slack.MsgOptionBroadcast()) // a reply's ts maps to its parent
	if err != nil {
		t.Fatal(err)
	}
	if !(parent < r1 && r1 < r2) {
		t.Errorf("ts order: got %s %s %s, want increasing", parent, r1, r2)
	}
	_, _, _, err = api.UpdateMessageContext(ctx, testChannel, parent, slack.MsgOptionText("launched web01: done", false))
	if err != nil {
		t.Fatal(err)
	}

	msgs := s.Messages(testChannel)
	if len(msgs) != 2 || msgs[0].TS != parent || msgs[0].Text != "launched web01: done" || msgs[0].Edits != 1 ||
		msgs[1].TS != r2 || !msgs[1].Broadcast || msgs[1].ThreadTS != parent {
		t.Errorf("channel messages: got %+v, want edited parent then broadcast reply", msgs)
	}
	replies := s.Replies(testChannel, parent)
	if len(replies) != 2 || replies[0].TS != r1 || replies[1].TS != r2 {
		t.Errorf("replies: got %+v, want %s, %s", replies, r1, r2)
	}

	ts := s.PostUserMessage(testChannel, testUser, "hello bot")
	errCases := []struct {
		name string
		call func() error
		want string
	}{
		{"update someone else's message", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, testChannel, ts, slack.MsgOptionText("x", false))
			return err
		}, "cant_update_message"},
		{"update missing message", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, testChannel, "1.000001", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"post to unknown thread", func() error {
			_, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("x", false), slack.MsgOptionTS("1.000001"))
			return err
		}, "thread_not_found"},
		{"post to unknown channel", func() error {
			_, _, err := api.PostMessageContext(ctx, "C0NOPE", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil || err.Error() != tc.want {
				t.Errorf("got error %v, want %s", err, tc.want)
			}
		})
	}
}

func TestPostEphemeral(t *testing.T) {
	s := startServer(t, Options{})
	api := apiClient(s)
	ts, err := api.PostEphemeralContext(t.Context(), testChannel, otherUser, slack.MsgOptionText("only for bob", false))
	if err != nil {
		t.Fatal(err)
	}
	got := s.Ephemerals(otherUser)
	if len(got) != 1 || got[0].TS != ts || !got[0].Ephemeral || got[0].Text != "only for bob" {
		t.Errorf("bob's ephemerals: got %+v, want one with ts %s", got, ts)
	}
	if n := len(s.Ephemerals(testUser)) + len(s.Messages(testChannel)); n != 0 {
		t.Errorf("others see %d messages, want 0", n)
	}
	if _, err := api.PostEphemeralContext(t.Context(), testChannel, "U0NOPE", slack.MsgOptionText("x", false)); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user: got %v, want user_not_found", err)
	}
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject("plain_text", s, false, false)
}
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject("mrkdwn", s, false, false)
}

func button(actionID, text string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, "v", plain(text))
}

func confirm(title, text, yes, no string) *slack.ConfirmationBlockObject {
	return slack.NewConfirmationBlockObject(plain(title), plain(text), plain(yes), plain(no))
}

func TestLimits(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	x := func(n int) string { return strings.Repeat("x", n) }
	sections := func(n int) []slack.Block {
		var bs []slack.Block
		for range n {
			bs = append(bs, slack.NewSectionBlock(mrkdwn("s"), nil, nil))
		}
		return bs
	}
	buttons := func(n int) []slack.BlockElement {
		var es []slack.BlockElement
		for i := range n {
			es = append(es, button(fmt.Sprint("a", i), "b"))
		}
		return es
	}
	contexts := func(n int) []slack.MixedElement {
		var es []slack.MixedElement
		for range n {
			es = append(es, mrkdwn("c"))
		}
		return es
	}
	withConfirm := func(c *slack.ConfirmationBlockObject) []slack.Block {
		return []slack.Block{slack.NewActionBlock("b1", button("go", "Go").WithConfirm(c))}
	}
	tests := []struct {
		name   string
		text   string
		blocks []slack.Block
		want   string // "" = accepted
	}{
		{"50 blocks", "t", sections(50), ""},
		{"51 blocks", "t", sections(51), "invalid_blocks"},
		{"section 3000", "t", []slack.Block{slack.NewSectionBlock(mrkdwn(x(3000)), nil, nil)}, ""},
		{"section 3001", "t", []slack.Block{slack.NewSectionBlock(mrkdwn(x(3001)), nil, nil)}, "invalid_blocks"},
		{"header 150", "t", []slack.Block{slack.NewHeaderBlock(plain(x(150)))}, ""},
		{"header 151", "t", []slack.Block{slack.NewHeaderBlock(plain(x(151)))}, "invalid_blocks"},
		{"button text 75", "t", []slack.Block{slack.NewActionBlock("", button("a", x(75)))}, ""},
		{"button text 76", "t", []slack.Block{slack.NewActionBlock("", button("a", x(76)))}, "invalid_blocks"},
		{"25 actions", "t", []slack.Block{slack.NewActionBlock("", buttons(25)...)}, ""},
		{"26 actions", "t", []slack.Block{slack.NewActionBlock("", buttons(26)...)}, "invalid_blocks"},
		{"10 context elements", "t", []slack.Block{slack.NewContextBlock("", contexts(10)...)}, ""},
		{"11 context elements", "t", []slack.Block{slack.NewContextBlock("", contexts(11)...)}, "invalid_blocks"},
		{"block_id 255", "t", []slack.Block{slack.NewDividerBlock(), slack.NewSectionBlock(mrkdwn("s"), nil, nil, slack.SectionBlockOptionBlockID(x(255)))}, ""},
		{"block_id 256", "t", []slack.Block{slack.NewSectionBlock(mrkdwn("s"), nil, nil, slack.SectionBlockOptionBlockID(x(256)))}, "invalid_blocks"},
		{"action_id 256", "t", []slack.Block{slack.NewActionBlock("", button(x(256), "b"))}, "invalid_blocks"},
		{"duplicate block_id", "t", []slack.Block{slack.NewActionBlock("b", button("a", "b")), slack.NewActionBlock("b", button("c", "d"))}, "invalid_blocks"},
		{"confirm at limits", "t", withConfirm(confirm(x(100), x(300), x(30), x(30))), ""},
		{"confirm title 101", "t", withConfirm(confirm(x(101), "t", "y", "n")), "invalid_blocks"},
		{"confirm text 301", "t", withConfirm(confirm("t", x(301), "y", "n")), "invalid_blocks"},
		{"confirm confirm 31", "t", withConfirm(confirm("t", "t", x(31), "n")), "invalid_blocks"},
		{"confirm deny 31", "t", withConfirm(confirm("t", "t", "y", x(31))), "invalid_blocks"},
		{"text 40000", x(40000), nil, ""},
		{"text 40001", x(40001), nil, "msg_too_long"},
		{"no text no blocks", "", nil, "no_text"},
		{"blocks without text", "", sections(1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []slack.MsgOption{slack.MsgOptionText(tc.text, false)}
			if tc.blocks != nil {
				opts = append(opts, slack.MsgOptionBlocks(tc.blocks...))
			}
			_, _, err := api.PostMessageContext(t.Context(), testChannel, opts...)
			if tc.want == "" && err != nil {
				t.Errorf("got error %v, want accepted", err)
			}
			if tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Errorf("got error %v, want %s", err, tc.want)
			}
		})
	}

	t.Run("malformed blocks", func(t *testing.T) {
		res, err := http.PostForm(s.URL()+"chat.postMessage", url.Values{
			"token": {s.BotToken()}, "channel": {testChannel}, "text": {"t"}, "blocks": {`[{"type":`},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if body.OK || body.Error != "invalid_blocks_format" {
			t.Errorf("got %+v, want ok:false invalid_blocks_format", body)
		}
	})
}

func TestRateLimits(t *testing.T) {
	clk := newClock()
	s := startServer(t, Options{Now: clk.Now, PostInterval: time.Second, PostBurst: 3})
	api := apiClient(s)
	post := func() error {
		_, _, err := api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("hi", false))
		return err
	}
	for i := range 3 {
		if err := post(); err != nil {
			t.Fatalf("post %d within burst: %v", i+1, err)
		}
	}
	err := post()
	rl, ok := errors.AsType[*slack.RateLimitedError](err)
	if !ok || rl.RetryAfter != time.Second {
		t.Fatalf("4th post: got %v, want *slack.RateLimitedError with RetryAfter 1s", err)
	}
	clk.Add(time.Second)
	if err := post(); err != nil {
		t.Errorf("post after 1s: got %v, want accepted", err)
	}
	if got := len(s.Messages(testChannel)); got != 4 {
		t.Errorf("messages: got %d, want 4", got)
	}

	s.RateLimit("auth.test", 1, 2*time.Second)
	_, err = api.AuthTestContext(t.Context())
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); !ok || rl.RetryAfter != 2*time.Second {
		t.Errorf("injected: got %v, want *slack.RateLimitedError with RetryAfter 2s", err)
	}
	if _, err := api.AuthTestContext(t.Context()); err != nil {
		t.Errorf("after the injected 429: got %v, want success", err)
	}
	if got := s.Calls("auth.test"); got != 2 {
		t.Errorf("auth.test calls: got %d, want 2", got)
	}
}

func TestResponseURL(t *testing.T) {
	clk := newClock()
	s := startServer(t, Options{Now: clk.Now})
	a := connect(t, s, 2*time.Second)
	respond := func(ru, text, typ string) error {
		_, _, err := a.api.PostMessageContext(t.Context(), "", slack.MsgOptionResponseURL(ru, typ), slack.MsgOptionText(text, false))
		return err
	}

	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		typ := slack.ResponseTypeEphemeral
		if i == 4 {
			typ = slack.ResponseTypeInChannel
		}
		if err := respond(d.ResponseURL, fmt.Sprint("answer ", i+1), typ); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	err = respond(d.ResponseURL, "answer 6", slack.ResponseTypeEphemeral)
	if sc, ok := errors.AsType[slack.StatusCodeError](err); !ok || sc.Code != http.StatusNotFound {
		t.Errorf("6th use: got %v, want StatusCodeError 404 (used_url)", err)
	}
	if got := len(s.Ephemerals(testUser)); got != 4 {
		t.Errorf("ephemerals: got %d, want 4", got)
	}
	if msgs := s.Messages(testChannel); len(msgs) != 1 || msgs[0].Text != "answer 5" {
		t.Errorf("channel: got %+v, want the in_channel answer 5", msgs)
	}

	d2, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(29 * time.Minute)
	if err := respond(d2.ResponseURL, "in time", slack.ResponseTypeEphemeral); err != nil {
		t.Errorf("after 29 min: got %v, want accepted", err)
	}
	clk.Add(2 * time.Minute)
	err = respond(d2.ResponseURL, "too late", slack.ResponseTypeEphemeral)
	if sc, ok := errors.AsType[slack.StatusCodeError](err); !ok || sc.Code != http.StatusNotFound {
		t.Errorf("after 31 min: got %v, want StatusCodeError 404 (expired_url)", err)
	}
}

// TestDropResponses: a dropped response_url POST fails as a network error (the connection
// closes unanswered) and does not use up the URL.
func TestDropResponses(t *testing.T) {
	s := startServer(t, Options{})
	a := connect(t, s, 2*time.Second)
	d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
	if err != nil {
		t.Fatal(err)
	}
	respond := func() error {
		_, _, err := a.api.PostMessageContext(t.Context(), "", slack.MsgOptionResponseURL(d.ResponseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText("answer", false))
		return err
	}
	s.DropResponses(1)
	if _, ok := errors.AsType[*url.Error](respond()); !ok {
		t.Errorf("dropped response: want a *url.Error (the connection closed)")
	}
	for i := range 5 {
		if err := respond(); err != nil {
			t.Fatalf("use %d after the drop: %v", i+1, err)
		}
	}
	if got := len(s.Ephemerals(testUser)); got != 5 {
		t.Errorf("ephemerals: got %d, want 5 (the dropped POST did not use the URL)", got)
	}
	if got := s.Calls("response_url"); got != 6 {
		t.Errorf("response_url calls: got %d, want 6", got)
	}
}

func cardBlocks() []slack.Block {
	return []slack.Block{
		slack.NewHeaderBlock(plain("Cutover web01")),
		slack.NewSectionBlock(mrkdwn("Replication *CONTINUOUS*"), nil, nil),
		slack.NewContextBlock("ctx", mrkdwn("lag 0s"), mrkdwn("last test 2d ago")),
		slack.NewActionBlock("job-42",
			slack.NewButtonBlockElement("cutover_confirm", "job-42", plain("Confirm cutover")).
				WithStyle(slack.StyleDanger).WithConfirm(confirm("Start cutover?", "This launches web01.", "Cut over", "Cancel")),
			slack.NewButtonBlockElement("cutover_cancel", "job-42", plain("Cancel"))),
	}
}

func TestClick(t *testing.T) {
	s := startServer(t, Options{})
	a := connect(t, s, 2*time.Second)
	ctx := t.Context()
	_, ts, err := a.api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("cutover web01?", false), slack.MsgOptionBlocks(cardBlocks()...))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.Click(ctx, testUser, testChannel, ts, "nope"); !errors.Is(err, ErrNoButton) {
		t.Errorf("missing button: got %v, want ErrNoButton", err)
	}
	d, err := s.Click(ctx, otherUser, testChannel, ts, "cutover_confirm")
	if err != nil {
		t.Fatal(err)
	}
	e := a.next(t)
	ic, ok := e.Data.(slack.InteractionCallback)
	if !ok {
		t.Fatalf("event data: got %T, want slack.InteractionCallback", e.Data)
	}
	if len(ic.ActionCallback.BlockActions) != 1 {
		t.Fatalf("block actions: got %d, want 1", len(ic.ActionCallback.BlockActions))
	}
	act := ic.ActionCallback.BlockActions[0]
	checks := []struct{ name, got, want string }{
		{"type", string(ic.Type), "block_actions"},
		{"action_id", act.ActionID, "cutover_confirm"},
		{"block_id", act.BlockID, "job-42"},
		{"value", act.Value, "job-42"},
		{"action type", string(act.Type), "button"},
		{"action text", act.Text.Text, "Confirm cutover"},
		{"user", ic.User.ID, otherUser},
		{"user name", ic.User.Name, "bob"},
		{"channel", ic.Channel.ID, testChannel},
		{"container ts", ic.Container.MessageTs, ts},
		{"container channel", ic.Container.ChannelID, testChannel},
		{"message ts", ic.Message.Timestamp, ts},
		{"response_url", ic.ResponseURL, d.ResponseURL},
		{"trigger_id", ic.TriggerID, d.TriggerID},
		{"api_app_id", ic.APIAppID, AppID},
		{"team", ic.Team.ID, TeamID},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if act.ActionTs == "" || ic.Container.IsEphemeral || len(ic.Message.Blocks.BlockSet) != 4 {
		t.Errorf("action_ts %q, is_ephemeral %v, message blocks %d: want set, false, 4",
			act.ActionTs, ic.Container.IsEphemeral, len(ic.Message.Blocks.BlockSet))
	}
	if err := a.sm.Ack(*e.Request); err != nil {
		t.Fatal(err)
	}
	if ack, err := d.WaitAck(ctx); err != nil || ack.TimedOut || ack.Payload != nil {
		t.Errorf("ack: got %+v, %v; want acked without payload", ack, err)
	}

	_, _, err = a.api.PostMessageContext(ctx, "", slack.MsgOptionReplaceOriginal(d.ResponseURL), slack.MsgOptionText("cutover started by bob", false))
	if err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages(testChannel)
	if len(msgs) != 1 || msgs[0].Text != "cutover started by bob" || len(msgs[0].Blocks) != 0 || msgs[0].Edits != 1 {
		t.Errorf("after replace_original: got %+v, want one edited message without blocks", msgs)
	}
	_, _, err = a.api.PostMessageContext(ctx, "", slack.MsgOptionDeleteOriginal(d.ResponseURL))
	if err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(testChannel); len(msgs) != 1 || !msgs[0].Deleted {
		t.Errorf("after delete_original: got %+v, want deleted", msgs)
	}
}

func TestClickEphemeral(t *testing.T) {
	s := startServer(t, Options{})
	a := connect(t, s, 2*time.Second)
	ctx := t.Context()
	if _, err := a.api.PostEphemeralContext(ctx, testChannel, testUser, slack.MsgOptionText("old", false), slack.MsgOptionBlocks(cardBlocks()...)); err != nil {
		t.Fatal(err)
	}
	ts, err := a.api.PostEphemeralContext(ctx, testChannel, testUser, slack.MsgOptionText("new", false), slack.MsgOptionBlocks(cardBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClickEphemeral(ctx, otherUser, "cutover_cancel"); !errors.Is(err, ErrNoButton) {
		t.Errorf("bob has no ephemerals: got %v, want ErrNoButton", err)
	}
	d, err := s.ClickEphemeral(ctx, testUser, "cutover_cancel")
	if err != nil {
		t.Fatal(err)
	}
	ic := a.next(t).Data.(slack.InteractionCallback)
	if !ic.Container.IsEphemeral || ic.Container.MessageTs != ts || ic.Message.Timestamp != "" {
		t.Errorf("container: got %+v, message ts %q; want ephemeral %s and no message", ic.Container, ic.Message.Timestamp, ts)
	}
	_, _, err = a.api.PostMessageContext(ctx, "", slack.MsgOptionReplaceOriginal(d.ResponseURL), slack.MsgOptionText("cancelled", false))
	if err != nil {
		t.Fatal(err)
	}
	eph := s.Ephemerals(testUser)
	if len(eph) != 2 || eph[0].Text != "old" || eph[1].Text != "cancelled" {
		t.Errorf("ephemerals: got %+v, want old, cancelled", eph)
	}
}

func TestReconnect(t *testing.T) {
	tests := []struct {
		name  string
		fault func(s *Server)
	}{
		{"refresh_requested", func(s *Server) { s.Disconnect("refresh_requested") }},
		{"dropped sockets", func(s *Server) { s.DropSockets() }},
		{"no pings", func(s *Server) { s.StopPings(true) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Options{PingInterval: 50 * time.Millisecond})
			a := connect(t, s, 400*time.Millisecond)
			waitFor(t, s, "first socket", func(s *Server) bool { return s.Connections() == 1 })
			tc.fault(s)
			waitFor(t, s, "second socket", func(s *Server) bool {
				return s.Dials() >= 2 && s.Connections() == 1 && s.Calls("apps.connections.open") >= 2
			})
			s.StopPings(false)
			d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
			if err != nil {
				t.Fatal(err)
			}
			if e := a.next(t); e.Request.EnvelopeID != d.EnvelopeID {
				t.Errorf("envelope on new socket: got %q, want %q", e.Request.EnvelopeID, d.EnvelopeID)
			}
		})
	}
}

// dial opens a raw socket with a fresh ticket.
func dial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	_, u, err := apiClient(s).StartSocketModeContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.DialContext(t.Context(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readFrame(t *testing.T, c *websocket.Conn) socketmode.Request {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var r socketmode.Request
	if err := c.ReadJSON(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTicketsAndSocketCap(t *testing.T) {
	s := startServer(t, Options{})
	_, u, err := apiClient(s).StartSocketModeContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "ws://127.0.0.1:") || !strings.Contains(u, "/link/?ticket=") {
		t.Errorf("url: got %q, want ws://127.0.0.1:PORT/link/?ticket=...", u)
	}
	c, _, err := websocket.DefaultDialer.DialContext(t.Context(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, res, err := websocket.DefaultDialer.DialContext(t.Context(), u, nil); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("reused ticket: got %v, want refused with 401", err)
	}
	if h := readFrame(t, c); h.Type != "hello" || h.NumConnections != 1 || h.ConnectionInfo.AppID != AppID || h.DebugInfo.Host == "" {
		t.Errorf("hello: got %+v, want hello with 1 connection", h)
	}
	for i := 2; i <= 10; i++ {
		if h := readFrame(t, dial(t, s)); h.Type != "hello" || h.NumConnections != i {
			t.Errorf("socket %d: got %+v, want hello with num_connections %d", i, h, i)
		}
	}
	if f := readFrame(t, dial(t, s)); f.Type != "disconnect" || f.Reason != "too_many_websockets" {
		t.Errorf("11th socket: got %+v, want disconnect too_many_websockets", f)
	}
	waitFor(t, s, "ten sockets", func(s *Server) bool { return s.Connections() == 10 && s.Dials() == 11 })
}

func TestOversizeAckClosesSocket(t *testing.T) {
	tests := []struct {
		size     int
		wantOpen bool
	}{
		{maxAckFrame - 1, true},
		{maxAckFrame, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			s := startServer(t, Options{AckDeadline: 200 * time.Millisecond})
			c := dial(t, s)
			readFrame(t, c) // hello
			d, err := s.SlashCommand(t.Context(), testUser, testChannel, "status")
			if err != nil {
				t.Fatal(err)
			}
			readFrame(t, c)
			prefix := `{"envelope_id":"` + d.EnvelopeID + `","payload":{"text":"`
			frame := prefix + strings.Repeat("x", tc.size-len(prefix)-3) + `"}}`
			if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
				t.Fatal(err)
			}
			ack, err := d.WaitAck(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ack.TimedOut == tc.wantOpen {
				t.Errorf("ack of %d bytes: got TimedOut %v, want %v", tc.size, ack.TimedOut, !tc.wantOpen)
			}
			if tc.wantOpen {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err = c.ReadMessage()
			if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Errorf("read after %d-byte ack: got %v, want close 1009", tc.size, err)
			}
		})
	}
}

func TestTokensAndLookups(t *testing.T) {
	s := startServer(t, Options{})
	s.AddUserGroup("S0APPROVE", testUser, otherUser)
	ctx := t.Context()
	api := apiClient(s)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"auth.test", func() error {
			r, err := api.AuthTestContext(ctx)
			if err == nil && (r.UserID != BotUserID || r.BotID != BotID || r.TeamID != TeamID) {
				return fmt.Errorf("got %+v", r)
			}
			return err
		}, ""},
		{"wrong token", func() error {
			_, err := slack.New("xoxb-wrong", slack.OptionAPIURL(s.URL())).AuthTestContext(ctx)
			return err
		}, "invalid_auth"},
		{"no token", func() error { _, err := slack.New("", slack.OptionAPIURL(s.URL())).AuthTestContext(ctx); return err }, "not_authed"},
		{"app token for web api", func() error {
			_, err := slack.New(s.AppToken(), slack.OptionAPIURL(s.URL())).AuthTestContext(ctx)
			return err
		}, "not_allowed_token_type"},
		{"bot token for connections.open", func() error {
			_, _, err := slack.New(s.BotToken(), slack.OptionAppLevelToken(s.BotToken()), slack.OptionAPIURL(s.URL())).StartSocketModeContext(ctx)
			return err
		}, "not_allowed_token_type"},
		{"users.info", func() error {
			u, err := api.GetUserInfoContext(ctx, testUser)
			if err == nil && u.Name != "ann" {
				return fmt.Errorf("got name %q", u.Name)
			}
			return err
		}, ""},
		{"users.info unknown", func() error { _, err := api.GetUserInfoContext(ctx, "U0NOPE"); return err }, "user_not_found"},
		{"usergroups.users.list", func() error {
			m, err := api.GetUserGroupMembersContext(ctx, "S0APPROVE")
			if err == nil && fmt.Sprint(m) != fmt.Sprint([]string{testUser, otherUser}) {
				return fmt.Errorf("got members %v", m)
			}
			return err
		}, ""},
		{"usergroups.users.list unknown", func() error { _, err := api.GetUserGroupMembersContext(ctx, "S0NOPE"); return err }, "no_such_subteam"},
		{"conversations.info", func() error {
			c, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: testChannel})
			if err == nil && c.Name != "migrations" {
				return fmt.Errorf("got name %q", c.Name)
			}
			return err
		}, ""},
		{"conversations.info unknown", func() error {
			_, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C0NOPE"})
			return err
		}, "channel_not_found"},
		{"unknown method", func() error {
			_, _, err := api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: testChannel})
			return err
		}, "unknown_method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.want == "" && err != nil {
				t.Errorf("got error %v, want success", err)
			}
			if tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Errorf("got error %v, want %s", err, tc.want)
			}
		})
	}
	if got := s.Unknown(); fmt.Sprint(got) != "[conversations.members]" {
		t.Errorf("unknown methods: got %v, want [conversations.members]", got)
	}
}

func TestTimestampsIncreaseOnFrozenClock(t *testing.T) {
	clk := newClock()
	s := startServer(t, Options{Now: clk.Now, PostInterval: -1})
	api := apiClient(s)
	prev := ""
	for i := range 5 {
		_, ts, err := api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("x", false))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("1772442000.%06d", i); ts != want || ts <= prev {
			t.Errorf("post %d: got ts %s, want %s", i, ts, want)
		}
		prev = ts
	}
}

func TestPlainTextAndButtons(t *testing.T) {
	bs, err := json.Marshal(cardBlocks())
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(bs, &raws); err != nil {
		t.Fatal(err)
	}
	m := Message{Text: "fallback", Blocks: raws}
	want := "*Cutover web01*\nReplication *CONTINUOUS*\nlag 0s last test 2d ago\n[Confirm cutover] [Cancel]"
	if got := m.PlainText(); got != want {
		t.Errorf("PlainText:\n got %q\nwant %q", got, want)
	}
	wantButtons := []Button{
		{BlockID: "job-42", ActionID: "cutover_confirm", Text: "Confirm cutover", Value: "job-42", Style: "danger", Confirm: true},
		{BlockID: "job-42", ActionID: "cutover_cancel", Text: "Cancel", Value: "job-42"},
	}
	if got := m.Buttons(); fmt.Sprint(got) != fmt.Sprint(wantButtons) {
		t.Errorf("Buttons:\n got %+v\nwant %+v", got, wantButtons)
	}
	if got := (Message{Text: "plain"}).PlainText(); got != "plain" {
		t.Errorf("PlainText without blocks: got %q, want %q", got, "plain")
	}
}

func TestRender(t *testing.T) {
	s := New(Options{})
	s.AddUser("U0ANN", "ann")
	s.AddChannel("C0MIG", "migration")
	tests := []struct{ text, want string }{
		{"asked by <@U0ANN>", "asked by @ann"},
		{"in <#C0MIG>", "in #migration"},
		{"in <#C0ZZZ>", "in #C0ZZZ"},
		{"<@U0ZZZ> unknown", "@U0ZZZ unknown"},
		{"see <https://slack.com/archives/C1/p1|its thread>", "see its thread"},
		{"in <#C0MIG|migration>", "in #migration"},
		{"hey <!channel>", "hey @channel"},
		{"a &lt;!channel&gt; &amp; b", "a <!channel> & b"},
	}
	for _, tt := range tests {
		if got := s.Render(Message{Text: tt.text}); got != tt.want {
			t.Errorf("Render(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestConsole(t *testing.T) {
	s := startServer(t, Options{})
	a := connect(t, s, 2*time.Second)
	base := strings.TrimSuffix(s.URL(), "/api/")
	post := func(path string, form url.Values) string {
		t.Helper()
		resp, err := http.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: got %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	post("/console/command", url.Values{"user": {testUser}, "channel": {testChannel}, "text": {"status web01"}})
	if cmd, ok := a.next(t).Data.(slack.SlashCommand); !ok || cmd.Text != "status web01" || cmd.UserID != testUser {
		t.Fatalf("console command arrived as %+v, want /cutover status web01 from %s", cmd, testUser)
	}
	if _, _, err := a.api.PostMessageContext(t.Context(), testChannel, slack.MsgOptionText("card", false), slack.MsgOptionBlocks(cardBlocks()...)); err != nil {
		t.Fatal(err)
	}
	post("/console/click", url.Values{"user": {otherUser}, "channel": {testChannel}, "action": {"cutover_confirm"}})
	if ic, ok := a.next(t).Data.(slack.InteractionCallback); !ok || ic.User.ID != otherUser {
		t.Fatalf("console click arrived as %+v, want a click by %s", ic, otherUser)
	}
	resp, err := http.Get(base + "/console/channel/" + testChannel)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "[Confirm cutover]") {
		t.Errorf("console channel view:\n%s\nwant the card with its buttons", b)
	}
}
