package render

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// unitRE matches the piece of mrkdwn a cut must not separate at the start of a text: an
// entity (&lt;), a token in angle brackets (<@U123>, <!date^…|*>, <https://…|label>) or one
// rune. It is written here independently of Truncate, as the definition the fuzzers check.
var unitRE = regexp.MustCompile(`^(?:&[#0-9A-Za-z]{1,10};|<[^<>]*>|(?s:.))`)

// cuts returns the byte offsets at which s may be cut: between two units.
func cuts(s string) []int {
	out := []int{0}
	for i := 0; i < len(s); {
		n := len(unitRE.FindString(s[i:]))
		if n == 0 {
			n = 1 // an invalid byte, which (?s:.) does not match
		}
		i += n
		out = append(out, i)
	}
	return out
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// checkCut fails unless got is s within n runes: s itself when it fits, else the longest
// prefix of s that ends between two units and fits with "…" after it.
func checkCut(t *testing.T, what, s string, n int, got string) {
	t.Helper()
	if runes(got) > max(n, 0) {
		t.Fatalf("%s: got %d runes %q, want at most %d", what, runes(got), got, n)
	}
	if utf8.ValidString(s) && !utf8.ValidString(got) {
		t.Fatalf("%s: got invalid UTF-8 %q from valid %q", what, got, s)
	}
	if runes(s) <= n {
		if got != s {
			t.Fatalf("%s: got %q, want %q unchanged (it fits in %d)", what, got, s, n)
		}
		return
	}
	if n <= 0 {
		if got != "" {
			t.Fatalf("%s: got %q, want nothing within %d", what, got, n)
		}
		return
	}
	prefix, ok := strings.CutSuffix(got, "…")
	if !ok {
		t.Fatalf("%s: got %q, want it to end with … when cut", what, got)
	}
	c := cuts(s)
	i := slices.Index(c, len(prefix))
	if i < 0 || s[:len(prefix)] != prefix {
		t.Fatalf("%s: got %q, want a prefix of %q ending between two units (an entity, a <token> or a rune)", what, got, s)
	}
	if i+1 < len(c) && runes(s[:c[i+1]]) <= n-1 {
		t.Fatalf("%s: got %q, want the longest prefix that fits: %q fits too", what, got, s[:c[i+1]]+"…")
	}
}

func FuzzTruncate(f *testing.F) {
	f.Add("one too long", 11)
	f.Add("ääääää", 4)
	f.Add("a &lt;!channel&gt; b", 4)
	f.Add("<@U0123ABC> asked", 5)
	f.Add("*<!date^00000000^{_}|*>web<!date^00000000^{_}|*>*", 10)
	f.Add("web01", 0)
	f.Add("x", -3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		checkCut(t, "Truncate", s, n, Truncate(s, n))
	})
}

func FuzzLines(f *testing.F) {
	f.Add("• *web01* `s-0123456789abcdef0`\n• *db01* &lt;!here&gt;", uint16(0))
	f.Add(strings.Repeat("y", 1000), uint16(4))
	f.Add("\n\nx\n", uint16(1500))
	f.Add(strings.Repeat("&amp;", 700), uint16(1))
	f.Fuzz(func(t *testing.T, text string, repeat uint16) {
		base := strings.Split(text, "\n")
		var lines []string
		for range 1 + int(repeat)%400 {
			lines = append(lines, base...)
		}
		got := Lines(lines)
		var want, seen []string
		for _, l := range lines {
			if l != "" {
				want = append(want, l)
			}
		}
		for i, chunk := range got {
			if chunk == "" || runes(chunk) > MaxSectionText {
				t.Fatalf("text %d of %d: got %d runes, want 1 to %d", i, len(got), runes(chunk), MaxSectionText)
			}
			if i > 0 {
				next, _, _ := strings.Cut(chunk, "\n")
				if runes(got[i-1])+1+runes(next) <= MaxSectionText {
					t.Fatalf("text %d of %d: its first line %q would still fit in the text before", i, len(got), next)
				}
			}
			for l := range strings.SplitSeq(chunk, "\n") {
				if l != "" {
					seen = append(seen, l)
				}
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("got %d non-empty lines, want %d", len(seen), len(want))
		}
		for i := range want {
			checkCut(t, "line", want[i], MaxSectionText, seen[i])
		}
	})
}

func FuzzBlocks(f *testing.F) {
	f.Add("Cutover: *web*_01_", uint16(1), uint8(3), "see the thread")
	f.Add("&lt;!channel&gt;", uint16(300), uint8(80), "")
	f.Add("ä", uint16(2999), uint8(50), strings.Repeat("x", 4000))
	f.Add("<@U0123> ", uint16(40), uint8(51), "see `/cutover status`")
	f.Fuzz(func(t *testing.T, text string, repeat uint16, nBlocks uint8, more string) {
		long := strings.Repeat(text, 1+int(repeat)%3000)
		if len(long) > 1<<16 {
			return // far beyond every limit already; longer only slows the fuzzer down
		}
		checkCut(t, "Header", long, MaxHeaderText, Header(long).Text.Text)
		checkCut(t, "Section", long, MaxSectionText, Section(long).Text.Text)

		b := Button(long, long, long, slack.StylePrimary)
		checkCut(t, "button text", long, MaxButtonText, b.Text.Text)
		if runes(b.Value) > MaxButtonValue || runes(b.ActionID) > MaxID {
			t.Fatalf("button: got a value of %d runes and an action ID of %d, want at most %d and %d", runes(b.Value), runes(b.ActionID), MaxButtonValue, MaxID)
		}
		c := Confirm(long, long, long, long, slack.StyleDanger)
		checkCut(t, "confirm title", long, 100, c.Title.Text)
		checkCut(t, "confirm text", long, MaxConfirmText, c.Text.Text)
		checkCut(t, "confirm button", long, 30, c.Confirm.Text)

		texts := slices.Repeat([]string{long}, int(nBlocks)%20)
		ctx := Context(texts...)
		if n := len(ctx.ContextElements.Elements); n > MaxContextItems || n != min(len(texts), MaxContextItems) {
			t.Fatalf("context of %d texts: got %d elements, want %d", len(texts), n, min(len(texts), MaxContextItems))
		}
		for _, e := range ctx.ContextElements.Elements {
			checkCut(t, "context text", long, MaxSectionText, e.(*slack.TextBlockObject).Text)
		}

		var buttons []slack.BlockElement
		for range int(nBlocks) {
			buttons = append(buttons, b)
		}
		rows := Actions(long, buttons...)
		ids := map[string]bool{}
		for i, r := range rows {
			a := r.(*slack.ActionBlock)
			if n := len(a.Elements.ElementSet); n == 0 || n > MaxActionsPerRow {
				t.Fatalf("actions block %d: got %d elements, want 1 to %d", i, n, MaxActionsPerRow)
			}
			if runes(a.BlockID) > MaxID || ids[a.BlockID] {
				t.Fatalf("actions block %d: got block ID %q (%d runes), want a unique one of at most %d", i, a.BlockID, runes(a.BlockID), MaxID)
			}
			ids[a.BlockID] = true
		}
		if want := (len(buttons) + MaxActionsPerRow - 1) / MaxActionsPerRow; len(rows) != want {
			t.Fatalf("%d buttons: got %d actions blocks, want %d", len(buttons), len(rows), want)
		}

		var blocks []slack.Block
		for range int(nBlocks) {
			blocks = append(blocks, Section(text))
		}
		fitted := Fit(blocks, more)
		switch {
		case len(blocks) <= MaxBlocks:
			if len(fitted) != len(blocks) {
				t.Fatalf("Fit of %d blocks: got %d, want them unchanged", len(blocks), len(fitted))
			}
		case len(fitted) != MaxBlocks:
			t.Fatalf("Fit of %d blocks: got %d, want %d", len(blocks), len(fitted), MaxBlocks)
		default:
			note, ok := fitted[MaxBlocks-1].(*slack.ContextBlock)
			if !ok {
				t.Fatalf("Fit of %d blocks: the last block is a %T, want a context block saying what was left out", len(blocks), fitted[MaxBlocks-1])
			}
			want := strconv.Itoa(len(blocks)-MaxBlocks+1) + " more not shown"
			if s := note.ContextElements.Elements[0].(*slack.TextBlockObject).Text; runes(s) > MaxSectionText || !strings.HasPrefix(s, want) {
				t.Fatalf("Fit note: got %q (%d runes), want %q… within %d", s, runes(s), want, MaxSectionText)
			}
		}
	})
}
