package bot

import (
	"log/slog"
	"strings"
)

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s safe to show inside mrkdwn text: it replaces &, < and > with
// their entities, so text from users or AWS (a server's Name tag, an error
// message) cannot turn into a mention such as <!channel> or <@U123>, or a link.
func Escape(s string) string { return mrkdwnEscaper.Replace(s) }

// Token is a Slack token. It prints and logs as REDACTED; convert it with
// string(t) where the token itself is needed.
type Token string

// LogValue implements slog.LogValuer.
func (Token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// String implements fmt.Stringer, so %v and %s do not print the token either.
func (Token) String() string { return "REDACTED" }

// GoString implements fmt.GoStringer for %#v.
func (Token) GoString() string { return `"REDACTED"` }
