package bot

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s safe to show inside mrkdwn text: it replaces &, < and > with
// their entities, so text from users or AWS (a server's Name tag, an error
// message) cannot turn into a mention such as <!channel> or <@U123>, or a link.
func Escape(s string) string { return mrkdwnEscaper.Replace(s) }

// Token is a secret: a Slack token or signing secret, an AWS secret key, a
// database connection string that may hold a password. Every printed form
// (fmt's verbs, %#v included, slog, encoding/json and other text encoders)
// shows REDACTED, or nothing when the token is empty; convert it with
// string(t) where the secret itself is needed.
type Token string

const redacted = "REDACTED"

// LogValue implements slog.LogValuer.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// String implements fmt.Stringer.
func (t Token) String() string {
	if t == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer for %#v.
func (t Token) GoString() string { return strconv.Quote(t.String()) }

// Format implements fmt.Formatter, so that no verb (%x, %q, %d, ...) prints
// the secret.
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, t.GoString())
		return
	}
	io.WriteString(f, t.String())
}

// MarshalText implements encoding.TextMarshaler, which encoding/json also
// uses.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
