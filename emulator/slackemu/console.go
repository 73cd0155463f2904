package slackemu

import (
	"fmt"
	"net/http"
	"strings"
)

// serveConsole is a small HTTP front end for people and scripts, standing in for the Slack
// client when the emulator runs on its own:
//
//	POST /console/command  user=U… channel=C… text="status web01"   -> sends the slash command
//	POST /console/click    user=U… channel=C… action=confirm [ts=…] -> presses the newest button with that action
//	GET  /console/channel/C…                                        -> the channel as a person reads it
//
// Answers are plain text.
func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/console/command":
		d, err := s.SlashCommand(r.Context(), r.FormValue("user"), r.FormValue("channel"), r.FormValue("text"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "sent %s %s as envelope %s\n", s.opts.Command, r.FormValue("text"), d.EnvelopeID)
	case r.Method == http.MethodPost && r.URL.Path == "/console/click":
		user, channel, action, ts := r.FormValue("user"), r.FormValue("channel"), r.FormValue("action"), r.FormValue("ts")
		if ts == "" {
			ts = s.newestWithButton(channel, action)
		}
		d, err := s.Click(r.Context(), user, channel, ts, action)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "clicked %s on %s as envelope %s\n", action, ts, d.EnvelopeID)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/console/channel/"):
		channel := strings.TrimPrefix(r.URL.Path, "/console/channel/")
		for _, m := range s.Messages(channel) {
			if m.ThreadTS != "" && m.ThreadTS != m.TS {
				continue
			}
			fmt.Fprintf(w, "[%s]\n  %s\n", m.Posted.Format("15:04:05"), strings.ReplaceAll(s.Render(m), "\n", "\n  "))
			for _, r := range s.Replies(channel, m.TS) {
				fmt.Fprintf(w, "  └ [%s] %s\n", r.Posted.Format("15:04:05"), strings.ReplaceAll(s.Render(r), "\n", "\n    "))
			}
		}
	default:
		http.Error(w, "unknown console request; see the emulator's documentation", http.StatusNotFound)
	}
}

// newestWithButton returns the ts of the newest message in channel (thread replies included)
// with a button of that action, or "".
func (s *Server) newestWithButton(channel, action string) string {
	var ts string
	has := func(m Message) bool {
		for _, b := range m.Buttons() {
			if b.ActionID == action {
				return true
			}
		}
		return false
	}
	for _, m := range s.Messages(channel) {
		if has(m) {
			ts = m.TS
		}
		for _, r := range s.Replies(channel, m.TS) {
			if has(r) {
				ts = r.TS
			}
		}
	}
	return ts
}
