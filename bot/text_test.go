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
	tests := []struct {
		in, want string
	}{
		{"<!channel>", "&lt;!channel&gt;"},
		{"<!here|here>", "&lt;!here|here&gt;"},
		{"<@U123>", "&lt;@U123&gt;"},
		{"<https://evil.example|click>", "&lt;https://evil.example|click&gt;"},
		{"a & b", "a &amp; b"},
		{"&lt;", "&amp;lt;"},
		{"web01 *bold* _it_", "web01 *bold* _it_"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
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
