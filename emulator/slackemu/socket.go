package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	maxSockets = 10
	// maxAckFrame is the first frame size Slack refuses (close 1009).
	maxAckFrame = 20480
	writeWait   = 5 * time.Second
)

// socket is one accepted Socket Mode WebSocket.
type socket struct {
	id   int
	conn *websocket.Conn
	wmu  sync.Mutex // serialises data frames; control frames may interleave
}

func (so *socket) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	so.wmu.Lock()
	defer so.wmu.Unlock()
	_ = so.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return so.conn.WriteMessage(websocket.TextMessage, b)
}

func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket) // single use
	closed := s.closed
	s.mu.Unlock()
	if closed {
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	if !valid {
		s.log.Warn("socket refused: unknown or used ticket")
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Warn("upgrade", "err", err)
		return
	}
	conn.SetReadLimit(1 << 20) // oversized acks are refused by hand, with Slack's close reason

	s.mu.Lock()
	s.dials++
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	so := &socket{id: s.dials, conn: conn}
	if len(s.sockets) >= maxSockets {
		s.notifyLocked()
		s.mu.Unlock()
		s.log.Warn("socket refused: too many websockets")
		_ = so.writeJSON(disconnectFrame("too_many_websockets"))
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too_many_websockets"), time.Now().Add(writeWait))
		conn.Close()
		return
	}
	// hello goes out before any envelope: hold the socket's write lock
	// from the moment deliver can pick it.
	so.wmu.Lock()
	s.sockets = append(s.sockets, so)
	n := len(s.sockets)
	s.notifyLocked()
	s.wg.Add(2)
	s.mu.Unlock()
	s.log.Info("socket opened", "socket", so.id, "connections", n)

	hello, _ := json.Marshal(map[string]any{
		"type": "hello", "num_connections": n,
		"debug_info": map[string]any{
			"host": fmt.Sprintf("applink-emulator-%d", so.id), "build_number": 1,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": AppID},
	})
	_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
	_ = conn.WriteMessage(websocket.TextMessage, hello)
	so.wmu.Unlock()
	stop := make(chan struct{})
	go func() {
		defer s.wg.Done()
		s.pinger(so, stop)
	}()
	go func() {
		defer s.wg.Done()
		defer close(stop)
		s.reader(so)
	}()
}

func disconnectFrame(reason string) map[string]any {
	return map[string]any{"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": "applink-emulator"}}
}

// pinger sends WebSocket ping frames until the socket's reader stops.
func (s *Server) pinger(so *socket, stop <-chan struct{}) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.done:
			return
		case <-t.C:
			s.mu.Lock()
			off := s.pingsOff
			s.mu.Unlock()
			if off {
				continue
			}
			if err := so.conn.WriteControl(websocket.PingMessage, []byte("Ping from applink-emulator"), time.Now().Add(writeWait)); err != nil {
				return
			}
		}
	}
}

// reader reads acks until the socket fails, then forgets the socket.
func (s *Server) reader(so *socket) {
	defer func() {
		so.conn.Close()
		s.mu.Lock()
		s.sockets = slices.DeleteFunc(s.sockets, func(x *socket) bool { return x == so })
		n := len(s.sockets)
		s.notifyLocked()
		s.mu.Unlock()
		s.log.Info("socket closed", "socket", so.id, "connections", n)
	}()
	for {
		typ, data, err := so.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.TextMessage {
			continue
		}
		if len(data) >= maxAckFrame {
			s.log.Warn("ack frame too large", "socket", so.id, "bytes", len(data))
			_ = so.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "Max frame length of 20480 has been exceeded"),
				time.Now().Add(writeWait))
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &ack); err != nil || ack.EnvelopeID == "" {
			s.log.Warn("unparsable frame from app", "socket", so.id)
			continue
		}
		s.acked(ack.EnvelopeID, ack.Payload)
	}
}

// Disconnect sends a disconnect frame with reason ("warning",
// "refresh_requested", "link_disabled", ...) on every open socket. Like
// Slack, it leaves closing the socket to the app.
func (s *Server) Disconnect(reason string) {
	for _, so := range s.openSockets() {
		_ = so.writeJSON(disconnectFrame(reason))
	}
}

// DropSockets closes every open socket abruptly, without a close frame.
func (s *Server) DropSockets() {
	for _, so := range s.openSockets() {
		so.conn.Close()
	}
}

// StopPings stops (true) or resumes (false) the server's ping frames.
func (s *Server) StopPings(stop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pingsOff = stop
}

// SendRaw writes data as a text frame on every open socket, for garbage
// and malformed-frame tests.
func (s *Server) SendRaw(data []byte) {
	for _, so := range s.openSockets() {
		so.wmu.Lock()
		_ = so.conn.SetWriteDeadline(time.Now().Add(writeWait))
		_ = so.conn.WriteMessage(websocket.TextMessage, data)
		so.wmu.Unlock()
	}
}

func (s *Server) openSockets() []*socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sockets)
}

// Delivery is one envelope sent to the app.
type Delivery struct {
	EnvelopeID string
	// Type is the envelope type: "slash_commands" or "interactive".
	Type        string
	ResponseURL string
	TriggerID   string
	// Payload is the envelope's payload as sent.
	Payload json.RawMessage
	// Sent is when the envelope was written (real clock).
	Sent time.Time

	done chan struct{} // closed once ack is final
	ack  Ack
}

// Ack is the outcome of a delivery.
type Ack struct {
	// Latency is the time from sending the envelope to receiving its ack.
	Latency time.Duration
	// Payload is the ack's payload, nil when the app sent none.
	Payload json.RawMessage
	// TimedOut reports that no ack arrived within the ack deadline; Slack
	// then shows the user operation_timeout.
	TimedOut bool
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

// deliver sends an envelope to one open socket, waiting for one if needed.
func (s *Server) deliver(ctx context.Context, typ string, payload map[string]any, responseURL, triggerID string) (*Delivery, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("marshal payload: %w", err)
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if len(s.sockets) == 0 {
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("deliver %s: no socket: %w", typ, ctx.Err())
			}
		}
		s.rr++
		so := s.sockets[s.rr%len(s.sockets)]
		d := &Delivery{
			EnvelopeID: s.nextIDLocked("env-"), Type: typ, ResponseURL: responseURL,
			TriggerID: triggerID, Payload: body, Sent: time.Now(), done: make(chan struct{}),
		}
		s.pending[d.EnvelopeID] = d
		s.wg.Go(func() { s.ackTimer(d) }) // under s.mu, so never after Close's Wait
		s.mu.Unlock()

		err := so.writeJSON(map[string]any{
			"envelope_id": d.EnvelopeID, "type": typ, "payload": d.Payload,
			"accepts_response_payload": typ == "slash_commands",
		})
		if err != nil {
			s.log.Warn("envelope write failed, trying another socket", "envelope_id", d.EnvelopeID, "err", err)
			s.mu.Lock()
			if s.pending[d.EnvelopeID] == d {
				delete(s.pending, d.EnvelopeID)
				close(d.done) // ends the ack timer
			}
			s.mu.Unlock()
			so.conn.Close()
			continue
		}
		s.log.Info("envelope sent", "envelope_id", d.EnvelopeID, "type", typ, "socket", so.id)
		return d, nil
	}
}

func (s *Server) ackTimer(d *Delivery) {
	t := time.NewTimer(s.opts.AckDeadline)
	defer t.Stop()
	select {
	case <-d.done:
		return
	case <-s.done:
		return
	case <-t.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[d.EnvelopeID] != d {
		return // acked meanwhile
	}
	delete(s.pending, d.EnvelopeID)
	s.timeouts = append(s.timeouts, d.EnvelopeID)
	d.ack = Ack{TimedOut: true}
	close(d.done)
	s.notifyLocked()
	s.log.Warn("envelope not acked in time: operation_timeout", "envelope_id", d.EnvelopeID, "type", d.Type)
}

func (s *Server) acked(envelopeID string, payload json.RawMessage) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.pending[envelopeID]
	if d == nil {
		s.log.Warn("ack for unknown or expired envelope", "envelope_id", envelopeID)
		return
	}
	delete(s.pending, envelopeID)
	if len(payload) == 0 || string(payload) == "null" {
		payload = nil
	}
	d.ack = Ack{Latency: now.Sub(d.Sent), Payload: payload}
	close(d.done)
	if payload != nil && d.Type == "slash_commands" {
		s.applyAckPayloadLocked(d, payload)
	}
	s.notifyLocked()
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
