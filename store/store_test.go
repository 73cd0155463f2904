package store_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// t0 is the tests' clock: a UTC time with whole microseconds, as the store
// returns times.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

func open(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dsn, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// race calls f(i) for i in [0, n) at once, each on its own goroutine, and
// returns how many calls returned true.
func race(n int, f func(i int) bool) int {
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
	)
	for i := range n {
		wg.Go(func() {
			<-start
			if f(i) {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return wins
}

func TestOpenBackend(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		want := filepath.Base(t.Name()) // the subtest is named after the backend
		s := open(t, dsn)
		if got := s.Backend(); got != want {
			t.Errorf("Backend() = %q, want %q", got, want)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// TestReopenKeepsData opens the same database twice in a row: migrations
// apply once and the data survives.
func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		first, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("first Open: %v", err)
		}
		if ok, err := first.Once(ctx, "k", t0); err != nil || !ok {
			t.Fatalf("Once on first open = %v, %v; want true, nil", ok, err)
		}
		if err := first.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		second := open(t, dsn)
		if ok, err := second.Once(ctx, "k", t0); err != nil || ok {
			t.Errorf("Once after reopen = %v, %v; want false, nil", ok, err)
		}
	})
}

// TestOpenConcurrently starts several replicas on one empty database at once:
// each must migrate or see the migration, and all share the data.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		const n = 4
		stores := make([]*store.Store, n)
		race(n, func(i int) bool {
			s, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Errorf("Open #%d: %v", i, err)
				return false
			}
			stores[i] = s
			return true
		})
		for _, s := range stores {
			if s != nil {
				t.Cleanup(func() { s.Close() })
			}
		}
		if t.Failed() {
			return
		}
		wins := race(n, func(i int) bool {
			ok, err := stores[i].Once(t.Context(), "shared", t0)
			if err != nil {
				t.Errorf("Once #%d: %v", i, err)
			}
			return ok
		})
		if wins != 1 {
			t.Errorf("Once across %d stores: got %d winners, want 1", n, wins)
		}
	})
}

func TestOpenMemory(t *testing.T) {
	t.Parallel()
	s := open(t, ":memory:")
	if got := s.Backend(); got != "sqlite" {
		t.Errorf("Backend() = %q, want sqlite", got)
	}
	// One connection serves all goroutines, and they see one database.
	wins := race(20, func(i int) bool {
		ok, err := s.Once(t.Context(), "k", t0)
		if err != nil {
			t.Errorf("Once #%d: %v", i, err)
		}
		return ok
	})
	if wins != 1 {
		t.Errorf("Once in memory: got %d winners, want 1", wins)
	}
	if err := s.Audit(t.Context(), store.AuditEntry{At: t0, Action: "status", ServerIDs: []string{"s-1"}}); err != nil {
		t.Fatalf("Audit: %v", err)
	}
	es, err := s.AuditLog(t.Context(), "s-1", 0)
	if err != nil || len(es) != 1 {
		t.Errorf("AuditLog = %d entries, %v; want 1, nil", len(es), err)
	}
}

func TestOpenDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	open(t, "")
	if _, err := os.Stat(filepath.Join(dir, store.DefaultSQLitePath)); err != nil {
		t.Errorf("after Open(\"\"): %v, want %s created", err, store.DefaultSQLitePath)
	}
}

func TestOpenFails(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		filepath.Join(t.TempDir(), "missing-dir", "x.db"),
		"postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		s, err := store.Open(ctx, dsn, nil)
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
		}
	}
}

func TestOnceConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		for _, key := range []string{"reminder:2025-03-14", "event:42"} {
			wins := race(20, func(i int) bool {
				ok, err := stores[i%2].Once(t.Context(), key, t0)
				if err != nil {
					t.Errorf("Once(%q) #%d: %v", key, i, err)
				}
				return ok
			})
			if wins != 1 {
				t.Errorf("Once(%q): got %d winners, want 1", key, wins)
			}
		}
	})
}

func TestErrorsWrapSentinels(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		_, errC := s.Confirmation(ctx, "nope")
		_, errJ := s.Job(ctx, "nope")
		for name, err := range map[string]error{
			"Confirmation":           errC,
			"Job":                    errJ,
			"SetConfirmationMessage": s.SetConfirmationMessage(ctx, "nope", "C1", "1.1"),
			"CompleteConfirmation":   s.CompleteConfirmation(ctx, "nope", store.Outcome{State: store.Launched, JobID: "j"}, store.Fence{}, t0),
			"SetJobParent":           s.SetJobParent(ctx, "nope", "C1", "1.1"),
			"SaveProgress":           s.SaveProgress(ctx, "nope", "c", 1),
			"FinishJob":              s.FinishJob(ctx, "nope", "ok"),
		} {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s of a missing row: got %v, want ErrNotFound", name, err)
			}
		}
		if _, _, err := s.Approve(ctx, "nope", "U1", "A", t0, time.Second, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Approve of a missing row: got %v, want ErrNotFound", err)
		}
	})
}
