// Package slackemu is a Slack workspace on loopback that the real slack-go
// client talks to: the Web API methods a Socket Mode ChatOps bot uses, a
// Socket Mode WebSocket endpoint, and response_url endpoints.
//
// It models: bot and app-level token checks; chat.postMessage, chat.update
// and chat.postEphemeral with Slack's Block Kit limits and error codes;
// message metadata (event_type and event_payload, stored with the message and
// returned only when include_all_metadata is set, as Slack does);
// conversations.history and conversations.replies with oldest, latest,
// inclusive, limit and cursor pagination (has_more, next_cursor) and the
// errors channel_not_found, thread_not_found, invalid_cursor and
// invalid_ts_oldest/latest; threads, broadcast replies (shown in the history
// as thread_broadcast), edits and ephemeral messages per user;
// per-channel posting limits answered with HTTP 429 and Retry-After;
// apps.connections.open with single-use tickets; Socket Mode hello, server
// pings, disconnect frames, a cap of 10 sockets, envelopes for slash commands
// and block_actions clicks delivered to one socket each, ack tracking with
// Slack's 3 s deadline and 20 KB ack limit; response_url posts limited to
// 5 uses and 30 minutes. Fault hooks: RateLimit (HTTP 429 per method),
// DropResponses (response_url POSTs dropped unanswered), Disconnect and
// DropSockets.
//
// It leaves out: Events API envelopes and their retries, modals and views,
// attachments, files, reactions, OAuth, scopes (every token has every scope),
// workspace-wide rate tiers other than the injected ones, message deletion
// through chat.delete. Two front ends stand in for the Slack client when the emulator runs on
// its own: a web view at "/" (see web.go: channels, Block Kit, threads, ephemeral messages,
// confirm dialogs, a composer for slash commands; mrkdwn drawn as the Slack client does) and a
// small plain-text console (/console/command, /console/click, /console/channel/C…); Render
// draws a message as text. Both act only as a person would, through SlashCommand and Click.
// Any other Web API method answers {"ok":false,"error":"unknown_method"} and
// is recorded (see Unknown).
//
// Fault hooks: RateLimit (429 before the call), LoseReplies (the call takes
// effect, the answer is lost) and HoldReplies (the call takes effect, the
// answer waits).
//
// Choices where Slack is vague:
//   - conversations.replies lists the parent on the first page only; a cursor
//     is base64 of "next_ts:" and the first ts of the next page, as Slack's
//     look; history and replies skip deleted messages.
//   - Slack documents no size limit for metadata; the emulator refuses a
//     metadata argument over 8 KB (invalid_metadata_format). chat.update
//     without a metadata argument keeps the message's metadata.
//   - thread_ts naming a reply is mapped to that reply's parent, as Slack
//     does; a thread_ts naming no message fails with "thread_not_found"
//     (an emulator-only error code, so the mistake is loud).
//   - Retry-After is whole seconds (slack-go parses an integer); the
//     per-channel limiter rounds its wait up to at least 1 s.
//   - A slash command's response_url has no original message: with
//     replace_original or delete_original it posts (or does nothing) as if
//     the flag were absent.
//   - Expired and exhausted response_urls answer HTTP 404 with
//     {"ok":false,"error":"expired_url"} or "used_url" (slack-go reports a
//     slack.StatusCodeError).
//   - A slash command ack payload is shown like a response_url post: an
//     ephemeral message, or for in_channel the invocation then the answer.
//   - Ack deadlines and latencies use the real clock; message timestamps
//     and response_url expiry use Options.Now.
package slackemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Identifiers of the emulated workspace, app and bot user.
const (
	TeamID     = "T0EMULATOR"
	TeamDomain = "emulator"
	AppID      = "A0EMULATOR"
	BotID      = "B0EMULATOR"
	BotUserID  = "U0BOT"
	BotName    = "cutoverbot"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Now is the clock for message timestamps and response_url expiry; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives the emulator's logs; nil discards them.
	Logger *slog.Logger
	// BotToken and AppToken are the accepted tokens; "" means
	// "xoxb-emulator" and "xapp-emulator".
	BotToken, AppToken string
	// AckDeadline is how long an envelope may stay un-acked before Slack
	// gives up (operation_timeout); 0 means 3 s.
	AckDeadline time.Duration
	// PingInterval is the interval between server WebSocket pings; 0 means
	// 10 s. slack-go reconnects after 30 s without one.
	PingInterval time.Duration
	// PostInterval is the sustained per-channel chat.postMessage rate, one
	// message per interval; 0 means 1 s, negative means unlimited.
	PostInterval time.Duration
	// PostBurst is how many chat.postMessage calls a channel accepts at
	// once before the interval applies; 0 means 3.
	PostBurst int
	// Command is the slash command name, with the slash; "" means "/cutover".
	Command string
}

// Server is an emulated Slack workspace. Create it with New, then Start it.
// Close stops the listener, closes every socket and waits for the
// goroutines the server started.
type Server struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	upgrader websocket.Upgrader

	ln   net.Listener
	http *http.Server
	base string // "http://127.0.0.1:PORT"
	wg   sync.WaitGroup
	done chan struct{}

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every state change
	closed     bool
	lastMicro  int64
	seq        int
	users      map[string]string
	groups     map[string][]string
	channels   map[string]*channel
	ephemerals map[string][]*Message
	calls      map[string]int
	unknown    []string
	faults     map[string]*fault
	replies    map[string]*replyFault
	buckets    map[string]*bucket
	tickets    map[string]bool // issued, not yet used
	sockets    []*socket
	rr         int
	dials      int
	pingsOff   bool
	responses  map[string]*responseURL
	dropResps  int // response_url POSTs left to drop (DropResponses)
	pending    map[string]*Delivery
	timeouts   []string
	web        webState
}

type channel struct {
	id, name string
	msgs     []*Message // every message, replies included, in posting order
}

type fault struct {
	n          int
	retryAfter time.Duration
}

// replyFault spoils the answers of calls that took effect.
type replyFault struct {
	n     int
	lose  bool          // answer HTTP 503 instead of the result
	delay time.Duration // otherwise: hold the answer this long
}

// New returns an unstarted Server.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BotToken == "" {
		opts.BotToken = "xoxb-emulator"
	}
	if opts.AppToken == "" {
		opts.AppToken = "xapp-emulator"
	}
	if opts.AckDeadline == 0 {
		opts.AckDeadline = 3 * time.Second
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 10 * time.Second
	}
	if opts.PostInterval == 0 {
		opts.PostInterval = time.Second
	}
	if opts.PostBurst <= 0 {
		opts.PostBurst = 3
	}
	if opts.Command == "" {
		opts.Command = "/cutover"
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger.With("component", "slackemu"),
		now:        opts.Now,
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
		users:      map[string]string{BotUserID: BotName},
		groups:     map[string][]string{},
		channels:   map[string]*channel{},
		ephemerals: map[string][]*Message{},
		calls:      map[string]int{},
		faults:     map[string]*fault{},
		replies:    map[string]*replyFault{},
		buckets:    map[string]*bucket{},
		tickets:    map[string]bool{},
		responses:  map[string]*responseURL{},
		pending:    map[string]*Delivery{},
	}
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return s
}

// Start listens on addr (use "127.0.0.1:0") and serves in the background.
// It returns the listen error, if any.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	s.ln = ln
	s.base = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("/link/", s.serveLink)
	mux.HandleFunc("/response/{id}", s.serveResponse)
	mux.HandleFunc("/console/", s.serveConsole)
	s.routeWeb(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.log.Error("unmodelled path", "path", r.URL.Path)
		http.Error(w, "slackemu: unmodelled path "+r.URL.Path, http.StatusNotFound)
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	})
	return nil
}

// URL returns the Web API base URL, with its trailing slash, for
// slack.OptionAPIURL.
func (s *Server) URL() string { return s.base + "/api/" }

// Close stops serving, closes all sockets and waits for every goroutine the
// server started. Pending deliveries stay un-acked.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	socks := slices.Clone(s.sockets)
	s.notifyLocked()
	s.mu.Unlock()
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.http.Shutdown(ctx) // hijacked WebSocket connections are closed below
		cancel()
	}
	for _, so := range socks {
		so.conn.Close()
	}
	s.wg.Wait()
}

// BotToken returns the accepted bot token (xoxb-).
func (s *Server) BotToken() string { return s.opts.BotToken }

// AppToken returns the accepted app-level token (xapp-).
func (s *Server) AppToken() string { return s.opts.AppToken }

// AddUser adds (or renames) a workspace member.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
	s.notifyLocked()
}

// AddUserGroup sets the members of a user group (IDs start with "S").
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
	s.notifyLocked()
}

// AddChannel adds a public channel the bot is a member of.
func (s *Server) AddChannel(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.channels[id]; ok {
		c.name = name
	} else {
		s.channels[id] = &channel{id: id, name: name}
	}
	s.notifyLocked()
}

// RateLimit makes the next n calls of method (e.g. "chat.postMessage")
// answer HTTP 429 with Retry-After set to retryAfter rounded up to whole
// seconds (0 stays 0, which real Slack never sends).
func (s *Server) RateLimit(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{n: n, retryAfter: retryAfter}
}

// LoseReplies makes the next n successful calls of method take effect (a message is posted,
// an update applied) and then answer HTTP 503 instead of their result, as when a load
// balancer loses Slack's answer: the client cannot tell that the call succeeded.
func (s *Server) LoseReplies(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[method] = &replyFault{n: n, lose: true}
}

// HoldReplies makes the next n successful calls of method take effect and then hold their
// answer for d, or until the client gives up (its process dies) or the server closes: the
// window in which a client has been heard but has not heard back.
func (s *Server) HoldReplies(method string, n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[method] = &replyFault{n: n, delay: d}
}

func (s *Server) takeReplyFault(method string) *replyFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.replies[method]
	if f == nil || f.n <= 0 {
		return nil
	}
	f.n--
	return f
}

// Calls returns how many times method was called, including refused calls.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Unknown returns the names of called methods the emulator does not model,
// in call order.
func (s *Server) Unknown() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.unknown)
}

// Messages returns the channel's messages as shown in the channel, in
// posting order, with their current content: top-level messages and
// broadcast thread replies. Deleted messages are included with Deleted set.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channel]
	if c == nil {
		return nil
	}
	var out []Message
	for _, m := range c.msgs {
		if m.ThreadTS == "" || m.Broadcast {
			out = append(out, m.clone())
		}
	}
	return out
}

// Replies returns the replies in the thread of threadTS, in order, without
// the parent.
func (s *Server) Replies(channel, threadTS string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channel]
	if c == nil {
		return nil
	}
	var out []Message
	for _, m := range c.msgs {
		if m.ThreadTS == threadTS {
			out = append(out, m.clone())
		}
	}
	return out
}

// Ephemerals returns the ephemeral messages shown to user, oldest first.
func (s *Server) Ephemerals(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.ephemerals[user] {
		out = append(out, m.clone())
	}
	return out
}

// Connections returns the number of open Socket Mode sockets.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// Dials returns how many sockets were accepted since Start, including
// closed ones and ones refused with too_many_websockets.
func (s *Server) Dials() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dials
}

// Timeouts returns the envelope IDs that missed the ack deadline, in order.
func (s *Server) Timeouts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.timeouts)
}

// WaitFor blocks until cond returns true or ctx ends. cond is evaluated now
// and after every change of the server's state; it must not block and may
// call the server's observing methods. It returns ctx's error on timeout.
func (s *Server) WaitFor(ctx context.Context, cond func(s *Server) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for condition: %w", ctx.Err())
		}
	}
}

// notifyLocked wakes every WaitFor. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextTSLocked returns a fresh message timestamp "<unix>.<6 digits>",
// strictly increasing even when the clock stands still.
func (s *Server) nextTSLocked() string {
	micro := s.now().UnixMicro()
	if micro <= s.lastMicro {
		micro = s.lastMicro + 1
	}
	s.lastMicro = micro
	return fmt.Sprintf("%d.%06d", micro/1e6, micro%1e6)
}

// nextIDLocked returns a fresh identifier with the given prefix.
func (s *Server) nextIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%06d%x", prefix, s.seq, s.now().UnixNano()&0xffffff)
}

func (s *Server) userName(id string) string {
	if n, ok := s.users[id]; ok {
		return n
	}
	return strings.ToLower(id)
}

// PostUserMessage posts text in channel as user (a person, not the bot) and
// returns its ts. The bot cannot chat.update such a message.
func (s *Server) PostUserMessage(channelID, user, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channelID]
	if c == nil {
		c = &channel{id: channelID, name: strings.ToLower(channelID)}
		s.channels[channelID] = c
	}
	m := &Message{Channel: channelID, TS: s.nextTSLocked(), User: user, Text: text, Posted: s.now()}
	c.msgs = append(c.msgs, m)
	s.notifyLocked()
	return m.TS
}
