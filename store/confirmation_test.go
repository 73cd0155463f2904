package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

func pending(id string) store.Confirmation {
	return store.Confirmation{
		ID:          id,
		Action:      "cutover",
		ServerIDs:   []string{"s-3-" + id, "s-1-" + id, "s-2-" + id},
		RequestedBy: "U1",
		CreatedAt:   t0,
		ExpiresAt:   t0.Add(10 * time.Minute),
		Title:       "Cutover requested: web01, web02, db01",
		Body:        []string{"<@U1> asked", "✅ *Replication:* Continuous Data Replication"},
		State:       store.Pending,
	}
}

const lease = 15 * time.Second

func TestConfirmationLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		c := pending("c1")
		c.State = "" // defaults to pending
		c.ApprovalsNeeded = 2
		if err := s.CreateConfirmation(ctx, c); err != nil {
			t.Fatalf("CreateConfirmation: %v", err)
		}
		if err := s.CreateConfirmation(ctx, c); err == nil {
			t.Errorf("CreateConfirmation of an existing id succeeded, want an error")
		}
		if err := s.SetConfirmationMessage(ctx, "c1", "C9", "1700000000.000100"); err != nil {
			t.Fatalf("SetConfirmationMessage: %v", err)
		}
		got, err := s.Confirmation(ctx, "c1")
		want := pending("c1")
		want.ApprovalsNeeded, want.Channel, want.MessageTS = 2, "C9", "1700000000.000100"
		want.Version, want.CardVersion, want.UpdatedAt = 1, 1, t0
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Confirmation after create:\ngot  %+v, %v\nwant %+v, nil", got, err, want)
		}

		// The first of two approvals does not confirm it.
		at := t0.Add(time.Minute)
		got, did, err := s.Approve(ctx, "c1", "U2", "A", at, lease, []string{"U3", "U4"})
		if err != nil || did != store.ApprovalAdded || !reflect.DeepEqual(got.Approvals, []string{"U2"}) || got.Version != 2 || got.State != store.Pending {
			t.Fatalf("Approve(U2) = %v approvals, version %d, %v, %v; want [U2], 2, added, still pending", got.Approvals, got.Version, did, err)
		}
		if got, did, err := s.Approve(ctx, "c1", "U2", "A", at, lease, nil); err != nil || did != store.ApprovalRepeated || got.Version != 2 {
			t.Errorf("Approve(U2) again: %v, version %d, %v; want repeated, unchanged", did, got.Version, err)
		}
		// U2's approval, not vouched for, does not let U3's decide; vouched for, it does.
		if got, did, err := s.Approve(ctx, "c1", "U3", "A", at.Add(time.Second), lease, nil); err != nil || did != store.ApprovalUnvouched ||
			got.State != store.Pending || !reflect.DeepEqual(got.Approvals, []string{"U2", "U3"}) || got.Version != 3 {
			t.Fatalf("Approve(U3) without vouching for U2 = %+v, %v, %v; want unvouched, pending with U2, U3, version 3", got, did, err)
		}
		got, did, err = s.Approve(ctx, "c1", "U3", "A", at.Add(time.Second), lease, []string{"U2"})
		if err != nil || did != store.ApprovalDecided || got.State != store.Confirmed || got.DecidedBy != "U3" || got.Owner != "A" || got.Fence != 1 ||
			!got.LeaseUntil.Equal(at.Add(time.Second+lease)) || !reflect.DeepEqual(got.Approvals, []string{"U2", "U3"}) || got.Version != 4 {
			t.Fatalf("Approve(U3) = %+v, %v, %v; want decided: confirmed by U3, owned by A with fence 1, approvals U2, U3, version 4", got, did, err)
		}
		if _, _, err := s.Approve(ctx, "c1", "U4", "B", at.Add(2*time.Second), lease, nil); !errors.Is(err, store.ErrAlreadyDecided) {
			t.Errorf("Approve after the decision: got %v, want ErrAlreadyDecided", err)
		}

		if err := s.BeginCall(ctx, "c1", got.Token(), at.Add(2*time.Second), lease); err != nil {
			t.Fatalf("BeginCall: %v", err)
		}
		if err := s.CompleteConfirmation(ctx, "c1", store.Outcome{State: store.Launched, JobID: "mgnjob-1"}, got.Token(), at.Add(3*time.Second)); err != nil {
			t.Fatalf("CompleteConfirmation: %v", err)
		}
		err = s.CompleteConfirmation(ctx, "c1", store.Outcome{State: store.Failed, Error: "boom"}, got.Token(), at.Add(3*time.Second))
		if !errors.Is(err, store.ErrAlreadyDecided) {
			t.Errorf("second CompleteConfirmation: got %v, want ErrAlreadyDecided", err)
		}
		final, err := s.Confirmation(ctx, "c1")
		if err != nil || final.State != store.Launched || final.JobID != "mgnjob-1" || final.Version != 6 || final.CardVersion != 1 {
			t.Errorf("Confirmation after launch: got %+v, %v; want launched mgnjob-1 at version 6, card at 1", final, err)
		}
		if !final.State.Final() || final.State.InProgress() {
			t.Errorf("launched: Final %v, InProgress %v; want true, false", final.State.Final(), final.State.InProgress())
		}

		// The card is behind; once shown, it is not.
		stale, err := s.StaleCards(ctx, at.Add(time.Hour), 10)
		if err != nil || len(stale) != 1 || stale[0].ID != "c1" {
			t.Fatalf("StaleCards = %+v, %v; want [c1]", stale, err)
		}
		if stale, err := s.StaleCards(ctx, at, 10); err != nil || len(stale) != 0 {
			t.Errorf("StaleCards changed before the last change = %+v, %v; want none", stale, err)
		}
		if err := s.CardShown(ctx, "c1", final.Version); err != nil {
			t.Fatalf("CardShown: %v", err)
		}
		if err := s.CardShown(ctx, "c1", 2); err != nil {
			t.Fatalf("CardShown(older): %v", err)
		}
		if stale, err := s.StaleCards(ctx, at.Add(time.Hour), 10); err != nil || len(stale) != 0 {
			t.Errorf("StaleCards after CardShown = %+v, %v; want none", stale, err)
		}
	})
}

func TestConfirmationDecisionAtExpiry(t *testing.T) {
	t.Parallel()
	expires := pending("").ExpiresAt
	tests := []struct {
		name    string
		cancel  bool
		at      time.Time
		want    store.ConfirmationState
		wantErr error
	}{
		{"confirm before expiry", false, expires.Add(-time.Microsecond), store.Confirmed, nil},
		{"cancel before expiry", true, t0, store.Cancelled, nil},
		{"confirm at expiry", false, expires, store.Expired, store.ErrExpired},
		{"cancel after expiry", true, expires.Add(time.Hour), store.Expired, store.ErrExpired},
	}
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				if err := s.CreateConfirmation(ctx, pending(tt.name)); err != nil {
					t.Fatalf("CreateConfirmation: %v", err)
				}
				decide := func(at time.Time) (store.Confirmation, error) {
					if tt.cancel {
						return s.CancelConfirmation(ctx, tt.name, "U2", at)
					}
					c, _, err := s.Approve(ctx, tt.name, "U2", "A", at, lease, nil)
					return c, err
				}
				got, err := decide(tt.at)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("decide = %q, %v; want %q, %v", got.State, err, tt.want, tt.wantErr)
				}
				if got, _ := s.Confirmation(ctx, tt.name); got.State != tt.want {
					t.Errorf("state: got %q, want %q", got.State, tt.want)
				}
				if tt.wantErr == nil {
					return
				}
				// An expired confirmation stays expired, even for a clock that lags.
				got, err = s.CancelConfirmation(ctx, tt.name, "U2", t0)
				if !errors.Is(err, store.ErrExpired) || got.State != store.Expired {
					t.Errorf("decide again = %q, %v; want expired, ErrExpired", got.State, err)
				}
				if got.DecidedBy != "" || !got.DecidedAt.IsZero() || len(got.Approvals) != 0 {
					t.Errorf("expired confirmation decided by %q at %v with approvals %v, want nobody", got.DecidedBy, got.DecidedAt, got.Approvals)
				}
			})
		}
	})
}

// TestConfirmationFencing: a replica whose lease ran out is fenced out of the AWS call and out
// of saying that nothing launched, but a launch it did is still recorded.
func TestConfirmationFencing(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		for _, id := range []string{"a", "b"} {
			if err := s.CreateConfirmation(ctx, pending(id)); err != nil {
				t.Fatal(err)
			}
		}
		a, _, err := s.Approve(ctx, "a", "U2", "replica-1", t0, lease, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := s.Approve(ctx, "b", "U2", "replica-1", t0, lease, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.BeginCall(ctx, "b", b.Token(), t0.Add(time.Second), lease); err != nil {
			t.Fatal(err)
		}

		if got, err := s.TakeOverConfirmations(ctx, "replica-2", t0.Add(lease-time.Millisecond), lease, 10); err != nil || len(got) != 0 {
			t.Fatalf("TakeOver during the lease = %+v, %v; want none", got, err)
		}
		if err := s.RenewConfirmation(ctx, "a", a.Token(), t0.Add(time.Second), lease); err != nil {
			t.Fatalf("RenewConfirmation: %v", err)
		}
		// a's lease now ends at t0+1s+lease, b's at t0+1s+lease too (BeginCall extended it); b
		// may be inside its AWS call, so it is taken over one lease later (clock skew).
		end := t0.Add(time.Second + lease)
		got, err := s.TakeOverConfirmations(ctx, "replica-2", end, lease, 10)
		if err != nil || len(got) != 1 || got[0].ID != "a" || got[0].State != store.Confirmed {
			t.Fatalf("TakeOver after the leases = %+v, %v; want a (AWS never called), not yet b", got, err)
		}
		a2 := got[0]
		if a2.Owner != "replica-2" || a2.Fence != 2 || !a2.LeaseUntil.Equal(end.Add(lease)) {
			t.Errorf("taken over a: owner %s fence %d lease %v; want replica-2, 2, %v", a2.Owner, a2.Fence, a2.LeaseUntil, end.Add(lease))
		}
		if err := s.RenewConfirmation(ctx, "a", a2.Token(), end, 2*lease); err != nil {
			t.Fatal(err)
		}
		later, err := s.TakeOverConfirmations(ctx, "replica-2", end.Add(lease), lease, 10)
		if err != nil || len(later) != 1 || later[0].ID != "b" || later[0].State != store.Calling || later[0].Fence != 2 {
			t.Fatalf("TakeOver a lease later = %+v, %v; want b, calling, fence 2", later, err)
		}

		// The old owner can neither call AWS nor say that nothing launched.
		if err := s.BeginCall(ctx, "a", a.Token(), end, lease); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("BeginCall by the old owner: got %v, want ErrLeaseLost", err)
		}
		if err := s.RenewConfirmation(ctx, "a", a.Token(), end, lease); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("RenewConfirmation by the old owner: got %v, want ErrLeaseLost", err)
		}
		err = s.CompleteConfirmation(ctx, "b", store.Outcome{State: store.Failed, Error: "x"}, b.Token(), end)
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("Failed by the old owner: got %v, want ErrLeaseLost", err)
		}
		// But what MGN did is recorded, whoever says it.
		if err := s.CompleteConfirmation(ctx, "b", store.Outcome{State: store.Launched, JobID: "mgnjob-b"}, b.Token(), end); err != nil {
			t.Errorf("Launched by the old owner: got %v, want it recorded", err)
		}
		// The new owner holds a.
		if err := s.ReleaseConfirmation(ctx, "a", a2.Token()); err != nil {
			t.Fatal(err)
		}
		again, err := s.TakeOverConfirmations(ctx, "replica-3", end, lease, 10)
		if err != nil || len(again) != 1 || again[0].ID != "a" || again[0].Fence != 3 {
			t.Fatalf("TakeOver after a release = %+v, %v; want a with fence 3", again, err)
		}
		if err := s.CompleteConfirmation(ctx, "a", store.Outcome{State: store.Failed, Error: "nothing"}, again[0].Token(), end); err != nil {
			t.Errorf("Failed by the owner: %v", err)
		}
	})
}

// TestConfirmConcurrent clicks one card from many goroutines and two store handles (two
// replicas): exactly one click wins, and every loser sees the stored decision.
func TestConfirmConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		ctx := t.Context()
		if err := stores[0].CreateConfirmation(ctx, pending("c1")); err != nil {
			t.Fatalf("CreateConfirmation: %v", err)
		}
		const n = 20
		results := make([]store.Confirmation, n)
		errs := make([]error, n)
		wins := race(n, func(i int) bool {
			user := "U" + string(rune('A'+i))
			st := stores[i%2]
			if i%4 == 3 {
				results[i], errs[i] = st.CancelConfirmation(ctx, "c1", user, t0)
				return errs[i] == nil
			}
			var did store.Approval
			results[i], did, errs[i] = st.Approve(ctx, "c1", user, "replica", t0, lease, nil)
			return errs[i] == nil && did == store.ApprovalDecided
		})
		if wins != 1 {
			t.Fatalf("got %d winners, want 1 (errors %v)", wins, errs)
		}
		final, err := stores[0].Confirmation(ctx, "c1")
		if err != nil {
			t.Fatalf("Confirmation: %v", err)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, store.ErrAlreadyDecided) {
				t.Errorf("caller %d: got %v, want nil or ErrAlreadyDecided", i, err)
			}
			if results[i].State != final.State || results[i].DecidedBy != final.DecidedBy {
				t.Errorf("caller %d saw %s by %s, want the stored %s by %s", i, results[i].State, results[i].DecidedBy, final.State, final.DecidedBy)
			}
		}
	})
}

// TestTakeOverConcurrent: two replicas sweeping at once take each confirmation once.
func TestTakeOverConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		ctx := t.Context()
		const n = 30
		for i := range n {
			id := "c" + string(rune('A'+i))
			if err := stores[0].CreateConfirmation(ctx, pending(id)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := stores[0].Approve(ctx, id, "U2", "dead", t0, lease, nil); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu    sync.Mutex
			taken = map[string]int{}
		)
		race(8, func(i int) bool {
			for {
				got, err := stores[i%2].TakeOverConfirmations(ctx, "r"+string(rune('0'+i)), t0.Add(lease), lease, 4)
				if err != nil {
					t.Errorf("TakeOver: %v", err)
					return false
				}
				if len(got) == 0 {
					return true
				}
				mu.Lock()
				for _, c := range got {
					taken[c.ID]++
				}
				mu.Unlock()
			}
		})
		if len(taken) != n {
			t.Errorf("taken over: got %d confirmations, want %d", len(taken), n)
		}
		for id, k := range taken {
			if k != 1 {
				t.Errorf("%s taken over %d times, want once", id, k)
			}
		}
	})
}

func TestExpireConfirmations(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		for i, id := range []string{"a", "b", "c"} {
			c := pending(id)
			c.ExpiresAt = t0.Add(time.Duration(i) * time.Minute)
			if err := s.CreateConfirmation(ctx, c); err != nil {
				t.Fatalf("CreateConfirmation(%s): %v", id, err)
			}
		}
		if _, err := s.CancelConfirmation(ctx, "a", "U2", t0.Add(-time.Second)); err != nil {
			t.Fatalf("CancelConfirmation(a): %v", err)
		}
		got, err := s.ExpireConfirmations(ctx, t0.Add(time.Minute))
		if err != nil || len(got) != 1 || got[0].ID != "b" || got[0].State != store.Expired || len(got[0].ServerIDs) != 3 || got[0].Version != 2 {
			t.Fatalf("ExpireConfirmations = %+v, %v; want [b] expired with its servers at version 2", got, err)
		}
		if got, err := s.ExpireConfirmations(ctx, t0.Add(time.Minute)); err != nil || len(got) != 0 {
			t.Errorf("second ExpireConfirmations = %+v, %v; want none", got, err)
		}
		if cs, err := s.Confirmations(ctx, store.Pending); err != nil || len(cs) != 1 || cs[0].ID != "c" {
			t.Errorf("Confirmations(pending) = %+v, %v; want [c]", cs, err)
		}
	})
}

// TestOnePendingRequestPerServer: a pending, unexpired confirmation holds its servers for its
// action; a request for one of them is refused naming it, also when two arrive at once on two
// handles; a decided or expired one frees them.
func TestOnePendingRequestPerServer(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		s, ctx := stores[0], t.Context()
		req := func(id, action string, at time.Time, servers ...string) store.Confirmation {
			return store.Confirmation{ID: id, Action: action, ServerIDs: servers, RequestedBy: "U1", CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}
		}
		if err := s.CreateConfirmation(ctx, req("a", "cutover", t0, "s-1", "s-2")); err != nil {
			t.Fatal(err)
		}
		err := s.CreateConfirmation(ctx, req("b", "cutover", t0, "s-3", "s-2"))
		if held, ok := errors.AsType[*store.AlreadyRequestedError](err); !ok || held.ID != "a" || !errors.Is(err, store.ErrAlreadyRequested) {
			t.Fatalf("a second cutover request for s-2: got %v, want AlreadyRequestedError naming a", err)
		}
		if _, err := s.Confirmation(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused request b: got %v, want it not stored", err)
		}
		if err := s.CreateConfirmation(ctx, req("f", "finalize", t0, "s-2")); err != nil {
			t.Errorf("a finalize request for s-2 beside a cutover request: %v, want it stored", err)
		}
		if _, err := s.CancelConfirmation(ctx, "a", "U2", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateConfirmation(ctx, req("c", "cutover", t0, "s-2")); err != nil {
			t.Errorf("after a was cancelled: %v, want c stored", err)
		}
		// c expires: a request after its expiry takes its place.
		if err := s.CreateConfirmation(ctx, req("d", "cutover", t0.Add(10*time.Minute), "s-2")); err != nil {
			t.Errorf("after c expired: %v, want d stored", err)
		}
		// Two requests at once on two handles: one is stored.
		stored := race(10, func(i int) bool {
			return stores[i%2].CreateConfirmation(ctx, req(fmt.Sprint("race-", i), "cutover", t0, "s-9")) == nil
		})
		if stored != 1 {
			t.Errorf("concurrent requests for s-9: %d stored, want 1", stored)
		}
	})
}

// WithdrawApprovals takes back the approvals of people who are no longer approvers: the
// confirmation stays pending with the others, a later approval is listed after them, and a
// confirmation no longer pending is left alone.
func TestWithdrawApprovals(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		c := pending("c1")
		c.ApprovalsNeeded = 3
		if err := s.CreateConfirmation(ctx, c); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Minute)
		for _, u := range []string{"U2", "U3"} {
			if _, _, err := s.Approve(ctx, "c1", u, "A", at, lease, nil); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.WithdrawApprovals(ctx, "c1", []string{"U2"}, at)
		if err != nil || got.State != store.Pending || !reflect.DeepEqual(got.Approvals, []string{"U3"}) || got.Version != 4 {
			t.Fatalf("WithdrawApprovals(U2) = %v approvals, %s, version %d, %v; want [U3], pending, version 4", got.Approvals, got.State, got.Version, err)
		}
		if got, did, err := s.Approve(ctx, "c1", "U4", "A", at, lease, nil); err != nil || did != store.ApprovalAdded || !reflect.DeepEqual(got.Approvals, []string{"U3", "U4"}) {
			t.Fatalf("Approve(U4) after a withdrawal = %v approvals, %v, %v; want [U3 U4], added", got.Approvals, did, err)
		}
		got, did, err := s.Approve(ctx, "c1", "U2", "A", at, lease, []string{"U3", "U4"})
		if err != nil || did != store.ApprovalDecided || !reflect.DeepEqual(got.Approvals, []string{"U3", "U4", "U2"}) {
			t.Fatalf("Approve(U2) again = %v approvals, %v, %v; want [U3 U4 U2], decided", got.Approvals, did, err)
		}
		if _, err := s.WithdrawApprovals(ctx, "c1", []string{"U3"}, at); !errors.Is(err, store.ErrAlreadyDecided) {
			t.Errorf("WithdrawApprovals after the decision: got %v, want ErrAlreadyDecided", err)
		}
		if got, _ := s.Confirmation(ctx, "c1"); len(got.Approvals) != 3 {
			t.Errorf("approvals after a refused withdrawal: got %v, want all three", got.Approvals)
		}
		if _, err := s.WithdrawApprovals(ctx, "nope", []string{"U3"}, at); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("WithdrawApprovals of an unknown confirmation: got %v, want ErrNotFound", err)
		}
	})
}
