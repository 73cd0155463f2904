package store_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

func pending(id string) store.Confirmation {
	return store.Confirmation{
		ID:          id,
		Action:      "cutover",
		ServerIDs:   []string{"s-3", "s-1", "s-2"},
		RequestedBy: "U1",
		CreatedAt:   t0,
		ExpiresAt:   t0.Add(10 * time.Minute),
		State:       store.Pending,
	}
}

func TestConfirmationLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		want := pending("c1")
		want.State = "" // defaults to pending
		if err := s.CreateConfirmation(ctx, want); err != nil {
			t.Fatalf("CreateConfirmation: %v", err)
		}
		want.State = store.Pending
		if err := s.CreateConfirmation(ctx, want); err == nil {
			t.Errorf("CreateConfirmation of an existing id succeeded, want an error")
		}
		if err := s.SetConfirmationMessage(ctx, "c1", "C9", "1700000000.000100"); err != nil {
			t.Fatalf("SetConfirmationMessage: %v", err)
		}
		want.Channel, want.MessageTS = "C9", "1700000000.000100"
		got, err := s.Confirmation(ctx, "c1")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Confirmation after create:\ngot  %+v, %v\nwant %+v, nil", got, err, want)
		}

		decidedAt := t0.Add(time.Minute)
		got, err = s.DecideConfirmation(ctx, "c1", store.Confirmed, "U2", decidedAt)
		want.State, want.DecidedBy, want.DecidedAt = store.Confirmed, "U2", decidedAt
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("DecideConfirmation:\ngot  %+v, %v\nwant %+v, nil", got, err, want)
		}
		got, err = s.DecideConfirmation(ctx, "c1", store.Cancelled, "U3", decidedAt.Add(time.Second))
		if !errors.Is(err, store.ErrAlreadyDecided) || !reflect.DeepEqual(got, want) {
			t.Errorf("second DecideConfirmation:\ngot  %+v, %v\nwant %+v, ErrAlreadyDecided", got, err, want)
		}
		if _, err := s.DecideConfirmation(ctx, "c1", store.Launched, "U3", decidedAt); err == nil || errors.Is(err, store.ErrAlreadyDecided) {
			t.Errorf("DecideConfirmation to launched: got %v, want an invalid-state error", err)
		}

		cs, err := s.Confirmations(ctx, store.Confirmed)
		if err != nil || len(cs) != 1 || cs[0].ID != "c1" {
			t.Errorf("Confirmations(confirmed) = %+v, %v; want [c1]", cs, err)
		}
		if err := s.CompleteConfirmation(ctx, "c1", store.Launched, "mgnjob-1", ""); err != nil {
			t.Fatalf("CompleteConfirmation: %v", err)
		}
		if err := s.CompleteConfirmation(ctx, "c1", store.Failed, "", "boom"); !errors.Is(err, store.ErrAlreadyDecided) {
			t.Errorf("second CompleteConfirmation: got %v, want ErrAlreadyDecided", err)
		}
		want.State, want.JobID = store.Launched, "mgnjob-1"
		got, err = s.Confirmation(ctx, "c1")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Confirmation after launch:\ngot  %+v, %v\nwant %+v, nil", got, err, want)
		}
		if cs, err := s.Confirmations(ctx, store.Confirmed); err != nil || len(cs) != 0 {
			t.Errorf("Confirmations(confirmed) after launch = %+v, %v; want none", cs, err)
		}
	})
}

func TestDecideConfirmation(t *testing.T) {
	t.Parallel()
	expires := pending("").ExpiresAt
	tests := []struct {
		name    string
		to      store.ConfirmationState
		at      time.Time
		want    store.ConfirmationState
		wantErr error
	}{
		{"confirm before expiry", store.Confirmed, expires.Add(-time.Microsecond), store.Confirmed, nil},
		{"cancel before expiry", store.Cancelled, t0, store.Cancelled, nil},
		{"confirm at expiry", store.Confirmed, expires, store.Expired, store.ErrExpired},
		{"cancel after expiry", store.Cancelled, expires.Add(time.Hour), store.Expired, store.ErrExpired},
	}
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				if err := s.CreateConfirmation(ctx, pending(tt.name)); err != nil {
					t.Fatalf("CreateConfirmation: %v", err)
				}
				got, err := s.DecideConfirmation(ctx, tt.name, tt.to, "U2", tt.at)
				if !errors.Is(err, tt.wantErr) || got.State != tt.want {
					t.Errorf("DecideConfirmation = %q, %v; want %q, %v", got.State, err, tt.want, tt.wantErr)
				}
				if tt.wantErr == nil {
					return
				}
				// An expired confirmation stays expired, even for a clock
				// that lags.
				got, err = s.DecideConfirmation(ctx, tt.name, tt.to, "U2", t0)
				if !errors.Is(err, store.ErrExpired) || got.State != store.Expired {
					t.Errorf("DecideConfirmation again = %q, %v; want expired, ErrExpired", got.State, err)
				}
				if got.DecidedBy != "" || !got.DecidedAt.IsZero() {
					t.Errorf("expired confirmation decided by %q at %v, want nobody", got.DecidedBy, got.DecidedAt)
				}
			})
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
		if _, err := s.DecideConfirmation(ctx, "a", store.Cancelled, "U2", t0.Add(-time.Second)); err != nil {
			t.Fatalf("DecideConfirmation(a): %v", err)
		}
		got, err := s.ExpireConfirmations(ctx, t0.Add(time.Minute))
		if err != nil || len(got) != 1 || got[0].ID != "b" || got[0].State != store.Expired || len(got[0].ServerIDs) != 3 {
			t.Fatalf("ExpireConfirmations = %+v, %v; want [b] expired with its servers", got, err)
		}
		if got, err := s.ExpireConfirmations(ctx, t0.Add(time.Minute)); err != nil || len(got) != 0 {
			t.Errorf("second ExpireConfirmations = %+v, %v; want none", got, err)
		}
		if cs, err := s.Confirmations(ctx, store.Pending); err != nil || len(cs) != 1 || cs[0].ID != "c" {
			t.Errorf("Confirmations(pending) = %+v, %v; want [c]", cs, err)
		}
	})
}

// TestDecideConfirmationConcurrent clicks one card from many goroutines and
// two store handles (two replicas): exactly one click wins.
func TestDecideConfirmationConcurrent(t *testing.T) {
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
			to := store.Confirmed
			if i%2 == 1 {
				to = store.Cancelled
			}
			results[i], errs[i] = stores[i%2].DecideConfirmation(ctx, "c1", to, "U"+string(rune('A'+i)), t0)
			return errs[i] == nil
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
			if !reflect.DeepEqual(results[i], final) {
				t.Errorf("caller %d got %+v, want the stored %+v", i, results[i], final)
			}
		}
	})
}
