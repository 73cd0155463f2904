package slackemu

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Metadata is message metadata as an app attached it to a message (chat.postMessage or
// chat.update "metadata"): an event type and a free-form payload.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

func (m *Metadata) clone() *Metadata {
	if m == nil {
		return nil
	}
	c := *m
	c.EventPayload = maps.Clone(m.EventPayload)
	return &c
}

// maxMetadata bounds the "metadata" argument. Slack documents no figure; the emulator refuses
// a metadata argument over 8 KB so that an unbounded payload shows in tests.
const maxMetadata = 8 << 10

// parseMetadata decodes a "metadata" argument: a JSON object with a non-empty string
// event_type and an object (or null) event_payload. It returns nil for "" and the Slack error
// code invalid_metadata_format for anything else malformed.
func parseMetadata(arg string) (*Metadata, string) {
	if strings.TrimSpace(arg) == "" {
		return nil, ""
	}
	if len(arg) > maxMetadata {
		return nil, "invalid_metadata_format"
	}
	var raw struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if err := json.Unmarshal([]byte(arg), &raw); err != nil || raw.EventType == nil || *raw.EventType == "" {
		return nil, "invalid_metadata_format"
	}
	md := &Metadata{EventType: *raw.EventType, EventPayload: map[string]any{}}
	if p := strings.TrimSpace(string(raw.EventPayload)); p != "" && p != "null" {
		if !strings.HasPrefix(p, "{") || json.Unmarshal(raw.EventPayload, &md.EventPayload) != nil {
			return nil, "invalid_metadata_format"
		}
	}
	return md, ""
}

// Page sizes of the conversations methods, as Slack documents them for internal apps.
const (
	defaultHistoryLimit = 100
	maxHistoryLimit     = 999
	defaultRepliesLimit = 1000
	maxRepliesLimit     = 1000
)

// slackTS matches a message timestamp as the conversations methods take it in oldest and
// latest: "1712345678.000100", or whole seconds.
var slackTS = regexp.MustCompile(`^\d+(\.\d{1,6})?$`)

// tsMicros turns a message timestamp into microseconds, so that timestamps compare as
// numbers.
func tsMicros(ts string) (int64, bool) {
	if !slackTS.MatchString(ts) {
		return 0, false
	}
	secs, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return 0, false
	}
	frac = (frac + "000000")[:6]
	us, _ := strconv.ParseInt(frac, 10, 64)
	return s*1e6 + us, true
}

// window is the oldest/latest/inclusive arguments of a conversations method.
type window struct {
	oldest, latest int64 // microseconds; latest 0 means now
	inclusive      bool
}

// parseWindow reads oldest, latest and inclusive; the Slack error code names a bad
// timestamp.
func parseWindow(args url.Values) (window, string) {
	var w window
	if v := args.Get("oldest"); v != "" {
		us, ok := tsMicros(v)
		if !ok {
			return w, "invalid_ts_oldest"
		}
		w.oldest = us
	}
	if v := args.Get("latest"); v != "" {
		us, ok := tsMicros(v)
		if !ok {
			return w, "invalid_ts_latest"
		}
		w.latest = us
	}
	w.inclusive = truthy(args.Get("inclusive"))
	return w, ""
}

// holds reports whether a message with timestamp us lies in the window. Without inclusive,
// the bounds themselves are left out; inclusive only matters where a bound is given.
func (w window) holds(us int64) bool {
	if w.oldest > 0 && (us < w.oldest || (us == w.oldest && !w.inclusive)) {
		return false
	}
	if w.latest > 0 && (us > w.latest || (us == w.latest && !w.inclusive)) {
		return false
	}
	return true
}

// truthy reads a boolean argument as Slack does: "true" or "1".
func truthy(v string) bool { return v == "true" || v == "1" }

// pageLimit reads the limit argument: def when absent or not positive, at most most.
func pageLimit(args url.Values, def, most int) int {
	n, err := strconv.Atoi(args.Get("limit"))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, most)
}

// Cursors are opaque to clients. Like Slack's, they are base64 of "next_ts:" and the
// timestamp of the first message of the next page.
func encodeCursor(ts string) string {
	return base64.StdEncoding.EncodeToString([]byte("next_ts:" + ts))
}

func decodeCursor(c string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	ts, ok := strings.CutPrefix(string(b), "next_ts:")
	if _, valid := tsMicros(ts); !ok || !valid {
		return "", false
	}
	return ts, true
}

// page cuts msgs (already in answer order) at the cursor and the limit, and returns the page
// with has_more and the next cursor.
func page(msgs []*Message, cursor string, limit int) ([]*Message, bool, string, string) {
	start := 0
	if cursor != "" {
		ts, ok := decodeCursor(cursor)
		if !ok {
			return nil, false, "", "invalid_cursor"
		}
		start = slices.IndexFunc(msgs, func(m *Message) bool { return m.TS == ts })
		if start < 0 {
			return nil, false, "", "invalid_cursor"
		}
	}
	end := min(start+limit, len(msgs))
	if end < len(msgs) {
		return msgs[start:end], true, encodeCursor(msgs[end].TS), ""
	}
	return msgs[start:end], false, "", ""
}

// conversationJSON renders a message as conversations.history and conversations.replies
// show it: messageJSON plus the thread fields, and the metadata only when asked for.
func (c *channel) conversationJSON(m *Message, withMetadata bool) map[string]any {
	out := messageJSON(m)
	switch {
	case m.ThreadTS == "":
		if n := c.replyCount(m.TS); n > 0 {
			out["thread_ts"] = m.TS
			out["reply_count"] = n
		}
	default:
		if parent := c.find(m.ThreadTS); parent != nil {
			out["parent_user_id"] = parent.User
		}
		if m.Broadcast {
			out["subtype"] = "thread_broadcast"
		}
	}
	if withMetadata && m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	return out
}

func (c *channel) replyCount(ts string) int {
	n := 0
	for _, m := range c.msgs {
		if m.ThreadTS == ts && !m.Deleted {
			n++
		}
	}
	return n
}

// answerPage answers a conversations method with the page of msgs (in answer order) that
// the cursor and limit arguments select, limit defaulting to def and capped at most.
func (c *channel) answerPage(msgs []*Message, args url.Values, def, most int) (map[string]any, *apiError) {
	got, more, next, code := page(msgs, args.Get("cursor"), pageLimit(args, def, most))
	if code != "" {
		return nil, fail(code)
	}
	withMetadata := truthy(args.Get("include_all_metadata"))
	out := make([]map[string]any, 0, len(got))
	for _, m := range got {
		out = append(out, c.conversationJSON(m, withMetadata))
	}
	return map[string]any{
		"messages": out, "has_more": more,
		"response_metadata": map[string]any{"next_cursor": next},
	}, nil
}

// conversationLocked reads the channel and window arguments of a conversations method. s.mu
// must be held.
func (s *Server) conversationLocked(args url.Values) (*channel, window, *apiError) {
	c := s.channels[args.Get("channel")]
	if c == nil {
		return nil, window{}, fail("channel_not_found")
	}
	w, code := parseWindow(args)
	if code != "" {
		return nil, window{}, fail(code)
	}
	return c, w, nil
}

// conversationsHistory answers conversations.history: the channel's messages (top-level
// ones and thread replies broadcast to the channel) in the window, newest first, a page at a
// time.
func (s *Server) conversationsHistory(args url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, w, e := s.conversationLocked(args)
	if e != nil {
		return nil, e
	}
	var msgs []*Message
	for _, m := range slices.Backward(c.msgs) {
		us, _ := tsMicros(m.TS)
		if m.Deleted || (m.ThreadTS != "" && !m.Broadcast) || !w.holds(us) {
			continue
		}
		msgs = append(msgs, m)
	}
	res, e := c.answerPage(msgs, args, defaultHistoryLimit, maxHistoryLimit)
	if e == nil {
		res["pin_count"] = 0
	}
	return res, e
}

// conversationsReplies answers conversations.replies: the thread of ts (the parent first,
// then its replies in posting order), a page at a time. ts may name the parent or any reply;
// a message without replies is answered alone.
func (s *Server) conversationsReplies(args url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, w, e := s.conversationLocked(args)
	if e != nil {
		return nil, e
	}
	m := c.find(args.Get("ts"))
	if m == nil || m.Deleted {
		return nil, fail("thread_not_found")
	}
	parentTS := m.TS
	if m.ThreadTS != "" {
		parentTS = m.ThreadTS
	}
	parent := c.find(parentTS)
	msgs := []*Message{parent}
	for _, r := range c.msgs {
		us, _ := tsMicros(r.TS)
		if r.ThreadTS == parentTS && !r.Deleted && w.holds(us) {
			msgs = append(msgs, r)
		}
	}
	return c.answerPage(msgs, args, defaultRepliesLimit, maxRepliesLimit)
}
