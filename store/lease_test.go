package store_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

func TestLease(t *testing.T) {
	t.Parallel()
	const ttl = 30 * time.Second
	steps := []struct {
		name    string
		release bool // release instead of acquire
		holder  string
		at      time.Duration // after t0
		want    bool
	}{
		{"free lease", false, "a", 0, true},
		{"held by another", false, "b", 10 * time.Second, false},
		{"renewal", false, "a", 20 * time.Second, true},
		{"renewal extends expiry", false, "b", 40 * time.Second, false},
		{"taken over after expiry", false, "b", 50 * time.Second, true},
		{"old holder refused", false, "a", 51 * time.Second, false},
		{"release by non-holder is a no-op", true, "a", 52 * time.Second, false},
		{"still held", false, "a", 53 * time.Second, false},
		{"release by holder", true, "b", 54 * time.Second, false},
		{"free again", false, "a", 55 * time.Second, true},
	}
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		for _, st := range steps {
			if st.release {
				if err := s.ReleaseLease(ctx, "notifier", st.holder); err != nil {
					t.Fatalf("%s: ReleaseLease: %v", st.name, err)
				}
				continue
			}
			got, err := s.AcquireLease(ctx, "notifier", st.holder, ttl, t0.Add(st.at))
			if err != nil || got != st.want {
				t.Errorf("%s: AcquireLease(%s, t0+%v) = %v, %v; want %v", st.name, st.holder, st.at, got, err, st.want)
			}
		}
		if _, err := s.AcquireLease(ctx, "notifier", "a", 0, t0); err == nil {
			t.Errorf("AcquireLease with ttl 0 succeeded, want an error")
		}
	})
}

func TestLeaseConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		ctx := t.Context()
		for round, at := range []time.Time{t0, t0.Add(time.Hour)} { // free, then expired
			wins := race(20, func(i int) bool {
				ok, err := stores[i%2].AcquireLease(ctx, "reminder", fmt.Sprintf("replica-%d-%d", round, i), time.Minute, at)
				if err != nil {
					t.Errorf("AcquireLease #%d: %v", i, err)
				}
				return ok
			})
			if wins != 1 {
				t.Errorf("round %d: got %d holders, want 1", round, wins)
			}
		}
	})
}

func TestSwapServerState(t *testing.T) {
	t.Parallel()
	steps := []struct {
		server, prev, next string
		want               bool
	}{
		{"s-1", "", "INITIAL_SYNC", true},
		{"s-1", "", "INITIAL_SYNC", false}, // a row exists now
		{"s-1", "STALLED", "CONTINUOUS", false},
		{"s-1", "INITIAL_SYNC", "CONTINUOUS", true},
		{"s-2", "CONTINUOUS", "STALLED", false}, // no row yet
		{"s-2", "", "CONTINUOUS", true},
	}
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		for _, st := range steps {
			got, err := s.SwapServerState(ctx, st.server, st.prev, st.next, t0)
			if err != nil || got != st.want {
				t.Errorf("SwapServerState(%s, %q, %q) = %v, %v; want %v", st.server, st.prev, st.next, got, err, st.want)
			}
		}
		got, err := s.ServerStates(ctx)
		if want := map[string]string{"s-1": "CONTINUOUS", "s-2": "CONTINUOUS"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ServerStates = %v, %v; want %v", got, err, want)
		}
	})
}

// TestSwapServerStateConcurrent has replicas see the same transitions at
// once: each transition is won by exactly one.
func TestSwapServerStateConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		for _, tr := range [][2]string{{"", "INITIAL_SYNC"}, {"INITIAL_SYNC", "CONTINUOUS"}, {"CONTINUOUS", "STALLED"}} {
			wins := race(20, func(i int) bool {
				ok, err := stores[i%2].SwapServerState(t.Context(), "s-1", tr[0], tr[1], t0)
				if err != nil {
					t.Errorf("SwapServerState #%d: %v", i, err)
				}
				return ok
			})
			if wins != 1 {
				t.Errorf("%q -> %q: got %d winners, want 1", tr[0], tr[1], wins)
			}
		}
	})
}
