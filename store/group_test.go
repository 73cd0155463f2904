package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// groupOf is a test launch of wave "Wave 9" with n servers split into batches.
func groupOf(id string, n int, at time.Time) (migration.GroupLaunch, []migration.Batch) {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("s-%s%05d", id, i))
	}
	g := migration.GroupLaunch{ID: id, Mode: migration.ModeTest, Target: migration.Group{Kind: migration.KindWave, ID: "wave-9", Name: "Wave 9"},
		RequestedBy: "U1", ApprovedBy: []string{"U2", "U3"}, ServerIDs: ids, LeftOut: []migration.LeftOut{{ServerID: "s-x", Reason: "initial sync 63%"}},
		CreatedAt: at}
	return g, migration.SplitBatches(id, ids)
}

func TestGroupLaunch(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		g, batches := groupOf("g1", 450, t0)
		wins := race(5, func(int) bool {
			_, created, err := s.CreateGroupLaunch(ctx, g, batches, "", t0, time.Minute)
			if err != nil {
				t.Errorf("CreateGroupLaunch: %v", err)
			}
			return created
		})
		if wins != 1 {
			t.Fatalf("CreateGroupLaunch from 5 callers: %d created it, want 1", wins)
		}
		got, err := s.GroupLaunch(ctx, "g1")
		g.UpdatedAt = t0
		if err != nil || !reflect.DeepEqual(got, g) {
			t.Errorf("GroupLaunch:\ngot  %+v, %v\nwant %+v", got, err, g)
		}
		bs, err := s.Batches(ctx, "g1")
		if err != nil || len(bs) != 3 {
			t.Fatalf("Batches: got %d, %v; want 3", len(bs), err)
		}
		for i, b := range bs {
			if b.Seq != i+1 || b.State != migration.BatchQueued || len(b.ServerIDs) != 150 || b.Busy != -1 {
				t.Errorf("batch %d: got %+v, want queued with 150 servers", i+1, b)
			}
		}
		if err := s.SetGroupParent(ctx, "g1", "C1", "1.2"); err != nil {
			t.Fatal(err)
		}
		active, err := s.ActiveGroupLaunches(ctx)
		if err != nil || len(active) != 1 || active[0].ParentTS != "1.2" {
			t.Errorf("ActiveGroupLaunches: got %+v, %v; want g1 with its parent", active, err)
		}
		if err := s.FinishGroupLaunch(ctx, "g1", "launched"); err != nil {
			t.Fatal(err)
		}
		if active, err := s.ActiveGroupLaunches(ctx); err != nil || len(active) != 0 {
			t.Errorf("ActiveGroupLaunches after the finish: got %d, %v; want none", len(active), err)
		}
		if _, err := s.GroupLaunch(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GroupLaunch(nope): got %v, want ErrNotFound", err)
		}
		if err := s.SetGroupParent(ctx, "nope", "C1", "1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetGroupParent(nope): got %v, want ErrNotFound", err)
		}
	})
}

// TestClaimBatchInOrder: batches start one after another within a group, oldest group first,
// each claimed by one caller; a queued batch waits for its NextTry; a claim whose lease ended
// is taken over, and only the current fence records a failure or a requeue.
func TestClaimBatchInOrder(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		g1, b1 := groupOf("g1", 400, t0)
		g2, b2 := groupOf("g2", 10, t0.Add(time.Minute))
		for _, x := range []struct {
			g migration.GroupLaunch
			b []migration.Batch
		}{{g1, b1}, {g2, b2}} {
			if _, _, err := s.CreateGroupLaunch(ctx, x.g, x.b, "", t0, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		now := t0.Add(2 * time.Minute)
		var (
			mu     sync.Mutex
			claims []store.BatchClaim
		)
		wins := race(6, func(i int) bool {
			c, ok, err := s.ClaimBatch(ctx, "", fmt.Sprint("r", i), now, time.Minute)
			if err != nil {
				t.Errorf("ClaimBatch: %v", err)
			}
			if ok {
				mu.Lock()
				claims = append(claims, c)
				mu.Unlock()
			}
			return ok
		})
		// g1/1 and g2/1 are next; g1/2 waits for g1/1.
		if wins != 2 {
			t.Fatalf("claims from 6 callers: %d, want 2 (the first batch of each group)", wins)
		}
		keys := []string{claims[0].Key(), claims[1].Key()}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"g1/1", "g2/1"}) {
			t.Fatalf("claimed %v, want g1/1 and g2/1", keys)
		}
		c1 := claims[slices.IndexFunc(claims, func(c store.BatchClaim) bool { return c.Key() == "g1/1" })]
		if c1.TakenOver || c1.State != migration.BatchStarting || len(c1.ServerIDs) != 200 {
			t.Errorf("claim of g1/1: got %+v, want a fresh starting claim of 200 servers", c1)
		}
		// g1/1 has no room in MGN: back to the queue, tried again in a minute.
		busy := store.BatchOutcome{State: migration.BatchQueued, NextTry: now.Add(time.Minute), Busy: 200}
		if err := s.CompleteBatch(ctx, "g1/1", busy, store.Fence{Owner: "other", Token: c1.Fence.Token}, now); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("requeue by someone else: got %v, want ErrLeaseLost", err)
		}
		if err := s.CompleteBatch(ctx, "g1/1", busy, c1.Fence, now); err != nil {
			t.Fatalf("requeue: %v", err)
		}
		if _, ok, _ := s.ClaimBatch(ctx, "g1", "r9", now.Add(30*time.Second), time.Minute); ok {
			t.Error("claimed g1's next batch before its NextTry, want nothing")
		}
		c, ok, err := s.ClaimBatch(ctx, "g1", "r9", now.Add(time.Minute), time.Minute)
		if err != nil || !ok || c.Key() != "g1/1" || c.Busy != 200 || c.TakenOver {
			t.Fatalf("claim after NextTry: got %+v %v %v, want g1/1 again with busy 200", c.Batch, ok, err)
		}
		// The claimer dies: after its lease another replica takes the batch over.
		later := now.Add(2*time.Minute + time.Second)
		taken, ok, err := s.ClaimBatch(ctx, "", "r10", later, time.Minute)
		if err != nil || !ok || taken.Key() != "g1/1" || !taken.TakenOver || taken.Fence.Token <= c.Fence.Token {
			t.Fatalf("takeover: got %+v %v %v, want g1/1 taken over with a newer fence", taken, ok, err)
		}
		if err := s.CompleteBatch(ctx, "g1/1", store.BatchOutcome{State: migration.BatchFailed, Error: "x"}, c.Fence, later); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("failure recorded by the fenced-out claimer: got %v, want ErrLeaseLost", err)
		}
		// A launch is recorded whoever holds the lease; the batch's servers shrink.
		left := []migration.LeftOut{{ServerID: c.ServerIDs[0], Reason: "lagging"}}
		if err := s.CompleteBatch(ctx, "g1/1", store.BatchOutcome{State: migration.BatchStarted, JobID: "mgnjob-1",
			ServerIDs: c.ServerIDs[1:], LeftOut: left}, c.Fence, later); err != nil {
			t.Fatalf("started by the old claimer: %v", err)
		}
		b, err := s.Batch(ctx, "g1/1")
		if err != nil || b.State != migration.BatchStarted || b.JobID != "mgnjob-1" || len(b.ServerIDs) != 199 || !reflect.DeepEqual(b.LeftOut, left) {
			t.Errorf("Batch(g1/1): got %+v, %v; want started with job mgnjob-1, 199 servers and one left out", b, err)
		}
		if err := s.CompleteBatch(ctx, "g1/1", store.BatchOutcome{State: migration.BatchStarted, JobID: "mgnjob-2"}, taken.Fence, later); !errors.Is(err, store.ErrAlreadyDecided) {
			t.Errorf("second start: got %v, want ErrAlreadyDecided", err)
		}
		// Now g1/2 is next.
		c2, ok, err := s.ClaimBatch(ctx, "g1", "r11", later, time.Minute)
		if err != nil || !ok || c2.Key() != "g1/2" {
			t.Fatalf("claim after g1/1 started: got %v %v %v, want g1/2", c2.Key(), ok, err)
		}
		if err := s.RenewBatch(ctx, "g1/2", c2.Fence, later.Add(30*time.Second), time.Minute); err != nil {
			t.Errorf("RenewBatch: %v", err)
		}
		if err := s.ReleaseBatch(ctx, "g1/2", c2.Fence); err != nil {
			t.Fatal(err)
		}
		if again, ok, err := s.ClaimBatch(ctx, "g1", "r12", later.Add(31*time.Second), time.Minute); err != nil || !ok || !again.TakenOver || again.Key() != "g1/2" {
			t.Errorf("claim after a release: got %v %v %v, want g1/2 taken over at once", again.Key(), ok, err)
		}
		if _, err := s.Batch(ctx, "g1/9"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Batch(g1/9): got %v, want ErrNotFound", err)
		}
	})
}

func TestGroupJobsAndPrune(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		g, b := groupOf("g1", 3, t0)
		if _, _, err := s.CreateGroupLaunch(ctx, g, b, "", t0, time.Minute); err != nil {
			t.Fatal(err)
		}
		for _, j := range []migration.Launch{
			{JobID: "mgnjob-2", GroupID: "g1", StartedAt: t0.Add(time.Minute)},
			{JobID: "mgnjob-1", GroupID: "g1", StartedAt: t0},
			{JobID: "mgnjob-3", StartedAt: t0},
		} {
			if _, err := s.FollowJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		js, err := s.GroupJobs(ctx, "g1")
		if err != nil || !slices.Equal(jobIDs(js), []string{"mgnjob-1", "mgnjob-2"}) || js[0].GroupID != "g1" {
			t.Errorf("GroupJobs: got %v, %v; want mgnjob-1, mgnjob-2 of g1", jobIDs(js), err)
		}
		p, err := s.Prune(ctx, t0.Add(time.Hour), store.PruneOptions{Pause: -1})
		if err != nil || p.GroupLaunches != 0 {
			t.Errorf("Prune of a running group launch: got %+v, %v; want it kept", p, err)
		}
		if err := s.FinishGroupLaunch(ctx, "g1", "launched"); err != nil {
			t.Fatal(err)
		}
		p, err = s.Prune(ctx, t0.Add(time.Hour), store.PruneOptions{Pause: -1})
		if err != nil || p.GroupLaunches != 1 {
			t.Errorf("Prune of a finished group launch: got %+v, %v; want 1", p, err)
		}
		if _, err := s.Batch(ctx, "g1/1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("batch after its group was pruned: got %v, want ErrNotFound", err)
		}
	})
}

// TestCreateGroupLaunchClaimsFirst: the creator of a group launch owns its first batch from
// the start, so that no other claim gets in between; after its lease, another takes it over.
func TestCreateGroupLaunchClaimsFirst(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		g, b := groupOf("g1", 300, t0)
		first, created, err := s.CreateGroupLaunch(ctx, g, b, "creator", t0, time.Minute)
		if err != nil || !created || first.Key() != "g1/1" || first.State != migration.BatchStarting || first.Fence.Owner != "creator" || first.TakenOver {
			t.Fatalf("CreateGroupLaunch: got %+v %v %v, want g1/1 starting, owned by its creator", first, created, err)
		}
		if c, ok, err := s.ClaimBatch(ctx, "", "other", t0.Add(time.Second), time.Minute); err != nil || ok {
			t.Errorf("claim while the creator holds the first batch: got %v %v %v, want none", c.Key(), ok, err)
		}
		if err := s.CompleteBatch(ctx, "g1/1", store.BatchOutcome{State: migration.BatchStarted, JobID: "mgnjob-1"}, first.Fence, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if c, ok, err := s.ClaimBatch(ctx, "", "other", t0.Add(2*time.Second), time.Minute); err != nil || !ok || c.Key() != "g1/2" {
			t.Errorf("claim after the first started: got %v %v %v, want g1/2", c.Key(), ok, err)
		}
		if _, again, err := s.CreateGroupLaunch(ctx, g, b, "creator", t0, time.Minute); err != nil || again {
			t.Errorf("second CreateGroupLaunch: got %v %v, want nothing created", again, err)
		}
	})
}
