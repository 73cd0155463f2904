// Package bot is cutoverbot's connection to Slack.
//
// A Bot holds the Socket Mode connection: it acknowledges every envelope the
// moment it arrives, drops Events API redeliveries, hands slash commands and
// interactions to a Dispatcher on a bounded worker pool, and keeps the socket
// up across refreshes, drops and reconnect storms. A Poster sends messages
// through the Web API and response URLs, pacing them to Slack's rate limits
// and retrying what Slack asks to be retried, in order per channel.
//
// The package knows nothing of commands or migrations: parsing, answers and
// Block Kit layout live with the Dispatcher's implementation. It does not use
// the HTTP (request URL) delivery mode, modals, or message deletion.
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/time/rate"
)

// Dispatcher handles envelopes after they have been acknowledged. Both methods
// run on the bot's worker pool under a context that ends after
// Config.CommandTimeout or when the bot stops. Answers go through the
// envelope's response URL or a Poster; nothing a Dispatcher returns reaches
// Slack, because the envelope was already acknowledged.
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
	QueueSize      int           // envelopes waiting for a worker before the bot answers "busy" (still acking); 0 -> 1024
	CommandTimeout time.Duration // per envelope; 0 -> 60s
	PingInterval   time.Duration // longest gap between Slack's pings before the socket is reopened; 0 -> 30s

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
	Received   uint64 // envelopes that carried an envelope_id
	Acked      uint64 // acks handed to the socket writer
	AckErrors  uint64 // acks that could not be queued in time or failed to write
	Busy       uint64 // envelopes acked but not dispatched because the queue was full
	Duplicates uint64 // Events API redeliveries ignored
	Dispatched uint64 // envelopes a Dispatcher finished handling
	Dropped    uint64 // envelopes acked but discarded because the bot was stopping
	Connects   uint64 // sockets opened
	Reconnects uint64 // sockets opened after the first one
	Throttled  uint64 // dials delayed by the reconnect rate limit
	Restarts   uint64 // times the Socket Mode client stopped with a non-fatal error and was restarted
}

// Bot is a Socket Mode client. Create it with New and start it with Run.
type Bot struct {
	logger *slog.Logger
	api    *slack.Client
	d      Dispatcher
	cfg    Config

	// dials paces socket dials: slack-go reconnects immediately on every
	// disconnect frame, which turns too_many_websockets into a storm.
	dials *rate.Limiter

	connected atomic.Bool
	stats     struct {
		received, acked, ackErrors, busy, duplicates, dispatched, dropped atomic.Uint64
		connects, reconnects, throttled, restarts                         atomic.Uint64
	}
}

// New returns a Bot that reads envelopes through api (which must carry the
// app-level token, slack.OptionAppLevelToken) and hands them to d.
func New(logger *slog.Logger, api *slack.Client, d Dispatcher, cfg Config) *Bot {
	cfg = cfg.withDefaults()
	return &Bot{
		logger: logger.With("component", "bot"),
		api:    api,
		d:      d,
		cfg:    cfg,
		dials:  rate.NewLimiter(rate.Every(cfg.ReconnectInterval), cfg.ReconnectBurst),
	}
}

// Connected reports whether a socket is open and Slack's hello has arrived on it.
func (b *Bot) Connected() bool { return b.connected.Load() }

// Stats returns a snapshot of the bot's counters.
func (b *Bot) Stats() Stats {
	s := &b.stats
	return Stats{
		Received:   s.received.Load(),
		Acked:      s.acked.Load(),
		AckErrors:  s.ackErrors.Load(),
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

// busyText answers an envelope that found the work queue full.
const busyText = "cutoverbot is busy right now, try again in a minute."

// envelope is one acknowledged request waiting for a worker.
type envelope struct {
	id   string
	kind socketmode.EventType
	data any
}

// Run connects to Slack and serves envelopes until ctx ends or Slack rejects
// the app token. It returns ctx's error after a cancel, or the authentication
// error (invalid_auth, token_revoked, account_inactive, not_authed) that made
// reconnecting pointless. Before returning it cancels the handlers still
// running and waits for them.
func (b *Bot) Run(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sm := socketmode.New(b.api,
		socketmode.OptionPingInterval(b.cfg.PingInterval),
		socketmode.OptionDialer(b.dialer()),
		socketmode.OptionLog(slog.NewLogLogger(b.logger.Handler(), slog.LevelDebug)),
	)

	queue := make(chan envelope, b.cfg.QueueSize)
	var workers sync.WaitGroup
	for range b.cfg.Workers {
		workers.Go(func() { b.work(ctx, queue) })
	}

	// replies bounds the goroutines that answer "busy" through response
	// URLs, so a flood of clicks cannot grow them without limit.
	replies := make(chan struct{}, 8)
	var replying sync.WaitGroup
	busyReply := func(url string) {
		select {
		case replies <- struct{}{}:
		default:
			b.logger.WarnContext(ctx, "busy reply skipped", "reason", "too many replies in flight")
			return
		}
		replying.Go(func() {
			defer func() { <-replies }()
			b.replyBusy(ctx, url)
		})
	}

	runErr := make(chan error, 1)
	go func() { runErr <- b.keepConnected(ctx, sm) }()

	b.logger.InfoContext(ctx, "bot started", "workers", b.cfg.Workers, "queue", b.cfg.QueueSize)
	seen := newSeenSet(4096)
	var err error
	stopped := false // keepConnected has returned
	for !stopped && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case err = <-runErr:
			stopped = true
		case evt := <-sm.Events:
			b.handle(ctx, sm, evt, queue, seen, busyReply)
		}
	}

	cancel()
	b.connected.Store(false)
	dropped := b.stats.dropped.Load()
	close(queue)
	workers.Wait()
	if n := b.stats.dropped.Load() - dropped; n > 0 {
		b.logger.Warn("envelopes dropped at shutdown", "count", n)
	}
	replying.Wait()
	if !stopped {
		// slack-go's RunContext returns promptly once ctx ends; the bound
		// only guards against a library bug hanging shutdown.
		select {
		case <-runErr:
		case <-time.After(10 * time.Second):
			b.logger.Warn("socket mode client did not stop in time")
		}
	}
	if err == nil {
		err = parent.Err()
	}
	b.logger.Info("bot stopped", "err", err)
	return err
}

// keepConnected runs the Socket Mode client, restarting it (paced by the dial
// limiter) whenever it stops for a reason other than ctx or a fatal
// authentication error. It returns nil when ctx ends.
func (b *Bot) keepConnected(ctx context.Context, sm *socketmode.Client) error {
	for {
		err := sm.RunContext(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if isFatal(err) {
			b.logger.ErrorContext(ctx, "slack rejected the app token", "err", err)
			return fmt.Errorf("socket mode: %w", err)
		}
		b.stats.restarts.Add(1)
		b.logger.WarnContext(ctx, "socket mode client stopped, restarting", "err", err)
		if err := b.dials.Wait(ctx); err != nil {
			return nil
		}
	}
}

// isFatal reports whether err means the app token will never work, so
// reconnecting is pointless. These are the errors slack-go itself gives up on.
func isFatal(err error) bool {
	if err == nil {
		return false
	}
	if se, ok := errors.AsType[slack.StatusCodeError](err); ok && se.Code == http.StatusNotFound {
		return true
	}
	code := err.Error()
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		code = se.Err
	}
	switch code {
	case "invalid_auth", "token_revoked", "account_inactive", "not_authed":
		return true
	}
	return false
}

// dialer is slack-go's default Socket Mode dialer with the dial paced by
// b.dials. slack-go calls apps.connections.open and dials in sequence, so
// pacing the dial also paces the opens during a reconnect storm.
func (b *Bot) dialer() *websocket.Dialer {
	nd := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 45 * time.Second,
		WriteBufferSize:  32 * 1024, // above Slack's 20 KB frame limit, so acks go out as one frame
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			r := b.dials.Reserve()
			if d := r.Delay(); d > 0 {
				b.stats.throttled.Add(1)
				b.logger.WarnContext(ctx, "reconnect delayed", "dur", d)
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					r.Cancel()
					return nil, ctx.Err()
				}
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
}

// handle runs on the event-loop goroutine for every socketmode event. It does
// no I/O except the ack, and never blocks longer than Config.AckTimeout.
func (b *Bot) handle(ctx context.Context, sm *socketmode.Client, evt socketmode.Event, queue chan<- envelope, seen *seenSet, busyReply func(url string)) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.connected.Store(false)
		if e, ok := evt.Data.(*slack.ConnectingEvent); ok {
			b.logger.DebugContext(ctx, "connecting", "attempt", e.Attempt, "connection", e.ConnectionCount)
		}
	case socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			b.logger.WarnContext(ctx, "connect failed", "attempt", e.Attempt, "backoff", e.Backoff, "err", e.ErrorObj)
		}
	case socketmode.EventTypeInvalidAuth:
		b.connected.Store(false)
		b.logger.ErrorContext(ctx, "slack rejected the app token")
	case socketmode.EventTypeConnected:
		if b.stats.connects.Add(1) > 1 {
			b.stats.reconnects.Add(1)
		}
		b.logger.InfoContext(ctx, "socket connected")
	case socketmode.EventTypeHello:
		b.connected.Store(true)
		n := 0
		if evt.Request != nil {
			n = evt.Request.NumConnections
		}
		b.logger.InfoContext(ctx, "socket ready", "num_connections", n)
	case socketmode.EventTypeIncomingError:
		e, _ := evt.Data.(*slack.IncomingEventError)
		var cause error
		if e != nil {
			cause = e.ErrorObj
		}
		// slack-go keeps the socket after an undecodable frame; any other
		// read error ends it.
		_, syntax := errors.AsType[*json.SyntaxError](cause)
		_, typ := errors.AsType[*json.UnmarshalTypeError](cause)
		if !syntax && !typ {
			b.connected.Store(false)
		}
		b.logger.WarnContext(ctx, "socket read failed", "err", cause)
	case socketmode.EventTypeErrorWriteFailed:
		b.stats.ackErrors.Add(1)
		if e, ok := evt.Data.(*socketmode.ErrorWriteFailed); ok {
			id := ""
			if e.Response != nil {
				id = e.Response.EnvelopeID
			}
			b.logger.WarnContext(ctx, "ack lost", "envelope_id", id, "err", e.Cause)
		}
	case socketmode.EventTypeErrorBadMessage:
		// slack-go does not ack what it cannot parse, and Slack would
		// redeliver or time it out: ack it when it has an envelope_id.
		e, _ := evt.Data.(*socketmode.ErrorBadMessage)
		if e == nil {
			return
		}
		var raw struct {
			EnvelopeID string `json:"envelope_id"`
			Type       string `json:"type"`
		}
		_ = json.Unmarshal(e.Message, &raw) // a frame that is not JSON has no envelope to ack
		b.logger.WarnContext(ctx, "unreadable envelope", "type", raw.Type, "envelope_id", raw.EnvelopeID, "err", e.Cause)
		if raw.EnvelopeID != "" {
			b.stats.received.Add(1)
			b.ack(ctx, sm, raw.EnvelopeID, nil)
		}
	case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
		b.receive(ctx, sm, evt, queue, seen, busyReply)
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			b.stats.received.Add(1)
			b.ack(ctx, sm, evt.Request.EnvelopeID, nil)
		}
		b.logger.DebugContext(ctx, "event ignored", "type", evt.Type)
	}
}

// busyAck is the ack payload that shows the user a busy answer to a slash
// command without any further request.
type busyAck struct {
	Text         string `json:"text"`
	ResponseType string `json:"response_type"`
}

// receive acks one request envelope and queues it for a worker.
func (b *Bot) receive(ctx context.Context, sm *socketmode.Client, evt socketmode.Event, queue chan<- envelope, seen *seenSet, busyReply func(url string)) {
	req := evt.Request
	if req == nil || req.EnvelopeID == "" {
		b.logger.WarnContext(ctx, "envelope without id", "type", evt.Type)
		return
	}
	b.stats.received.Add(1)

	if evt.Type == socketmode.EventTypeEventsAPI {
		if id := eventID(req.Payload); id != "" && seen.add(id) {
			b.ack(ctx, sm, req.EnvelopeID, nil)
			b.stats.duplicates.Add(1)
			b.logger.InfoContext(ctx, "redelivery ignored", "event_id", id, "retry_attempt", req.RetryAttempt, "retry_reason", req.RetryReason)
			return
		}
	}

	// The event loop is the only sender on queue, so a free slot seen here is
	// still free after the ack.
	full := len(queue) == cap(queue)
	var payload any
	if full && evt.Type == socketmode.EventTypeSlashCommand {
		payload = busyAck{Text: busyText, ResponseType: "ephemeral"}
	}
	b.ack(ctx, sm, req.EnvelopeID, payload)
	if !full {
		queue <- envelope{id: req.EnvelopeID, kind: evt.Type, data: evt.Data}
		return
	}

	b.stats.busy.Add(1)
	b.logger.WarnContext(ctx, "queue full, envelope not handled", "type", evt.Type, "envelope_id", req.EnvelopeID)
	if cb, ok := evt.Data.(slack.InteractionCallback); ok && cb.ResponseURL != "" {
		busyReply(cb.ResponseURL)
	}
}

// ack queues the acknowledgement of one envelope for the socket writer.
func (b *Bot) ack(ctx context.Context, sm *socketmode.Client, envelopeID string, payload any) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.AckTimeout)
	defer cancel()
	if err := sm.AckCtx(ctx, envelopeID, payload); err != nil {
		b.stats.ackErrors.Add(1)
		b.logger.WarnContext(ctx, "ack failed", "envelope_id", envelopeID, "err", err)
		return
	}
	b.stats.acked.Add(1)
}

// replyBusy tells the user who clicked that the click was not handled.
func (b *Bot) replyBusy(ctx context.Context, url string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := respond(ctx, b.api, url, Message{Text: busyText}, RespondOptions{}); err != nil {
		b.logger.WarnContext(ctx, "busy reply failed", "err", err)
	}
}

// work runs envelopes from queue until it is closed. Envelopes still queued
// when ctx ends are discarded: they were acked, and their handlers would only
// see a cancelled context.
func (b *Bot) work(ctx context.Context, queue <-chan envelope) {
	for env := range queue {
		if ctx.Err() != nil {
			b.stats.dropped.Add(1)
			continue
		}
		b.dispatch(ctx, env)
	}
}

// dispatch hands one envelope to the Dispatcher under the command timeout.
// A panicking handler is logged and does not take the bot down.
func (b *Bot) dispatch(ctx context.Context, env envelope) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
	defer cancel()
	start := time.Now()
	attrs := []any{"type", env.kind, "envelope_id", env.id}
	defer func() {
		if r := recover(); r != nil {
			b.logger.ErrorContext(ctx, "handler panicked", append(attrs, "panic", fmt.Sprint(r))...)
			return
		}
		b.stats.dispatched.Add(1)
		b.logger.InfoContext(ctx, "envelope handled", append(attrs, "dur", time.Since(start))...)
	}()

	switch data := env.data.(type) {
	case slack.SlashCommand:
		attrs = append(attrs, "cmd", data.Command, "user", data.UserID, "channel", data.ChannelID)
		b.d.SlashCommand(ctx, data)
	case slack.InteractionCallback:
		attrs = append(attrs, "interaction", data.Type, "user", data.User.ID, "channel", data.Channel.ID)
		b.d.Interaction(ctx, data)
	case slackevents.EventsAPIEvent:
		attrs = append(attrs, "event", data.InnerEvent.Type)
		if h, ok := b.d.(EventHandler); ok {
			h.EventsAPI(ctx, data)
		}
	}
}

// eventID returns the event_id of an Events API callback payload, or "".
func eventID(payload json.RawMessage) string {
	var p struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return ""
	}
	return p.EventID
}

// seenSet remembers the last n event IDs. It is used by the event loop only.
type seenSet struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newSeenSet(n int) *seenSet {
	return &seenSet{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it had been seen already.
func (s *seenSet) add(id string) bool {
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
