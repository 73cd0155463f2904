package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Delivery is one request sent to the app: a Socket Mode envelope, or a post
// to the request URL in HTTP mode.
type Delivery struct {
	// EnvelopeID names the delivery: the envelope's envelope_id over
	// Socket Mode; in HTTP mode, where Slack sends none, the emulator's own.
	EnvelopeID string
	// Type is the envelope type: "slash_commands", "interactive" or
	// "events_api".
	Type        string
	ResponseURL string
	TriggerID   string
	// Payload is the envelope's payload as sent; in HTTP mode the same JSON,
	// which the request carried as form fields (slash commands), as the
	// form field payload (interactions) or as its body (events).
	Payload json.RawMessage
	// Attempt is the Events API retry number: 0 for the first delivery.
	Attempt int
	// Sent is when the envelope or request was written (real clock).
	Sent time.Time

	user string        // who acted; "" for events without a user
	form string        // a slash command's payload as form fields, for HTTP mode
	done chan struct{} // closed once ack is final
	ack  Ack
}

// fresh returns a new delivery of d's content, named id, not yet acked.
func (d *Delivery) fresh(id string) *Delivery {
	return &Delivery{
		EnvelopeID: id, Type: d.Type, ResponseURL: d.ResponseURL, TriggerID: d.TriggerID,
		Payload: d.Payload, Attempt: d.Attempt, user: d.user, form: d.form, done: make(chan struct{}),
	}
}

// Ack is the outcome of a delivery.
type Ack struct {
	// Latency is the time from sending the envelope (or writing the
	// request) to receiving its ack (or the response's first byte).
	Latency time.Duration
	// Payload is the ack's payload, nil when the app sent none. In HTTP mode
	// it is the body of a 200 response; a plain-text body becomes
	// {"text": body}, as Slack shows it.
	Payload json.RawMessage
	// TimedOut reports that no ack arrived within the ack deadline; Slack
	// then shows the user operation_timeout.
	TimedOut bool
	// Status is the HTTP status of the app's response in HTTP mode; 0 over
	// Socket Mode and when no response came.
	Status int
	// Error is what Slack shows the user instead of the app's answer, ""
	// when the app acknowledged in time: "operation_timeout",
	// "http_client_error" (a 4xx answer), "http_service_error" (a 5xx or
	// other answer) or "dispatch_failed" (the request URL did not answer).
	Error string
}

// WaitAck waits until the delivery is acked or its ack deadline passes.
// It returns ctx's error if ctx ends first.
func (d *Delivery) WaitAck(ctx context.Context) (Ack, error) {
	select {
	case <-d.done:
		return d.ack, nil
	case <-ctx.Done():
		return Ack{}, fmt.Errorf("wait for ack of %s: %w", d.EnvelopeID, ctx.Err())
	}
}

// ErrClosed is returned by driving methods after Close.
var ErrClosed = errors.New("slackemu: server closed")

// deliver sends payload as d (Type, ResponseURL, TriggerID, Attempt and
// user set) over the app's transport; see send.
func (s *Server) deliver(ctx context.Context, d *Delivery, payload map[string]any) (*Delivery, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("marshal payload: %w", err)
	}
	d.Payload = body
	if d.Type == "slash_commands" {
		v := url.Values{}
		for k, x := range payload {
			v.Set(k, fmt.Sprint(x))
		}
		d.form = v.Encode()
	}
	return s.send(ctx, d)
}

// send sends d's payload over the app's transport: to the request URL when
// one is set, else over Socket Mode. It returns the delivery as sent.
func (s *Server) send(ctx context.Context, d *Delivery) (*Delivery, error) {
	s.mu.Lock()
	url := s.requestURL
	s.mu.Unlock()
	if url != "" {
		return s.deliverHTTP(ctx, d, url)
	}
	return s.deliverSocket(ctx, d)
}

// failLocked records that d was not acknowledged properly, as Slack would
// show it to the user, and ends d with ack.
func (s *Server) failLocked(d *Delivery, ack Ack) {
	if ack.TimedOut {
		s.timeouts = append(s.timeouts, d.EnvelopeID)
	} else {
		s.failures = append(s.failures, Failure{EnvelopeID: d.EnvelopeID, Type: d.Type, User: d.user, Status: ack.Status, Error: ack.Error})
	}
	d.ack = ack
	close(d.done)
	s.notifyLocked()
}

// Failure is a delivery the app answered with an error, or not at all.
type Failure struct {
	EnvelopeID string
	Type       string
	User       string // who acted, as Slack shows them the error; "" for events
	Status     int    // the HTTP status; 0 when no response came
	Error      string // as in Ack.Error
}

// Failures returns the deliveries that failed other than by timing out
// (those are in Timeouts), oldest first.
func (s *Server) Failures() []Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Failure(nil), s.failures...)
}

// applyAckPayloadLocked shows a slash command's ack payload as Slack does: an
// ephemeral message by default, a channel message for in_channel.
func (s *Server) applyAckPayloadLocked(d *Delivery, payload json.RawMessage) {
	var p struct {
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
		ResponseType string          `json:"response_type"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return
	}
	var cmd struct {
		UserID    string `json:"user_id"`
		ChannelID string `json:"channel_id"`
		Text      string `json:"text"`
	}
	_ = json.Unmarshal(d.Payload, &cmd)
	blocks, code := checkContent(p.Text, string(p.Blocks))
	if code != "" {
		s.log.Warn("slash command ack payload refused", "envelope_id", d.EnvelopeID, "err", code)
		return
	}
	if p.ResponseType == "in_channel" {
		if c := s.channels[cmd.ChannelID]; c != nil {
			// Slack shows the invocation, then the answer.
			c.msgs = append(c.msgs, &Message{
				Channel: c.id, TS: s.nextTSLocked(), User: cmd.UserID,
				Text: s.opts.Command + " " + cmd.Text, Posted: s.now(),
			}, &Message{
				Channel: c.id, TS: s.nextTSLocked(), User: BotUserID, Text: p.Text,
				Blocks: blocks, Posted: s.now(),
			})
		}
		return
	}
	s.addEphemeralLocked(cmd.ChannelID, cmd.UserID, "", p.Text, blocks)
}
