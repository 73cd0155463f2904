package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/time/rate"
)

// New returns a Bot that receives Slack's requests over Socket Mode through
// api (which must carry the app-level token, slack.OptionAppLevelToken) and
// hands them to d.
func New(logger *slog.Logger, api *slack.Client, d Dispatcher, cfg Config) *Bot {
	b := newBot(logger, api, d, cfg)
	b.tr = &socketMode{b: b, dials: rate.NewLimiter(rate.Every(b.cfg.ReconnectInterval), b.cfg.ReconnectBurst)}
	return b
}

// Connected reports whether a Socket Mode socket is open and Slack's hello
// has arrived on it. It is always false in HTTP mode.
func (b *Bot) Connected() bool {
	sm, ok := b.tr.(*socketMode)
	return ok && sm.connected.Load()
}

// socketMode is the Socket Mode transport: slack-go's client, restarted when
// it stops, with its dials paced.
type socketMode struct {
	b *Bot
	// dials paces socket dials: slack-go reconnects immediately on every
	// disconnect frame, which turns too_many_websockets into a storm.
	dials     *rate.Limiter
	connected atomic.Bool
}

func (t *socketMode) ready() bool { return t.connected.Load() }

// socketRun is the state of one serve: the Socket Mode client and the run it
// feeds. Its methods run on the event loop's goroutine.
type socketRun struct {
	t  *socketMode
	b  *Bot
	sm *socketmode.Client
	r  *run
}

// serve connects to Slack and feeds r the envelopes that arrive, until ctx
// ends (nil) or Slack rejects the app token (that error).
func (t *socketMode) serve(ctx context.Context, r *run) error {
	b := t.b
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &socketRun{t: t, b: b, r: r, sm: socketmode.New(b.api,
		socketmode.OptionPingInterval(b.cfg.PingInterval),
		socketmode.OptionDialer(t.dialer()),
		socketmode.OptionLog(slog.NewLogLogger(b.logger.Handler(), slog.LevelDebug)),
	)}

	runErr := make(chan error, 1)
	go func() { runErr <- t.keepConnected(ctx, s.sm) }()

	var err error
	stopped := false // keepConnected has returned
	for !stopped && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case err = <-runErr:
			stopped = true
		case evt := <-s.sm.Events:
			s.handle(ctx, evt)
		}
	}
	cancel()
	t.connected.Store(false)
	if !stopped {
		// slack-go's RunContext returns promptly once ctx ends; the bound
		// only guards against a library bug hanging shutdown.
		select {
		case <-runErr:
		case <-time.After(10 * time.Second):
			b.logger.Warn("socket mode client did not stop in time")
		}
	}
	return err
}

// keepConnected runs the Socket Mode client, restarting it (paced by the dial
// limiter) whenever it stops for a reason other than ctx or a fatal
// authentication error. It returns nil when ctx ends.
func (t *socketMode) keepConnected(ctx context.Context, sm *socketmode.Client) error {
	b := t.b
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
		if err := t.dials.Wait(ctx); err != nil {
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
// t.dials. slack-go calls apps.connections.open and dials in sequence, so
// pacing the dial also paces the opens during a reconnect storm.
func (t *socketMode) dialer() *websocket.Dialer {
	nd := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 45 * time.Second,
		WriteBufferSize:  32 * 1024, // above Slack's 20 KB frame limit, so acks go out as one frame
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			r := t.dials.Reserve()
			if d := r.Delay(); d > 0 {
				t.b.stats.throttled.Add(1)
				t.b.logger.WarnContext(ctx, "reconnect delayed", "dur", d)
				timer := time.NewTimer(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					timer.Stop()
					r.Cancel()
					return nil, ctx.Err()
				}
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
}

// handle runs on the event loop's goroutine for every socketmode event. It
// does no I/O except the ack, and never blocks longer than Config.AckTimeout.
func (s *socketRun) handle(ctx context.Context, evt socketmode.Event) {
	b, t := s.b, s.t
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		t.connected.Store(false)
		if e, ok := evt.Data.(*slack.ConnectingEvent); ok {
			b.logger.DebugContext(ctx, "connecting", "attempt", e.Attempt, "connection", e.ConnectionCount)
		}
	case socketmode.EventTypeConnectionError:
		t.connected.Store(false)
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			b.logger.WarnContext(ctx, "connect failed", "attempt", e.Attempt, "backoff", e.Backoff, "err", e.ErrorObj)
		}
	case socketmode.EventTypeInvalidAuth:
		t.connected.Store(false)
		b.logger.ErrorContext(ctx, "slack rejected the app token")
	case socketmode.EventTypeConnected:
		if b.stats.connects.Add(1) > 1 {
			b.stats.reconnects.Add(1)
		}
		b.logger.InfoContext(ctx, "socket connected")
	case socketmode.EventTypeHello:
		t.connected.Store(true)
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
			t.connected.Store(false)
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
			s.ack(ctx, raw.EnvelopeID, nil)
		}
	case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
		s.receive(ctx, evt)
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			b.stats.received.Add(1)
			s.ack(ctx, evt.Request.EnvelopeID, nil)
		}
		b.logger.DebugContext(ctx, "event ignored", "type", evt.Type)
	}
}

// receive hands one request envelope to the run, acking it on the socket.
func (s *socketRun) receive(ctx context.Context, evt socketmode.Event) {
	env := evt.Request
	if env == nil || env.EnvelopeID == "" {
		s.b.logger.WarnContext(ctx, "envelope without id", "type", evt.Type)
		return
	}
	req := request{id: env.EnvelopeID, kind: kind(evt.Type), data: evt.Data}
	if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
		req.eventID, req.retry, req.retryReason = eventID(ev), env.RetryAttempt, env.RetryReason
	}
	s.r.receive(ctx, req, func(payload any) { s.ack(ctx, env.EnvelopeID, payload) })
}

// ack queues the acknowledgement of one envelope for the socket writer.
func (s *socketRun) ack(ctx context.Context, envelopeID string, payload any) {
	ctx, cancel := context.WithTimeout(ctx, s.b.cfg.AckTimeout)
	defer cancel()
	if err := s.sm.AckCtx(ctx, envelopeID, payload); err != nil {
		s.b.stats.ackErrors.Add(1)
		s.b.logger.WarnContext(ctx, "ack failed", "envelope_id", envelopeID, "err", err)
		return
	}
	s.b.stats.acked.Add(1)
}
