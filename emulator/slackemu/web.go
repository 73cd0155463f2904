package slackemu

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The web view is a Slack client for people, served at "/": the workspace's channels, messages
// with their Block Kit, threads, ephemeral messages of the person acting, buttons and confirm
// dialogs, and a composer for slash commands. It is a client of the emulator like Slack's own:
// it reads the workspace and acts only through SlashCommand, Click and PostUserMessage, so it
// never changes what the app sees.
//
//	GET  /                  the page (web/index.html)
//	GET  /web/static/…      its script and style sheet
//	GET  /web/changes       ?channel=C…&as=U…&since=N: what changed after version N (webChanges)
//	GET  /web/events        server-sent events: "version" with the newest version number
//	POST /web/command       {"user","channel","text":"/cutover …"}: sends the slash command
//	POST /web/click         {"user","channel","ts","action_id"}: presses a button
//	POST /web/post          {"user","channel","text"}: posts a message as the person
//
// POST bodies must be JSON: a cross-site form cannot send that without a CORS preflight, which
// the emulator does not answer, so another web site cannot drive the workspace.

//go:embed web
var webFiles embed.FS

// webCoalesce is how long the event stream waits after a change before it reports, so that a
// burst of changes (a job's thread filling up) costs the page one fetch.
const webCoalesce = 25 * time.Millisecond

// webState is the bookkeeping of the web view: a version number that grows with every change
// a page could show, and the version at which each message and the workspace last changed.
// It is brought up to date lazily, by webSyncLocked, when a page asks.
type webState struct {
	version   int64
	workspace int64  // version of the last change of users or channels
	wsKey     string // users and channels as of that version
	stamps    map[*Message]webStamp
}

// webStamp is what a message looked like when its version was taken.
type webStamp struct {
	rev     int64
	edits   int
	deleted bool
}

func (s *Server) routeWeb(mux *http.ServeMux) {
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET /web/static/", http.StripPrefix("/web/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /web/changes", s.serveWebChanges)
	mux.HandleFunc("GET /web/events", s.serveWebEvents)
	mux.HandleFunc("POST /web/command", s.serveWebCommand)
	mux.HandleFunc("POST /web/click", s.serveWebClick)
	mux.HandleFunc("POST /web/post", s.serveWebPost)
}

// WebURL returns the address of the web view.
func (s *Server) WebURL() string { return s.base + "/" }

// webSyncLocked stamps every message that is new or changed since the last call with a new
// version, and returns the current version. s.mu must be held.
func (s *Server) webSyncLocked() int64 {
	w := &s.web
	if w.stamps == nil {
		w.stamps = map[*Message]webStamp{}
	}
	next := w.version + 1
	changed := false
	visit := func(m *Message) {
		st, ok := w.stamps[m]
		if ok && st.edits == m.Edits && st.deleted == m.Deleted {
			return
		}
		w.stamps[m] = webStamp{rev: next, edits: m.Edits, deleted: m.Deleted}
		changed = true
	}
	for _, c := range s.channels {
		for _, m := range c.msgs {
			visit(m)
		}
	}
	for _, list := range s.ephemerals {
		for _, m := range list {
			visit(m)
		}
	}
	if key := s.workspaceKeyLocked(); key != w.wsKey {
		w.wsKey, w.workspace = key, next
		changed = true
	}
	if changed {
		w.version = next
	}
	return w.version
}

// workspaceKeyLocked sums up the users and channels, to notice when they change.
func (s *Server) workspaceKeyLocked() string {
	var parts []string
	for id, name := range s.users {
		parts = append(parts, "u"+id+"="+name)
	}
	for id, c := range s.channels {
		parts = append(parts, "c"+id+"="+c.name)
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x00")
}

// webChanges answers GET /web/changes.
type webChanges struct {
	Version int64 `json:"version"`
	// Workspace is set when the users or channels changed after since.
	Workspace *webWorkspace `json:"workspace,omitempty"`
	// Messages are the channel's messages, thread replies and ephemeral messages of the
	// person acting that are new or changed after since, in posting order.
	Messages []webMessage `json:"messages"`
}

type webWorkspace struct {
	Team    string `json:"team"`
	Command string `json:"command"`
	// Bot is the bot user's ID; People are the other members, by name.
	Bot      string    `json:"bot"`
	Users    []webName `json:"users"`
	People   []string  `json:"people"`
	Channels []webName `json:"channels"`
}

// webName is a user's or a channel's ID and name.
type webName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type webMessage struct {
	Channel   string            `json:"channel"`
	TS        string            `json:"ts"`
	ThreadTS  string            `json:"thread_ts,omitempty"`
	User      string            `json:"user"`
	Text      string            `json:"text"`
	Blocks    []json.RawMessage `json:"blocks,omitempty"`
	Broadcast bool              `json:"broadcast,omitempty"`
	Ephemeral bool              `json:"ephemeral,omitempty"`
	Edited    bool              `json:"edited,omitempty"`
	Deleted   bool              `json:"deleted,omitempty"`
	Posted    int64             `json:"posted"` // Unix milliseconds
	Rev       int64             `json:"rev"`
}

func (s *Server) serveWebChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.webChangesLocked(q.Get("channel"), q.Get("as"), since))
}

func (s *Server) webChangesLocked(channelID, as string, since int64) webChanges {
	out := webChanges{Version: s.webSyncLocked(), Messages: []webMessage{}}
	if s.web.workspace > since {
		out.Workspace = s.webWorkspaceLocked()
	}
	var msgs []*Message
	if c := s.channels[channelID]; c != nil {
		msgs = append(msgs, c.msgs...)
	}
	for _, m := range s.ephemerals[as] {
		if m.Channel == channelID {
			msgs = append(msgs, m)
		}
	}
	for _, m := range msgs {
		rev := s.web.stamps[m].rev
		if rev <= since {
			continue
		}
		wm := webMessage{
			Channel: m.Channel, TS: m.TS, ThreadTS: m.ThreadTS, User: m.User, Broadcast: m.Broadcast,
			Ephemeral: m.Ephemeral, Deleted: m.Deleted, Posted: m.Posted.UnixMilli(), Rev: rev,
		}
		if !m.Deleted {
			wm.Text, wm.Blocks, wm.Edited = m.Text, m.Blocks, m.Edits > 0
		}
		out.Messages = append(out.Messages, wm)
	}
	// Channel messages and ephemerals share one clock, and ts strings of one length sort
	// as the times they stand for.
	slices.SortFunc(out.Messages, func(a, b webMessage) int { return strings.Compare(a.TS, b.TS) })
	return out
}

func (s *Server) webWorkspaceLocked() *webWorkspace {
	ws := &webWorkspace{Team: TeamDomain, Command: s.opts.Command, Bot: BotUserID}
	for id, name := range s.users {
		ws.Users = append(ws.Users, webName{ID: id, Name: name})
		if id != BotUserID {
			ws.People = append(ws.People, id)
		}
	}
	slices.SortFunc(ws.Users, func(a, b webName) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(ws.People, func(a, b string) int { return strings.Compare(s.users[a], s.users[b]) })
	for id, c := range s.channels {
		ws.Channels = append(ws.Channels, webName{ID: id, Name: c.name})
	}
	slices.SortFunc(ws.Channels, func(a, b webName) int { return strings.Compare(a.Name, b.Name) })
	return ws
}

// serveWebEvents streams the version number whenever it grows, until the page goes away or
// the server closes.
func (s *Server) serveWebEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "retry: 1000\n\n") // reconnect a second after the emulator restarts
	ctx := r.Context()
	sent := int64(-1)
	for {
		s.mu.Lock()
		ch, closed := s.changed, s.closed
		v := s.webSyncLocked()
		s.mu.Unlock()
		if closed {
			return
		}
		if v != sent {
			if _, err := fmt.Fprintf(w, "event: version\ndata: %d\n\n", v); err != nil {
				return
			}
			flusher.Flush()
			sent = v
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
		t := time.NewTimer(webCoalesce)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		}
	}
}

// webRequest is the body of the web view's POSTs.
type webRequest struct {
	User     string `json:"user"`
	Channel  string `json:"channel"`
	Text     string `json:"text"`
	TS       string `json:"ts"`
	ActionID string `json:"action_id"`
}

// webResult answers a POST, with HTTP 200 as the Web API does. Error is what the Slack client
// would show: "dispatch_failed" when no app is connected, "operation_timeout" when the app did
// not ack within Slack's deadline.
type webResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func readWebRequest(w http.ResponseWriter, r *http.Request) (webRequest, bool) {
	var req webRequest
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, webResult{Error: "json_required"})
		return req, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, webResult{Error: "invalid_json"})
		return req, false
	}
	return req, true
}

// parseSlashCommand splits what a person typed, "/cutover launch web01 test", into the
// command and its text, as the Slack client does. ok is false when input is no command.
func parseSlashCommand(input string) (command, text string, ok bool) {
	input = strings.TrimSpace(input)
	if !strings.HasPrefix(input, "/") {
		return "", "", false
	}
	command, text, _ = strings.Cut(input, " ")
	if command == "/" {
		return "", "", false
	}
	return command, strings.TrimSpace(text), true
}

func (s *Server) serveWebCommand(w http.ResponseWriter, r *http.Request) {
	req, ok := readWebRequest(w, r)
	if !ok {
		return
	}
	cmd, text, ok := parseSlashCommand(req.Text)
	switch {
	case !ok:
		writeJSON(w, http.StatusOK, webResult{Error: "not_a_command"})
		return
	case cmd != s.opts.Command:
		writeJSON(w, http.StatusOK, webResult{Error: "unknown_command"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.AckDeadline)
	defer cancel()
	d, err := s.SlashCommand(ctx, req.User, req.Channel, text)
	s.answerWeb(w, r, d, err)
}

func (s *Server) serveWebClick(w http.ResponseWriter, r *http.Request) {
	req, ok := readWebRequest(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.AckDeadline)
	defer cancel()
	d, err := s.Click(ctx, req.User, req.Channel, req.TS, req.ActionID)
	if errors.Is(err, ErrNoButton) {
		writeJSON(w, http.StatusOK, webResult{Error: "button_not_found"})
		return
	}
	s.answerWeb(w, r, d, err)
}

// answerWeb waits for the delivery's ack and tells the page what Slack would show.
func (s *Server) answerWeb(w http.ResponseWriter, r *http.Request, d *Delivery, err error) {
	if err != nil {
		// No socket took the envelope in time (or the server is closing): Slack's
		// client says dispatch_failed.
		writeJSON(w, http.StatusOK, webResult{Error: "dispatch_failed"})
		return
	}
	ack, err := d.WaitAck(r.Context())
	if err != nil {
		return // the page went away
	}
	if ack.TimedOut {
		writeJSON(w, http.StatusOK, webResult{Error: "operation_timeout"})
		return
	}
	writeJSON(w, http.StatusOK, webResult{OK: true})
}

// webEscaper escapes what a person types, as the Slack client does before it posts.
var webEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func (s *Server) serveWebPost(w http.ResponseWriter, r *http.Request) {
	req, ok := readWebRequest(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	_, known := s.channels[req.Channel]
	s.mu.Unlock()
	switch {
	case !known:
		writeJSON(w, http.StatusOK, webResult{Error: "channel_not_found"})
		return
	case strings.TrimSpace(req.Text) == "":
		writeJSON(w, http.StatusOK, webResult{Error: "no_text"})
		return
	}
	s.PostUserMessage(req.Channel, req.User, webEscaper.Replace(req.Text))
	writeJSON(w, http.StatusOK, webResult{OK: true})
}
