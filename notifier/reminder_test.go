package notifier

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/render"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	return loc
}

func TestReminderContent(t *testing.T) {
	r := newRig(t, rigOptions{})
	loc := berlin(t)
	n := r.notifier(t, r.store, "a", func(c *Config) {
		c.Location = loc
		c.CutoverDate = time.Date(2026, 3, 16, 0, 0, 0, 0, loc)
	})
	if err := n.Remind(t.Context(), epoch); err != nil {
		t.Fatal(err)
	}
	msgs := r.slack.Messages(channel)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	text := m.PlainText()
	contains(t, "reminder", text,
		"*6 servers* have had no test launch in the last 7 days.",
		"Planned cutover: Mon 16 Mar 2026, in 14 days.",
		"• *app01* — last test 9 days ago",
		"• *web02* — never tested · not launchable yet: Initial sync 63%, ETA Mar 2 12:20 CET",
		"• *file01* — never tested · not launchable yet: Stalled",
	)
	var order []string
	for _, l := range strings.Split(text, "\n") {
		if name, ok := strings.CutPrefix(l, "• *"); ok {
			order = append(order, name[:strings.Index(name, "*")])
		}
	}
	if want := []string{"api01", "file01", "mq01", "web01", "web02", "app01"}; !slices.Equal(order, want) {
		t.Errorf("servers listed: got %v, want %v (never tested first, then the oldest test)", order, want)
	}
	var values []string
	for _, b := range m.Buttons() {
		if action, _, _ := strings.Cut(b.ActionID, ":"); action != render.ActionLaunchTest {
			t.Errorf("button %+v: want action %s", b, render.ActionLaunchTest)
		}
		values = append(values, b.Value)
	}
	if want := []string{mgnemu.SampleAPI01, mgnemu.SampleWeb01, mgnemu.SampleApp01}; !slices.Equal(values, want) {
		t.Errorf("Launch test buttons: got %v, want %v (launchable servers only)", values, want)
	}
}

func TestReminderOncePerFiring(t *testing.T) {
	r := newRig(t, rigOptions{})
	a := r.notifier(t, r.store, "a", nil)
	b := r.notifier(t, r.openStore(t), "b", nil)
	for _, n := range []*Notifier{a, b, a} {
		if err := n.Remind(t.Context(), epoch); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(r.slack.Messages(channel)); got != 1 {
		t.Errorf("after three calls for one firing: got %d messages, want 1", got)
	}
	if err := b.Remind(t.Context(), epoch.Add(7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := len(r.slack.Messages(channel)); got != 2 {
		t.Errorf("after the next firing: got %d messages, want 2", got)
	}
}

func TestReminderSilentWhenNothingDue(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, s := range r.mgn.Servers() {
		r.mgn.Update(s.SourceServerID, func(s *mgnemu.SourceServer) {
			s.LifeCycle.LastTest.Initiated = mgnemu.LaunchInitiated{APICallDateTime: mgnemu.FormatTime(epoch.Add(-24 * time.Hour)), JobID: "mgnjob-1"}
		})
	}
	n := r.notifier(t, r.store, "a", nil)
	if err := n.Remind(t.Context(), epoch); err != nil {
		t.Fatal(err)
	}
	if got := r.slack.Messages(channel); len(got) != 0 {
		t.Fatalf("got %q, want no message", texts(got))
	}
	// Silence did not use up the firing: a retry that finds a server due posts.
	r.mgn.Update(mgnemu.SampleWeb01, func(s *mgnemu.SourceServer) { s.LifeCycle.LastTest = mgnemu.LastLaunch{} })
	if err := n.Remind(t.Context(), epoch); err != nil {
		t.Fatal(err)
	}
	if got := r.slack.Messages(channel); len(got) != 1 || !strings.Contains(got[0].Text, "1 server has") {
		t.Errorf("got %q, want one reminder for one server", texts(got))
	}
}

func TestReminderKeepsSlackLimits(t *testing.T) {
	r := newRig(t, rigOptions{servers: mgnemu.GenerateFleet(600, epoch)})
	n := r.notifier(t, r.store, "a", nil)
	if err := n.Remind(t.Context(), epoch); err != nil {
		t.Fatal(err)
	}
	msgs := r.slack.Messages(channel)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	types, sizes := blockTypes(t, msgs[0])
	if len(types) > render.MaxBlocks {
		t.Errorf("got %d blocks, want at most %d", len(types), render.MaxBlocks)
	}
	for _, n := range sizes {
		if n > render.MaxActionsPerRow {
			t.Errorf("actions block of %d elements, want at most %d", n, render.MaxActionsPerRow)
		}
	}
	if got := len(msgs[0].Buttons()); got == 0 || got > maxReminderServers {
		t.Errorf("got %d buttons, want 1..%d", got, maxReminderServers)
	}
	contains(t, "reminder", msgs[0].PlainText(), "more; see `/cutover status`")
}

func TestNextReminder(t *testing.T) {
	loc := berlin(t)
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", func(c *Config) { c.Location = loc })
	tests := []struct {
		name        string
		after, want time.Time
	}{
		{"monday before 9 in Berlin", time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)},
		{"monday after 9 in Berlin", time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC), time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)},
		{"across the switch to summer time", time.Date(2026, 3, 25, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := n.NextReminder(tt.after)
			if !got.Equal(tt.want) || got.Location() != loc {
				t.Errorf("NextReminder(%v): got %v, want %v in Europe/Berlin", tt.after, got, tt.want.In(loc))
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no channel", Config{}},
		{"bad cron spec", Config{Channel: channel, ReminderSpec: "every monday"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(testLogger(t), nil, nil, nil, tt.cfg); err == nil {
				t.Errorf("New(%+v): got nil error, want one", tt.cfg)
			}
		})
	}
}

// TestReminderListsFailedTest lists a server whose test launch of this week failed, first and
// with a Launch test button, although its last test is recent.
func TestReminderListsFailedTest(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.mgn.FailPhase(mgnemu.SampleWeb01, "CONVERSION_FAIL", "Client.UnauthorizedOperation: You are not authorized to perform this operation")
	r.startTest(t, nil, mgnemu.SampleWeb01)
	r.startTest(t, nil, mgnemu.SampleAPI01)
	r.clock.Advance(mgnemu.FastPace().Total() + time.Minute)
	n := r.notifier(t, r.store, "a", nil)
	if err := n.Remind(t.Context(), r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	msgs := r.slack.Messages(channel)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	text := msgs[0].PlainText()
	contains(t, "reminder", text, "the last test of 1 failed", "• *web01* — last test 1 min ago ❌ failed")
	if strings.Contains(text, "*api01*") {
		t.Errorf("api01's test of this week succeeded, yet the reminder lists it:\n%s", text)
	}
	first, _, _ := strings.Cut(strings.SplitAfter(text, "• *")[1], "*")
	if first != "web01" {
		t.Errorf("first server listed: got %s, want web01 (failed tests first)", first)
	}
	if b := msgs[0].Buttons(); len(b) == 0 || b[0].Value != mgnemu.SampleWeb01 {
		t.Errorf("first Launch test button: got %+v, want web01's", b)
	}
}

// TestReminderByWave groups the servers due by wave, each with its planned cutover (its
// cutover-date tag, else the configured date) and a Launch test button for the wave.
func TestReminderByWave(t *testing.T) {
	r := newRig(t, rigOptions{waves: true})
	n := r.notifier(t, r.store, "a", func(c *Config) { c.CutoverDate = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) })
	if err := n.Remind(t.Context(), epoch); err != nil {
		t.Fatal(err)
	}
	msgs := r.slack.Messages(channel)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	text := msgs[0].PlainText()
	contains(t, "reminder", text,
		"*Wave 1* — planned cutover Mon 16 Mar 2026, in 14 days · 3 servers due",
		"*Wave 2* — planned cutover Wed 1 Apr 2026, in 30 days · 3 servers due",
		"• *web02* — never tested · not launchable yet")
	if strings.Contains(text, "Not in a wave") {
		t.Errorf("every due server is in a wave, got a group without one:\n%s", text)
	}
	w1, w2 := strings.Index(text, "*Wave 1*"), strings.Index(text, "*Wave 2*")
	for _, name := range []string{"web01", "web02", "api01"} {
		if i := strings.Index(text, "*"+name+"*"); i < w1 || (w2 > w1 && i > w2) {
			t.Errorf("%s is not listed under Wave 1:\n%s", name, text)
		}
	}
	var values []string
	for _, b := range msgs[0].Buttons() {
		if strings.HasPrefix(b.Value, "wave ") {
			values = append(values, b.Value+"="+b.Text)
		}
	}
	want := []string{"wave " + mgnemu.SampleWave1 + "=Launch test: Wave 1", "wave " + mgnemu.SampleWave2 + "=Launch test: Wave 2"}
	if !slices.Equal(values, want) {
		t.Errorf("wave buttons: got %v, want %v", values, want)
	}
}
