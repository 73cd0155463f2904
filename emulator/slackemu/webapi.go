package slackemu

import (
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is a Web API failure: HTTP 200 with ok:false, except for rate
// limits.
type apiError struct {
	code       string
	status     int           // 0 means 200
	retryAfter time.Duration // with status 429
}

func fail(code string) *apiError { return &apiError{code: code} }

type apiHandler func(s *Server, args url.Values) (map[string]any, *apiError)

type tokenKind int

const (
	botToken tokenKind = iota
	appToken
)

var methods = map[string]struct {
	token tokenKind
	h     apiHandler
}{
	"auth.test":             {botToken, (*Server).authTest},
	"apps.connections.open": {appToken, (*Server).connectionsOpen},
	"chat.postMessage":      {botToken, (*Server).postMessage},
	"chat.update":           {botToken, (*Server).update},
	"chat.postEphemeral":    {botToken, (*Server).postEphemeral},
	"users.info":            {botToken, (*Server).usersInfo},
	"usergroups.users.list": {botToken, (*Server).usergroupUsers},
	"conversations.info":    {botToken, (*Server).conversationsInfo},
	"conversations.history": {botToken, (*Server).conversationsHistory},
	"conversations.replies": {botToken, (*Server).conversationsReplies},
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	args, header, err := readArgs(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	s.mu.Lock()
	s.calls[method]++
	s.notifyLocked()
	m, known := methods[method]
	if !known {
		s.unknown = append(s.unknown, method)
	}
	s.mu.Unlock()
	if !known {
		s.log.Error("unknown method", "method", method)
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "unknown_method"})
		return
	}

	res, e := s.call(method, m.token, m.h, args, header)
	if e == nil {
		switch f := s.takeReplyFault(method); {
		case f == nil:
		case f.lose:
			s.log.Info("reply lost after the call took effect", "method", method)
			http.Error(w, "upstream connect error or disconnect/reset before headers", http.StatusServiceUnavailable)
			return
		default:
			s.log.Info("reply held after the call took effect", "method", method, "dur", f.delay)
			t := time.NewTimer(f.delay)
			select {
			case <-t.C:
			case <-r.Context().Done(): // the client gave up, or died
			case <-s.done:
			}
			t.Stop()
		}
	}
	if e != nil {
		s.log.Info("api error", "method", method, "err", e.code)
		status := e.status
		if status == 0 {
			status = http.StatusOK
		}
		if status == http.StatusTooManyRequests {
			secs := int64(math.Ceil(e.retryAfter.Seconds()))
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		writeJSON(w, status, map[string]any{"ok": false, "error": e.code})
		return
	}
	res["ok"] = true
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) call(method string, kind tokenKind, h apiHandler, args url.Values, bearer string) (map[string]any, *apiError) {
	token := bearer
	if kind == appToken {
		// apps.connections.open takes the token only in the Authorization header.
		if token == "" {
			return nil, fail("not_authed")
		}
	} else if token == "" {
		token = args.Get("token")
	}
	switch {
	case token == "":
		return nil, fail("not_authed")
	case token != s.opts.BotToken && token != s.opts.AppToken:
		return nil, fail("invalid_auth")
	case kind == appToken && token != s.opts.AppToken,
		kind == botToken && token != s.opts.BotToken:
		return nil, fail("not_allowed_token_type")
	}

	s.mu.Lock()
	if f := s.faults[method]; f != nil && f.n > 0 {
		f.n--
		s.mu.Unlock()
		return nil, &apiError{code: "ratelimited", status: http.StatusTooManyRequests, retryAfter: f.retryAfter}
	}
	s.mu.Unlock()
	return h(s, args)
}

// readArgs returns the form or JSON arguments and the bearer token, if any.
func readArgs(r *http.Request) (url.Values, string, error) {
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	args := url.Values{}
	if ctype == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, "", err
		}
		var obj map[string]any
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := json.Unmarshal(body, &obj); err != nil {
				return nil, "", err
			}
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				args.Set(k, v)
			case nil:
			default:
				b, _ := json.Marshal(v)
				args.Set(k, string(b))
			}
		}
		for k, v := range r.URL.Query() {
			args[k] = v
		}
		return args, bearer, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, "", err
	}
	return r.Form, bearer, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) authTest(url.Values) (map[string]any, *apiError) {
	return map[string]any{
		"url": "https://" + TeamDomain + ".slack.com/", "team": TeamDomain, "user": BotName,
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID, "is_enterprise_install": false,
	}, nil
}

func (s *Server) connectionsOpen(url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket := s.nextIDLocked("tk-")
	s.tickets[ticket] = true
	u := "ws" + strings.TrimPrefix(s.base, "http") + "/link/?ticket=" + ticket + "&app_id=" + AppID
	return map[string]any{"url": u}, nil
}

func (s *Server) postMessage(args url.Values) (map[string]any, *apiError) {
	blocks, code := checkContent(args.Get("text"), args.Get("blocks"))
	if code != "" {
		return nil, fail(code)
	}
	md, code := parseMetadata(args.Get("metadata"))
	if code != "" {
		return nil, fail(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[args.Get("channel")]
	if c == nil {
		return nil, fail("channel_not_found")
	}
	threadTS := args.Get("thread_ts")
	if threadTS != "" {
		parent := c.find(threadTS)
		if parent == nil {
			return nil, fail("thread_not_found")
		}
		if parent.ThreadTS != "" {
			s.log.Warn("thread_ts names a reply, using its parent", "channel", c.id, "ts", threadTS)
			threadTS = parent.ThreadTS
		}
	}
	if wait := s.takeLocked(c.id); wait > 0 {
		return nil, &apiError{code: "ratelimited", status: http.StatusTooManyRequests, retryAfter: wait}
	}
	m := &Message{
		Channel: c.id, TS: s.nextTSLocked(), ThreadTS: threadTS, User: BotUserID,
		Text: args.Get("text"), Blocks: blocks, Posted: s.now(), Metadata: md,
		Broadcast: threadTS != "" && truthy(args.Get("reply_broadcast")),
	}
	c.msgs = append(c.msgs, m)
	s.notifyLocked()
	return map[string]any{"channel": c.id, "ts": m.TS, "message": messageJSON(m)}, nil
}

func (s *Server) update(args url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[args.Get("channel")]
	if c == nil {
		return nil, fail("channel_not_found")
	}
	m := c.find(args.Get("ts"))
	if m == nil || m.Deleted {
		return nil, fail("message_not_found")
	}
	if m.User != BotUserID {
		return nil, fail("cant_update_message")
	}
	text := args.Get("text")
	blocksArg := args.Get("blocks")
	var blocks []json.RawMessage
	if blocksArg != "" {
		var code string
		if blocks, code = parseBlocks(blocksArg); code != "" {
			return nil, fail(code)
		}
	}
	if runes(text) > maxMessageText {
		return nil, fail("msg_too_long")
	}
	if text == "" && len(blocks) == 0 {
		return nil, fail("no_text")
	}
	md, code := parseMetadata(args.Get("metadata"))
	if code != "" {
		return nil, fail(code)
	}
	m.Text = text
	if blocksArg != "" {
		m.Blocks = blocks
	}
	if md != nil {
		m.Metadata = md // without the argument the message keeps its metadata
	}
	m.Edits++
	s.notifyLocked()
	return map[string]any{"channel": c.id, "ts": m.TS, "text": m.Text, "message": messageJSON(m)}, nil
}

func (s *Server) postEphemeral(args url.Values) (map[string]any, *apiError) {
	blocks, code := checkContent(args.Get("text"), args.Get("blocks"))
	if code != "" {
		return nil, fail(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[args.Get("channel")]
	if c == nil {
		return nil, fail("channel_not_found")
	}
	user := args.Get("user")
	if _, ok := s.users[user]; !ok {
		return nil, fail("user_not_found")
	}
	m := s.addEphemeralLocked(c.id, user, args.Get("thread_ts"), args.Get("text"), blocks)
	return map[string]any{"message_ts": m.TS}, nil
}

func (s *Server) addEphemeralLocked(channel, user, threadTS, text string, blocks []json.RawMessage) *Message {
	m := &Message{
		Channel: channel, TS: s.nextTSLocked(), ThreadTS: threadTS, User: BotUserID, Text: text,
		Blocks: blocks, Ephemeral: true, Recipient: user, Posted: s.now(),
	}
	s.ephemerals[user] = append(s.ephemerals[user], m)
	s.notifyLocked()
	return m
}

func (s *Server) usersInfo(args url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := args.Get("user")
	name, ok := s.users[id]
	if !ok {
		return nil, fail("user_not_found")
	}
	return map[string]any{"user": map[string]any{
		"id": id, "team_id": TeamID, "name": name, "real_name": name, "deleted": false,
		"is_bot": id == BotUserID, "tz": "UTC",
		"profile": map[string]any{"real_name": name, "display_name": name},
	}}, nil
}

func (s *Server) usergroupUsers(args url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.groups[args.Get("usergroup")]
	if !ok {
		return nil, fail("no_such_subteam")
	}
	return map[string]any{"users": append([]string{}, members...)}, nil
}

func (s *Server) conversationsInfo(args url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[args.Get("channel")]
	if c == nil {
		return nil, fail("channel_not_found")
	}
	return map[string]any{"channel": map[string]any{
		"id": c.id, "name": c.name, "is_channel": true, "is_private": false,
		"is_member": true, "is_archived": false,
	}}, nil
}

func (c *channel) find(ts string) *Message {
	for _, m := range c.msgs {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

// messageJSON renders a message as the Web API and interaction payloads
// show it.
func messageJSON(m *Message) map[string]any {
	out := map[string]any{"type": "message", "ts": m.TS, "user": m.User, "text": m.Text, "team": TeamID}
	if m.User == BotUserID {
		out["bot_id"] = BotID
		out["app_id"] = AppID
	}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Edits > 0 {
		out["edited"] = map[string]any{"user": m.User, "ts": m.TS}
	}
	return out
}

// bucket is a per-channel token bucket on the server's clock.
type bucket struct {
	tokens float64
	last   time.Time
}

// takeLocked takes a posting token for channel, or returns how long to wait
// (rounded up to whole seconds, at least 1 s) when none is left.
func (s *Server) takeLocked(channel string) time.Duration {
	if s.opts.PostInterval < 0 {
		return 0
	}
	now := s.now()
	burst := float64(s.opts.PostBurst)
	b := s.buckets[channel]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		s.buckets[channel] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(burst, b.tokens+float64(el)/float64(s.opts.PostInterval))
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	wait := time.Duration((1 - b.tokens) * float64(s.opts.PostInterval))
	return max(time.Second, time.Duration(math.Ceil(wait.Seconds()))*time.Second)
}
