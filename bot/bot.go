// Package bot is cutoverbot's connection to Slack.
//
// A Bot receives Slack's requests (slash commands, interactions and Events
// API events) over one of two transports and acknowledges each the moment it
// arrives. In Socket Mode (New) the bot holds a WebSocket to Slack and keeps
// it up across refreshes, drops and reconnect storms; in HTTP mode (NewHTTP)
// Slack posts every request to the bot's request URL, the bot checks its
// signature, and the HTTP response is the acknowledgement. Behind either
// transport one core drops Events API redeliveries, answers "busy" when its
// queue is full, and hands the requests to a Dispatcher on a bounded worker
// pool, where a panicking handler is logged and the bot carries on. A Poster
// sends messages through the Web API and response URLs, pacing them to
// Slack's rate limits and retrying what Slack asks to be retried, in order
// per channel.
//
// The package knows nothing of commands or migrations: parsing, answers and
// Block Kit layout live with the Dispatcher's implementation. It does not use
// modals or message deletion.
package bot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"golang.org/x/time/rate"
)

// Dispatcher handles requests after they have been acknowledged. Both methods
// run on the bot's worker pool under a context that ends after
// Config.CommandTimeout or when the bot stops. Answers go through the
// request's response URL or a Poster; nothing a Dispatcher returns reaches
// Slack, because the request was already acknowledged.
type Dispatcher interface {
	SlashCommand(ctx context.Context, cmd slack.SlashCommand)
	Interaction(ctx context.Context, cb slack.InteractionCallback)
}

// EventHandler is an optional capability of a Dispatcher: when the Dispatcher
// also implements it, Events API events (after deduplication) are handed to
// it; otherwise they are acknowledged and ignored.
type EventHandler interface {
	EventsAPI(ctx context.Context, ev slackevents.EventsAPIEvent)
}

// Config tunes a Bot. Zero values pick the defaults named on each field.
type Config struct {
	Workers        int           // size of the worker pool; 0 -> 16
	QueueSize      int           // requests waiting for a worker before the bot answers "busy" (still acking); 0 -> 1024
	CommandTimeout time.Duration // per request; 0 -> 60s

	// Socket Mode only.
	PingInterval      time.Duration // longest gap between Slack's pings before the socket is reopened; 0 -> 30s
	AckTimeout        time.Duration // bound on queueing one ack for the socket writer; 0 -> 2s
	ReconnectInterval time.Duration // average spacing of socket dials once ReconnectBurst is used up; 0 -> 2s
	ReconnectBurst    int           // dials allowed back to back; 0 -> 5
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 60 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 2 * time.Second
	}
	if c.ReconnectInterval <= 0 {
		c.ReconnectInterval = 2 * time.Second
	}
	if c.ReconnectBurst <= 0 {
		c.ReconnectBurst = 5
	}
	return c
}

// Stats are counters since the Bot was created. They only grow.
type Stats struct {
	Received   uint64 // requests to acknowledge: Socket Mode envelopes with an envelope_id, or HTTP requests with a valid signature
	Acked      uint64 // acks handed to the socket writer, or HTTP responses written
	AckErrors  uint64 // acks that could not be queued in time or failed to write
	Rejected   uint64 // HTTP requests refused: bad, missing or stale signature, too large, or unreadable
	Busy       uint64 // requests acked but not dispatched because the queue was full
	Duplicates uint64 // Events API redeliveries ignored
	Dispatched uint64 // requests a Dispatcher finished handling
	Dropped    uint64 // requests acked but discarded because the bot was stopping
	Connects   uint64 // sockets opened
	Reconnects uint64 // sockets opened after the first one
	Throttled  uint64 // dials delayed by the reconnect rate limit
	Restarts   uint64 // times the Socket Mode client stopped with a non-fatal error and was restarted
}

// transport brings Slack's requests to a run and carries their acks back.
type transport interface {
	// serve feeds r until ctx ends, then returns nil, or until the transport
	// fails for good, and returns why.
	serve(ctx context.Context, r *run) error
	// ready reports whether Slack's requests can reach the bot now.
	ready() bool
}

// Bot receives Slack's requests over one transport and runs them on its
// worker pool. Create it with New (Socket Mode) or NewHTTP and start it with
// Run.
type Bot struct {
	logger *slog.Logger
	api    *slack.Client
	d      Dispatcher
	cfg    Config
	tr     transport

	// current is the run in progress, nil when Run is not running. HTTP
	// requests arrive on the server's goroutines and find their run here.
	current atomic.Pointer[run]

	stats struct {
		received, acked, ackErrors, rejected, busy, duplicates, dispatched, dropped atomic.Uint64
		connects, reconnects, throttled, restarts                                   atomic.Uint64
	}
}

func newBot(logger *slog.Logger, api *slack.Client, d Dispatcher, cfg Config) *Bot {
	return &Bot{logger: logger.With("component", "bot"), api: api, d: d, cfg: cfg.withDefaults()}
}

// Ready reports whether Slack's requests reach the bot: in Socket Mode, a
// socket is open and Slack's hello has arrived on it; in HTTP mode, Run is
// serving.
func (b *Bot) Ready() bool { return b.tr.ready() }

// Stats returns a snapshot of the bot's counters.
func (b *Bot) Stats() Stats {
	s := &b.stats
	return Stats{
		Received:   s.received.Load(),
		Acked:      s.acked.Load(),
		AckErrors:  s.ackErrors.Load(),
		Rejected:   s.rejected.Load(),
		Busy:       s.busy.Load(),
		Duplicates: s.duplicates.Load(),
		Dispatched: s.dispatched.Load(),
		Dropped:    s.dropped.Load(),
		Connects:   s.connects.Load(),
		Reconnects: s.reconnects.Load(),
		Throttled:  s.throttled.Load(),
		Restarts:   s.restarts.Load(),
	}
}

// Run serves Slack's requests until ctx ends or the transport fails for good
// (in Socket Mode: Slack rejects the app token). It returns ctx's error after
// a cancel, or the transport's error (such as invalid_auth). Before returning
// it cancels the handlers still running and waits for them.
func (b *Bot) Run(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := b.newRun()
	r.start(ctx)
	b.current.Store(r)
	b.logger.InfoContext(ctx, "bot started", "workers", b.cfg.Workers, "queue", b.cfg.QueueSize)
	err := b.tr.serve(ctx, r)
	b.current.Store(nil)

	cancel()
	dropped := b.stats.dropped.Load()
	r.close()
	r.workers.Wait()
	if n := b.stats.dropped.Load() - dropped; n > 0 {
		b.logger.Warn("requests dropped at shutdown", "count", n)
	}
	if err == nil {
		err = parent.Err()
	}
	b.logger.Info("bot stopped", "err", err)
	return err
}

// busyText answers a request that found the work queue full.
const busyText = "cutoverbot is busy right now, try again in a minute."

// busyAck is the ack payload that shows the user a busy answer to a slash
// command without any further request.
type busyAck struct {
	Text         string `json:"text"`
	ResponseType string `json:"response_type"`
}

// kind is the type of a request, named as Socket Mode names its envelopes.
type kind string

const (
	kindCommand     kind = "slash_commands"
	kindInteraction kind = "interactive"
	kindEvent       kind = "events_api"
)

// request is one request from Slack, as a transport hands it to the core.
type request struct {
	id   string // Socket Mode envelope_id; "" over HTTP
	kind kind
	// data is the request: a slack.SlashCommand, slack.InteractionCallback or
	// slackevents.EventsAPIEvent. Over HTTP it is nil and body holds the
	// request's body, decoded by payload after the ack, so that decoding
	// stays off the ack path.
	data any
	body []byte

	// Events API only: Slack's ID of the event, and which retry this is
	// (Socket Mode retry_attempt, HTTP X-Slack-Retry-Num) and why.
	eventID     string
	retry       int
	retryReason string
}

// run is the state of one Bot.Run, shared by the transport that feeds it and
// the goroutines that drain it: the workers, and the few that answer busy
// clicks through their response URLs.
type run struct {
	b     *Bot
	queue chan request
	// reserved counts requests admitted but not yet taken by a worker: a
	// place in queue is reserved before the ack goes out, so that the
	// request can be queued after it without blocking.
	reserved atomic.Int64
	// busyURLs holds the response URLs of clicks that found the queue full.
	// It is small, so that a flood of clicks cannot hold up the bot.
	busyURLs chan string
	seen     seenSet
	// busyLog spaces out the warnings about a full queue, with busySince
	// busy answers counted in between: a burst that fills the queue would
	// otherwise write a log line per request on the ack path.
	busyLog   rate.Sometimes
	busySince atomic.Int64

	mu      sync.RWMutex // held for reading while sending on queue or busyURLs, for writing to close them
	closed  bool
	workers sync.WaitGroup
}

// busyRepliers is how many busy answers to clicks go out at once.
const busyRepliers = 4

func (b *Bot) newRun() *run {
	return &run{
		b:        b,
		queue:    make(chan request, b.cfg.QueueSize),
		busyURLs: make(chan string, 2*busyRepliers),
		seen:     newSeenSet(4096),
		busyLog:  rate.Sometimes{First: 1, Interval: time.Second},
	}
}

// start starts the run's goroutines; they stop after close.
func (r *run) start(ctx context.Context) {
	for range r.b.cfg.Workers {
		r.workers.Go(func() { r.work(ctx) })
	}
	for range busyRepliers {
		r.workers.Go(func() { r.replyBusy(ctx) })
	}
}

// receive takes one request from a transport. It decides the immediate
// answer, has the transport send it through ack (a nil payload is an empty
// ack), and only then queues the request for a worker, or answers busy when
// the queue is full, or drops it as a redelivered event. ack is called exactly
// once, on the caller's goroutine.
func (r *run) receive(ctx context.Context, req request, ack func(payload any)) {
	b := r.b
	b.stats.received.Add(1)
	if req.kind == kindEvent && req.eventID != "" && r.seen.add(req.eventID) {
		b.stats.duplicates.Add(1)
		ack(nil)
		b.logger.InfoContext(ctx, "redelivery ignored", "event_id", req.eventID, "retry_attempt", req.retry, "retry_reason", req.retryReason)
		return
	}
	if r.reserved.Add(1) <= int64(cap(r.queue)) {
		ack(nil)
		r.enqueue(req)
		return
	}
	r.reserved.Add(-1)

	var payload any
	if req.kind == kindCommand {
		payload = busyAck{Text: busyText, ResponseType: "ephemeral"}
	}
	b.stats.busy.Add(1)
	ack(payload)
	r.busySince.Add(1)
	r.busyLog.Do(func() {
		b.logger.WarnContext(ctx, "queue full, requests answered busy", "count", r.busySince.Swap(0), "type", req.kind, "envelope_id", req.id)
	})
	if req.kind != kindInteraction {
		return
	}
	if data, err := req.payload(); err == nil {
		if cb, ok := data.(slack.InteractionCallback); ok && cb.ResponseURL != "" {
			r.queueBusyReply(ctx, cb.ResponseURL)
		}
	}
}

// payload returns the request's data, decoding the body of an HTTP request
// the first time.
func (req *request) payload() (any, error) {
	if req.data == nil && req.body != nil {
		data, err := decodeBody(req.kind, req.body)
		if err != nil {
			return nil, fmt.Errorf("decode %s request: %w", req.kind, err)
		}
		req.data, req.body = data, nil
	}
	return req.data, nil
}

// enqueue hands an admitted request to the workers; a place in the queue is
// reserved for it, so it never blocks. After close it drops the request.
func (r *run) enqueue(req request) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.reserved.Add(-1)
		r.b.stats.dropped.Add(1)
		return
	}
	r.queue <- req
}

// queueBusyReply has a busy answer sent through a click's response URL, unless
// too many are waiting already.
func (r *run) queueBusyReply(ctx context.Context, url string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	select {
	case r.busyURLs <- url:
	default:
		r.b.logger.WarnContext(ctx, "busy reply skipped", "reason", "too many replies in flight")
	}
}

// close stops the queues: the workers finish what is queued (dropping it, as
// the run's context has ended) and return.
func (r *run) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	close(r.queue)
	close(r.busyURLs)
}

// replyBusy tells the users whose clicks were not handled so, through the
// clicks' response URLs, until the run is closed.
func (r *run) replyBusy(ctx context.Context) {
	for url := range r.busyURLs {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := respond(ctx, r.b.api, url, Message{Text: busyText}, RespondOptions{}); err != nil {
			r.b.logger.WarnContext(ctx, "busy reply failed", "err", err)
		}
		cancel()
	}
}

// work runs requests from the queue until it is closed. Requests still
// queued when ctx ends are discarded: they were acked, and their handlers
// would only see a cancelled context.
func (r *run) work(ctx context.Context) {
	for req := range r.queue {
		r.reserved.Add(-1)
		if ctx.Err() != nil {
			r.b.stats.dropped.Add(1)
			continue
		}
		r.b.dispatch(ctx, req)
	}
}

// dispatch hands one request to the Dispatcher under the command timeout.
// A panicking handler is logged and does not take the bot down.
func (b *Bot) dispatch(ctx context.Context, req request) {
	attrs := []any{"type", req.kind}
	if req.id != "" {
		attrs = append(attrs, "envelope_id", req.id)
	}
	data, err := req.payload()
	if err != nil {
		// Slack signed it: Slack sends something slack-go does not read (such as an event
		// type it does not know), and it was acked all the same.
		b.logger.WarnContext(ctx, "request unreadable", append(attrs, "err", err)...)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			b.logger.ErrorContext(ctx, "handler panicked", append(attrs, "panic", fmt.Sprint(r))...)
			return
		}
		b.stats.dispatched.Add(1)
		b.logger.InfoContext(ctx, "envelope handled", append(attrs, "dur", time.Since(start))...)
	}()

	switch data := data.(type) {
	case slack.SlashCommand:
		attrs = append(attrs, "cmd", data.Command, "user", data.UserID, "channel", data.ChannelID)
		b.d.SlashCommand(ctx, data)
	case slack.InteractionCallback:
		attrs = append(attrs, "interaction", data.Type, "user", data.User.ID, "channel", data.Channel.ID)
		b.d.Interaction(ctx, data)
	case slackevents.EventsAPIEvent:
		attrs = append(attrs, "event", data.InnerEvent.Type, "event_id", req.eventID)
		if h, ok := b.d.(EventHandler); ok {
			h.EventsAPI(ctx, data)
		}
	}
}

// eventID returns the event_id of an Events API callback, or "".
func eventID(ev slackevents.EventsAPIEvent) string {
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		return cb.EventID
	}
	return ""
}

// seenSet remembers the last n event IDs. It is safe for concurrent use.
type seenSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func newSeenSet(n int) seenSet {
	return seenSet{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it had been seen already.
func (s *seenSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return true
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.next = (s.next + 1) % len(s.ring)
	s.ids[id] = struct{}{}
	return false
}
