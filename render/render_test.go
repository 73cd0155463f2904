package render

import (
	"github.com/cutoverbot/cutoverbot/migration"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"one too long", 11, "one too lo…"},
		{"ääääää", 4, "äää…"},
	}
	for _, tt := range tests {
		if got := Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestSectionAndHeaderKeepLimits(t *testing.T) {
	long := strings.Repeat("x", 5000)
	if n := utf8.RuneCountInString(Section(long).Text.Text); n != MaxSectionText {
		t.Errorf("section text: got %d characters, want %d", n, MaxSectionText)
	}
	if n := utf8.RuneCountInString(Header(long).Text.Text); n != MaxHeaderText {
		t.Errorf("header text: got %d characters, want %d", n, MaxHeaderText)
	}
	b := Button("a", long, "v", slack.StyleDanger)
	if n := utf8.RuneCountInString(b.Text.Text); n != MaxButtonText || b.Style != slack.StyleDanger {
		t.Errorf("button: got %d characters style %q, want %d and danger", n, b.Style, MaxButtonText)
	}
	c := Confirm(long, long, long, long, slack.StyleDanger)
	if utf8.RuneCountInString(c.Title.Text) != 100 || utf8.RuneCountInString(c.Text.Text) != MaxConfirmText ||
		utf8.RuneCountInString(c.Confirm.Text) != 30 || utf8.RuneCountInString(c.Deny.Text) != 30 {
		t.Errorf("confirm dialog texts exceed Slack's limits: %+v", c)
	}
	if n := len(Context(make([]string, 15)...).ContextElements.Elements); n != MaxContextItems {
		t.Errorf("context elements: got %d, want %d", n, MaxContextItems)
	}
}

func TestActionsSplitsRows(t *testing.T) {
	var buttons []slack.BlockElement
	for range 60 {
		buttons = append(buttons, Button(ActionLaunchTest, "Launch test", "s-1", ""))
	}
	rows := Actions("remind", buttons...)
	if len(rows) != 3 {
		t.Fatalf("got %d actions blocks, want 3", len(rows))
	}
	ids := map[string]bool{}
	for i, r := range rows {
		a := r.(*slack.ActionBlock)
		if n := len(a.Elements.ElementSet); n > MaxActionsPerRow {
			t.Errorf("row %d has %d elements, want at most %d", i, n, MaxActionsPerRow)
		}
		if ids[a.BlockID] {
			t.Errorf("block ID %q repeats", a.BlockID)
		}
		ids[a.BlockID] = true
	}
}

func TestFit(t *testing.T) {
	var blocks []slack.Block
	for range 70 {
		blocks = append(blocks, Section("x"))
	}
	got := Fit(blocks, "see page 2")
	if len(got) != MaxBlocks {
		t.Fatalf("got %d blocks, want %d", len(got), MaxBlocks)
	}
	last := got[MaxBlocks-1].(*slack.ContextBlock).ContextElements.Elements[0].(*slack.TextBlockObject).Text
	if last != "21 more not shown; see page 2" {
		t.Errorf("last block says %q, want the count left out and where to see them", last)
	}
	if short := Fit(blocks[:3], ""); len(short) != 3 {
		t.Errorf("Fit of 3 blocks returned %d, want them unchanged", len(short))
	}
}

func TestLines(t *testing.T) {
	line := strings.Repeat("y", 1000)
	got := Lines([]string{line, line, line, line})
	if len(got) != 2 {
		t.Fatalf("got %d texts, want 2", len(got))
	}
	for _, g := range got {
		if utf8.RuneCountInString(g) > MaxSectionText {
			t.Errorf("text of %d characters exceeds %d", utf8.RuneCountInString(g), MaxSectionText)
		}
	}
	if got[0] != line+"\n"+line {
		t.Errorf("lines were split or reordered")
	}
}

func TestNumberedActionID(t *testing.T) {
	for n, want := range map[int]string{1: "launch_test", 2: "launch_test:2", 12: "launch_test:12"} {
		id := NumberedActionID(ActionLaunchTest, n)
		if id != want {
			t.Errorf("NumberedActionID(%d) = %q, want %q", n, id, want)
		}
		if base := BaseActionID(id); base != ActionLaunchTest {
			t.Errorf("BaseActionID(%q) = %q, want %q", id, base, ActionLaunchTest)
		}
	}
}

func TestDaysUntil(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	date := time.Date(2025, 3, 31, 0, 0, 0, 0, berlin) // the day after the switch to summer time
	tests := []struct {
		name string
		now  time.Time
		want int
	}{
		{"afternoon twelve days before", time.Date(2025, 3, 19, 14, 2, 0, 0, berlin), 12},
		{"late on the day before", time.Date(2025, 3, 30, 23, 30, 0, 0, berlin), 1},
		{"the day before in UTC, the day itself in Berlin", time.Date(2025, 3, 30, 22, 30, 0, 0, time.UTC), 0},
		{"the day itself", time.Date(2025, 3, 31, 18, 0, 0, 0, berlin), 0},
		{"two days after", time.Date(2025, 4, 2, 9, 0, 0, 0, berlin), -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DaysUntil(date, tt.now, berlin); got != tt.want {
				t.Errorf("DaysUntil(%v, %v): got %d, want %d", date, tt.now, got, tt.want)
			}
		})
	}
}

func TestInstance(t *testing.T) {
	in := migration.Instance{ID: "i-1", State: "running", Type: "c5.large", PrivateIP: "10.0.0.5"}
	tests := []struct {
		name          string
		known, detail bool
		want          string
	}{
		{"unknown", false, true, "`i-1` (no longer known to EC2)"},
		{"state", true, false, "`i-1` (running)"},
		{"detail, no public IP", true, true, "`i-1` (running) · c5.large · private 10.0.0.5 · public none"},
	}
	for _, tt := range tests {
		if got := Instance("i-1", in, tt.known, tt.detail); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
