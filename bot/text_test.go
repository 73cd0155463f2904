package bot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	const lit = "<!date^00000000^{_}|"
	tests := []struct {
		in, want, plain string
	}{
		{"<!channel>", "&lt;!channel&gt;", "&lt;!channel&gt;"},
		{"<!here|here>", "&lt;!here|here&gt;", "&lt;!here|here&gt;"},
		{"<@U123>", "&lt;@U123&gt;", "&lt;@U123&gt;"},
		{"<https://evil.example|click>", "&lt;https://evil.example|click&gt;", "&lt;https://evil.example|click&gt;"},
		{"a & b", "a &amp; b", "a &amp; b"},
		{"a&b", "a&amp;b", "a&amp;b"},
		{"&lt;", "&amp;lt;", "&amp;lt;"},
		{"*web*_01_", lit + "*>web" + lit + "*>" + lit + "_>01" + lit + "_>", "*web*_01_"},
		{"`db`", lit + "`>db" + lit + "`>", "`db`"},
		{"~x~", lit + "~>x" + lit + "~>", "~x~"},
		{"**", lit + "*>" + lit + "*>", "**"},
		// Between two ASCII letters or digits a marker cannot format: left as it is.
		{"web_01_db", "web_01_db", "web_01_db"},
		{"AGENT_NOT_SEEN", "AGENT_NOT_SEEN", "AGENT_NOT_SEEN"},
		{"a*b c", "a*b c", "a*b c"},
		{"a *b", "a " + lit + "*>b", "a *b"},
		{"é_é", "é" + lit + "_>é", "é_é"},
		{"web01", "web01", "web01"},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := EscapePlain(tt.in); got != tt.plain {
				t.Errorf("EscapePlain(%q) = %q, want %q", tt.in, got, tt.plain)
			}
		})
	}
}

func TestTokenRedacted(t *testing.T) {
	const secret = "xoxb-1234-secret"
	tok := Token(secret)
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("config", "token", tok, "nested", slog.GroupValue(slog.Any("t", tok)))
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "token", tok)
	js, err := json.Marshal(struct{ T Token }{tok})
	if err != nil {
		t.Fatal(err)
	}
	holder := struct{ T Token }{tok}
	out := buf.String() + string(js) + fmt.Sprintf("%v %s %+v %#v %q %x %X %d %10s|%v %+v %#v",
		tok, tok, tok, tok, tok, tok, tok, tok, tok, holder, holder, holder)
	if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) || strings.Contains(out, fmt.Sprintf("%X", secret)) {
		t.Errorf("token leaked: %s", out)
	}
	if n := strings.Count(out, "REDACTED"); n != 16 {
		t.Errorf("got %d REDACTED in %s, want 16", n, out)
	}
	if string(tok) != secret {
		t.Errorf("string(tok) = %q, want %q", string(tok), secret)
	}
	if got := fmt.Sprintf("%v|%#v", Token(""), Token("")); got != `|""` {
		t.Errorf("empty token prints as %s, want |\"\"", got)
	}
}
