package slackemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// response_url limits.
const (
	responseURLTTL  = 30 * time.Minute
	responseURLUses = 5
)

// responseURL is a response_url issued with a slash command or a click.
type responseURL struct {
	created time.Time
	uses    int
	// answered holds each accepted post, with when it arrived on the real clock.
	answered []Answer
	user     string
	channel  string
	source   *Message // the clicked message; nil for slash commands
}

// ErrNoButton is returned by Click and ClickEphemeral when no message holds
// the button.
var ErrNoButton = errors.New("slackemu: button not found")

// SlashCommand sends a slash command as if user typed it with text in
// channel: a slash_commands envelope over Socket Mode, or a form post to the
// request URL in HTTP mode. It waits for an open socket (bounded by ctx) and
// returns once the envelope or request is written; use WaitAck for the ack.
func (s *Server) SlashCommand(ctx context.Context, user, channel, text string) (*Delivery, error) {
	s.mu.Lock()
	chName := "directmessage"
	if c := s.channels[channel]; c != nil {
		chName = c.name
	}
	ru, rid := s.newResponseURLLocked(user, channel, nil)
	trigger := s.triggerIDLocked()
	payload := map[string]any{
		"token": "emulator-verification-token", "team_id": TeamID, "team_domain": TeamDomain,
		"channel_id": channel, "channel_name": chName, "user_id": user, "user_name": s.userName(user),
		"command": s.opts.Command, "text": text, "api_app_id": AppID,
		"is_enterprise_install": "false", "response_url": ru, "trigger_id": trigger,
	}
	s.mu.Unlock()
	s.log.Info("slash command", "user", user, "channel", channel, "response_id", rid)
	return s.deliver(ctx, &Delivery{Type: "slash_commands", ResponseURL: ru, TriggerID: trigger, user: user}, payload)
}

// Click sends a block_actions interaction (an interactive envelope, or a
// post to the request URL in HTTP mode) as if user pressed the button with
// actionID in the channel message (or thread reply) messageTS, or in the
// ephemeral message messageTS shown to user. A confirm dialog on the button
// is taken as accepted. It returns ErrNoButton if the message or button does
// not exist.
func (s *Server) Click(ctx context.Context, user, channel, messageTS, actionID string) (*Delivery, error) {
	s.mu.Lock()
	var m *Message
	if c := s.channels[channel]; c != nil {
		m = c.find(messageTS)
	}
	if m == nil {
		m = s.ephemeralLocked(user, channel, messageTS)
	}
	if m == nil || m.Deleted {
		s.mu.Unlock()
		return nil, fmt.Errorf("click %s on %s/%s: message: %w", actionID, channel, messageTS, ErrNoButton)
	}
	return s.clickLocked(ctx, user, m, actionID)
}

// ClickEphemeral presses the button with actionID on the newest ephemeral
// message shown to user that has it. It returns ErrNoButton if there is none.
func (s *Server) ClickEphemeral(ctx context.Context, user, actionID string) (*Delivery, error) {
	s.mu.Lock()
	eph := s.ephemerals[user]
	for _, m := range slices.Backward(eph) {
		if m.Deleted {
			continue
		}
		for _, b := range m.Buttons() {
			if b.ActionID == actionID {
				return s.clickLocked(ctx, user, m, actionID)
			}
		}
	}
	s.mu.Unlock()
	return nil, fmt.Errorf("click %s on ephemerals of %s: %w", actionID, user, ErrNoButton)
}

// ephemeralLocked returns the ephemeral message ts in channel shown to user, or nil.
func (s *Server) ephemeralLocked(user, channel, ts string) *Message {
	for _, m := range s.ephemerals[user] {
		if m.TS == ts && m.Channel == channel {
			return m
		}
	}
	return nil
}

// clickLocked builds and delivers the block_actions payload; it releases s.mu.
func (s *Server) clickLocked(ctx context.Context, user string, m *Message, actionID string) (*Delivery, error) {
	var btn *Button
	for _, b := range m.Buttons() {
		if b.ActionID == actionID {
			btn = &b
			break
		}
	}
	if btn == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("click %s on %s/%s: %w", actionID, m.Channel, m.TS, ErrNoButton)
	}
	chName := "directmessage"
	if c := s.channels[m.Channel]; c != nil {
		chName = c.name
	}
	ru, _ := s.newResponseURLLocked(user, m.Channel, m)
	trigger := s.triggerIDLocked()
	actionTS := s.nextTSLocked()
	action := map[string]any{
		"type": "button", "block_id": btn.BlockID, "action_id": btn.ActionID,
		"text":      map[string]any{"type": "plain_text", "text": btn.Text, "emoji": true},
		"action_ts": actionTS,
	}
	if btn.Value != "" {
		action["value"] = btn.Value
	}
	if btn.Style != "" {
		action["style"] = btn.Style
	}
	container := map[string]any{
		"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": m.Ephemeral,
	}
	if m.ThreadTS != "" {
		container["thread_ts"] = m.ThreadTS
	}
	name := s.userName(user)
	payload := map[string]any{
		"type": "block_actions", "api_app_id": AppID, "token": "emulator-verification-token",
		"trigger_id": trigger, "response_url": ru, "is_enterprise_install": false,
		"team":      map[string]any{"id": TeamID, "domain": TeamDomain},
		"user":      map[string]any{"id": user, "username": name, "name": name, "team_id": TeamID},
		"channel":   map[string]any{"id": m.Channel, "name": chName},
		"container": container,
		"state":     map[string]any{"values": map[string]any{}},
		"actions":   []any{action},
	}
	if !m.Ephemeral {
		payload["message"] = messageJSON(m)
	}
	s.mu.Unlock()
	s.log.Info("click", "user", user, "channel", m.Channel, "action_id", actionID)
	return s.deliver(ctx, &Delivery{Type: "interactive", ResponseURL: ru, TriggerID: trigger, user: user}, payload)
}

// Redeliver sends d's payload again, byte for byte, as a new delivery, as a
// duplicate delivery would. The response_url and trigger_id stay the same. An Events
// API event goes out as Slack's next retry of it: retry_attempt (Socket
// Mode) or X-Slack-Retry-Num (HTTP) one higher, with the same event_id.
func (s *Server) Redeliver(ctx context.Context, d *Delivery) (*Delivery, error) {
	next := &Delivery{Type: d.Type, ResponseURL: d.ResponseURL, TriggerID: d.TriggerID, Payload: d.Payload, user: d.user, form: d.form}
	if d.Type == "events_api" {
		next.Attempt = d.Attempt + 1
	}
	return s.send(ctx, next)
}

// Event sends an Events API event_callback wrapping event, the inner event
// (such as {"type": "app_mention", "user": …, "text": …, "channel": …}), as
// Slack does for an app subscribed to that event: an events_api envelope
// over Socket Mode, a JSON post to the request URL in HTTP mode. The
// callback gets a fresh event_id. Slack retries an event that is not acked
// in time; the emulator does not, but Redeliver sends such a retry.
func (s *Server) Event(ctx context.Context, event map[string]any) (*Delivery, error) {
	s.mu.Lock()
	id := s.nextIDLocked("Ev")
	now := s.now().Unix()
	s.mu.Unlock()
	payload := map[string]any{
		"token": "emulator-verification-token", "team_id": TeamID, "api_app_id": AppID,
		"event": event, "type": "event_callback", "event_id": id, "event_time": now,
		"event_context": "4-emulator-" + id, "is_ext_shared_channel": false,
		"authorizations": []any{map[string]any{
			"enterprise_id": nil, "team_id": TeamID, "user_id": BotUserID, "is_bot": true, "is_enterprise_install": false,
		}},
	}
	user, _ := event["user"].(string)
	s.log.Info("event", "type", event["type"], "event_id", id)
	return s.deliver(ctx, &Delivery{Type: "events_api", user: user}, payload)
}

func (s *Server) newResponseURLLocked(user, channel string, source *Message) (string, string) {
	id := s.nextIDLocked("r")
	s.responses[id] = &responseURL{created: s.now(), user: user, channel: channel, source: source}
	return s.base + "/response/" + id, id
}

// Answer is one answer posted to a response_url: when it arrived (real clock) and its text
// (the message's fallback text).
type Answer struct {
	At   time.Time
	Text string
}

// Answers returns the answers posted to a response_url, oldest first: what a person saw, and
// when, in answer to the command or click that carried it.
func (s *Server) Answers(responseURL string) []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := responseURL[strings.LastIndex(responseURL, "/")+1:]
	if ru := s.responses[id]; ru != nil {
		return slices.Clone(ru.answered)
	}
	return nil
}

func (s *Server) triggerIDLocked() string {
	return s.nextIDLocked("trig.")
}

// responseBody is what a response_url accepts.
type responseBody struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

// DropResponses makes the next n POSTs to any response_url end with the
// connection closed and no answer, as a network fault between the app and
// Slack would. A dropped POST does not count as a use of its URL.
func (s *Server) DropResponses(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropResps = n
}

// serveResponse handles POSTs to a response_url. Expired and exhausted URLs
// answer HTTP 404 with {"ok":false,"error":"expired_url"|"used_url"}.
func (s *Server) serveResponse(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "error": "method_not_allowed"})
		return
	}
	if s.dropResponse() {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "invalid_payload"})
		return
	}
	var b responseBody
	if err := json.Unmarshal(body, &b); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "invalid_payload"})
		return
	}
	id := r.PathValue("id")

	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["response_url"]++
	ru := s.responses[id]
	code, status := s.applyResponseLocked(ru, &b)
	s.notifyLocked()
	if code != "" {
		s.log.Info("response_url refused", "err", code)
		writeJSON(w, status, map[string]any{"ok": false, "error": code})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// dropResponse reports whether to drop this response_url POST (DropResponses).
func (s *Server) dropResponse() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropResps <= 0 {
		return false
	}
	s.dropResps--
	s.calls["response_url"]++
	s.log.Info("response_url dropped")
	return true
}

func (s *Server) applyResponseLocked(ru *responseURL, b *responseBody) (code string, status int) {
	switch {
	case ru == nil:
		return "no_service", http.StatusNotFound
	case s.now().Sub(ru.created) > responseURLTTL:
		return "expired_url", http.StatusNotFound
	case ru.uses >= responseURLUses:
		return "used_url", http.StatusNotFound
	}
	ru.uses++

	src := ru.source
	if b.DeleteOriginal {
		if src != nil {
			src.Deleted = true
		}
		return "", 0
	}
	blocks, code := checkContent(b.Text, string(b.Blocks))
	if code != "" {
		ru.uses-- // a refused body does not count (?)
		return code, http.StatusBadRequest
	}
	ru.answered = append(ru.answered, Answer{At: time.Now(), Text: b.Text})
	if b.ReplaceOriginal && src != nil {
		src.Text, src.Blocks = b.Text, blocks
		src.Edits++
		return "", 0
	}
	if b.ResponseType == "in_channel" {
		c := s.channels[ru.channel]
		if c == nil {
			return "channel_not_found", http.StatusNotFound
		}
		threadTS := b.ThreadTS
		if p := c.find(threadTS); threadTS != "" && p != nil && p.ThreadTS != "" {
			threadTS = p.ThreadTS
		}
		c.msgs = append(c.msgs, &Message{
			Channel: c.id, TS: s.nextTSLocked(), ThreadTS: threadTS, User: BotUserID,
			Text: b.Text, Blocks: blocks, Posted: s.now(),
		})
		return "", 0
	}
	s.addEphemeralLocked(ru.channel, ru.user, b.ThreadTS, b.Text, blocks)
	return "", 0
}
