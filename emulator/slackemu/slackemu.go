// Package slackemu is a Slack workspace on loopback that the real slack-go
// client talks to: the Web API methods a ChatOps bot uses, a Socket Mode
// WebSocket endpoint, response_url endpoints, and, in HTTP mode, signed posts
// to the app's request URL.
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
// pings, disconnect frames, a cap of 10 sockets, envelopes for slash commands,
// block_actions clicks and Events API callbacks delivered to one socket each,
// ack tracking with Slack's 3 s deadline and 20 KB ack limit; response_url
// posts limited to 5 uses and 30 minutes. In HTTP mode (SetRequestURL) the
// same requests are posted to the request URL instead, as Slack posts them
// (slash commands as form fields, interactions as the form field payload,
// events as JSON), signed with the signing secret (X-Slack-Request-Timestamp,
// X-Slack-Signature v0), with the response taken as the ack: a 200 within the
// deadline acks, a slash command's response body is shown like an ack
// payload, anything else is recorded as the error Slack shows the user
// (Failures, Timeouts). Forge signs requests wrongly for tests; VerifyURL
// sends the url_verification challenge.
//
// Fault hooks: RateLimit (HTTP 429 per method), LoseReplies and HoldReplies (answers lost or
// withheld after the call took effect), DropResponses (response_url POSTs dropped
// unanswered), Disconnect and DropSockets, Forge (wrongly signed requests in HTTP mode).
//
// It leaves out: automatic Events API retries (Redeliver sends one by hand), modals and views,
// attachments, files, reactions, OAuth, scopes (every token has every scope), workspace-wide
// rate tiers other than the injected ones, and message deletion through chat.delete. Two front
// ends stand in for the Slack client when the emulator runs on its own: a web view at "/" (see
// web.go: channels, Block Kit, threads, ephemeral messages, confirm dialogs, a composer for
// slash commands; mrkdwn drawn as the Slack client does) and a small plain-text console
// (/console/command, /console/click, /console/channel/C…); Render draws a message as text.
// Both act only as a person would, through SlashCommand and Click. Any other Web API method
// answers {"ok":false,"error":"unknown_method"} and is recorded (see Unknown).
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
//   - A request URL answering 4xx is shown as "http_client_error" (as Slack
//     shows a 404), any other non-200 answer as "http_service_error", and
//     one that does not answer at all as "dispatch_failed". Redirects are
//     not followed. Events API retries over HTTP carry X-Slack-Retry-Reason
//     "http_timeout", over Socket Mode retry_reason "timeout".
//   - Ack deadlines, latencies and request signatures use the real clock;
//     message timestamps and response_url expiry use Options.Now. The
//     latency of an HTTP delivery runs from the request being written to
//     the first byte of the answer.
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
	// RequestURL, when set, puts the app in HTTP mode from the start: see
	// SetRequestURL.
	RequestURL string
	// SigningSecret is the app's signing secret for HTTP mode; "" means
	// "emulator-signing-secret".
	SigningSecret string
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
	failures   []Failure

	connMu sync.Mutex
	unused map[net.Conn]struct{} // accepted connections that carried no request yet

	// HTTP mode.
	requestURL string // "" in Socket Mode
	client     *http.Client
	inflight   map[*Delivery]context.CancelFunc // requests awaiting their answer
	forgeN     int                              // requests still to be signed as forgery says
	forgery    Forgery
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
	if opts.SigningSecret == "" {
		opts.SigningSecret = "emulator-signing-secret"
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
		requestURL: opts.RequestURL,
		client:     newRequestClient(),
		inflight:   map[*Delivery]context.CancelFunc{},
		unused:     map[net.Conn]struct{}{},
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
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnState: s.trackConn}
	s.wg.Go(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	})
	return nil
}

// trackConn keeps the set of connections on which no request has arrived.
func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if state == http.StateNew {
		s.unused[c] = struct{}{}
	} else {
		delete(s.unused, c)
	}
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
	for _, cancel := range s.inflight {
		cancel()
	}
	s.notifyLocked()
	s.mu.Unlock()
	if s.http != nil {
		// A connection a client opened but never used (an HTTP client dials
		// a spare one when two requests race for a connection) counts as
		// busy for Shutdown until it is 5 s old; it carries nothing.
		s.connMu.Lock()
		for c := range s.unused {
			c.Close()
		}
		s.connMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.http.Shutdown(ctx); err != nil { // hijacked WebSocket connections are closed below
			_ = s.http.Close()
		}
		cancel()
	}
	for _, so := range socks {
		so.conn.Close()
	}
	s.wg.Wait()
	s.client.CloseIdleConnections()
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

// Timeouts returns the IDs of the deliveries that missed the ack deadline, in
// order.
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
