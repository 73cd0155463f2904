package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/cutoverbot/cutoverbot/migration"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// rows counts the rows of table in the database of dsn, child tables included, which the
// store does not expose.
func rows(t *testing.T, dsn, table string) int {
	t.Helper()
	driver := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// TestPrune fills every table with rows older and newer than the cutoff: Prune deletes, in
// batches, the old audit entries, once-keys, finished jobs and closed confirmations with their
// server lists, and keeps everything else: newer rows, running jobs, pending and confirmed
// confirmations, server states and leases.
func TestPrune(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		cutoff := t0
		old, recent := cutoff.Add(-time.Hour), cutoff.Add(time.Hour)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}

		for i := range 5 {
			must(s.Audit(ctx, store.AuditEntry{At: old.Add(-time.Duration(i) * time.Minute), Action: "launch", ServerIDs: []string{"s-old", "s-both"}}))
		}
		for range 2 {
			must(s.Audit(ctx, store.AuditEntry{At: recent, Action: "launch", ServerIDs: []string{"s-both"}}))
		}
		for i := range 4 {
			_, err := s.Once(ctx, fmt.Sprintf("old-%d", i), old)
			must(err)
		}
		_, err := s.Once(ctx, "recent", recent)
		must(err)

		followJob := func(id string, at time.Time, done bool) {
			_, err := s.FollowJob(ctx, migration.Launch{JobID: id, Kind: "test", ServerIDs: []string{"s-1", "s-2"}, StartedAt: at, Done: done})
			must(err)
		}
		followJob("mgnjob-old1", old, true)
		followJob("mgnjob-old2", old, true)
		followJob("mgnjob-old3", old.Add(-48*time.Hour), true)
		followJob("mgnjob-running", old, false)
		followJob("mgnjob-recent", recent, true)

		confirm := func(id string, state store.ConfirmationState, at time.Time) {
			must(s.CreateConfirmation(ctx, store.Confirmation{ID: id, Action: "cutover", ServerIDs: []string{"s-1"},
				RequestedBy: "U1", CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), State: state}))
		}
		for _, st := range store.FinalStates {
			confirm("old-"+string(st), st, old)
		}
		confirm("old-pending", store.Pending, old)
		confirm("old-confirmed", store.Confirmed, old)
		confirm("old-calling", store.Calling, old)

		for i, at := range []time.Time{old, old.Add(-time.Hour), recent} {
			_, err := s.ClaimReminder(ctx, at, "replica-1", time.Minute, at)
			must(err)
			must(s.FinishReminder(ctx, at, fmt.Sprint("1.", i), at))
		}
		_, err = s.ClaimReminder(ctx, old.Add(-2*time.Hour), "replica-1", time.Minute, old) // claimed, never posted
		must(err)
		confirm("recent-cancelled", store.Cancelled, recent)

		_, err = s.SwapServerState(ctx, "s-1", "", "CONTINUOUS", old)
		must(err)
		_, err = s.AcquireLease(ctx, "reminder", "replica-1", 1000*time.Hour, old)
		must(err)

		got, err := s.Prune(ctx, cutoff, store.PruneOptions{Batch: 2, Pause: -1})
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		want := store.Pruned{Audit: 5, OnceKeys: 4, Jobs: 3, Confirmations: int64(len(store.FinalStates)), Reminders: 2}
		if got != want {
			t.Errorf("Prune = %+v, want %+v", got, want)
		}

		if es, err := s.AuditLog(ctx, "", 0); err != nil || len(es) != 2 {
			t.Errorf("audit entries left: %d, %v; want the 2 recent ones", len(es), err)
		}
		if n := rows(t, dsn, "audit_servers"); n != 2 {
			t.Errorf("audit_servers rows left: %d, want 2 (those of the recent entries)", n)
		}
		if again, err := s.Once(ctx, "old-0", cutoff); err != nil || !again {
			t.Errorf("Once(old-0) after pruning = %v, %v; want true (the key was pruned)", again, err)
		}
		if again, err := s.Once(ctx, "recent", cutoff); err != nil || again {
			t.Errorf("Once(recent) after pruning = %v, %v; want false (the key is kept)", again, err)
		}
		js, err := s.RecentJobs(ctx, "", 0)
		if ids := jobIDs(js); err != nil || !slices.Equal(ids, []string{"mgnjob-recent", "mgnjob-running"}) {
			t.Errorf("jobs left: %v, %v; want the recent and the running one", ids, err)
		}
		if n := rows(t, dsn, "job_servers"); n != 4 {
			t.Errorf("job_servers rows left: %d, want 4 (2 jobs x 2 servers)", n)
		}
		for _, st := range store.FinalStates {
			if _, err := s.Confirmation(ctx, "old-"+string(st)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("old %s confirmation: got %v, want ErrNotFound", st, err)
			}
		}
		if left, err := s.UnfinishedReminders(ctx); err != nil || len(left) != 1 {
			t.Errorf("unfinished reminders left: %v, %v; want the one never posted", left, err)
		}
		if n := rows(t, dsn, "reminders"); n != 2 {
			t.Errorf("reminders rows left: %d, want 2 (the recent one and the one never posted)", n)
		}
		for _, id := range []string{"old-pending", "old-confirmed", "old-calling", "recent-cancelled"} {
			if c, err := s.Confirmation(ctx, id); err != nil || len(c.ServerIDs) != 1 {
				t.Errorf("confirmation %s: %+v, %v; want it kept with its server", id, c, err)
			}
		}
		if n := rows(t, dsn, "confirmation_servers"); n != 4 {
			t.Errorf("confirmation_servers rows left: %d, want 4", n)
		}
		if states, err := s.ServerStates(ctx); err != nil || states["s-1"] != "CONTINUOUS" {
			t.Errorf("server states after pruning: %v, %v; want s-1 kept", states, err)
		}
		if ok, err := s.AcquireLease(ctx, "reminder", "replica-2", time.Minute, cutoff); err != nil || ok {
			t.Errorf("lease after pruning taken by another holder: %v, %v; want it kept for replica-1", ok, err)
		}

		if again, err := s.Prune(ctx, cutoff, store.PruneOptions{Pause: -1}); err != nil || again != (store.Pruned{}) {
			t.Errorf("second Prune = %+v, %v; want nothing left to prune", again, err)
		}
	})
}

// TestPruneStopsWithContext: Prune pauses between batches and gives up when its context ends,
// returning what it deleted so far.
func TestPruneStopsWithContext(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		for range 3 {
			if err := s.Audit(t.Context(), store.AuditEntry{At: t0, Action: "status"}); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		got, err := s.Prune(ctx, t0.Add(time.Hour), store.PruneOptions{Batch: 1, Pause: time.Hour})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Prune with an hour's pause: got %v, want context.DeadlineExceeded", err)
		}
		if got.Audit > 1 {
			t.Errorf("Prune deleted %d audit entries, want at most one batch of 1 before the pause", got.Audit)
		}
	})
}
