package store_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

func TestReminderClaims(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Minute
	firing := t0
	steps := []struct {
		name   string
		holder string
		at     time.Duration // after t0
		want   bool
	}{
		{"first claim", "a", 0, true},
		{"claimed by another", "b", time.Minute, false},
		{"the holder again", "a", 2 * time.Minute, true},
		{"still claimed", "b", 11 * time.Minute, false},
		{"taken over after expiry", "b", 13 * time.Minute, true},
		{"old holder refused", "a", 14 * time.Minute, false},
	}
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		for _, st := range steps {
			got, err := s.ClaimReminder(ctx, firing, st.holder, ttl, t0.Add(st.at))
			if err != nil || got != st.want {
				t.Errorf("%s: ClaimReminder(%s, t0+%v) = %v, %v; want %v", st.name, st.holder, st.at, got, err, st.want)
			}
		}
		later := firing.Add(7 * 24 * time.Hour)
		if ok, err := s.ClaimReminder(ctx, later, "a", ttl, later); err != nil || !ok {
			t.Fatalf("claim of the next firing: %v, %v", ok, err)
		}
		if got, err := s.UnfinishedReminders(ctx); err != nil || !reflect.DeepEqual(got, []time.Time{firing, later}) {
			t.Errorf("UnfinishedReminders = %v, %v; want both firings, oldest first", got, err)
		}
		if err := s.FinishReminder(ctx, firing, "1772442000.000100", t0.Add(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.UnfinishedReminders(ctx); err != nil || !reflect.DeepEqual(got, []time.Time{later}) {
			t.Errorf("after FinishReminder: UnfinishedReminders = %v, %v; want the later firing only", got, err)
		}
		for _, h := range []string{"a", "b"} {
			if ok, err := s.ClaimReminder(ctx, firing, h, ttl, t0.Add(time.Hour)); err != nil || ok {
				t.Errorf("claim of a done firing by %s: %v, %v; want false", h, ok, err)
			}
		}
		if err := s.FinishReminder(ctx, t0.Add(time.Hour), "", t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FinishReminder of an unclaimed firing: got %v, want ErrNotFound", err)
		}
		if _, err := s.ClaimReminder(ctx, firing, "a", 0, t0); err == nil {
			t.Error("ClaimReminder with ttl 0 succeeded, want an error")
		}
	})
}

// TestReminderClaimConcurrent has two stores on one database claim one firing at once, many
// times: exactly one wins each time.
func TestReminderClaimConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		for i := range 5 {
			firing := t0.Add(time.Duration(i) * time.Hour)
			wins := race(10, func(n int) bool {
				ok, err := stores[n%2].ClaimReminder(t.Context(), firing, string(rune('a'+n)), time.Minute, firing)
				if err != nil {
					t.Errorf("ClaimReminder: %v", err)
				}
				return ok
			})
			if wins != 1 {
				t.Errorf("firing %d: %d claims won, want 1", i, wins)
			}
		}
	})
}
