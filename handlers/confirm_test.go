package handlers

import (
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/render"
)

// A decision whose card cannot be edited (deleted, or its channel archived) is told to the
// clicker instead of going unanswered.
func TestDecisionToldWhenCardGone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, action string
		want               []string
	}{
		{"confirm", bob, render.ActionConfirm, []string{"Confirmed by <@U0BOB> at 14:02 UTC — job `mgnjob-"}},
		{"cancel", operator, render.ActionCancel, []string{"Cancelled by <@U0OPER> at 14:02 UTC; nothing was launched."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			card := requestCutover(t, r, operator)
			// The card's message no longer exists where it was recorded.
			if err := r.store.SetConfirmationMessage(t.Context(), cardID(t, r, card.TS), migrationChannel, "1700000000.000001"); err != nil {
				t.Fatal(err)
			}
			got := r.click(tt.user, card.TS, tt.action)
			if got == "" {
				t.Fatalf("%s click on a card that cannot be edited: got no answer, want the outcome", tt.name)
			}
			contains(t, tt.name+" answer", got, tt.want...)
		})
	}
}

// The Finalize button is spent by its first click; when that click's request failed, a later
// click must not claim that nothing is left to do.
func TestFinalizeButtonAfterFailure(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	r.mgn.Update(mgnemu.SampleAPI01, func(s *mgnemu.SourceServer) {
		s.LifeCycle.State = "CUTTING_OVER"
		s.LifeCycle.LastCutover.Initiated = mgnemu.LaunchInitiated{APICallDateTime: mgnemu.FormatTime(start.Add(-time.Hour)), JobID: "mgnjob-0000000000000cut"}
	})
	ts, err := r.poster.Post(t.Context(), migrationChannel, bot.Message{Text: "cutover done", Blocks: []slack.Block{
		section("api01 cut over"),
		slack.NewActionBlock("final", render.Button(render.ActionFinalize, "Finalize cutover", mgnemu.SampleAPI01, "danger")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.mgn.Fail("FinalizeCutover", 10, 429, "ThrottlingException")
	r.click(bob, ts, render.ActionFinalize)
	replies := r.slack.Replies(migrationChannel, ts)
	if len(replies) != 1 {
		t.Fatalf("thread replies: got %d, want 1", len(replies))
	}
	contains(t, "failed finalize", replies[0].PlainText(), "AWS is throttling requests")
	r.mgn.Fail("FinalizeCutover", 0, 0, "")

	got := r.click(alice, ts, render.ActionFinalize)
	contains(t, "second click", got, "not finalized yet", "`/cutover finalize "+mgnemu.SampleAPI01+"`")
	lacks(t, "second click", got, "nothing more to do")
	if st := r.lifecycle(mgnemu.SampleAPI01); st != "CUTTING_OVER" {
		t.Errorf("api01 lifecycle: got %s, want CUTTING_OVER", st)
	}
}
