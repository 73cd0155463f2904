package handlers

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// lease is the handlers' default LeaseTTL.
const lease = 15 * time.Second

// decidedElsewhere records bob's deciding click as another replica ("dead") does, without
// carrying it out: as if that replica stopped right after winning the click.
func decidedElsewhere(t *testing.T, r *rig, card slackemu.Message) store.Confirmation {
	t.Helper()
	c, did, err := r.store.Approve(t.Context(), cardID0(t, card), bob, "dead", r.clock.Now(), lease, nil)
	if err != nil || did != store.ApprovalDecided {
		t.Fatalf("Approve: %v, %v; want decided", did, err)
	}
	return c
}

// replica is a second Handler on the rig's store, AWS and Slack: another replica.
func (r *rig) replica(holder string) *Handler {
	return New(slog.New(slog.DiscardHandler), r.aws, r.poster, r.store, r.follower, nil, Config{
		Channel: migrationChannel, Operators: []string{operator, alice}, Approvers: []string{alice, bob},
		Clock: r.clock, Holder: holder,
	})
}

// A replica that won the click stopped before it called AWS: after its lease, another replica
// takes the work over, finds no job in MGN, runs the pre-flight again and starts the cutover,
// once; until then, clicks hear what is going on.
func TestTakeOverBeforeAWS(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	c := decidedElsewhere(t, r, card)
	r.sweep()
	if got, _ := r.store.Confirmation(t.Context(), c.ID); got.Owner != "dead" || got.State != store.Confirmed {
		t.Fatalf("during the owner's lease: got owner %s state %s, want it left to its owner", got.Owner, got.State)
	}
	contains(t, "click during the lease", r.click(approverIDs[0], card.TS, render.ActionConfirm),
		"already confirmed by <@U0BOB> at 14:02 UTC, and the cutover is being started")
	r.clock.Advance(lease)
	contains(t, "click after the lease", r.click(approverIDs[1], card.TS, render.ActionConfirm),
		"the replica carrying it out stopped. Another replica is taking it over")
	r.sweep()
	jobs := r.mgn.Jobs()
	if n := r.mgn.Calls("StartCutover"); n != 1 || len(jobs) != 1 {
		t.Fatalf("after the takeover: got %d StartCutover and %d jobs, want 1 and 1", n, len(jobs))
	}
	got, err := r.store.Confirmation(t.Context(), c.ID)
	if err != nil || got.State != store.Launched || got.JobID != jobs[0].JobID {
		t.Fatalf("confirmation: got %s job %q (%v), want launched %s", got.State, got.JobID, err, jobs[0].JobID)
	}
	if jobs[0].Tags[migration.TagConfirmation] != c.ID || jobs[0].Tags[migration.TagApprovedBy] != bob {
		t.Errorf("job tags: got %v, want the confirmation and bob as approver", jobs[0].Tags)
	}
	contains(t, "card", r.message(card.TS).PlainText(), "approved by <@U0BOB> at 14:02 UTC — job `"+jobs[0].JobID+"`")
	eph := r.slack.Ephemerals(bob)
	contains(t, "bob is told", eph[len(eph)-1].PlainText(), "Update on the cutover you confirmed", "started: job `"+jobs[0].JobID+"`")
	// Later sweeps find nothing more to do.
	r.clock.Advance(time.Hour)
	r.sweep()
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover after more sweeps: got %d, want 1", n)
	}
}

// A confirmation older than the takeover window is not started late: its card says that
// nothing launched and why.
func TestTakeOverTooLate(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	c := decidedElsewhere(t, r, card)
	r.clock.Advance(3 * time.Minute)
	r.sweep()
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover: got %d, want 0", n)
	}
	got, err := r.store.Confirmation(t.Context(), c.ID)
	if err != nil || got.State != store.Failed {
		t.Fatalf("confirmation: got %s (%v), want failed", got.State, err)
	}
	contains(t, "card", r.message(card.TS).PlainText(), "but nothing was launched", "stopped before the request reached MGN",
		"3 min old now", "Ask again with `/cutover launch")
}

// A replica that called AWS and stopped before recording the job: the replica taking over
// finds the job by the confirmation's tag, whatever its age, and never launches again. It asks
// MGN for the job before anything else, so a server read that fails then (throttled, 5xx)
// cannot make it record "nothing launched".
func TestTakeOverAfterAWS(t *testing.T) {
	t.Parallel()
	for _, fault := range []struct {
		name   string
		status int
		kind   string
	}{{"no fault", 0, ""}, {"servers throttled", 429, "ThrottlingException"}, {"servers unavailable", 503, "ServiceUnavailableException"}} {
		t.Run(fault.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			card := requestCutover(t, r, operator)
			c := decidedElsewhere(t, r, card)
			if err := r.store.BeginCall(t.Context(), c.ID, c.Token(), r.clock.Now(), lease); err != nil {
				t.Fatal(err)
			}
			job, err := r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeCutover, ServerIDs: c.ServerIDs,
				RequestedBy: c.RequestedBy, ApprovedBy: c.Approvals, Confirmation: c.ID, Since: c.CreatedAt})
			if err != nil {
				t.Fatal(err)
			}
			if fault.status != 0 {
				r.mgn.Fail("DescribeSourceServers", 100, fault.status, fault.kind)
			}
			r.clock.Advance(10 * time.Minute)
			r.sweep()
			if n := r.mgn.Calls("StartCutover"); n != 1 {
				t.Fatalf("StartCutover: got %d, want 1 (the stopped replica's)", n)
			}
			got, err := r.store.Confirmation(t.Context(), c.ID)
			if err != nil || got.State != store.Launched || got.JobID != job.ID {
				t.Fatalf("confirmation: got %s job %q error %q (%v), want launched %s", got.State, got.JobID, got.Error, err, job.ID)
			}
			r.mgn.Fail("DescribeSourceServers", 0, 0, "")
			text := r.message(card.TS).PlainText()
			contains(t, "card", text, "— job `"+job.ID+"`")
			lacks(t, "card", text, "nothing was launched")
		})
	}
}

// A finalize whose replica stopped: the replica taking over reads from MGN which servers are
// finalized already. When that read fails it does not know what the earlier owner did, so it
// asks again later rather than saying nothing was done; once MGN answers, it finishes.
func TestTakeOverFinalizeReadFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.mgn.Update(mgnemu.SampleAPI01, func(s *mgnemu.SourceServer) {
		s.LifeCycle.State = "CUTTING_OVER"
		s.LifeCycle.LastCutover.Initiated = mgnemu.LaunchInitiated{APICallDateTime: mgnemu.FormatTime(start.Add(-time.Hour)), JobID: "mgnjob-0000000000000cut"}
	})
	contains(t, "request", r.run(operator, "finalize api01"), "waits for an approver")
	card := r.lastCard()
	c := decidedElsewhere(t, r, card)
	r.mgn.Fail("DescribeSourceServers", 100, 503, "ServiceUnavailableException")
	r.clock.Advance(lease)
	r.sweep()
	got, err := r.store.Confirmation(t.Context(), c.ID)
	if err != nil || got.State.Final() {
		t.Fatalf("after a failed read: got %s error %q (%v), want it still open, asked again later", got.State, got.Error, err)
	}
	lacks(t, "card while MGN cannot be read", r.message(card.TS).PlainText(), "nothing was launched")
	r.mgn.Fail("DescribeSourceServers", 0, 0, "")
	r.clock.Advance(unknownRetry)
	r.sweep()
	if got, err = r.store.Confirmation(t.Context(), c.ID); err != nil || got.State != store.Launched {
		t.Fatalf("once MGN answers: got %s error %q (%v), want finalized", got.State, got.Error, err)
	}
	if st := r.lifecycle(mgnemu.SampleAPI01); st != "CUTOVER" {
		t.Errorf("api01 lifecycle: got %s, want CUTOVER", st)
	}
	if n := r.mgn.Calls("FinalizeCutover"); n != 1 {
		t.Errorf("FinalizeCutover: got %d, want 1", n)
	}
}

// Finding: settling raced a live click: the click was still in its pre-flight when another
// replica marked it "stopped before AWS", and then the click launched. Now a replica taking
// over fences the slow owner out: exactly one StartCutover, and store, card and MGN agree.
func TestTakeOverFencesSlowOwner(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	other := r.replica("replica-2")
	r.mgn.SetLatency("DescribeSourceServers", 500*time.Millisecond) // the owner's pre-flight is slow
	// The click wins, and its owner is in the pre-flight.
	done := r.clickUntil(bob, card, store.Confirmed)
	r.clock.Advance(lease) // the owner looks dead to the other replica
	if err := other.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-done
	r.mgn.SetLatency("DescribeSourceServers", 0)
	r.drawCards()
	jobs := r.mgn.Jobs()
	if n := r.mgn.Calls("StartCutover"); n != 1 || len(jobs) != 1 {
		t.Fatalf("StartCutover calls: got %d (%d jobs), want exactly 1", n, len(jobs))
	}
	c, err := r.store.Confirmation(t.Context(), cardID0(t, card))
	if err != nil || c.State != store.Launched || c.JobID != jobs[0].JobID {
		t.Fatalf("confirmation: got %s job %q (%v), want launched %s", c.State, c.JobID, err, jobs[0].JobID)
	}
	contains(t, "card", r.message(card.TS).PlainText(), "— job `"+jobs[0].JobID+"`")
	eph := r.slack.Ephemerals(bob)
	lacks(t, "bob's answers", eph[len(eph)-1].PlainText(), "Nothing was launched")
}

// clickUntil has user click Confirm on card and handles the click in the background until its
// confirmation reaches state; the returned channel is closed when the click is handled.
func (r *rig) clickUntil(user string, card slackemu.Message, state store.ConfirmationState) <-chan struct{} {
	r.t.Helper()
	cb := r.clickOn(user, card.TS, render.ActionConfirm)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.h.Interaction(r.t.Context(), cb)
	}()
	id := cardID0(r.t, card)
	testrig.WaitUntil(r.t, "the click to bring the confirmation to "+string(state), wait, func() bool {
		c, err := r.store.Confirmation(r.t.Context(), id)
		return err == nil && c.State == state
	})
	return done
}

// Run's sweeps follow the handler's clock: a dead replica's confirmation is taken over when
// the test steps the clock past its lease, with no wait for real time.
func TestRunTakesOverOnTheClock(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	decidedElsewhere(t, r, card)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.h.Run(ctx) }()
	testrig.WaitUntil(t, "Run's tickers on the clock", wait, func() bool { return r.clock.Waiters() >= 2 })
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover during the dead replica's lease: got %d, want 0", n)
	}
	r.clock.Advance(lease)
	testrig.WaitUntil(t, "the takeover's StartCutover", wait, func() bool { return r.mgn.Calls("StartCutover") == 1 })
	testrig.WaitUntil(t, "the card to name the job", wait, func() bool {
		return strings.Contains(r.message(card.TS).PlainText(), "— job `mgnjob-")
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: got %v, want context.Canceled", err)
	}
}
