package notifier

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
)

const step = 500 * time.Millisecond

func TestTestLaunchThread(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", nil)
	job := r.startTest(t, map[string]string{migration.TagRequestedBy: "U1"}, mgnemu.SampleWeb01)

	parentTS, err := n.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	parents := r.parents()
	if len(parents) != 1 || parents[0].TS != parentTS {
		t.Fatalf("got parents %+v, want one with ts %s", parents, parentTS)
	}
	contains(t, "parent", parents[0].Text, "Test launch of web01 requested by <@U1> — job `"+job.ID+"`")

	r.drive(t, step, r.jobDone(t, job.ID), n)
	final := r.checkThread(t, job.ID, parentTS)

	p := r.participant(t, job.ID, mgnemu.SampleWeb01)
	target := r.instance(t, p.LaunchedEc2InstanceID)
	srv, _ := r.mgn.Server(mgnemu.SampleWeb01)
	text := final.PlainText()
	contains(t, "final reply", text,
		"web01*: ✅ launched `"+target.InstanceID+"` (running)",
		"private "+target.PrivateIPAddress, "public "+target.PublicIPAddress,
		"conversion server `i-", "(terminated)",
		"replication server `"+srv.DataReplicationInfo.ReplicatorID+"` (running)")
	if target.PrivateIPAddress == "" || target.PublicIPAddress == "" {
		t.Errorf("emulator gave the target no IPs: %+v", target)
	}
	var buttons []string
	for _, b := range final.Buttons() {
		buttons = append(buttons, b.ActionID+"="+b.Value)
	}
	want := []string{render.ActionMarkReady + "=" + mgnemu.SampleWeb01, render.ActionRevertTest + "=" + mgnemu.SampleWeb01}
	if !slices.Equal(buttons, want) {
		t.Errorf("final reply buttons: got %v, want %v", buttons, want)
	}

	parent := r.parents()[0]
	contains(t, "parent at the end", parent.PlainText(), "Launched after", "web01*: ✅ launched `"+target.InstanceID+"`")
	if parent.Edits == 0 {
		t.Error("parent was never updated")
	}
	sj, err := r.store.Job(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sj.Outcome != "launched" || sj.ParentTS != parentTS || sj.RequestedBy != "U1" || sj.ApprovedBy != nil || sj.Kind != "test" {
		t.Errorf("stored job: got %+v, want outcome launched, parent %s, requested by U1, no approver, kind test", sj, parentTS)
	}
	contains(t, "final reply", final.Text, "Test launch of web01 finished: launched — requested by <@U1>")
	if len(r.parents()) != 1 {
		t.Errorf("got %d top-level messages, want 1", len(r.parents()))
	}
}

func TestCutoverThreadOffersFinalize(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", nil)
	job, err := r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeCutover, ServerIDs: []string{mgnemu.SampleDB01}, RequestedBy: "U2", Confirmation: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	// Ann requested it, Bob approved it; the thread says both, never "started by" the approver.
	parentTS, err := n.Follow(t.Context(), job, "U2", "U3")
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "parent", r.parents()[0].Text, "Cutover of db01 requested by <@U2>, approved by <@U3> — job")
	r.drive(t, step, r.jobDone(t, job.ID), n)
	final := r.checkThread(t, job.ID, parentTS)
	contains(t, "final reply", final.PlainText(), "Cutover of db01 finished: launched* — requested by <@U2>, approved by <@U3>",
		"db01*: ✅ launched", "termination protection", "approvers")
	contains(t, "parent at the end", r.parents()[0].PlainText(), "requested by <@U2>, approved by <@U3>")

	buttons := final.Buttons()
	if len(buttons) != 1 {
		t.Fatalf("got buttons %+v, want one Finalize", buttons)
	}
	b := buttons[0]
	if b.ActionID != render.ActionFinalize || b.Value != mgnemu.SampleDB01 || b.Style != "danger" || !b.Confirm {
		t.Errorf("got button %+v, want %s value %s, danger, with a confirm dialog", b, render.ActionFinalize, mgnemu.SampleDB01)
	}
	raw := string(final.Blocks[len(final.Blocks)-1])
	contains(t, "finalize confirm dialog", raw, "termination protection")
}

func TestConversionFailureReportedWhileJobCompletes(t *testing.T) {
	const rawError = "Client.UnauthorizedOperation: You are not authorized to perform this operation (RunInstances m5.large)"
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", nil)
	r.mgn.FailPhase(mgnemu.SampleWeb01, "CONVERSION_FAIL", rawError)
	job := r.startTest(t, nil, mgnemu.SampleWeb01, mgnemu.SampleAPI01)
	parentTS, err := n.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	r.drive(t, step, r.jobDone(t, job.ID), n)
	final := r.checkThread(t, job.ID, parentTS)

	lines, _ := r.thread(t, parentTS)
	if !slices.Contains(lines, "❌ web01: conversion failed: "+rawError) {
		t.Errorf("thread lines %q: want the conversion failure with its raw error", lines)
	}
	var status string
	for _, j := range r.mgn.Jobs() {
		if j.JobID == job.ID {
			status = j.Status
		}
	}
	if status != "COMPLETED" {
		t.Errorf("emulator job status: got %s, want COMPLETED", status)
	}
	contains(t, "final reply", final.PlainText(), "1 of 2 launched", "web01*: ❌ failed: web01: conversion failed: "+rawError, "api01*: ✅ launched")
	for _, b := range final.Buttons() {
		if b.Value != mgnemu.SampleAPI01 {
			t.Errorf("button %s value: got %q, want only the launched server %s", b.ActionID, b.Value, mgnemu.SampleAPI01)
		}
	}
	contains(t, "parent", r.parents()[0].PlainText(), "1 of 2 launched", "❌ failed")
}

// TestFaultsLoseNothing follows a two-server test launch through Slack 429 storms, answers
// Slack loses after taking a post, and AWS throttling and 5xx answers, and requires every
// log event in the thread once, in order. When AWS cannot be read as Follow opens the thread,
// Follow fails but the job is stored, and the next pass opens the thread.
func TestFaultsLoseNothing(t *testing.T) {
	tests := []struct {
		name     string
		attempts int                    // the notifier's next pass is the retry
		inject   func(r *rig, pass int) // pass 0: before Follow
	}{
		{"slack 429 storm", 0, func(r *rig, pass int) {
			if pass == 3 || pass == 14 {
				r.slack.RateLimit("chat.postMessage", 2, 0)
			}
			if pass == 20 {
				r.slack.RateLimit("chat.update", 1, 0)
			}
		}},
		{"slack answers lost", 0, func(r *rig, pass int) {
			if pass > 0 && pass%3 == 0 {
				r.slack.LoseReplies("chat.postMessage", 1) // the poster finds the post
			}
		}},
		{"aws throttling", 1, func(r *rig, pass int) {
			if pass == 0 {
				r.mgn.Throttle("DescribeSourceServers", 1) // Follow cannot name the servers
				return
			}
			if pass > 40 {
				return // the storm ends
			}
			switch pass % 4 {
			case 0:
				r.mgn.Throttle("DescribeJobLogItems", 2)
			case 1:
				r.mgn.Throttle("DescribeJobs", 1)
				r.mgn.Throttle("DescribeInstances", 1)
			case 2:
				r.mgn.Fail("DescribeJobLogItems", 1, 500, "InternalServerException")
				r.mgn.Throttle("DescribeSourceServers", 1)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{attempts: tt.attempts})
			n := r.notifier(t, r.store, "a", nil)
			job := r.startTest(t, nil, mgnemu.SampleWeb01, mgnemu.SampleAPI01)
			tt.inject(r, 0)
			parentTS, err := n.Follow(t.Context(), job, "U1")
			if err != nil && tt.attempts == 0 {
				t.Fatal(err)
			}
			if err != nil {
				// One attempt a call: a transient AWS error fails Follow after the job was
				// stored, and the notifier's next pass opens the thread.
				t.Logf("Follow: %v; the next pass opens the thread", err)
			}
			pass := 0
			r.drive(t, step, func() bool {
				pass++
				tt.inject(r, pass)
				return r.jobDone(t, job.ID)()
			}, n)
			parents := r.parents()
			if len(parents) != 1 {
				t.Fatalf("got %d top-level messages, want 1", len(parents))
			}
			if parentTS == "" {
				parentTS = parents[0].TS
			}
			r.checkThread(t, job.ID, parentTS)
		})
	}
}

// TestRestartResumesThread stops following midway (a crash: the lease is not released)
// and lets a second notifier on the same database finish the thread.
func TestRestartResumesThread(t *testing.T) {
	r := newRig(t, rigOptions{})
	first := r.notifier(t, r.store, "first", nil)
	job := r.startTest(t, nil, mgnemu.SampleWeb01, mgnemu.SampleAPI01)
	parentTS, err := first.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	r.drive(t, step, func() bool { lines, _ := r.thread(t, parentTS); return len(lines) >= 6 }, first)

	second := r.notifier(t, r.openStore(t), "second", nil)
	r.clock.Advance(second.leaseTTL()) // the first one's lease runs out
	r.drive(t, step, r.jobDone(t, job.ID), second)
	r.checkThread(t, job.ID, parentTS)
	if got := len(r.parents()); got != 1 {
		t.Errorf("got %d top-level messages, want 1 (the same thread)", got)
	}
}

// TestLeaseOneReplicaPerJob runs two notifiers on one database at once, then stops one.
func TestLeaseOneReplicaPerJob(t *testing.T) {
	r := newRig(t, rigOptions{})
	a := r.notifier(t, r.store, "a", nil)
	b := r.notifier(t, r.openStore(t), "b", nil)
	job1 := r.startTest(t, nil, mgnemu.SampleWeb01)
	job2 := r.startTest(t, nil, mgnemu.SampleAPI01)
	ts1, err := a.Follow(t.Context(), job1, "U1")
	if err != nil {
		t.Fatal(err)
	}
	ts2, err := b.Follow(t.Context(), job2, "U1")
	if err != nil {
		t.Fatal(err)
	}
	both := func(t *testing.T) {
		var wg sync.WaitGroup
		for _, n := range []*Notifier{a, b} {
			wg.Go(func() { _ = n.PollOnce(context.WithoutCancel(t.Context())) })
		}
		wg.Wait()
	}
	for range 8 {
		r.clock.Advance(step)
		both(t)
	}
	// a stops; b takes over job1 once a's lease expires.
	r.clock.Advance(b.leaseTTL())
	r.drive(t, step, func() bool { return r.jobDone(t, job1.ID)() && r.jobDone(t, job2.ID)() }, b)
	r.checkThread(t, job1.ID, ts1)
	r.checkThread(t, job2.ID, ts2)
	if got := len(r.parents()); got != 2 {
		t.Errorf("got %d top-level messages, want 2", got)
	}
}

// TestCombinesWhenBehind checks that a thread that fell behind gets its events combined,
// in order, instead of one reply per event.
func TestCombinesWhenBehind(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", func(c *Config) { c.CombineAfter = 3 })
	job := r.startTest(t, nil, mgnemu.SampleWeb01, mgnemu.SampleAPI01, mgnemu.SampleApp01)
	parentTS, err := n.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	r.drive(t, 10*time.Second, r.jobDone(t, job.ID), n) // big steps: many events per pass
	r.checkThread(t, job.ID, parentTS)
	replies := r.slack.Replies(channel, parentTS)
	lines, _ := r.thread(t, parentTS)
	if len(replies)-1 >= len(lines) {
		t.Errorf("got %d replies for %d events, want fewer replies than events", len(replies)-1, len(lines))
	}
	for _, m := range replies {
		if strings.Count(m.Text, "\n") > maxReplyLines {
			t.Errorf("reply of %d lines, want at most %d", strings.Count(m.Text, "\n")+1, maxReplyLines)
		}
	}
}

func TestExternalLaunchGetsThread(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", nil)
	if err := n.WatchOnce(t.Context()); err != nil { // baseline
		t.Fatal(err)
	}
	if got := len(r.slack.Messages(channel)); got != 0 {
		t.Fatalf("baseline posted %d messages, want 0", got)
	}
	external := r.startTest(t, nil, mgnemu.SampleWeb01) // as from the console
	ours := r.startTest(t, map[string]string{migration.TagRequestedBy: "U7"}, mgnemu.SampleAPI01)
	r.clock.Advance(step)
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The handler's Follow loses the race with the watcher: no second parent.
	oursTS, err := n.Follow(t.Context(), ours, "U7")
	if err != nil {
		t.Fatal(err)
	}
	parents := r.parents()
	if len(parents) != 2 {
		t.Fatalf("got %d parents, want 2: %+v", len(parents), parents)
	}
	contains(t, "external parent", parents[0].Text, "Test launch of web01 started outside cutoverbot (console or API) — job `"+external.ID+"`")
	// The watcher posted the parent from the job's tag, which it cannot verify.
	contains(t, "our parent", parents[1].Text, "Test launch of api01 tagged as requested by <@U7> — job")
	if oursTS != parents[1].TS {
		t.Errorf("Follow after discovery: got ts %q, want the watcher's parent %q", oursTS, parents[1].TS)
	}
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(r.parents()); got != 2 {
		t.Errorf("after another watch: got %d parents, want 2", got)
	}
	r.drive(t, step, func() bool { return r.jobDone(t, external.ID)() && r.jobDone(t, ours.ID)() }, n)
	extFinal := r.checkThread(t, external.ID, parents[0].TS)
	final := r.checkThread(t, ours.ID, parents[1].TS)
	// Follow told the notifier who asked: the parent was edited, and the final report says so.
	parents = r.parents()
	contains(t, "our parent at the end", parents[1].PlainText(), "*Test launch* of api01 requested by <@U7> — job")
	if strings.Contains(parents[1].PlainText(), "tagged") {
		t.Errorf("our parent at the end: %q, want no tag wording once the requester is known", parents[1].PlainText())
	}
	contains(t, "our final report", final.Text, "requested by <@U7>")
	contains(t, "external final report", extFinal.Text, "started outside cutoverbot (console or API)")
}

// TestTaggedLaunchShownAsTag starts a job outside the bot with a requester tag full of
// Markdown: the thread shows the tag as a tag, literally, never as who started the job.
func TestTaggedLaunchShownAsTag(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", nil)
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	job := r.startTest(t, map[string]string{migration.TagRequestedBy: "*ann* _the_ ~admin~ `x` <!channel>"}, mgnemu.SampleWeb01)
	r.clock.Advance(step)
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	parents := r.parents()
	if len(parents) != 1 {
		t.Fatalf("got %d parents, want 1", len(parents))
	}
	const literal = "tagged as requested by `*ann* _the_ ~admin~ 'x' &lt;!channel&gt;`"
	contains(t, "parent", parents[0].Text, "Test launch of web01 "+literal+" — job")
	r.drive(t, step, r.jobDone(t, job.ID), n)
	final := r.checkThread(t, job.ID, parents[0].TS)
	contains(t, "final report", final.Text, literal)
	sj, err := r.store.Job(t.Context(), job.ID)
	if err != nil || sj.RequestedBy != "" || sj.TaggedBy != "*ann* _the_ ~admin~ `x` <!channel>" {
		t.Errorf("stored job: %+v, %v; want no requester and the tag as MGN has it", sj, err)
	}
}

func TestBaselineRecordsEndedJobsSilently(t *testing.T) {
	r := newRig(t, rigOptions{})
	old := r.startTest(t, nil, mgnemu.SampleWeb01)
	r.clock.Advance(time.Hour) // the job ends before the bot starts
	n := r.notifier(t, r.store, "a", nil)
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.slack.Messages(channel); len(got) != 0 {
		t.Errorf("baseline posted %+v, want nothing", got)
	}
	sj, err := r.store.Job(t.Context(), old.ID)
	if err != nil || !sj.Done {
		t.Errorf("stored job: got %+v, %v; want it recorded as done", sj, err)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", func(c *Config) {
		c.PollInterval, c.WatchInterval = 10*time.Millisecond, 10*time.Millisecond
	})
	job := r.startTest(t, nil, mgnemu.SampleWeb01)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	ts, err := n.Follow(ctx, job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(3 * time.Second) // JOB_START and the first events are logged
	wait, stop := context.WithTimeout(t.Context(), 10*time.Second)
	defer stop()
	if err := r.slack.WaitFor(wait, func(*slackemu.Server) bool { return len(r.slack.Replies(channel, ts)) > 0 }); err != nil {
		t.Fatalf("no thread reply from Run: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Run: got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// Run released its lease: another replica takes the job at once.
	ok, err := r.store.AcquireLease(t.Context(), leaseName(job.ID), "other", time.Minute, r.clock.Now())
	if err != nil || !ok {
		t.Errorf("lease after Run returned: got %v, %v; want it free", ok, err)
	}
}

// Run polls on the notifier's clock: stepping it drives the thread to its final report, with
// no wait for the poll interval in real time.
func TestRunPollsOnTheClock(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", func(c *Config) { c.PollInterval, c.WatchInterval = time.Hour, time.Hour })
	job := r.startTest(t, map[string]string{migration.TagRequestedBy: "U1"}, mgnemu.SampleWeb01)
	parentTS, err := n.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	testrig.WaitUntil(t, "Run's tickers on the clock", 0, func() bool { return r.clock.Waiters() >= 2 })
	for range 100 {
		if r.jobDone(t, job.ID)() {
			break
		}
		// An hour per poll: the job, on the same clock, ends in a few polls.
		polls := r.mgn.Calls("DescribeJobLogItems")
		r.clock.Advance(time.Hour)
		testrig.WaitUntil(t, "the poll the step triggers", 0, func() bool {
			return r.mgn.Calls("DescribeJobLogItems") > polls || r.jobDone(t, job.ID)()
		})
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: got %v, want context.Canceled", err)
	}
	r.checkThread(t, job.ID, parentTS)
}
