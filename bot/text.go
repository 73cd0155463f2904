package bot

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// Slack's mrkdwn has no escape for its formatting characters: a backslash is shown as is, and
// a zero-width space next to a marker makes a word boundary, which helps a marker format
// rather than stopping it (Block Kit libraries insert one to force formatting inside a word).
// What Slack does show verbatim is the fallback text of a date token whose format is invalid:
// the client cannot format the date, so it prints the fallback, and it parses no formatting
// inside it. jsx-slack's Escape and other Block Kit renderers rely on the same token. A marker
// between two ASCII letters or digits cannot open or close formatting ("web_01_db" is never
// italic), so it stays as it is; every other marker is put in a token of its own.
const (
	literalOpen  = "<!date^00000000^{_}|"
	literalClose = ">"
)

// isMarker reports whether c formats mrkdwn: *bold*, _italic_, ~strike~ and `code`.
func isMarker(c byte) bool { return c == '*' || c == '_' || c == '~' || c == '`' }

func isASCIIAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Escape makes s show literally inside mrkdwn text: a server's Name tag, an error message,
// anything from users or AWS. It replaces &, < and > with their entities, so that s cannot
// turn into a mention such as <!channel> or <@U123>, or into a link; and it puts each
// formatting marker (* _ ~ `) that could format into a date token that Slack shows verbatim,
// so that "*web*_01_" shows as typed, neither bold nor italic. The result is meant for mrkdwn
// outside code spans; use EscapePlain for plain_text objects and inside `code`.
func Escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isMarker(c) && !(i > 0 && isASCIIAlnum(s[i-1]) && i+1 < len(s) && isASCIIAlnum(s[i+1])):
			b.WriteString(literalOpen)
			b.WriteByte(c)
			b.WriteString(literalClose)
		default:
			writeEntity(&b, c)
		}
	}
	return b.String()
}

// EscapePlain makes s show literally in a plain_text object (headers, buttons, confirmation
// dialogs) and inside a mrkdwn code span: it replaces &, < and > with their entities, which
// Slack decodes in every text it shows. Formatting markers need nothing there.
func EscapePlain(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		writeEntity(&b, s[i])
	}
	return b.String()
}

func writeEntity(b *strings.Builder, c byte) {
	switch c {
	case '&':
		b.WriteString("&amp;")
	case '<':
		b.WriteString("&lt;")
	case '>':
		b.WriteString("&gt;")
	default:
		b.WriteByte(c)
	}
}

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
