package handlers

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
)

// onlyJob returns MGN's one job, failing unless there is exactly one.
func (r *rig) onlyJob() mgnemu.Job {
	r.t.Helper()
	jobs := r.mgn.Jobs()
	if len(jobs) != 1 {
		r.t.Fatalf("MGN has %d jobs, want 1", len(jobs))
	}
	return jobs[0]
}

func participants(j mgnemu.Job) []string {
	var ids []string
	for _, p := range j.ParticipatingServers {
		ids = append(ids, p.SourceServerID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestStatusOfWaves(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	fleet := r.run(eve, "status")
	contains(t, "fleet status", fleet, "Waves:", "*Wave 1* · 3 servers · lagging · not started · cutover", "in 14 days",
		"*Wave 2* · 4 servers · error · in progress")
	lacks(t, "fleet status", fleet, "Wave 0")

	wave := r.run(eve, `status wave "wave 1"`)
	contains(t, "wave status", wave, "Wave Wave 1 · 3 servers", "*MGN:* *Wave 1* · 3 servers · lagging", "*Applications:* web shop",
		"web01", "web02", "api01", "Initial sync 63%")
	lacks(t, "wave status", wave, "db01", "file01")
	app := r.run(eve, "status app billing")
	contains(t, "application status", app, "Application billing · 3 servers", "in wave *Wave 2*", "app01", "db01", "mq01")
	contains(t, "unknown wave", r.run(eve, "status wave 3"), "No wave matches `3`", "`wave \"Wave 1\"`", "`wave \"Wave 2\"`")
	contains(t, "archived wave", r.run(eve, `status wave "Wave 0"`), "No wave matches `Wave 0`")
}

// TestWaveTestLaunch launches the test of Wave 1: web02, still in its initial sync, is left out
// and named; web01 and api01 start in one job within the command, tagged with their batch.
func TestWaveTestLaunch(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	got := r.run(operator, `launch wave "Wave 1" test`)
	job := r.onlyJob()
	contains(t, "answer", got, "Test launch of wave *Wave 1*: 2 servers in 1 job: job `"+job.JobID+"` started", "its thread",
		"*Left out* (1 server whose pre-flight checks failed)", "*web02*", "Initial sync 63%")
	if want := sorted(mgnemu.SampleWeb01, mgnemu.SampleAPI01); !slices.Equal(participants(job), want) {
		t.Errorf("job's servers: got %v, want %v", participants(job), want)
	}
	calls := r.follower.GroupCalls()
	if len(calls) != 1 {
		t.Fatalf("FollowGroup calls: got %v, want one", calls)
	}
	if job.Tags[migration.TagBatch] != calls[0]+"/1" || job.Tags[migration.TagRequest] != calls[0] || job.Tags[migration.TagRequestedBy] != operator {
		t.Errorf("job tags: got %v, want the batch %s/1, the request and the requester", job.Tags, calls[0])
	}
	g, err := r.store.GroupLaunch(t.Context(), calls[0])
	if err != nil || g.Target.Name != "Wave 1" || len(g.LeftOut) != 1 || g.LeftOut[0].ServerID != mgnemu.SampleWeb02 {
		t.Errorf("stored group launch: got %+v, %v; want Wave 1 with web02 left out", g, err)
	}
	bs, _ := r.store.Batches(t.Context(), g.ID)
	if len(bs) != 1 || bs[0].State != migration.BatchStarted || bs[0].JobID != job.JobID {
		t.Errorf("batches: got %+v, want one started with job %s", bs, job.JobID)
	}
	// Nothing more to start.
	if err := r.h.StartBatches(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := r.mgn.Calls("StartTest"); n != 1 {
		t.Errorf("StartTest calls: got %d, want 1", n)
	}
}

func TestApplicationLaunchRefusedWhenNonePasses(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	got := r.run(operator, `launch app "file services" test`)
	contains(t, "answer", got, "nothing of application *file services* can be launched", "nothing was launched", "*file01*", "Stalled")
	contains(t, "cutover", r.run(operator, "launch app billing cutover"), "The cutover of db01 waits for an approver other than you",
		"*Left out* (2 servers", "*app01*", "*mq01*")
	if n := r.mgn.Calls("StartTest") + r.mgn.Calls("StartCutover"); n != 0 {
		t.Errorf("launch calls: got %d, want none", n)
	}
	contains(t, "stranger", r.run(eve, "launch wave \"Wave 1\" test"), "only the cutover operators may launch a test")
}

// TestWaveInBatches launches a test of a 450-server wave: 18 servers fail their checks, the
// other 432 are split into three jobs of 144. The first starts within the command; the second
// waits while MGN's quota (200 servers in active jobs) is taken, and is asked for once after
// MGN refused it; it starts once the first job ended. The answer to the third's StartTest is
// lost: MGN is asked for the job with the batch's tag, and it is recorded, not started twice.
func TestWaveInBatches(t *testing.T) {
	t.Parallel()
	w := mgnemu.GenerateWave("Wave 9", 450, 150, start)
	r := newRig(t, rigOptions{fleet: w.Servers, applications: w.Applications, waves: []mgnemu.Wave{w.Wave}, lose: []string{}})
	got := r.run(operator, "launch wave wave 9 test")
	contains(t, "answer", got, "Test launch of wave *Wave 9*: 432 servers in 3 jobs: job `", "the other 2 jobs start as MGN has room",
		"*Left out* (18 servers", "…and ")
	if n := len(r.mgn.Jobs()); n != 1 {
		t.Fatalf("jobs after the command: got %d, want 1", n)
	}
	id := r.follower.GroupCalls()[0]
	for range 3 {
		if err := r.h.StartBatches(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n, jobs := r.mgn.Calls("StartTest"), len(r.mgn.Jobs()); n != 2 || jobs != 1 {
		t.Errorf("while MGN has no room: %d StartTest calls and %d jobs, want 2 (one refused) and 1", n, jobs)
	}
	bs, _ := r.store.Batches(t.Context(), id)
	if bs[1].State != migration.BatchQueued || bs[1].Busy != 144 {
		t.Errorf("second batch: got %+v, want queued, refused while 144 servers were busy", bs[1])
	}
	// The first job ends: room frees up.
	r.clock.Advance(time.Minute)
	if err := r.h.StartBatches(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(r.mgn.Jobs()); n != 2 {
		t.Fatalf("jobs after the first ended: got %d, want 2", n)
	}
	r.loseIf(func(path string) bool { return path == "/StartTest" })
	r.clock.Advance(time.Minute)
	if err := r.h.StartBatches(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.loseIf(nil)
	jobs := r.mgn.Jobs()
	if len(jobs) != 3 || r.lost.Load() != 1 {
		t.Fatalf("after a lost answer: %d jobs (%d answers lost), want 3 (1)", len(jobs), r.lost.Load())
	}
	bs, _ = r.store.Batches(t.Context(), id)
	seen := map[string]int{}
	for i, b := range bs {
		if b.State != migration.BatchStarted || len(b.ServerIDs) != 144 {
			t.Errorf("batch %d: got state %s with %d servers, want started with 144", i+1, b.State, len(b.ServerIDs))
		}
		j := jobs[slices.IndexFunc(jobs, func(j mgnemu.Job) bool { return j.JobID == b.JobID })]
		if j.Tags[migration.TagBatch] != b.Key() || len(j.ParticipatingServers) != 144 {
			t.Errorf("job of batch %d: tags %v with %d servers, want the batch's key and 144", i+1, j.Tags, len(j.ParticipatingServers))
		}
		for _, p := range j.ParticipatingServers {
			seen[p.SourceServerID]++
		}
	}
	if len(seen) != 432 {
		t.Errorf("servers launched: got %d, want 432, each once", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("server %s launched %d times", id, n)
		}
	}
}

// TestWaveCutoverOneCard asks for the cutover of Wave 2: one card for db01, the one server
// ready for it, naming the others left out; the approver's double click starts it once.
func TestWaveCutoverOneCard(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	contains(t, "request", r.run(operator, `launch wave "Wave 2" cutover`), "The cutover of db01 waits for an approver other than you",
		"*Left out* (3 servers", "*app01*", "*mq01*", "*file01*")
	card := r.lastCard()
	id := cardID(t, r, card.TS)
	contains(t, "card", card.PlainText(), `Cutover requested: wave "Wave 2" (1 server)`, "to cut over 1 server of wave *Wave 2*",
		"*Left out*", "*file01*", "[Confirm cutover]")
	contains(t, "operator", r.click(operator, card.TS, render.ActionConfirm), "only the cutover approvers may confirm")
	var answers []string
	for _, cb := range []slack.InteractionCallback{r.clickOn(bob, card.TS, render.ActionConfirm), r.clickOn(approverIDs[0], card.TS, render.ActionConfirm)} {
		before := len(r.slack.Ephemerals(cb.User.ID))
		r.h.Interaction(t.Context(), cb)
		if eph := r.slack.Ephemerals(cb.User.ID); len(eph) > before {
			answers = append(answers, eph[len(eph)-1].PlainText())
		}
	}
	r.drawCards()
	job := r.onlyJob()
	if n := r.mgn.Calls("StartCutover"); n != 1 || !slices.Equal(participants(job), []string{mgnemu.SampleDB01}) {
		t.Fatalf("StartCutover calls %d for %v, want 1 for db01", n, participants(job))
	}
	contains(t, "winner", answers[0], "The cutover of wave *Wave 2*: 1 server in 1 job: job `"+job.JobID+"` started")
	contains(t, "second approver", answers[1], "already confirmed")
	c, err := r.store.Confirmation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Tags[migration.TagConfirmation] != c.ID || job.Tags[migration.TagBatch] != c.ID+"/1" || job.Tags[migration.TagApprovedBy] != bob {
		t.Errorf("job tags %v, want confirmation %s, its first batch and the approver", job.Tags, c.ID)
	}
	contains(t, "launched card", r.message(card.TS).PlainText(), "approved by <@U0BOB>", "1 server in 1 job: job `"+job.JobID+"` started", "its thread")
	lacks(t, "launched card", r.message(card.TS).PlainText(), "[Confirm cutover]")
}

// TestReadyWave marks Wave 2 ready for cutover: each server's outcome is reported.
func TestReadyWave(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	got := r.run(operator, `ready wave "Wave 2"`)
	contains(t, "answer", got, "Mark ready for cutover of wave *Wave 2*: 1 of 4 servers changed.", "*app01*", "is now ready for cutover",
		"*db01*", "is already ready for cutover", "*mq01*", "*file01*", "only after a test launch")
	if r.lifecycle(mgnemu.SampleApp01) != "READY_FOR_CUTOVER" || r.mgn.Calls("ChangeServerLifeCycleState") != 1 {
		t.Errorf("app01 %s after %d calls, want READY_FOR_CUTOVER after 1", r.lifecycle(mgnemu.SampleApp01), r.mgn.Calls("ChangeServerLifeCycleState"))
	}
	notice := r.channelMessages()[len(r.channelMessages())-1].PlainText()
	contains(t, "channel notice", notice, "<@U0OPER>: Mark ready for cutover of wave *Wave 2*", "*app01*")
	contains(t, "finalize", r.run(operator, `finalize wave "Wave 2"`), "no server of wave *Wave 2* can be finalized yet", "*app01*")
	contains(t, "jobs of a wave", r.run(eve, `jobs wave "Wave 2"`), "Recent launch jobs of wave Wave 2")
	contains(t, "audit of a wave", r.run(eve, `audit app billing`), "Audit log of application billing", "mark ready")
	if !strings.Contains(r.run(eve, "help"), `wave "Wave 2"`) {
		t.Error("help does not show the wave forms")
	}
}

// TestReminderWaveButton: the reminder's Launch test button of a wave launches the wave's
// test, as the command does.
func TestReminderWaveButton(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	ts, err := r.poster.Post(t.Context(), migrationChannel, bot.Message{Text: "reminder", Blocks: []slack.Block{
		slack.NewActionBlock("reminder", render.Button(render.ActionLaunchTest, "Launch test: Wave 1",
			migration.Group{Kind: migration.KindWave, ID: mgnemu.SampleWave1, Name: "Wave 1"}.Ref(), "primary")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "stranger", r.click(eve, ts, render.ActionLaunchTest), "only the cutover operators may launch a test")
	got := r.click(operator, ts, render.ActionLaunchTest)
	job := r.onlyJob()
	contains(t, "answer", got, "Test launch of wave *Wave 1*: 2 servers in 1 job: job `"+job.JobID+"` started", "*web02*")
	if want := sorted(mgnemu.SampleWeb01, mgnemu.SampleAPI01); !slices.Equal(participants(job), want) {
		t.Errorf("job's servers: got %v, want %v", participants(job), want)
	}
}

// readyWave is a generated wave of n servers, every one ready for cutover.
func readyWave(n int) mgnemu.GeneratedWave {
	w := mgnemu.GenerateWave("Wave 9", n, 150, start)
	ready := w.Servers[40] // a server of the mix that is ready for cutover
	for i := range w.Servers {
		s := &w.Servers[i]
		s.LifeCycle, s.DataReplicationInfo = ready.LifeCycle, ready.DataReplicationInfo
		if ready.LaunchedInstance != nil {
			li := *ready.LaunchedInstance
			li.EC2InstanceID = mgnemu.StableID("i-", s.SourceServerID+"/test")
			s.LaunchedInstance = &li
		}
	}
	return w
}

// A server of a wave archived between the card and the deciding click is left out, as one
// whose checks fail is; the others launch (read in chunks of MGN's 200), and the answer and
// the card name the one left out.
func TestWaveCutoverServerGone(t *testing.T) {
	t.Parallel()
	w := readyWave(250)
	r := newRig(t, rigOptions{fleet: w.Servers, applications: w.Applications, waves: []mgnemu.Wave{w.Wave}})
	contains(t, "request", r.run(operator, `launch wave "Wave 9" cutover`), "waits for an approver")
	card := r.lastCard()
	c, err := r.store.Confirmation(t.Context(), cardID0(t, card))
	if err != nil || len(c.ServerIDs) != 250 {
		t.Fatalf("confirmation: %d servers (%v), want 250", len(c.ServerIDs), err)
	}
	gone := c.ServerIDs[210]
	r.mgn.Update(gone, func(s *mgnemu.SourceServer) { s.IsArchived = true })
	answer := r.click(bob, card.TS, render.ActionConfirm)
	g, err := r.store.GroupLaunch(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.ServerIDs) != 249 || slices.Contains(g.ServerIDs, gone) {
		t.Errorf("launch of %d servers (the archived one among them: %v), want the 249 others", len(g.ServerIDs), slices.Contains(g.ServerIDs, gone))
	}
	if n := len(r.mgn.Jobs()); n != 1 {
		t.Errorf("jobs started at the click: got %d, want 1 (the second waits for room)", n)
	}
	contains(t, "answer", answer, "249 servers in 2 jobs: job `mgnjob-", "the other job starts as MGN has room",
		"*Left out* (1 server", gone+"`: MGN no longer has this server (archived or deleted)")
	contains(t, "card", r.message(card.TS).PlainText(), "approved by <@U0BOB>", "249 servers in 2 jobs")
}

// A wave's finalize: a server archived between the card and the click is reported as not
// finalized, and the others are finalized.
func TestWaveFinalizeServerGone(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	for _, id := range []string{mgnemu.SampleDB01, mgnemu.SampleApp01} {
		r.mgn.Update(id, func(s *mgnemu.SourceServer) {
			s.LifeCycle.State = "CUTTING_OVER"
			s.LifeCycle.LastCutover.Initiated = mgnemu.LaunchInitiated{APICallDateTime: mgnemu.FormatTime(start.Add(-time.Hour)), JobID: "mgnjob-0000000000000cut"}
		})
	}
	contains(t, "request", r.run(operator, `finalize wave "Wave 2"`), "waits for an approver")
	card := r.lastCard()
	r.mgn.Update(mgnemu.SampleApp01, func(s *mgnemu.SourceServer) { s.IsArchived = true })
	got := r.click(bob, card.TS, render.ActionConfirm)
	contains(t, "answer", got, "Finalize:", "*db01*", "cutover finalized",
		"`"+mgnemu.SampleApp01+"`: not finalized: MGN no longer has this server (archived or deleted)")
	if n := r.mgn.Calls("FinalizeCutover"); n != 1 {
		t.Errorf("FinalizeCutover: got %d, want 1 (db01)", n)
	}
	if st := r.lifecycle(mgnemu.SampleDB01); st != "CUTOVER" {
		t.Errorf("db01 lifecycle: got %s, want CUTOVER", st)
	}
}
