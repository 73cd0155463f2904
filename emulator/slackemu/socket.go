package slackemu

import (
	"context"
	"encoding/json"
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

// writeJSON writes v as one text frame. sending, when not nil, is called
// right before the frame is written, with the socket's write lock held.
func (so *socket) writeJSON(v any, sending func()) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	so.wmu.Lock()
	defer so.wmu.Unlock()
	if sending != nil {
		sending()
	}
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
		_ = so.writeJSON(disconnectFrame("too_many_websockets"), nil)
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
		_ = so.writeJSON(disconnectFrame(reason), nil)
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

// deliverSocket sends d as an envelope to one open socket, waiting for one if
// needed, and returns once it is written. It fills in d's envelope ID and
// send time.
func (s *Server) deliverSocket(ctx context.Context, d *Delivery) (*Delivery, error) {
	frame := map[string]any{
		"type": d.Type, "payload": d.Payload, "accepts_response_payload": d.Type == "slash_commands",
	}
	if d.Type == "events_api" {
		frame["retry_attempt"], frame["retry_reason"] = d.Attempt, ""
		if d.Attempt > 0 {
			frame["retry_reason"] = "timeout"
		}
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
				return nil, fmt.Errorf("deliver %s: no socket: %w", d.Type, ctx.Err())
			}
		}
		s.rr++
		so := s.sockets[s.rr%len(s.sockets)]
		d := d.fresh(s.nextIDLocked("env-"))
		s.pending[d.EnvelopeID] = d
		s.wg.Go(func() { s.ackTimer(d) }) // under s.mu, so never after Close's Wait
		s.mu.Unlock()
		frame["envelope_id"] = d.EnvelopeID

		// The ack latency counts from the moment the frame goes out, not
		// from when this delivery began to wait for the socket.
		err := so.writeJSON(frame, func() {
			s.mu.Lock()
			d.Sent = time.Now()
			s.mu.Unlock()
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
		s.log.Info("envelope sent", "envelope_id", d.EnvelopeID, "type", d.Type, "socket", so.id)
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
	s.failLocked(d, Ack{TimedOut: true, Error: "operation_timeout"})
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
