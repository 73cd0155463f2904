package clock_test

import (
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/clock"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-c:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestManualTicker(t *testing.T) {
	m := clock.NewManual(t0)
	tk := m.NewTicker(time.Minute)
	if _, ok := fired(tk.C()); ok {
		t.Fatal("ticker fired before its interval")
	}
	m.Advance(59 * time.Second)
	if _, ok := fired(tk.C()); ok {
		t.Fatal("ticker fired at 59 s")
	}
	m.Advance(time.Second)
	if at, ok := fired(tk.C()); !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ticker at 1 min: got %v %v, want a tick at %v", at, ok, t0.Add(time.Minute))
	}
	// A reader behind drops ticks, as time.Ticker does, and the ticker keeps its period.
	m.Advance(5 * time.Minute)
	if _, ok := fired(tk.C()); !ok {
		t.Fatal("no tick after 5 more minutes")
	}
	if _, ok := fired(tk.C()); ok {
		t.Fatal("ticks queued up behind a slow reader")
	}
	m.Advance(time.Minute)
	if at, ok := fired(tk.C()); !ok || !at.Equal(t0.Add(7*time.Minute)) {
		t.Fatalf("tick at 7 min: got %v %v", at, ok)
	}
	tk.Stop()
	m.Advance(time.Hour)
	if _, ok := fired(tk.C()); ok || m.Waiters() != 0 {
		t.Fatalf("stopped ticker fired or still waits (%d waiters)", m.Waiters())
	}
}

func TestManualTimer(t *testing.T) {
	m := clock.NewManual(t0)
	tm := m.NewTimer(time.Second)
	now := m.NewTimer(0)
	if _, ok := fired(now.C()); !ok {
		t.Error("a timer of 0 did not fire at once")
	}
	m.Set(t0.Add(2 * time.Second))
	if _, ok := fired(tm.C()); !ok {
		t.Fatal("timer did not fire once due")
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it stopped it")
	}
	other := m.NewTimer(time.Second)
	if !other.Stop() {
		t.Error("Stop of a waiting timer reported it had fired")
	}
	m.Advance(time.Hour)
	if _, ok := fired(other.C()); ok {
		t.Error("stopped timer fired")
	}
	if m.Waiters() != 0 {
		t.Errorf("waiters left: %d, want 0", m.Waiters())
	}
}

func TestReal(t *testing.T) {
	var c clock.Clock = clock.Or(nil)
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	if d := time.Since(c.Now()); d < 0 || d > time.Minute {
		t.Errorf("real clock off by %v", d)
	}
}
