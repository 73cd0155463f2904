package slackemu

import (
	"regexp"
	"strings"
)

// mrkdwnToken matches Slack's angle-bracket markup: mentions, channel links, special mentions,
// and links with or without a label.
var mrkdwnToken = regexp.MustCompile(`<([^<>|]+)(?:\|([^<>]*))?>`)

// Render draws a message's text as a Slack client shows it to a person: PlainText with
// mentions resolved to names ("@ann", "#migration", "@channel"), links shown by their label,
// and the entities &amp; &lt; &gt; decoded.
func (s *Server) Render(m Message) string {
	s.mu.Lock()
	names := make(map[string]string, len(s.users)+len(s.channels))
	for id, name := range s.users {
		names["@"+id] = name
	}
	for id, c := range s.channels {
		names["#"+id] = c.name
	}
	s.mu.Unlock()
	text := mrkdwnToken.ReplaceAllStringFunc(m.PlainText(), func(tok string) string {
		parts := mrkdwnToken.FindStringSubmatch(tok)
		return tokenText(parts[1], parts[2], names)
	})
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
}
