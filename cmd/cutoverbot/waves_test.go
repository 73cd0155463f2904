package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/render"
)

// The end-to-end tests of waves and applications: the sample fleet's Wave 1 (web shop: web01,
// web02 in its initial sync, api01) and Wave 2 (billing: app01 testing, db01 ready for cutover,
// mq01 lagging; file services: file01 stalled), through `cutoverbot run`.

// groupParent is the thread parent of a wave's or application's launch.
func (e *e2e) groupParent() (slackemu.Message, bool) {
	return e.findChannel(func(m slackemu.Message) bool {
		return m.ThreadTS == "" && m.Metadata != nil && m.Metadata.EventType == "cutoverbot_group_parent"
	})
}

// groupReport is the final report of the group launch under parentTS, its parts joined.
func (e *e2e) groupReport(parentTS string) (text string, parts []slackemu.Message) {
	for _, r := range e.sb.slack.Replies(sandboxChannel, parentTS) {
		if r.Metadata != nil && r.Metadata.EventType == "cutoverbot_group_final" {
			parts = append(parts, r)
			text += r.PlainText() + "\n"
		}
	}
	return text, parts
}

// targetOf is the instance MGN launched for a server.
func (e *e2e) targetOf(serverID string) mgnemu.Instance {
	e.t.Helper()
	var found mgnemu.Instance
	for _, in := range e.sb.mgn.Instances() {
		if in.Tags["AWSApplicationMigrationServiceSourceServerID"] == serverID && in.State == "running" {
			found = in
		}
	}
	if found.InstanceID == "" {
		e.t.Fatalf("MGN launched no running instance for %s", serverID)
	}
	return found
}

func TestWaveStatus(t *testing.T) {
	e := startBot(t, nil)
	status := e.command(sandboxOther, "status").PlainText()
	for _, want := range []string{"Waves:", "Wave 1* · 3 servers · lagging · not started · cutover", "Wave 2* · 4 servers · error · in progress"} {
		if !strings.Contains(status, want) {
			t.Errorf("status does not show %q:\n%s", want, status)
		}
	}
	wave := e.command(sandboxOther, `status wave "Wave 1"`).PlainText()
	for _, want := range []string{"Wave Wave 1 · 3 servers", "web01", "web02", "api01", "Initial sync 63%"} {
		if !strings.Contains(wave, want) {
			t.Errorf("status wave \"Wave 1\" does not show %q:\n%s", want, wave)
		}
	}
	if strings.Contains(wave, "db01") {
		t.Errorf("status of Wave 1 shows db01 of Wave 2:\n%s", wave)
	}
	if app := e.command(sandboxOther, "status app billing").PlainText(); !strings.Contains(app, "mq01") || strings.Contains(app, "web01") {
		t.Errorf("status app billing: want its servers only:\n%s", app)
	}
}

// TestWaveTestLaunch launches the test of Wave 1: web02 is left out and named with its
// reason, web01 and api01 launch in one job and the thread's final report gives their IPs.
func TestWaveTestLaunch(t *testing.T) {
	e := startBot(t, nil)
	answer := e.command(sandboxOperator, `launch wave "Wave 1" test`).PlainText()
	for _, want := range []string{"Test launch of wave *Wave 1*: 2 servers in 1 job: job", "Left out", "web02", "Initial sync 63%"} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer does not say %q:\n%s", want, answer)
		}
	}
	jobs := e.sb.mgn.Jobs()
	if len(jobs) != 1 || len(jobs[0].ParticipatingServers) != 2 {
		t.Fatalf("MGN jobs: got %+v, want one of web01 and api01", jobs)
	}
	e.finishJobs(1)
	parent, ok := e.groupParent()
	if !ok {
		t.Fatal("no thread parent for the wave's launch")
	}
	report, parts := e.groupReport(parent.TS)
	if len(parts) != 1 || !parts[0].Broadcast {
		t.Fatalf("final report: %d parts (first broadcast: %v), want one, broadcast", len(parts), len(parts) > 0 && parts[0].Broadcast)
	}
	for _, id := range []string{mgnemu.SampleWeb01, mgnemu.SampleAPI01} {
		in := e.targetOf(id)
		for _, want := range []string{in.InstanceID, "private " + in.PrivateIPAddress, "public " + in.PublicIPAddress} {
			if !strings.Contains(report, want) {
				t.Errorf("final report does not show %q:\n%s", want, report)
			}
		}
	}
	if !strings.Contains(report, "web02*: left out") {
		t.Errorf("final report does not name web02 as left out:\n%s", report)
	}
	if top := e.parents(jobs[0].JobID); len(top) != 0 {
		t.Errorf("the wave's job has a thread of its own too: %d", len(top))
	}
}

// TestApplicationLaunch launches the test of the billing application: mq01 (in backlog) is
// left out, app01 and db01 launch.
func TestApplicationLaunch(t *testing.T) {
	e := startBot(t, nil)
	answer := e.command(sandboxOperator, "launch app billing test").PlainText()
	if !strings.Contains(answer, "Test launch of application *billing*: 2 servers in 1 job") || !strings.Contains(answer, "mq01") {
		t.Errorf("answer: %s", answer)
	}
	e.finishJobs(1)
	parent, _ := e.groupParent()
	report, _ := e.groupReport(parent.TS)
	for _, want := range []string{"app01*: launched", "db01*: verified", "mq01*: left out", e.targetOf(mgnemu.SampleDB01).PrivateIPAddress} {
		if !strings.Contains(report, want) {
			t.Errorf("final report does not show %q:\n%s", want, report)
		}
	}
	if n := e.sb.mgn.Calls("StartTest"); n != 1 {
		t.Errorf("StartTest calls: got %d, want 1", n)
	}
}

// TestWaveCutoverConfirmedOnce asks for the cutover of Wave 2: one card for db01, the one
// server ready for it; the approver's clicks (a double click and a redelivery) start it once.
func TestWaveCutoverConfirmedOnce(t *testing.T) {
	e := startBot(t, nil)
	answer := e.command(sandboxOperator, `launch wave "Wave 2" cutover`).PlainText()
	if !strings.Contains(answer, "waits for an approver other than you") || !strings.Contains(answer, "file01") {
		t.Errorf("answer: %s", answer)
	}
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card")
	}
	if !strings.Contains(card.PlainText(), `Cutover requested: wave "Wave 2" (1 server)`) {
		t.Errorf("card: %s", card.PlainText())
	}
	bob := len(e.sb.slack.Ephemerals(sandboxApprover))
	clicks := e.clickConcurrently(sandboxApprover, card.TS, render.ActionConfirm, 2)
	clicks = append(clicks, e.redeliver(clicks[0])...)
	e.waitCard(card.TS, "its thread")
	e.checkConfirmAnswers(sandboxApprover, bob, len(clicks), "The cutover of wave *Wave 2*: 1 server in 1 job: job")
	e.finishJobs(1)
	if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover calls: got %d, want 1", n)
	}
	jobs := e.sb.mgn.Jobs()
	if len(jobs) != 1 || jobs[0].ParticipatingServers[0].SourceServerID != mgnemu.SampleDB01 {
		t.Errorf("MGN jobs: %+v, want one cutover of db01", jobs)
	}
}

// TestFailedPostLaunchActionReported: web01's smoke test, which must succeed for cutover,
// fails after its test launch. The thread says web01 is launched but not verified, with MGN's
// reason; the cutover's card, once web01 is ready for it, shows the failure as a warning.
func TestFailedPostLaunchActionReported(t *testing.T) {
	// MGN's clock is the bot's, so that the bot finds the test among the last week's jobs.
	e := startBotAt(t, time.Now().UTC().Truncate(time.Second), nil)
	const reason = "HTTP GET https://localhost/health answered 503"
	e.sb.mgn.FailAction(mgnemu.SampleWeb01, mgnemu.SampleWebSmokeTest, reason)
	e.command(sandboxOperator, "launch web01 test")
	e.finishJobs(1)
	var report *slackemu.Message
	e.wait(func(s *slackemu.Server) bool {
		for _, m := range s.Messages(sandboxChannel) {
			if m.Metadata != nil && m.Metadata.EventType == "cutoverbot_job_verified" {
				report = &m
				return true
			}
		}
		return false
	}, "the post-launch report, broadcast")
	for _, want := range []string{"web01*: ⚠️ launched, not verified", mgnemu.SampleWebSmokeTest + " failed: " + reason, "must succeed for cutover"} {
		if !strings.Contains(report.PlainText(), want) {
			t.Errorf("post-launch report does not say %q:\n%s", want, report.PlainText())
		}
	}
	e.command(sandboxOperator, "ready web01")
	e.command(sandboxOperator, "launch web01 cutover")
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card")
	}
	for _, want := range []string{"⚠️", "Post-launch actions:", "the last test was not verified", reason} {
		if !strings.Contains(card.PlainText(), want) {
			t.Errorf("card does not show %q:\n%s", want, card.PlainText())
		}
	}
}

// TestCrashBetweenBatches launches the test of a 450-server wave (18 of its servers fail their
// checks), which MGN's quota of 200 servers in active jobs splits over time into three jobs of
// 144, and SIGKILLs the bot after the first job started, before the second: the restarted bot
// starts the second once the first ended, and the third after it; each server is launched
// once, and the one thread holds each job's log once and a final report naming every server
// once.
func TestCrashBetweenBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("the thread of 450 servers is posted at Slack's pace of one message a second")
	}
	now := time.Now().UTC().Truncate(time.Second)
	e := newE2E(t, now, func(o *sandboxOptions) { o.Waves = append(o.Waves, mgnemu.GenerateWave("Wave 9", 450, 150, now)) })
	e.dumpOnFail()
	env := e.procEnv(nil)
	bot := e.startProcConnected("bot 1", env, 1)
	answer := e.command(sandboxOperator, `launch wave "Wave 9" test`).PlainText()
	if !strings.Contains(answer, "432 servers in 3 jobs") {
		t.Fatalf("answer: %s", answer)
	}
	if jobs := e.sb.mgn.Jobs(); len(jobs) != 1 {
		t.Fatalf("jobs after the command: got %d, want 1", len(jobs))
	}
	// The bot tries the second batch, MGN refuses it for want of room; then the bot dies.
	testrig.WaitUntil(t, "the second batch refused", 0, func() bool { return e.sb.mgn.Calls("StartTest") >= 2 })
	e.killProc(bot, 0)

	bot = e.startProcConnected("bot 2", env, 1)
	for want := 2; want <= 3; want++ {
		e.clock.Advance(2 * time.Minute) // the running job ends, with its post-launch actions
		testrig.WaitUntil(t, "the next job", 0, func() bool { return len(e.sb.mgn.Jobs()) >= want })
	}
	e.clock.Advance(2 * time.Minute)
	parent, ok := e.groupParent()
	if !ok {
		t.Fatal("no thread parent for the wave's launch")
	}
	e.waitWithin(4*time.Minute, func(*slackemu.Server) bool {
		_, parts := e.groupReport(parent.TS)
		return len(parts) == (450+39)/40
	}, "the final report's 12 parts")
	bot.waitLog("that the group ended", "group launch ended")

	jobs := e.sb.mgn.Jobs()
	if len(jobs) != 3 {
		t.Fatalf("MGN jobs: got %d, want 3", len(jobs))
	}
	launched := map[string]int{}
	for _, j := range jobs {
		if n := len(j.ParticipatingServers); n != 144 {
			t.Errorf("job %s has %d servers, want 144", j.JobID, n)
		}
		for _, p := range j.ParticipatingServers {
			launched[p.SourceServerID]++
		}
		log, _ := e.sb.mgn.JobLog(j.JobID)
		var lines int
		for _, r := range e.sb.slack.Replies(sandboxChannel, parent.TS) {
			if md := r.Metadata; md != nil && md.EventType == "cutoverbot_job_events" && md.EventPayload["job_id"] == j.JobID {
				lines += strings.Count(r.Text, "\n") + 1
			}
		}
		if lines != len(log) {
			t.Errorf("thread shows %d event lines of job %s, want its %d log items once", lines, j.JobID, len(log))
		}
	}
	if len(launched) != 432 {
		t.Errorf("servers launched: got %d, want 432", len(launched))
	}
	for id, n := range launched {
		if n != 1 {
			t.Errorf("server %s launched %d times", id, n)
		}
	}
	report, parts := e.groupReport(parent.TS)
	if !parts[0].Broadcast || strings.Count(report, "wave9-") != 450 {
		t.Errorf("final report: first part broadcast %v, %d servers named, want 450 once each", parts[0].Broadcast, strings.Count(report, "wave9-"))
	}
	parents := 0
	for _, m := range e.channel() {
		if m.Metadata != nil && m.Metadata.EventType == "cutoverbot_group_parent" {
			parents++
		}
	}
	if parents != 1 || slices.ContainsFunc(jobs, func(j mgnemu.Job) bool { return len(e.parents(j.JobID)) > 0 }) {
		t.Errorf("thread parents: %d for the group, want 1 and none for its jobs", parents)
	}
}
