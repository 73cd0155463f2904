package handlers

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/clock"
)

// messageText joins the texts of a message's sections and contexts.
func messageText(blocks []slack.Block) string {
	var parts []string
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			parts = append(parts, b.Text.Text)
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					parts = append(parts, t.Text)
				}
			}
		}
	}
	return strings.Join(parts, "\n")
}

func TestPlannedCutoverInCalendarDays(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	// CUTOVER_DATE is read as midnight in CUTOVER_TZ.
	date := time.Date(2025, 3, 15, 0, 0, 0, 0, berlin)
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{"monday afternoon", start, ", in 12 days"},
		{"the evening before", time.Date(2025, 3, 14, 20, 0, 0, 0, berlin), ", in 1 day"},
		{"the day itself", time.Date(2025, 3, 15, 9, 0, 0, 0, berlin), ", today"},
		{"the day after", time.Date(2025, 3, 16, 9, 0, 0, 0, berlin), ", 1 day ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(slog.New(slog.DiscardHandler), nil, nil, nil, nil, nil,
				Config{Clock: clock.NewManual(tt.now), Location: berlin, CutoverDate: date})
			got := messageText(h.fleetMessage(nil, 1, nil).Blocks)
			contains(t, "status at "+tt.now.String(), got, "*Planned cutover:* Sat 15 Mar 2025"+tt.want+" ·")
		})
	}
}

func TestTimesInConfiguredZone(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	r := newRig(t, rigOptions{config: func(c *Config) { c.Location = berlin }})
	tests := []struct {
		name, user, text string
		want             []string
	}{
		{"fleet status", eve, "status", []string{"Initial sync 63%, ETA 17:22 CET", "times in Europe/Berlin"}},
		{"one server", eve, "status web02", []string{"Initial sync 63%, ETA 17:22 CET"}},
		{"pre-flight refusal", operator, "launch web02 test", []string{"❌ *Replication:* Initial sync 63%, ETA Mar 3 17:22 CET"}},
		{"cutover request", operator, "launch db01 cutover", []string{"It expires at 15:32 CET."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.run(tt.user, tt.text)
			contains(t, tt.text, got, tt.want...)
			lacks(t, tt.text, got, "UTC")
		})
	}
}
