package bot

import (
	"bytes"
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
	out := buf.String() + fmt.Sprintf("%v %s %+v %#v", tok, tok, tok, tok)
	if strings.Contains(out, secret) {
		t.Errorf("token leaked: %s", out)
	}
	if !strings.Contains(buf.String(), "REDACTED") {
		t.Errorf("got log %s, want REDACTED in it", buf.String())
	}
	if string(tok) != secret {
		t.Errorf("string(tok) = %q, want %q", string(tok), secret)
	}
}
