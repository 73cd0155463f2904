package handlers

import (
	"errors"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// confirmedOnly records an approver's decision the way a click does, without carrying it out,
// as if the process stopped right after it.
func confirmedOnly(t *testing.T, r *rig, id string) store.Confirmation {
	t.Helper()
	c, err := r.store.DecideConfirmation(t.Context(), id, store.Confirmed, bob, r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cardID(t *testing.T, r *rig, ts string) string {
	t.Helper()
	for _, b := range r.message(ts).Buttons() {
		if b.ActionID == render.ActionConfirm {
			return b.Value
		}
	}
	t.Fatalf("card %s has no confirm button", ts)
	return ""
}

func TestSettleInterruptedBeforeAWS(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	c := confirmedOnly(t, r, cardID(t, r, card.TS))

	// Too recent: a live process may still be carrying it out.
	if err := r.h.SettleInterrupted(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.store.Confirmation(t.Context(), c.ID); got.State != store.Confirmed {
		t.Fatalf("state of a fresh confirmation after settling: got %s, want confirmed", got.State)
	}
	r.clock.Advance(2 * time.Minute)
	if err := r.h.SettleInterrupted(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, _ := r.store.Confirmation(t.Context(), c.ID)
	if got.State != store.Failed {
		t.Errorf("state: got %s, want failed", got.State)
	}
	contains(t, "settled card", r.message(card.TS).PlainText(), "stopped before the request reached AWS", "/cutover launch "+mgnemu.SampleDB01+" cutover")
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("StartCutover while settling: got %d calls, want 0", n)
	}
	if b := r.message(card.TS).Buttons(); len(b) != 0 {
		t.Errorf("settled card keeps buttons %+v, want none", b)
	}
}

func TestSettleInterruptedAfterAWS(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	c := confirmedOnly(t, r, cardID(t, r, card.TS))
	// The process got as far as StartCutover, then stopped before recording it.
	job, err := r.aws.StartCutover(t.Context(), c.ServerIDs, map[string]string{migration.TagConfirmation: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(2 * time.Minute)
	if err := r.h.SettleInterrupted(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, _ := r.store.Confirmation(t.Context(), c.ID)
	if got.State != store.Launched || got.JobID != job.ID {
		t.Errorf("settled: got state %s job %q, want launched with %s", got.State, got.JobID, job.ID)
	}
	contains(t, "settled card", r.message(card.TS).PlainText(), job.ID)
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover calls: got %d, want the one before the stop", n)
	}
	// Settling twice (another replica, the next minute) changes nothing.
	edits := r.message(card.TS).Edits
	if err := r.h.SettleInterrupted(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if r.message(card.TS).Edits != edits {
		t.Errorf("second settle edited the card again")
	}
}

// A launch whose progress thread cannot be opened says so, wherever it was started from.
func TestFollowFailureTold(t *testing.T) {
	t.Parallel()
	const want = "progress thread in <#C0MIGRATE> could not be opened (ref "
	r := newRig(t, rigOptions{})
	r.follower.err = errors.New("slack is down")

	contains(t, "test launch", r.run(operator, "launch web01 test"), "Test launch of web01 started: job `mgnjob-", "Its "+want)

	card := requestCutover(t, r, operator)
	r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "confirmed card", r.message(card.TS).PlainText(), "Confirmed by <@U0BOB>", want)

	// A cutover that MGN started just before a restart, settled afterwards.
	r = newRig(t, rigOptions{})
	r.follower.err = errors.New("slack is down")
	card = requestCutover(t, r, alice)
	c := confirmedOnly(t, r, cardID(t, r, card.TS))
	if _, err := r.aws.StartCutover(t.Context(), c.ServerIDs, map[string]string{migration.TagConfirmation: c.ID}); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(2 * time.Minute)
	if err := r.h.SettleInterrupted(t.Context(), time.Minute); err != nil {
		t.Fatal(err)
	}
	contains(t, "settled card", r.message(card.TS).PlainText(), want)
}
