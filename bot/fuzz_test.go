package bot

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

// FuzzEscape checks that escaped text shows exactly as given where the bot puts names: alone,
// in bold, in a list line, before a colon, by the Slack client's rules as the emulator models
// them, and that EscapePlain does the same for plain_text.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"*web*_01_", "`db`", "~x~", "<!channel>", "a&b", "web_01", "_", "* x *", "&lt;", "é_é", "a\n*b*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // names and messages reach the bot as JSON strings
		}
		if got := slackemu.DisplayPlain(EscapePlain(s)); got != s {
			t.Fatalf("plain_text of EscapePlain(%q) shows %q", s, got)
		}
		// A ">" that starts a line makes a quote, whatever precedes it; Escape leaves that.
		quote := strings.HasPrefix(s, ">") || strings.Contains(s, "\n>")
		if got := slackemu.Display(Escape(s)); got != s && !quote {
			t.Fatalf("Escape(%q) = %q shows %q", s, Escape(s), got)
		}
		for _, around := range [][2]string{{"*", "*"}, {"• *", "* `s-1`"}, {"x ", ": done"}, {"_", "_"}, {"(", ")"}} {
			if quote && strings.Contains(s, "\n>") {
				continue
			}
			text := around[0] + Escape(s) + around[1]
			if got := slackemu.Display(text); !strings.Contains(got, s) {
				t.Fatalf("%q shows %q, want %q in it", text, got, s)
			}
		}
	})
}
