package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// The crash tests run `cutoverbot run` as a child process (see TestMain), SIGKILL it at chosen
// moments and start it again on the same store, while the emulators keep running in the test
// process. MGN's jobs move on a manual clock, so "mid-job" is a known point of the job log. A
// kill may fall anywhere, also between Slack taking a reply and the bot saving its progress
// (TestCrashWhileSlackAnswers holds Slack's answer to make sure it does): the restarted bot
// reads the thread back and posts nothing twice.
//
// With FastPace a single-server launch logs, at these clock offsets from its start:
//
//	0.5s JOB_START, CLEANUP_START        (2 items)
//	1.5s CLEANUP_END, SNAPSHOT_START     (4)
//	3.5s SNAPSHOT_END, CONVERSION_START  (6)
//	6.5s CONVERSION_END, LAUNCH_START    (8)
//	9.5s JOB_END                         (9)
//
// The clock moves at most two items at a time, so that every item gets its own reply (the
// notifier combines a backlog of more than five into one).

// eventWords is what the thread reply of each job log event says.
var eventWords = map[string]string{
	"JOB_START":        "Job started",
	"CLEANUP_START":    "removing instances from earlier launches",
	"CLEANUP_END":      "instances from earlier launches removed",
	"SNAPSHOT_START":   "taking the final snapshot",
	"SNAPSHOT_END":     "snapshot taken",
	"CONVERSION_START": "converter started",
	"CONVERSION_END":   "conversion finished",
	"LAUNCH_START":     "launching the target instance",
	"JOB_END":          "Job ended",
}

// jobAt moves MGN's clock by d, which brings the job log to the given number of items.
func (e *e2e) jobAt(jobID string, d time.Duration, items int) {
	e.t.Helper()
	e.clock.Advance(d)
	log, _ := e.sb.mgn.JobLog(jobID)
	if len(log) != items {
		e.t.Fatalf("job log has %d items after the clock moved, want %d", len(log), items)
	}
}

// onlyJob waits until MGN has exactly one job and returns it.
func (e *e2e) onlyJob() mgnemu.Job {
	e.t.Helper()
	testrig.WaitUntil(e.t, "the launch job", 0, func() bool { return len(e.sb.mgn.Jobs()) > 0 })
	jobs := e.sb.mgn.Jobs()
	if len(jobs) != 1 {
		e.t.Fatalf("MGN has %d jobs, want 1: %+v", len(jobs), jobs)
	}
	return jobs[0]
}

// parents returns the top-level messages that open a thread for jobID ("Test launch of web01
// started by … — job `mgnjob-…`").
func (e *e2e) parents(jobID string) []slackemu.Message {
	var out []slackemu.Message
	for _, m := range e.channel() {
		if m.ThreadTS == "" && strings.Contains(m.Text, "job `"+jobID+"`") &&
			(strings.HasPrefix(m.Text, "Test launch of ") || strings.HasPrefix(m.Text, "Cutover of ")) {
			out = append(out, m)
		}
	}
	return out
}

// waitParent waits for the thread parent of jobID.
func (e *e2e) waitParent(jobID string) slackemu.Message {
	e.t.Helper()
	e.wait(func(*slackemu.Server) bool { return len(e.parents(jobID)) > 0 }, "the thread parent of "+jobID)
	return e.parents(jobID)[0]
}

// waitReplies waits until the thread has n replies and the bot has started the job poll after
// the one that posted the last of them, so that its progress is saved. It fails if the thread
// has more than n replies.
func (e *e2e) waitReplies(parentTS string, n int) {
	e.t.Helper()
	e.waitPosted(parentTS, n)
	reads := e.sb.mgn.Calls("DescribeJobLogItems")
	testrig.WaitUntil(e.t, "the next job log read", 0, func() bool { return e.sb.mgn.Calls("DescribeJobLogItems") > reads })
	if got := e.sb.slack.Replies(sandboxChannel, parentTS); len(got) != n {
		e.t.Fatalf("thread has %d replies, want %d:\n%s", len(got), n, replyTexts(got))
	}
}

// waitPosted waits until Slack holds n thread replies, whether or not the bot has heard back
// or saved its progress: a kill now may fall between the two.
func (e *e2e) waitPosted(parentTS string, n int) {
	e.t.Helper()
	e.wait(func(s *slackemu.Server) bool { return len(s.Replies(sandboxChannel, parentTS)) >= n },
		fmt.Sprintf("%d thread replies", n))
}

// waitFinal waits until the thread of a job whose log has items items ends with its final
// reply.
func (e *e2e) waitFinal(parentTS string, items int) {
	e.t.Helper()
	e.wait(func(s *slackemu.Server) bool {
		r := s.Replies(sandboxChannel, parentTS)
		return len(r) > items || (len(r) > 0 && r[len(r)-1].Broadcast)
	}, "the final report")
}

// watchPasses waits until the bot started n more passes of its server watcher: each pass reads
// the servers, then lists the jobs (one DescribeJobs call), so that the second of them began
// after this call.
func (e *e2e) watchPasses(n int) {
	e.t.Helper()
	from := e.sb.mgn.Calls("DescribeJobs")
	testrig.WaitUntil(e.t, fmt.Sprintf("%d watch passes", n), 0, func() bool { return e.sb.mgn.Calls("DescribeJobs") >= from+n })
}

func replyTexts(ms []slackemu.Message) string {
	var b strings.Builder
	for i, m := range ms {
		fmt.Fprintf(&b, "  %2d broadcast=%v %q\n", i+1, m.Broadcast, m.Text)
	}
	return b.String()
}

// checkThread checks the thread of jobID under parentTS against MGN's job log: one reply per
// log item, in log order, each saying that item and nothing else; once the job ended, one
// final reply, broadcast to the channel. It also checks that the job has exactly one thread.
func (e *e2e) checkThread(jobID, parentTS string) {
	t := e.t
	t.Helper()
	log, ok := e.sb.mgn.JobLog(jobID)
	if !ok {
		t.Fatalf("MGN has no job %s", jobID)
	}
	ended := len(log) > 0 && log[len(log)-1].Event == "JOB_END"
	want := len(log)
	if ended {
		want++
	}
	replies := e.sb.slack.Replies(sandboxChannel, parentTS)
	if len(replies) != want {
		t.Errorf("thread has %d replies, want %d (%d log items + final report):\n%s", len(replies), want, len(log), replyTexts(replies))
	}
	for i, item := range log[:min(len(log), len(replies))] {
		r := replies[i]
		words := []string{eventWords[item.Event]}
		if d := item.EventData; d != nil {
			srv, _ := e.sb.mgn.Server(d.SourceServerID)
			words = append(words, srv.Tags["Name"]+": ")
			switch item.Event {
			case "CONVERSION_START":
				words = append(words, d.ConversionServerID)
			case "LAUNCH_START":
				words = append(words, d.TargetInstanceID)
			}
		}
		for _, w := range words {
			if !strings.Contains(r.Text, w) {
				t.Errorf("reply %d is %q, want it to say %s (%q)", i+1, r.Text, item.Event, w)
			}
		}
		if strings.Contains(r.Text, "\n") || r.Broadcast {
			t.Errorf("reply %d is %q (broadcast %v), want one unbroadcast line for %s", i+1, r.Text, r.Broadcast, item.Event)
		}
	}
	broadcasts := 0
	for _, r := range replies {
		if r.Broadcast {
			broadcasts++
		}
	}
	switch {
	case !ended && broadcasts != 0:
		t.Errorf("thread of a running job has %d broadcast replies, want 0", broadcasts)
	case ended && broadcasts != 1:
		t.Errorf("thread has %d broadcast replies, want exactly 1 final report", broadcasts)
	case ended && len(replies) == want:
		if final := replies[want-1]; !final.Broadcast || !strings.Contains(final.Text, "finished") {
			t.Errorf("last reply is %q (broadcast %v), want the broadcast final report", final.Text, final.Broadcast)
		}
	}
	if ps := e.parents(jobID); len(ps) != 1 || ps[0].TS != parentTS {
		t.Errorf("job %s has %d thread parents, want exactly 1 (ts %s)", jobID, len(ps), parentTS)
	}
}

// clickConcurrently presses the button n times at once as user and waits for every ack.
func (e *e2e) clickConcurrently(user, ts, actionID string, n int) []*slackemu.Delivery {
	e.t.Helper()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []*slackemu.Delivery
	)
	for range n {
		wg.Go(func() {
			d, err := e.sb.slack.Click(e.t.Context(), user, sandboxChannel, ts, actionID)
			if err != nil {
				e.t.Error(err)
				return
			}
			mu.Lock()
			out = append(out, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(out) != n {
		e.t.FailNow()
	}
	for _, d := range out {
		e.acked(d)
	}
	return out
}

// redeliver sends each delivery again, as Slack does when it retries an envelope, and waits
// for the acks.
func (e *e2e) redeliver(ds ...*slackemu.Delivery) []*slackemu.Delivery {
	e.t.Helper()
	var out []*slackemu.Delivery
	for _, d := range ds {
		r, err := e.sb.slack.Redeliver(e.t.Context(), d)
		if err != nil {
			e.t.Fatal(err)
		}
		e.acked(r)
		out = append(out, r)
	}
	return out
}

// checkConfirmAnswers waits for the approver's answers to clicks confirm clicks on one card
// (from the from-th ephemeral on) and checks them: exactly one click decided it, and was told
// so at once and then that MGN started it (started); every other click was told it was
// already confirmed.
func (e *e2e) checkConfirmAnswers(approver string, from, clicks int, started string) {
	e.t.Helper()
	var decided, launched int
	for i, m := range e.ephemeralsSince(approver, from, clicks+1) {
		switch txt := m.PlainText(); {
		case strings.Contains(txt, "yours was the deciding approval"):
			decided++
		case strings.Contains(txt, started):
			launched++
		case !strings.Contains(txt, "already confirmed"):
			e.t.Errorf("answer %d to a confirm is %q, want the deciding one, %q, or already confirmed", i+1, txt, started)
		}
	}
	if decided != 1 || launched != 1 {
		e.t.Errorf("answers saying the click decided: %d, saying the cutover started: %d; want 1 each", decided, launched)
	}
}

// message returns the channel message with ts as it is now.
func (e *e2e) message(ts string) slackemu.Message {
	m, _ := e.findChannel(func(m slackemu.Message) bool { return m.TS == ts })
	return m
}

// waitCard waits until the card with ts says want.
func (e *e2e) waitCard(ts, want string) slackemu.Message {
	e.t.Helper()
	e.wait(func(*slackemu.Server) bool { return strings.Contains(e.message(ts).PlainText(), want) },
		fmt.Sprintf("the card to say %q", want))
	return e.message(ts)
}

// ephemeralsSince waits until user has n ephemeral messages after the first `from` and
// returns them.
func (e *e2e) ephemeralsSince(user string, from, n int) []slackemu.Message {
	e.t.Helper()
	e.wait(func(s *slackemu.Server) bool { return len(s.Ephemerals(user)) >= from+n },
		fmt.Sprintf("%d answers to %s", n, user))
	return e.sb.slack.Ephemerals(user)[from:]
}

// startProcConnected starts a bot process and waits until Slack counts want sockets.
func (e *e2e) startProcConnected(name string, env map[string]string, want int) *botProc {
	e.t.Helper()
	p := e.startProc(name, env)
	e.wait(func(s *slackemu.Server) bool { return s.Connections() == want }, fmt.Sprintf("%s to connect (%d sockets)", name, want))
	return p
}

// killProc SIGKILLs p and waits until Slack has closed its socket, leaving want sockets.
func (e *e2e) killProc(p *botProc, want int) {
	e.t.Helper()
	p.kill()
	e.wait(func(s *slackemu.Server) bool { return s.Connections() == want }, fmt.Sprintf("the socket of %s to close", p.name))
}

// startTestLaunch starts a bot process on the store dsn, has the operator launch web01's test
// and waits until its thread shows the first two log items. It returns the process's
// environment, to start it again.
func startTestLaunch(t *testing.T, dsn string) (e *e2e, env map[string]string, bot *botProc, job mgnemu.Job, parent slackemu.Message) {
	e = newE2E(t, time.Now().UTC().Truncate(time.Second))
	e.dumpOnFail()
	env = e.procEnv(map[string]string{"CUTOVER_DB": dsn})
	bot = e.startProcConnected("bot 1", env, 1)
	e.command(sandboxOperator, "launch web01 test")
	job = e.onlyJob()
	parent = e.waitParent(job.JobID)
	e.jobAt(job.JobID, 500*time.Millisecond, 2)
	e.waitReplies(parent.TS, 2)
	return e, env, bot, job, parent
}

// TestCrashResumesJobThread kills the bot twice while a test launch runs, each time as soon as
// Slack shows the last reply (the bot may not have saved it yet): once with log items
// arriving while it is down, once with none. Every log item is posted exactly once, in
// order, in the one thread, and the final report once.
func TestCrashResumesJobThread(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dsn string) {
		e, env, bot, job, parent := startTestLaunch(t, dsn)
		e.jobAt(job.JobID, time.Second, 4)
		e.waitPosted(parent.TS, 4)

		e.killProc(bot, 0)
		e.jobAt(job.JobID, 2*time.Second, 6) // two items while the bot is down
		bot = e.startProcConnected("bot 2", env, 1)
		e.waitReplies(parent.TS, 6)
		bot.waitLog("that it resumed the thread", "job thread resumed", job.JobID)
		e.jobAt(job.JobID, 3*time.Second, 8)
		e.waitPosted(parent.TS, 8)

		e.killProc(bot, 0)
		bot = e.startProcConnected("bot 3", env, 1)
		reads := e.sb.mgn.Calls("DescribeJobLogItems")
		testrig.WaitUntil(t, "bot 3 to take the job over", 0, func() bool { return e.sb.mgn.Calls("DescribeJobLogItems") > reads })
		e.jobAt(job.JobID, 3*time.Second, 9)
		e.waitFinal(parent.TS, 9)
		bot.waitLog("that it ended the job", "job ended", job.JobID, "posted=9")
		e.watchPasses(2) // anything posted twice would show by now
		e.checkThread(job.JobID, parent.TS)
		if n := e.sb.mgn.Calls("StartTest"); n != 1 {
			t.Errorf("StartTest called %d times, want 1", n)
		}
	})
}

// TestCrashWhileSlackAnswers kills the bot while Slack holds its answer to a post that Slack
// has already taken: a thread reply, then the final report. The restarted bot finds both in
// the thread and posts neither again.
func TestCrashWhileSlackAnswers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dsn string) {
		e, env, bot, job, parent := startTestLaunch(t, dsn)

		// Reply 3 reaches Slack; its answer does not reach the bot before it dies.
		e.sb.slack.HoldReplies("chat.postMessage", 1, time.Minute)
		e.jobAt(job.JobID, time.Second, 4)
		e.waitPosted(parent.TS, 3)
		e.killProc(bot, 0)
		if n := len(e.sb.slack.Replies(sandboxChannel, parent.TS)); n != 3 {
			t.Fatalf("thread has %d replies when the bot died, want 3", n)
		}
		bot = e.startProcConnected("bot 2", env, 1)
		e.waitReplies(parent.TS, 4)
		bot.waitLog("that it found the reply", "thread shows replies not recorded", job.JobID, "recorded=2", "shown=3")
		e.jobAt(job.JobID, 2*time.Second, 6)
		e.waitReplies(parent.TS, 6)
		e.jobAt(job.JobID, 3*time.Second, 8)
		e.waitReplies(parent.TS, 8)

		// The final report reaches Slack; the bot dies before it hears back and marks the job
		// done. MGN answers the job status slowly, so that the hold is in place before the
		// bot posts the report.
		e.sb.mgn.SetLatency("DescribeJobs", 2*time.Second)
		e.jobAt(job.JobID, 3*time.Second, 9)
		e.waitPosted(parent.TS, 9)
		e.sb.slack.HoldReplies("chat.postMessage", 1, time.Minute)
		e.waitFinal(parent.TS, 9)
		e.killProc(bot, 0)
		e.sb.mgn.SetLatency("DescribeJobs", 0)
		bot = e.startProcConnected("bot 3", env, 1)
		bot.waitLog("that it found the final report", "final report found in the thread", job.JobID)
		bot.waitLog("that it ended the job", "job ended", job.JobID, "posted=9")
		e.watchPasses(2) // anything posted twice would show by now
		e.checkThread(job.JobID, parent.TS)
	})
}

// TestCrashCutoverConfirmedAcrossRestarts requests a cutover, kills the bot before anyone
// confirmed it, has the approver confirm it on the restarted bot (with a double click and a
// redelivery), kills the bot again mid-cutover, and has Slack redeliver the confirm clicks to
// the third process: one StartCutover, one thread, every log item once.
func TestCrashCutoverConfirmedAcrossRestarts(t *testing.T) {
	e := newE2E(t, time.Now().UTC().Truncate(time.Second))
	e.dumpOnFail()
	// Ann is an approver too, so only the two-person rule keeps her from confirming her request.
	env := e.procEnv(map[string]string{"CUTOVER_APPROVERS": sandboxApprover + "," + sandboxOperator})
	bot := e.startProcConnected("bot 1", env, 1)
	e.command(sandboxOperator, "launch db01 cutover")
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card in the channel")
	}
	e.killProc(bot, 0)

	bot = e.startProcConnected("bot 2", env, 1)
	// The two-person rule still holds: the requester is read from the store.
	ann := len(e.sb.slack.Ephemerals(sandboxOperator))
	e.clickConcurrently(sandboxOperator, card.TS, render.ActionConfirm, 1)
	if got := e.ephemeralsSince(sandboxOperator, ann, 1)[0].PlainText(); !strings.Contains(got, "two-person rule") {
		t.Errorf("requester's own confirm answered %q, want a two-person rule refusal", got)
	}
	bob := len(e.sb.slack.Ephemerals(sandboxApprover))
	clicks := e.clickConcurrently(sandboxApprover, card.TS, render.ActionConfirm, 2)
	clicks = append(clicks, e.redeliver(clicks[0])...)
	e.waitCard(card.TS, "its thread")
	e.checkConfirmAnswers(sandboxApprover, bob, len(clicks), "The cutover of db01 started")
	if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
		t.Fatalf("StartCutover called %d times for one confirmation, want 1", n)
	}
	job := e.onlyJob()
	parent := e.waitParent(job.JobID)
	e.jobAt(job.JobID, 500*time.Millisecond, 2)
	e.waitReplies(parent.TS, 2)
	e.jobAt(job.JobID, time.Second, 4)
	e.waitReplies(parent.TS, 4)
	e.killProc(bot, 0)

	e.startProcConnected("bot 3", env, 1)
	bob = len(e.sb.slack.Ephemerals(sandboxApprover))
	e.redeliver(clicks...)
	for i, m := range e.ephemeralsSince(sandboxApprover, bob, len(clicks)) {
		if txt := m.PlainText(); !strings.Contains(txt, "already confirmed") || !strings.Contains(txt, job.JobID) {
			t.Errorf("answer %d to a confirm redelivered after the restart is %q, want already confirmed with job %s", i+1, txt, job.JobID)
		}
	}
	e.jobAt(job.JobID, 2*time.Second, 6)
	e.waitReplies(parent.TS, 6)
	e.finishCutoverThread(job.JobID, parent.TS)
	if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover called %d times, want exactly 1", n)
	}
	if jobs := e.sb.mgn.Jobs(); len(jobs) != 1 {
		t.Errorf("MGN has %d jobs, want the one cutover", len(jobs))
	}
}

// TestCrashDuringStartCutover kills the bot while its StartCutover call is in flight, so that
// MGN never starts the cutover. The restarted bot takes the confirmed request over after the
// dead process's lease: MGN has no job for it and it is young, so it runs the pre-flight again
// and starts the cutover, once; a redelivered click hears of the job.
func TestCrashDuringStartCutover(t *testing.T) {
	e := newE2E(t, time.Now().UTC().Truncate(time.Second))
	e.dumpOnFail()
	env := e.procEnv(map[string]string{"CUTOVER_LEASE_TTL": "2s"})
	bot := e.startProcConnected("bot 1", env, 1)
	e.command(sandboxOperator, "launch db01 cutover")
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card in the channel")
	}
	e.sb.mgn.SetLatency("StartCutover", time.Minute)
	clicks := e.clickConcurrently(sandboxApprover, card.TS, render.ActionConfirm, 1)
	testrig.WaitUntil(t, "the StartCutover call", 0, func() bool { return e.sb.mgn.Calls("StartCutover") == 1 })
	e.killProc(bot, 0)
	e.sb.mgn.SetLatency("StartCutover", 0)
	if jobs := e.sb.mgn.Jobs(); len(jobs) != 0 {
		t.Fatalf("MGN started %d jobs for a StartCutover cut off by the crash, want 0", len(jobs))
	}

	e.startProcConnected("bot 2", env, 1)
	launched := e.waitCard(card.TS, "its thread")
	job := e.onlyJob()
	if hasButton(launched, render.ActionConfirm) || !strings.Contains(launched.PlainText(), job.JobID) {
		t.Errorf("card after the takeover: %q with buttons %v, want the job %s and no buttons", launched.PlainText(), launched.Buttons(), job.JobID)
	}
	// Bob is told of the takeover's outcome (an update he may get before or after what follows).
	e.wait(func(s *slackemu.Server) bool {
		return slices.ContainsFunc(s.Ephemerals(sandboxApprover), func(m slackemu.Message) bool {
			return strings.Contains(m.PlainText(), "Update on the cutover you confirmed") && strings.Contains(m.PlainText(), job.JobID)
		})
	}, "bob to hear of the takeover's outcome")
	bob := len(e.sb.slack.Ephemerals(sandboxApprover))
	e.redeliver(clicks...)
	if got := e.ephemeralsSince(sandboxApprover, bob, 1)[0].PlainText(); !strings.Contains(got, "already confirmed") || !strings.Contains(got, job.JobID) {
		t.Errorf("answer to the redelivered confirm is %q, want already confirmed with job %s", got, job.JobID)
	}
	e.waitParent(job.JobID)
	if jobs := e.sb.mgn.Jobs(); len(jobs) != 1 {
		t.Errorf("MGN has %d jobs, want 1", len(jobs))
	}
}

// TestCrashBetweenConfirmedAndCall kills the bot exactly between recording the deciding click
// and calling MGN (its pre-flight read is held up): the restarted bot takes the request over and
// starts the cutover, with exactly one StartCutover.
func TestCrashBetweenConfirmedAndCall(t *testing.T) {
	e := newE2E(t, time.Now().UTC().Truncate(time.Second))
	e.dumpOnFail()
	env := e.procEnv(map[string]string{"CUTOVER_LEASE_TTL": "2s"})
	bot := e.startProcConnected("bot 1", env, 1)
	e.command(sandboxOperator, "launch db01 cutover")
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card in the channel")
	}
	e.sb.mgn.SetLatency("DescribeSourceServers", time.Minute) // the pre-flight after the decision
	e.clickConcurrently(sandboxApprover, card.TS, render.ActionConfirm, 1)
	bot.waitLog("the decision", `action="confirm cutover"`, "outcome=confirmed")
	e.killProc(bot, 0)
	e.sb.mgn.SetLatency("DescribeSourceServers", 0)
	if n := e.sb.mgn.Calls("StartCutover"); n != 0 {
		t.Fatalf("StartCutover before the crash: got %d, want 0", n)
	}
	e.startProcConnected("bot 2", env, 1)
	e.waitCard(card.TS, "its thread")
	job := e.onlyJob()
	e.waitParent(job.JobID)
	if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover called %d times, want exactly 1", n)
	}
}

// webReachesContinuous is web02 finishing its initial sync.
func webReachesContinuous(s *mgnemu.SourceServer) {
	s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
	s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(time.Second)
	s.DataReplicationInfo.EtaDateTime = ""
	s.LifeCycle.State = "READY_FOR_TEST"
}

// notices counts the channel's top-level messages that contain text.
func (e *e2e) notices(text string) int {
	n := 0
	for _, m := range e.channel() {
		if m.ThreadTS == "" && strings.Contains(m.Text, text) {
			n++
		}
	}
	return n
}

// waitNotice waits for a notice containing text.
func (e *e2e) waitNotice(text string) {
	e.t.Helper()
	e.wait(func(*slackemu.Server) bool { return e.notices(text) > 0 }, "the notice "+text)
}

const (
	web02Continuous = "web02 reached Continuous Data Replication"
	web02Lagging    = "🐢 web02 lag is 20 min"
	file01Recovered = "file01 replication recovered"
)

// TestRestartSendsNoticesOnce kills the bot after it posted a replication notice: the
// restarted bot does not post it again, and announces the next change once.
func TestRestartSendsNoticesOnce(t *testing.T) {
	e := newE2E(t, time.Now().UTC().Truncate(time.Second))
	e.dumpOnFail()
	env := e.procEnv(nil)
	bot := e.startProcConnected("bot 1", env, 1)
	e.watchPasses(2) // the first pass records the fleet's states
	e.sb.mgn.Update(mgnemu.SampleWeb02, webReachesContinuous)
	e.waitNotice(web02Continuous)
	e.killProc(bot, 0)

	e.startProcConnected("bot 2", env, 1)
	e.watchPasses(3)
	e.sb.mgn.Update(mgnemu.SampleWeb02, func(s *mgnemu.SourceServer) {
		s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(20 * time.Minute)
	})
	e.waitNotice(web02Lagging)
	e.watchPasses(2)
	for _, text := range []string{web02Continuous, web02Lagging} {
		if n := e.notices(text); n != 1 {
			t.Errorf("%d notices %q, want 1", n, text)
		}
	}
	if n := len(e.channel()); n != 2 {
		t.Errorf("channel has %d messages, want the 2 notices", n)
	}
}

// TestRestartAnnouncesChangeWhileDown changes a server's replication while the bot is down:
// the restarted bot announces it once.
func TestRestartAnnouncesChangeWhileDown(t *testing.T) {
	e := newE2E(t, time.Now().UTC().Truncate(time.Second))
	e.dumpOnFail()
	env := e.procEnv(nil)
	bot := e.startProcConnected("bot 1", env, 1)
	e.watchPasses(2)
	e.killProc(bot, 0)
	e.sb.mgn.Update(mgnemu.SampleFile01, func(s *mgnemu.SourceServer) {
		s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
		s.DataReplicationInfo.DataReplicationError = nil
		s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(2 * time.Second)
	})
	e.startProcConnected("bot 2", env, 1)
	e.watchPasses(3)
	if n := e.notices(file01Recovered); n != 1 {
		t.Errorf("%d notices %q after a restart, want 1: a change made while the bot was down is announced once", n, file01Recovered)
	}
}

// finishCutoverThread runs a single-server cutover job from its sixth reply to its end and
// checks that the thread holds the job's log once, in order, with one final report.
func (e *e2e) finishCutoverThread(jobID, parentTS string) {
	e.t.Helper()
	e.jobAt(jobID, 3*time.Second, 8)
	e.waitReplies(parentTS, 8)
	e.jobAt(jobID, 3*time.Second, 9)
	e.waitFinal(parentTS, 9)
	e.watchPasses(2)
	e.checkThread(jobID, parentTS)
}
