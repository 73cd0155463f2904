package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

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

// The clicker is told the outcome even when the card's message cannot be edited (deleted, or
// its channel archived).
func TestDecisionToldWhenCardGone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, action string
		want               []string
	}{
		{"confirm", bob, render.ActionConfirm, []string{"The cutover of db01 started: job `mgnjob-"}},
		{"cancel", operator, render.ActionCancel, []string{"You cancelled the cutover request; nothing was launched."}},
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
			r.h.Interaction(t.Context(), r.clickOn(tt.user, card.TS, tt.action))
			// Its edit is refused for good (message_not_found): the card is given up, not retried.
			if err := r.h.DrawCards(t.Context()); err != nil {
				t.Errorf("DrawCards of a card whose message is gone: got %v, want the card given up", err)
			}
			if c, err := r.store.Confirmation(t.Context(), cardID0(t, card)); err != nil || c.CardVersion != c.Version {
				t.Errorf("card of a gone message: shown version %d of %d (%v), want it recorded as given up", c.CardVersion, c.Version, err)
			}
			eph := r.slack.Ephemerals(tt.user)
			if len(eph) == 0 {
				t.Fatalf("%s click on a card that cannot be edited: got no answer, want the outcome", tt.name)
			}
			contains(t, tt.name+" answer", eph[len(eph)-1].PlainText(), tt.want...)
		})
	}
}

// Finding: a cutover's StartCutover reached MGN and started the job, the answer was lost (502),
// and the card said that nothing was launched. Now it is sent once, MGN is asked, and the card,
// the store and the audit log name the job MGN has.
func TestLostAnswerCutover(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{lose: []string{"/StartCutover"}})
	card := requestCutover(t, r, operator)
	answer := r.click(bob, card.TS, render.ActionConfirm)
	jobs := r.mgn.Jobs()
	if len(jobs) != 1 || r.lost.Load() != 1 {
		t.Fatalf("MGN jobs after a confirmed cutover whose answer was lost: got %d (answers lost %d), want 1 (1)", len(jobs), r.lost.Load())
	}
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover calls: got %d, want 1", n)
	}
	job := jobs[0].JobID
	contains(t, "answer", answer, "The cutover of db01 started: job `"+job+"`")
	contains(t, "card", r.message(card.TS).PlainText(), "— job `"+job+"`")
	lacks(t, "card", r.message(card.TS).PlainText(), "nothing was launched")
	c, err := r.store.Confirmation(t.Context(), cardID0(t, card))
	if err != nil {
		t.Fatal(err)
	}
	if c.State != store.Launched || c.JobID != job {
		t.Errorf("stored confirmation: got %s with job %q, want launched with %s", c.State, c.JobID, job)
	}
	audit, err := r.store.AuditLog(t.Context(), mgnemu.SampleDB01, 0)
	if err != nil {
		t.Fatal(err)
	}
	if e := audit[0]; e.Action != actStartCutover || e.Outcome != outStarted || e.JobID != job {
		t.Errorf("newest audit entry: got %+v, want StartCutover started %s", e, job)
	}
}

// cardID0 is the confirmation ID a card was posted with.
func cardID0(t *testing.T, card slackemu.Message) string {
	t.Helper()
	for _, b := range card.Buttons() {
		if b.ActionID == render.ActionConfirm {
			return b.Value
		}
	}
	t.Fatal("card without a Confirm button")
	return ""
}

// A test launch whose answer is lost is found the same way.
func TestLostAnswerTest(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{lose: []string{"/StartTest"}})
	got := r.run(operator, "launch web01 test")
	jobs := r.mgn.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("MGN jobs: got %d, want 1", len(jobs))
	}
	contains(t, "answer", got, "Test launch of web01 started: job `"+jobs[0].JobID+"`")
}

// When MGN cannot be asked either, nothing is claimed; the next sweep asks again and the card
// then names the job.
func TestOutcomeUnknownSettledLater(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{lose: []string{}})
	card := requestCutover(t, r, operator)
	// StartCutover's answer is lost, and so is every answer about jobs after it.
	var started atomic.Bool
	r.loseIf(func(path string) bool {
		switch path {
		case "/StartCutover":
			started.Store(true)
			return true
		case "/DescribeJobs":
			return started.Load()
		}
		return false
	})
	answer := r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "answer", answer, "AWS's answer was lost and I could not yet ask MGN whether the cutover started", "Do not ask again")
	lacks(t, "answer", answer, "nothing was launched")
	text := r.message(card.TS).PlainText()
	lacks(t, "card while unknown", text, "nothing was launched", "Confirm cutover]")
	if n := len(r.mgn.Jobs()); n != 1 {
		t.Fatalf("MGN jobs: got %d, want the 1 that started", n)
	}
	// Meanwhile sweeps do not ask again before the retry is due, and say nothing new.
	told := len(r.slack.Ephemerals(bob))
	r.sweep()
	if n := len(r.slack.Ephemerals(bob)); n != told {
		t.Errorf("updates to bob before MGN could be asked: got %d more, want none", n-told)
	}
	// MGN answers about jobs again (but not yet about servers); a sweep (of any replica)
	// settles it without launching again, and without taking the failed read for "nothing
	// launched".
	r.loseIf(nil)
	r.mgn.Fail("DescribeSourceServers", 100, 500, "InternalServerException")
	r.clock.Advance(unknownRetry)
	r.sweep()
	r.mgn.Fail("DescribeSourceServers", 0, 0, "")
	c, err := r.store.Confirmation(t.Context(), cardID0(t, card))
	if err != nil {
		t.Fatal(err)
	}
	job := r.mgn.Jobs()[0].JobID
	if c.State != store.Launched || c.JobID != job {
		t.Errorf("confirmation after the sweep: got %s job %q, want launched %s", c.State, c.JobID, job)
	}
	contains(t, "card after the sweep", r.message(card.TS).PlainText(), "— job `"+job+"`")
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover calls: got %d, want 1", n)
	}
	eph := r.slack.Ephemerals(bob)
	contains(t, "update for bob", eph[len(eph)-1].PlainText(), "Update on the cutover you confirmed", "started: job `"+job+"`")
}

// Two distinct approvers, neither the requester; the card shows who approved so far.
func TestApprovalsNeeded(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{config: func(c *Config) { c.Approvals = 2 }})
	got := r.run(alice, "launch db01 cutover")
	contains(t, "request", got, "waits for 2 approvers other than you")
	card := r.lastCard()
	contains(t, "card", card.PlainText(), "Waiting for 2 approvers other than <@U0ALICE>", "It needs 2 distinct cutover approvers other than the requester.")
	contains(t, "self", r.click(alice, card.TS, render.ActionConfirm), "two-person rule")
	contains(t, "first approval", r.click(bob, card.TS, render.ActionConfirm), "Your approval is recorded (1 of 2)", "when 1 more approver confirms")
	contains(t, "card after one", r.message(card.TS).PlainText(), "Approved by <@U0BOB> (1 of 2); waiting for 1 more.", "[Confirm cutover]")
	contains(t, "same approver again", r.click(bob, card.TS, render.ActionConfirm), "You approved this already (1 of 2)")
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover after one approval of two: got %d, want 0", n)
	}
	contains(t, "second approval", r.click(approverIDs[0], card.TS, render.ActionConfirm), "The cutover of db01 started")
	jobs := r.mgn.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("jobs: got %d, want 1", len(jobs))
	}
	if got, want := jobs[0].Tags[migration.TagApprovedBy], bob+","+approverIDs[0]; got != want {
		t.Errorf("approved-by tag: got %q, want %q", got, want)
	}
	contains(t, "card", r.message(card.TS).PlainText(), "Requested by <@U0ALICE>, approved by <@U0BOB>, <@"+approverIDs[0]+">")
}

// formerApproverCard asks for db01's cutover with n approvals needed; bob approves it and then
// leaves the approvers' group, and the group cache's lifetime passes.
func formerApproverCard(t *testing.T, n int) (*rig, slackemu.Message) {
	t.Helper()
	r := newRig(t, rigOptions{config: func(c *Config) { c.Approvals = n }})
	contains(t, "request", r.run(operator, "launch db01 cutover"), fmt.Sprintf("waits for %d approvers other than you", n))
	card := r.lastCard()
	contains(t, "bob", r.click(bob, card.TS, render.ActionConfirm), fmt.Sprintf("Your approval is recorded (1 of %d)", n))
	r.slack.AddUserGroup(approverGroup, approverIDs...) // bob leaves the group
	r.clock.Advance(6 * time.Minute)                    // past the group cache's lifetime
	return r, card
}

// An approval counts only while its giver is an approver: at the deciding click, the approval
// of someone removed from the approvers' group since is withdrawn, and the cutover waits for
// another; when that membership cannot be read, nothing is decided.
func TestApprovalOfFormerApproverWithdrawn(t *testing.T) {
	t.Parallel()
	r, card := formerApproverCard(t, 2)
	got := r.click(approverIDs[0], card.TS, render.ActionConfirm)
	contains(t, "second approval", got, "Your approval is recorded (1 of 2), but the approval of <@U0BOB> no longer counts",
		"starts when 1 more approver confirms")
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover with a withdrawn approval: got %d, want 0", n)
	}
	contains(t, "card", r.message(card.TS).PlainText(), "Approved by <@"+approverIDs[0]+"> (1 of 2); waiting for 1 more.", "[Confirm cutover]")
	audit, err := r.store.AuditLog(t.Context(), mgnemu.SampleDB01, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(audit, func(e store.AuditEntry) bool {
		return e.Outcome == "approvals withdrawn: no longer approvers" && strings.HasSuffix(e.Detail, ": "+bob)
	}) {
		t.Errorf("audit: no withdrawal of bob's approval in %+v", audit)
	}

	// alice, an approver directly, would decide it with approverIDs[0]; but Slack does not
	// answer for the group any more, past the cache's grace: nothing is decided.
	r.slack.RateLimit("usergroups.users.list", 1000, time.Second)
	r.clock.Advance(11 * time.Minute)
	contains(t, "membership unknown", r.click(alice, card.TS, render.ActionConfirm),
		"could not check that <@"+approverIDs[0]+">, who approved this earlier, is still a cutover approver", "Nothing was decided")
	if c, err := r.store.Confirmation(t.Context(), cardID0(t, card)); err != nil || c.State != store.Pending || len(c.Approvals) != 1 {
		t.Fatalf("confirmation: got %s with %v (%v), want pending with one approval", c.State, c.Approvals, err)
	}
	r.slack.RateLimit("usergroups.users.list", 0, 0)
	contains(t, "deciding click", r.click(alice, card.TS, render.ActionConfirm), "The cutover of db01 started")
	job := r.onlyJob()
	if got, want := job.Tags[migration.TagApprovedBy], approverIDs[0]+","+alice; got != want {
		t.Errorf("approved-by tag: got %q, want %q", got, want)
	}
}

// Finding: a cutover of many servers with long names kept the first 49 blocks and lost its
// buttons. Every card carries its buttons, whatever the list.
func TestCardKeepsButtons(t *testing.T) {
	t.Parallel()
	var fleet []mgnemu.SourceServer
	long := strings.Repeat("very-long-server-name-", 9) // about 200 characters
	for i := range 200 {
		s := mgnemu.SampleFleet(start)[2] // db01: ready for cutover, tested
		name := fmt.Sprintf("%s%03d", long, i)
		s.SourceServerID, s.Tags = mgnemu.StableID("s-", name), map[string]string{"Name": name}
		fleet = append(fleet, s)
	}
	r := newRig(t, rigOptions{fleet: fleet})
	var ids []string
	for _, s := range fleet {
		ids = append(ids, s.SourceServerID)
	}
	got := r.run(operator, "launch "+strings.Join(ids, ",")+" cutover")
	contains(t, "request", got, "waits for an approver")
	card := r.lastCard()
	if n := len(card.Blocks); n > render.MaxBlocks {
		t.Errorf("card blocks: got %d, want at most %d", n, render.MaxBlocks)
	}
	if b := card.Buttons(); len(b) != 2 {
		t.Fatalf("card buttons: got %+v, want Confirm and Cancel", b)
	}
	contains(t, "card", card.PlainText(), "and 180 more")
	r.click(bob, card.TS, render.ActionConfirm)
	if n := r.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover after the confirmation: got %d, want 1", n)
	}
}

// Finding: a group's members were used forever when Slack could not be asked. Now for
// GroupTTL+GroupGrace at most; then access through the group is refused, with a reference, and
// audited.
func TestGroupMembershipFailsClosed(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	// bob is an approver through S0APPROVE: a first click reads the group.
	contains(t, "bob", r.click(bob, card.TS, render.ActionCancel), "You cancelled")
	r.slack.RateLimit("usergroups.users.list", 1000, time.Second)
	card = requestCutover(t, r, operator)
	r.clock.Advance(6 * time.Minute) // past GroupTTL, within the grace
	contains(t, "within the grace", r.click(bob, card.TS, render.ActionCancel), "You cancelled")
	card = requestCutover(t, r, operator)
	r.clock.Advance(5 * time.Minute) // 11 minutes after the list was read
	got := r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "past the grace", got, "only the cutover approvers may confirm", "I could not check your membership of a user group", "ref ")
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("StartCutover: got %d, want 0", n)
	}
	audit, err := r.store.AuditLog(t.Context(), mgnemu.SampleDB01, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := audit[0]; e.User != bob || !strings.HasPrefix(e.Outcome, "refused: group membership unknown") {
		t.Errorf("audit of the refusal: got %+v, want bob refused, membership unknown", e)
	}
}

// The Finalize button under a cutover report opens a confirmation card; when the finalize
// fails, a later click asks again.
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
	contains(t, "first click", r.click(operator, ts, render.ActionFinalize), "The finalize of api01 waits for an approver other than you")
	card := r.lastCard()
	r.mgn.Fail("FinalizeCutover", 1, 400, "ValidationException")
	got := r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "failed finalize", got, "Nothing was launched", "MGN rejected the request as invalid")
	contains(t, "failed card", r.message(card.TS).PlainText(), "but nothing was launched", "`/cutover finalize "+mgnemu.SampleAPI01+"`")
	contains(t, "second click", r.click(operator, ts, render.ActionFinalize), "waits for an approver")
	if second := r.lastCard(); second.TS == card.TS {
		t.Fatal("second click: no new card")
	}
	r.click(bob, r.lastCard().TS, render.ActionConfirm)
	if st := r.lifecycle(mgnemu.SampleAPI01); st != "CUTOVER" {
		t.Errorf("api01 lifecycle: got %s, want CUTOVER", st)
	}
}

// A launch whose progress thread cannot be opened says so.
func TestFollowFailureTold(t *testing.T) {
	t.Parallel()
	const want = "progress thread in <#C0MIGRATE> could not be opened (ref "
	r := newRig(t, rigOptions{})
	r.follower.err = fmt.Errorf("slack is down")
	contains(t, "test launch", r.run(operator, "launch web01 test"), "Test launch of web01 started: job `mgnjob-", "Its "+want)
	// A cutover's thread is opened in the background: the card says where progress follows.
	card := requestCutover(t, r, operator)
	contains(t, "confirm", r.click(bob, card.TS, render.ActionConfirm), "The cutover of db01 started", "progress follows in a thread in <#C0MIGRATE>")
	contains(t, "card", r.message(card.TS).PlainText(), "progress follows in a thread in <#C0MIGRATE>")
}

// The deciding approver is told at once that theirs was the deciding click, then what MGN did.
// The click reads only the server it names: one DescribeSourceServers call, not the fleet.
func TestDecidingClickAnswers(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	before := len(r.slack.Ephemerals(bob))
	r.mgn.ResetCalls()
	r.h.Interaction(t.Context(), r.clickOn(bob, card.TS, render.ActionConfirm))
	if n := r.mgn.Calls("DescribeSourceServers"); n != 1 {
		t.Errorf("DescribeSourceServers calls at the deciding click: got %d, want 1 (db01 alone)", n)
	}
	eph := r.slack.Ephemerals(bob)[before:]
	if len(eph) != 2 {
		t.Fatalf("answers to the deciding click: got %d, want 2", len(eph))
	}
	contains(t, "first answer", eph[0].PlainText(), "yours was the deciding approval", "I will tell you here what MGN did")
	lacks(t, "first answer", eph[0].PlainText(), "started:", "job")
	contains(t, "second answer", eph[1].PlainText(), "The cutover of db01 started: job `mgnjob-")
}

// Slack holds the deciding approver's first answer: the cutover starts anyway, and the
// answers arrive in order once Slack takes them.
func TestDecidingAnswerDoesNotHoldTheLaunch(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	release := make(chan struct{})
	var (
		mu    sync.Mutex
		texts []string
	)
	slackHolds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct{ Text string }
		_ = json.NewDecoder(req.Body).Decode(&body)
		mu.Lock()
		texts = append(texts, body.Text)
		first := len(texts) == 1
		mu.Unlock()
		if first {
			select {
			case <-release:
			case <-req.Context().Done():
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(slackHolds.Close)
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the server closes, which waits for held requests
	click := r.clickOn(bob, card.TS, render.ActionConfirm)
	click.ResponseURL = slackHolds.URL + "/actions/T0/1/held"
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.h.Interaction(t.Context(), click)
	}()
	testrig.WaitUntil(t, "StartCutover while Slack holds the first answer", 10*time.Second, func() bool {
		return r.mgn.Calls("StartCutover") == 1
	})
	letGo()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(texts) != 2 {
		t.Fatalf("answers posted to the response_url: got %d (%q), want 2", len(texts), texts)
	}
	contains(t, "first answer", texts[0], "yours was the deciding approval")
	contains(t, "second answer", texts[1], "started: job `mgnjob-")
}

// A server archived between the card and the deciding click: nothing launches, and the
// answer names the server MGN no longer has.
func TestDecidingClickServerGone(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	card := requestCutover(t, r, operator)
	r.mgn.Update(mgnemu.SampleDB01, func(s *mgnemu.SourceServer) { s.IsArchived = true })
	answer := r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "answer", answer, "Nothing was launched", "MGN does not know it any more (not found: no source server "+mgnemu.SampleDB01+")")
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("StartCutover: got %d, want 0", n)
	}
	if c, err := r.store.Confirmation(t.Context(), cardID0(t, card)); err != nil || c.State != store.Failed {
		t.Errorf("confirmation: got %s (%v), want failed", c.State, err)
	}
}

// approveBarrier holds each Approve until n of them arrived (or a timeout), so that the clicks
// all read the card before any records its approval: concurrent clicks, on one replica or two.
type approveBarrier struct {
	*store.Store
	n       int
	mu      sync.Mutex
	arrived int
	open    chan struct{}
}

func (b *approveBarrier) Approve(ctx context.Context, id, user, owner string, now time.Time, ttl time.Duration, vouched []string) (store.Confirmation, store.Approval, error) {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(3 * time.Second):
	}
	return b.Store.Approve(ctx, id, user, owner, now, ttl, vouched)
}

// clickTogether has each handler take one approver's click on the card at the same moment.
func (r *rig) clickTogether(card slackemu.Message, hs []*Handler, users []string) {
	var wg sync.WaitGroup
	for i, u := range users {
		cb := r.clickOn(u, card.TS, render.ActionConfirm)
		wg.Go(func() { hs[i].Interaction(r.t.Context(), cb) })
	}
	wg.Wait()
	for _, h := range hs {
		if err := h.DrawCards(r.t.Context()); err != nil {
			r.t.Fatalf("DrawCards: %v", err)
		}
	}
}

// Three approvals needed; bob approved, then left the approvers' group. Two approvers click at
// once: each read the card with one approval, so neither expected to decide it. The store
// decides only on approvals the deciding click checked again, so bob's no longer counts: the
// card waits for a third approver, and the approval of each clicker is audited.
func TestConcurrentClicksRecheckEarlierApprovals(t *testing.T) {
	t.Parallel()
	r, card := formerApproverCard(t, 3)
	st := &approveBarrier{Store: r.store, n: 2, open: make(chan struct{})}
	h := r.attackHandler(r.aws, st)
	r.clickTogether(card, []*Handler{h, h}, approverIDs[:2])
	if n := r.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover with bob's approval counting: got %d, want 0", n)
	}
	c, err := r.store.Confirmation(t.Context(), cardID0(t, card))
	if err != nil || c.State != store.Pending || slices.Contains(c.Approvals, bob) || len(c.Approvals) != 2 {
		t.Fatalf("confirmation: %s with %v (%v), want pending with the two clickers", c.State, c.Approvals, err)
	}
	contains(t, "card", r.message(card.TS).PlainText(), "(2 of 3); waiting for 1 more.", "[Confirm cutover]")
	for _, u := range approverIDs[:2] {
		eph := r.slack.Ephemerals(u)
		contains(t, "answer to "+u, eph[len(eph)-1].PlainText(), "Your approval is recorded (", "starts when 1 more approver confirms")
	}
	audit, err := r.store.AuditLog(t.Context(), mgnemu.SampleDB01, 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range approverIDs[:2] {
		if !slices.ContainsFunc(audit, func(e store.AuditEntry) bool { return e.User == u && strings.HasPrefix(e.Outcome, "approved (") }) {
			t.Errorf("audit: no entry records %s's approval", u)
		}
	}
	contains(t, "third approver", r.click(approverIDs[2], card.TS, render.ActionConfirm), "The cutover of db01 started")
	job := r.onlyJob()
	if got := job.Tags[migration.TagApprovedBy]; strings.Contains(got, bob) || strings.Count(got, ",") != 2 {
		t.Errorf("approved-by tag: got %q, want three current approvers", got)
	}
}

// Two approvals needed and bob's no longer counts: two approvers click at once on two
// replicas. One cutover starts, decided by the two of them.
func TestTwoReplicasWithdrawThenDecideOnce(t *testing.T) {
	t.Parallel()
	r, card := formerApproverCard(t, 2)
	st := &approveBarrier{Store: r.store, n: 2, open: make(chan struct{})}
	h1, h2 := r.attackHandler(r.aws, st), r.attackHandler(r.aws, st)
	h1.cfg.Holder, h2.cfg.Holder = "one", "two"
	r.clickTogether(card, []*Handler{h1, h2}, approverIDs[:2])
	c, err := r.store.Confirmation(t.Context(), cardID0(t, card))
	if n := r.mgn.Calls("StartCutover"); n != 1 || err != nil || slices.Contains(c.Approvals, bob) {
		t.Errorf("StartCutover %d, approvals %v (%v); want 1, without bob", n, c.Approvals, err)
	}
}
