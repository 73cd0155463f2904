package slackemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// webBase is the emulator's address without the API path.
func webBase(s *Server) string { return strings.TrimSuffix(s.WebURL(), "/") }

func getChanges(t *testing.T, s *Server, as string, since int64) webChanges {
	t.Helper()
	q := url.Values{"channel": {testChannel}, "as": {as}, "since": {strconv.FormatInt(since, 10)}}
	resp, err := http.Get(webBase(s) + "/web/changes?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c webChanges
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func texts(c webChanges) []string {
	var out []string
	for _, m := range c.Messages {
		out = append(out, m.Text)
	}
	return out
}

func TestWebChangesSendOnlyWhatChanged(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	api := apiClient(s)
	ctx := t.Context()
	_, parent, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("launching web01", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, testChannel, testUser, slack.MsgOptionText("only for ann", false)); err != nil {
		t.Fatal(err)
	}

	all := getChanges(t, s, testUser, 0)
	if got := texts(all); len(got) != 2 || got[0] != "launching web01" || got[1] != "only for ann" {
		t.Fatalf("first fetch as ann: got %q, want the message and ann's ephemeral", got)
	}
	if !all.Messages[1].Ephemeral || all.Messages[0].Posted == 0 || all.Messages[0].Channel != testChannel {
		t.Errorf("first fetch: got %+v, want an ephemeral second, times and channels set", all.Messages)
	}
	ws := all.Workspace
	if ws == nil || ws.Command != "/cutover" || ws.Bot != BotUserID || len(ws.Channels) != 1 ||
		strings.Join(ws.People, ",") != testUser+","+otherUser {
		t.Fatalf("workspace: got %+v, want /cutover, the bot, one channel, people ann and bob", ws)
	}
	if got := texts(getChanges(t, s, otherUser, 0)); len(got) != 1 {
		t.Errorf("bob sees %q, want only the channel message", got)
	}

	v := all.Version
	if again := getChanges(t, s, testUser, v); len(again.Messages) != 0 || again.Workspace != nil || again.Version != v {
		t.Errorf("nothing changed: got %+v, want no messages, no workspace, version %d", again, v)
	}

	if _, _, _, err := api.UpdateMessageContext(ctx, testChannel, parent, slack.MsgOptionText("launched web01", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, testChannel, slack.MsgOptionText("snapshot taken", false), slack.MsgOptionTS(parent)); err != nil {
		t.Fatal(err)
	}
	delta := getChanges(t, s, testUser, v)
	if got := texts(delta); len(got) != 2 || got[0] != "launched web01" || got[1] != "snapshot taken" {
		t.Fatalf("after an edit and a reply: got %q, want just those two", got)
	}
	if !delta.Messages[0].Edited || delta.Messages[1].ThreadTS != parent || delta.Version <= v {
		t.Errorf("delta: got %+v (version %d), want the edit marked, the reply in the thread, a newer version than %d",
			delta.Messages, delta.Version, v)
	}

	s.AddUser("U0EVE", "eve")
	if ws := getChanges(t, s, testUser, delta.Version).Workspace; ws == nil || len(ws.People) != 3 {
		t.Errorf("after a new member: got workspace %+v, want it sent again with three people", ws)
	}
}

// TestWebEventsStreamVersions reads the event stream: the current version at once, a newer
// one after a change.
func TestWebEventsStreamVersions(t *testing.T) {
	s := startServer(t, Options{PostInterval: -1})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, webBase(s)+"/web/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type: got %q, want text/event-stream", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() int64 {
		t.Helper()
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("event data %q: %v", v, err)
				}
				return n
			}
		}
		t.Fatalf("event stream ended: %v", lines.Err())
		return 0
	}
	first := next()
	if _, _, err := apiClient(s).PostMessageContext(ctx, testChannel, slack.MsgOptionText("hello", false)); err != nil {
		t.Fatal(err)
	}
	second := next()
	if second <= first {
		t.Errorf("versions: got %d then %d, want a newer one after a post", first, second)
	}
}

// postWeb posts a JSON body as the page does. It may run in a goroutine of its own, so it
// reports failures with Errorf.
func postWeb(t *testing.T, s *Server, path string, body any) (int, webResult) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(webBase(s)+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return 0, webResult{}
	}
	defer resp.Body.Close()
	var r webResult
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Errorf("POST %s: %d %s: %v", path, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, r
}

// TestWebActsThroughTheDeliveryPath: the page's command and click reach the app as the same
// envelopes SlashCommand and Click send, and their failures are Slack's.
func TestWebActsThroughTheDeliveryPath(t *testing.T) {
	s := startServer(t, Options{AckDeadline: 300 * time.Millisecond})
	a := connect(t, s, 2*time.Second)
	ctx := t.Context()

	done := make(chan webResult, 1)
	go func() {
		_, r := postWeb(t, s, "/web/command", webRequest{User: testUser, Channel: testChannel, Text: "/cutover  status web01 "})
		done <- r
	}()
	e := a.next(t)
	if cmd, ok := e.Data.(slack.SlashCommand); !ok || cmd.Command != "/cutover" || cmd.Text != "status web01" || cmd.UserID != testUser {
		t.Fatalf("web command arrived as %+v, want /cutover status web01 from %s", e.Data, testUser)
	}
	if err := a.sm.Ack(*e.Request); err != nil {
		t.Fatal(err)
	}
	if r := <-done; !r.OK {
		t.Errorf("acked command: got %+v, want ok", r)
	}

	ts, err := a.api.PostEphemeralContext(ctx, testChannel, testUser, slack.MsgOptionText("card", false), slack.MsgOptionBlocks(cardBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	if code, r := postWeb(t, s, "/web/click", webRequest{User: otherUser, Channel: testChannel, TS: ts, ActionID: "cutover_cancel"}); code != http.StatusOK || r.Error != "button_not_found" {
		t.Errorf("bob clicks ann's ephemeral: got %d %+v, want 200 button_not_found", code, r)
	}
	go func() {
		_, r := postWeb(t, s, "/web/click", webRequest{User: testUser, Channel: testChannel, TS: ts, ActionID: "cutover_cancel"})
		done <- r
	}()
	e = a.next(t)
	ic, ok := e.Data.(slack.InteractionCallback)
	if !ok || ic.User.ID != testUser || !ic.Container.IsEphemeral || ic.Container.MessageTs != ts ||
		len(ic.ActionCallback.BlockActions) != 1 || ic.ActionCallback.BlockActions[0].ActionID != "cutover_cancel" {
		t.Fatalf("web click arrived as %+v, want ann's click on her ephemeral card", e.Data)
	}
	// Not acked: Slack's client shows operation_timeout.
	if r := <-done; r.OK || r.Error != "operation_timeout" {
		t.Errorf("unacked click: got %+v, want operation_timeout", r)
	}

	bad := []struct {
		name string
		body webRequest
		code int
		want string
	}{
		{"another command", webRequest{User: testUser, Channel: testChannel, Text: "/remind me"}, http.StatusOK, "unknown_command"},
		{"no command", webRequest{User: testUser, Channel: testChannel, Text: "status"}, http.StatusOK, "not_a_command"},
	}
	for _, tc := range bad {
		if code, r := postWeb(t, s, "/web/command", tc.body); code != tc.code || r.Error != tc.want {
			t.Errorf("%s: got %d %+v, want %d %s", tc.name, code, r, tc.code, tc.want)
		}
	}
	resp, err := http.PostForm(webBase(s)+"/web/command", url.Values{"user": {testUser}, "text": {"/cutover status"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form POST (what another site could send): got %d, want 415", resp.StatusCode)
	}
}

func TestWebCommandWithoutApp(t *testing.T) {
	s := startServer(t, Options{AckDeadline: 100 * time.Millisecond})
	code, r := postWeb(t, s, "/web/command", webRequest{User: testUser, Channel: testChannel, Text: "/cutover status"})
	if code != http.StatusOK || r.Error != "dispatch_failed" {
		t.Errorf("no app connected: got %d %+v, want 200 dispatch_failed", code, r)
	}
}

func TestWebPostEscapesLikeSlack(t *testing.T) {
	s := startServer(t, Options{})
	if code, r := postWeb(t, s, "/web/post", webRequest{User: otherUser, Channel: testChannel, Text: "a <b> & <!channel>"}); code != http.StatusOK || !r.OK {
		t.Fatalf("post: got %d %+v", code, r)
	}
	msgs := s.Messages(testChannel)
	if len(msgs) != 1 || msgs[0].User != otherUser || msgs[0].Text != "a &lt;b&gt; &amp; &lt;!channel&gt;" {
		t.Errorf("posted: got %+v, want bob's text with &, < and > escaped", msgs)
	}
	if code, r := postWeb(t, s, "/web/post", webRequest{User: otherUser, Channel: "C0NOPE", Text: "x"}); code != http.StatusOK || r.Error != "channel_not_found" {
		t.Errorf("unknown channel: got %d %+v", code, r)
	}
}

func TestParseSlashCommand(t *testing.T) {
	tests := []struct {
		in, cmd, text string
		ok            bool
	}{
		{"/cutover status web01", "/cutover", "status web01", true},
		{"  /cutover   launch db01 cutover  ", "/cutover", "launch db01 cutover", true},
		{"/cutover", "/cutover", "", true},
		{"status", "", "", false},
		{"/", "", "", false},
	}
	for _, tt := range tests {
		cmd, text, ok := parseSlashCommand(tt.in)
		if cmd != tt.cmd || text != tt.text || ok != tt.ok {
			t.Errorf("parseSlashCommand(%q) = %q, %q, %v; want %q, %q, %v", tt.in, cmd, text, ok, tt.cmd, tt.text, tt.ok)
		}
	}
}

// TestWebPageIsSelfContained: the page and its assets come from the emulator and name
// nothing on the internet to load.
func TestWebPageIsSelfContained(t *testing.T) {
	s := startServer(t, Options{})
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["'](https?:)?//|new EventSource\(\s*["'](https?:)?//`)
	for path, ctype := range map[string]string{
		"/":                   "text/html",
		"/web/static/app.js":  "text/javascript",
		"/web/static/app.css": "text/css",
	} {
		resp, err := http.Get(webBase(s) + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: got %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
		}
		if m := external.Find(b); m != nil {
			t.Errorf("GET %s loads something from elsewhere: %q", path, m)
		}
	}
	if strings.Contains(string(mustRead(t, "web/app.js")), "innerHTML =") {
		t.Error("app.js assigns innerHTML; bot text must only ever become text nodes")
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := webFiles.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
