package notifier

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// TestPostLaunchActionsReported launches web01 (whose smoke test, which must succeed for
// cutover, fails) and app01 (which runs no action): the final report comes at the job's end,
// then, once web01's actions ended, one report of them, broadcast, naming MGN's reason; the
// job's outcome says web01 is not verified.
func TestPostLaunchActionsReported(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.mgn.FailAction(mgnemu.SampleWeb01, mgnemu.SampleWebSmokeTest, "HTTP GET https://localhost/ answered 503")
	n := r.notifier(t, r.store, "a", nil)
	job := r.startTest(t, nil, mgnemu.SampleWeb01, mgnemu.SampleApp01)
	parentTS, err := n.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	r.drive(t, step, r.jobDone(t, job.ID), n)
	r.checkThread(t, job.ID, parentTS)
	reports := r.verified(parentTS)
	if len(reports) != 1 {
		t.Fatalf("post-launch reports: got %d, want 1", len(reports))
	}
	got := reports[0]
	contains(t, "post-launch report", got.PlainText(), "Post-launch actions of Test launch of web01, app01: 0 of 1 servers verified, 1 not verified",
		"*web01*: ⚠️ launched, not verified: "+mgnemu.SampleWebSmokeTest+" failed: HTTP GET https://localhost/ answered 503 (must succeed for cutover); "+
			mgnemu.SampleWebCWAgent+" succeeded")
	if strings.Contains(got.PlainText(), "app01") == strings.Contains(got.PlainText(), "*app01*") && strings.Contains(got.PlainText(), "*app01*") {
		t.Errorf("post-launch report names app01, which runs no action:\n%s", got.PlainText())
	}
	if !got.Broadcast {
		t.Error("a report with a server not verified is not broadcast")
	}
	contains(t, "parent", r.parents()[0].PlainText(), "web01*: ⚠️ launched `", "not verified")
	sj, err := r.store.Job(t.Context(), job.ID)
	if err != nil || sj.Outcome != "launched, 1 not verified" {
		t.Errorf("stored outcome: got %q, %v; want launched, 1 not verified", sj.Outcome, err)
	}
	if n := r.mgn.Calls("ListSourceServerActions"); n != 2 {
		t.Errorf("ListSourceServerActions calls: got %d, want one per launched server (2)", n)
	}
}

// TestPostLaunchWaitBounded: when the actions do not end within VerifyWait, they are reported
// as they stand, once, and the job is done.
func TestPostLaunchWaitBounded(t *testing.T) {
	r := newRig(t, rigOptions{})
	n := r.notifier(t, r.store, "a", func(c *Config) { c.VerifyWait = 500 * time.Millisecond })
	job := r.startTest(t, nil, mgnemu.SampleWeb01)
	parentTS, err := n.Follow(t.Context(), job, "U1")
	if err != nil {
		t.Fatal(err)
	}
	r.drive(t, 250*time.Millisecond, r.jobDone(t, job.ID), n)
	reports := r.verified(parentTS)
	if len(reports) != 1 {
		t.Fatalf("post-launch reports: got %d, want 1", len(reports))
	}
	contains(t, "report", reports[0].PlainText(), "0 of 1 servers verified", "*web01*: ⏳")
	if reports[0].Broadcast {
		t.Error("an unfinished report without failures is broadcast")
	}
}

// groupRig is a group launch stored as the handlers store it, with its batches started in
// MGN as they would start them.
type groupRig struct {
	*rig
	g       migration.GroupLaunch
	batches []migration.Batch
}

func (r *rig) group(t *testing.T, mode migration.Mode, ids []string, left []migration.LeftOut) *groupRig {
	t.Helper()
	g := migration.GroupLaunch{ID: fmt.Sprint("g", requests.Add(1)), Mode: mode, Target: migration.Group{Kind: migration.KindWave, ID: "wave-x", Name: "Wave X"},
		RequestedBy: "U1", ServerIDs: ids, LeftOut: left, CreatedAt: r.clock.Now()}
	batches := migration.SplitBatches(g.ID, ids)
	if _, _, err := r.store.CreateGroupLaunch(t.Context(), g, batches, "", r.clock.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	return &groupRig{rig: r, g: g, batches: batches}
}

// start starts the group's next batch in MGN and records it, as the handlers do.
func (gr *groupRig) start(t *testing.T) migration.Job {
	t.Helper()
	c, ok, err := gr.store.ClaimBatch(t.Context(), gr.g.ID, "handlers", gr.clock.Now(), time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim a batch: %v %v", ok, err)
	}
	job, err := gr.aws.Launch(t.Context(), migration.LaunchRequest{Mode: gr.g.Mode, ServerIDs: c.ServerIDs, RequestedBy: "U1", Request: gr.g.ID, Batch: c.Key()})
	if err != nil {
		t.Fatal(err)
	}
	if err := gr.store.CompleteBatch(t.Context(), c.Key(), store.BatchOutcome{State: migration.BatchStarted, JobID: job.ID}, c.Fence, gr.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return job
}

func (gr *groupRig) done(t *testing.T) func() bool {
	return func() bool {
		g, err := gr.store.GroupLaunch(t.Context(), gr.g.ID)
		if err != nil {
			t.Fatal(err)
		}
		return g.Done
	}
}

// eventLines are the thread's replies for jobID's log, one line per event, in order.
func (gr *groupRig) eventLines(parentTS, jobID string) []string {
	var out []string
	for _, m := range gr.slack.Replies(channel, parentTS) {
		if md := m.Metadata; md != nil && md.EventType == eventJobEvents && md.EventPayload["job_id"] == jobID {
			out = append(out, strings.Split(m.Text, "\n")...)
		}
	}
	return out
}

// withMetadata returns the thread's replies carrying the event type.
func (gr *groupRig) withMetadata(parentTS, eventType string) []slackemu.Message {
	var out []slackemu.Message
	for _, m := range gr.slack.Replies(channel, parentTS) {
		if m.Metadata != nil && m.Metadata.EventType == eventType {
			out = append(out, m)
		}
	}
	return out
}

// checkGroupThread checks a finished group launch's thread: one parent, each job's log once
// in order, one closing reply per job, and every server of the launch in the final report
// exactly once, in parts of at most groupPartLines, the first broadcast.
func (gr *groupRig) checkGroupThread(t *testing.T, jobs []migration.Job, servers int) (parent slackemu.Message, final []slackemu.Message) {
	t.Helper()
	parents := gr.parents()
	if len(parents) != 1 || parents[0].Metadata == nil || parents[0].Metadata.EventType != eventGroupParent {
		t.Fatalf("top-level messages: got %d, want the group's one parent", len(parents))
	}
	parent = parents[0]
	for _, j := range jobs {
		if got, want := gr.eventLines(parent.TS, j.ID), gr.wantLines(t, j.ID); !slices.Equal(got, want) {
			t.Errorf("events of %s in the thread: got %d lines, want %d, each once in log order", j.ID, len(got), len(want))
		}
	}
	if n := len(gr.withMetadata(parent.TS, eventJobFinal)); n != len(jobs) {
		t.Errorf("job closing replies: got %d, want %d", n, len(jobs))
	}
	final = gr.withMetadata(parent.TS, eventGroupFinal)
	if want := (servers + groupPartLines - 1) / groupPartLines; len(final) != want {
		t.Fatalf("final report parts: got %d, want %d", len(final), want)
	}
	seen := map[string]int{}
	for i, m := range final {
		if m.Broadcast != (i == 0) {
			t.Errorf("final part %d broadcast %v, want only the first", i+1, m.Broadcast)
		}
		for _, l := range strings.Split(m.PlainText(), "\n") {
			if _, rest, ok := strings.Cut(l, " *"); ok {
				name, _, _ := strings.Cut(rest, "*")
				seen[name]++
			}
		}
	}
	named := 0
	for name, k := range seen {
		if strings.HasPrefix(name, "Test launch") || strings.HasPrefix(name, "Cutover") {
			continue
		}
		named++
		if k != 1 {
			t.Errorf("final report names %s %d times, want once", name, k)
		}
	}
	if named != servers {
		t.Errorf("final report names %d servers, want %d", named, servers)
	}
	return parent, final
}

// TestGroupThread follows a test launch of three servers of a wave, one left out, in one
// thread: the parent lists every server's state and ends with the counts; the final report
// lists problems first: the left-out server, then web01, not verified.
func TestGroupThread(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.mgn.FailAction(mgnemu.SampleWeb01, mgnemu.SampleWebSmokeTest, "HTTP 503")
	n := r.notifier(t, r.store, "a", nil)
	gr := r.group(t, migration.ModeTest, []string{mgnemu.SampleWeb01, mgnemu.SampleAPI01, mgnemu.SampleApp01},
		[]migration.LeftOut{{ServerID: mgnemu.SampleWeb02, Reason: "Replication: Initial sync 63%"}})
	job := gr.start(t)
	ts, err := n.FollowGroup(t.Context(), gr.g.ID)
	if err != nil || ts == "" {
		t.Fatalf("FollowGroup: %q, %v", ts, err)
	}
	if again, err := n.FollowGroup(t.Context(), gr.g.ID); err != nil || again != ts {
		t.Errorf("FollowGroup again: %q, %v; want the same parent %q", again, err, ts)
	}
	// The watcher finds the batch's job in MGN and leaves it to its group's thread.
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	contains(t, "parent at the start", r.parents()[0].PlainText(), "*Test launch of wave Wave X* requested by <@U1> — 3 servers in 1 job",
		"⚠️ *web02*: left out — Replication: Initial sync 63%")
	r.drive(t, step, gr.done(t), n)
	parent, final := gr.checkGroupThread(t, []migration.Job{job}, 4)
	text := final[0].PlainText()
	contains(t, "final report", text, "Test launch of wave Wave X finished:", "1 left out", "1 not verified", "2 launched",
		"requested by <@U1>", "HTTP 503 (must succeed for cutover)", "private ", "public ")
	if i, j, k := strings.Index(text, "*web01*"), strings.Index(text, "*web02*"), strings.Index(text, "*api01*"); i < 0 || j < 0 || i > k || j > k {
		t.Errorf("final report: want web01 (not verified) and web02 (left out) before the others:\n%s", text)
	}
	if !hasAction(final[len(final)-1], "mark_ready") {
		t.Error("the final report of a test offers no Mark ready button")
	}
	contains(t, "parent at the end", parent.PlainText(), "1 left out", "1 not verified", "2 launched")
	if n := len(gr.withMetadata(parent.TS, eventJobVerified)); n != 1 {
		t.Errorf("post-launch reports: got %d, want 1", n)
	}
	if g, _ := r.store.GroupLaunch(t.Context(), gr.g.ID); !strings.Contains(g.Outcome, "2 launched") {
		t.Errorf("stored outcome: %q, want the counts", g.Outcome)
	}
}

func hasAction(m slackemu.Message, actionID string) bool {
	return slices.ContainsFunc(m.Buttons(), func(b slackemu.Button) bool { return b.ActionID == actionID })
}

// TestGroupThreadInBatches follows a 300-server launch in two jobs, the second started after
// the first ended, and has the replica writing the thread die in the middle of the second:
// another replica takes the group over and the thread still holds every event once, each
// job's closing reply once, and the final report, in parts, once, naming every server once.
func TestGroupThreadInBatches(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dsn string) {
		fleet := launchable(mgnemu.GenerateFleet(400, epoch), 300)
		r := newRig(t, rigOptions{servers: fleet, dsn: dsn, maxActive: 400})
		var ids []string
		for _, s := range fleet {
			ids = append(ids, s.SourceServerID)
		}
		first := r.notifier(t, r.store, "first", nil)
		gr := r.group(t, migration.ModeTest, ids, nil)
		jobs := []migration.Job{gr.start(t)}
		if _, err := first.FollowGroup(t.Context(), gr.g.ID); err != nil {
			t.Fatal(err)
		}
		r.drive(t, 5*time.Second, func() bool {
			sj, err := r.store.Job(t.Context(), jobs[0].ID)
			return err == nil && sj.Done
		}, first)
		jobs = append(jobs, gr.start(t))
		r.drive(t, 2*time.Second, func() bool { return len(gr.eventLines(gr.parents()[0].TS, jobs[1].ID)) > 100 }, first)

		// The first replica dies; the second takes over once its lease ran out.
		second := r.notifier(t, r.openStore(t), "second", nil)
		r.clock.Advance(second.leaseTTL())
		r.drive(t, 5*time.Second, gr.done(t), second)
		parent, _ := gr.checkGroupThread(t, jobs, 300)
		contains(t, "parent at the end", parent.PlainText(), "300 launched")
		if strings.Contains(parent.PlainText(), "srv-") {
			t.Errorf("parent at the end lists servers without a problem:\n%s", parent.PlainText())
		}
		if parent.Edits == 0 {
			t.Error("the parent was never edited")
		}
	})
}
