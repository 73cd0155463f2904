package notifier

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/store"
)

// flakyStore is the real store whose next call of one method fails, as a database does
// when its connection drops.
type flakyStore struct {
	*store.Store
	mu      sync.Mutex
	fail    string // the method whose next call fails; "" for none
	tripped bool   // a call failed
}

var errStoreDown = errors.New("store: connection lost")

func (s *flakyStore) trip(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != method {
		return nil
	}
	s.fail, s.tripped = "", true
	return errStoreDown
}

func (s *flakyStore) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tripped
}

func (s *flakyStore) SetJobParent(ctx context.Context, jobID, channel, ts string) error {
	if err := s.trip("SetJobParent"); err != nil {
		return err
	}
	return s.Store.SetJobParent(ctx, jobID, channel, ts)
}

func (s *flakyStore) SaveProgress(ctx context.Context, jobID, cursor string, posted int) error {
	if err := s.trip("SaveProgress"); err != nil {
		return err
	}
	return s.Store.SaveProgress(ctx, jobID, cursor, posted)
}

func (s *flakyStore) FinishJob(ctx context.Context, jobID, outcome string) error {
	if err := s.trip("FinishJob"); err != nil {
		return err
	}
	return s.Store.FinishJob(ctx, jobID, outcome)
}

func (s *flakyStore) FinishReminder(ctx context.Context, firing time.Time, ts string, now time.Time) error {
	if err := s.trip("FinishReminder"); err != nil {
		return err
	}
	return s.Store.FinishReminder(ctx, firing, ts, now)
}

// TestStoreFailureRepostsNothing has the store fail right after a post; the thread must
// still hold one parent, every event once and one final reply.
func TestStoreFailureRepostsNothing(t *testing.T) {
	for _, method := range []string{"SetJobParent", "SaveProgress", "FinishJob"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			st := &flakyStore{Store: r.store, fail: method}
			n := r.notifier(t, st, "a", nil)
			job := r.startTest(t, nil, mgnemu.SampleWeb01)
			if _, err := n.Follow(t.Context(), job, "U1"); err != nil && !errors.Is(err, errStoreDown) {
				t.Fatal(err)
			}
			r.drive(t, step, r.jobDone(t, job.ID), n)
			parents := r.parents()
			if len(parents) != 1 {
				t.Fatalf("got %d top-level messages, want 1", len(parents))
			}
			r.checkThread(t, job.ID, parents[0].TS)
			if st.trip(method) != nil {
				t.Errorf("%s never failed: the test did not exercise the fault", method)
			}
		})
	}
}
