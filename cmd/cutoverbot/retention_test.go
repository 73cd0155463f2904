package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// oldAudit stores one audit entry per time in the store at dsn and closes it.
func oldAudit(t *testing.T, dsn string, at ...time.Time) {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, a := range at {
		if err := st.Audit(t.Context(), store.AuditEntry{At: a, Action: "launch", ServerIDs: []string{"s-1"}}); err != nil {
			t.Fatal(err)
		}
	}
}

func auditCount(t *testing.T, st *store.Store) int {
	t.Helper()
	es, err := st.AuditLog(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestPruneOneReplicaAnHour: of two replicas on one database, only the one holding the hour's
// lease prunes; the other prunes once the lease has run out.
func TestPruneOneReplicaAnHour(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dsn string) {
		now := time.Now()
		oldAudit(t, dsn, now.AddDate(-2, 0, 0), now.Add(-time.Hour))
		replica := func(holder string) *app {
			st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return &app{cfg: Config{Retention: 400 * 24 * time.Hour}, holder: holder, store: st, logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
		}
		a, b := replica("replica-a"), replica("replica-b")
		if ok, err := a.store.AcquireLease(t.Context(), pruneLease, a.holder, pruneEvery, now); err != nil || !ok {
			t.Fatalf("replica a takes the lease: %v, %v", ok, err)
		}
		if err := b.prune(t.Context(), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n := auditCount(t, b.store); n != 2 {
			t.Fatalf("replica b pruned while a held the lease: %d audit entries left, want 2", n)
		}
		if err := b.prune(t.Context(), now.Add(pruneEvery+time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n := auditCount(t, b.store); n != 1 {
			t.Errorf("after the lease ran out, replica b left %d audit entries, want 1 (the recent one)", n)
		}
	})
}

// TestHousekeepingPrunes: a started bot prunes rows older than CUTOVER_RETENTION from its own
// housekeeping loop, at start and without being asked.
func TestHousekeepingPrunes(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "cutoverbot.db")
	now := time.Now()
	oldAudit(t, dsn, now.AddDate(0, 0, -31), now.AddDate(0, 0, -29))
	e := startBot(t, map[string]string{"CUTOVER_DB": dsn, "CUTOVER_RETENTION": "30d", "CUTOVER_LOG_LEVEL": "info"})
	testrig.WaitUntil(t, "the housekeeping loop to prune", 0, func() bool { return strings.Contains(e.logs.String(), `msg="pruned old rows"`) })
	st, err := store.Open(t.Context(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := auditCount(t, st); n != 1 {
		t.Errorf("audit entries after pruning: %d, want 1 (the one within 30 days)", n)
	}
}
