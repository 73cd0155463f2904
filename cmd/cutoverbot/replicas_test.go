package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// TestReplicasShareClicksAndJobs runs two bot processes on one PostgreSQL schema, both
// connected to Slack, which spreads envelopes over the open sockets. Repeated and redelivered
// confirm clicks land on both replicas and start one cutover; the job is followed by one
// replica, which is then SIGKILLed mid-job, as soon as Slack shows its latest reply; the other
// takes the job over when the lease runs out and completes the thread with no reply lost or
// repeated. A replication notice is posted once.
func TestReplicasShareClicksAndJobs(t *testing.T) {
	dsn := storetest.Postgres(t)
	e := newE2E(t, time.Now().UTC().Truncate(time.Second))
	e.dumpOnFail()
	// A job lease lasts three polls; a poll of 1 s keeps it well above the time a reply may
	// wait for Slack's posting limit (1 per second per channel).
	env := e.procEnv(map[string]string{"CUTOVER_DB": dsn, "CUTOVER_POLL_INTERVAL": "1s"})
	replicas := []*botProc{e.startProc("replica 1", env), e.startProc("replica 2", env)}
	e.wait(func(s *slackemu.Server) bool { return s.Connections() == 2 }, "both replicas to connect")

	e.command(sandboxOperator, "launch db01 cutover")
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card in the channel")
	}
	bob := len(e.sb.slack.Ephemerals(sandboxApprover))
	clicks := e.clickConcurrently(sandboxApprover, card.TS, render.ActionConfirm, 3)
	clicks = append(clicks, e.redeliver(clicks[0], clicks[1])...)
	e.waitCard(card.TS, "its thread")
	e.checkConfirmAnswers(sandboxApprover, bob, len(clicks), "The cutover of db01 started")
	if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
		t.Fatalf("StartCutover called %d times for %d clicks on one card, want 1", n, len(clicks))
	}
	for _, r := range replicas {
		if r.logged("msg=click", "action_id="+render.ActionConfirm) == 0 {
			t.Errorf("%s handled none of the %d confirm clicks, want Slack to have spread them over both sockets", r.name, len(clicks))
		}
	}

	job := e.onlyJob()
	parent := e.waitParent(job.JobID)
	// The replica that posted the parent logs that it follows the job just after posting.
	testrig.WaitUntil(t, "a replica to log that it follows "+job.JobID, 0, func() bool {
		return replicas[0].logged("job followed", job.JobID)+replicas[1].logged("job followed", job.JobID) > 0
	})
	var holder, survivor *botProc
	for _, r := range replicas {
		if r.logged("job followed", job.JobID) > 0 {
			holder = r
		} else {
			survivor = r
		}
	}
	if holder == nil || survivor == nil {
		t.Fatalf("want exactly one replica to have opened the thread of %s", job.JobID)
	}

	// A notice while both replicas watch the servers is posted once.
	e.watchPasses(4)
	e.sb.mgn.Update(mgnemu.SampleWeb02, webReachesContinuous)
	e.waitNotice(web02Continuous)

	e.jobAt(job.JobID, 500*time.Millisecond, 2)
	e.waitReplies(parent.TS, 2)
	e.jobAt(job.JobID, time.Second, 4)
	e.waitPosted(parent.TS, 4) // the holder may die before it recorded reply 4
	if n := survivor.logged("job thread resumed", job.JobID); n != 0 {
		t.Errorf("%s took over the job %d times while %s was alive, want 0: one replica follows a job at a time", survivor.name, n, holder.name)
	}
	if n := e.notices(web02Continuous); n != 1 {
		t.Errorf("%d notices %q from two replicas, want 1", n, web02Continuous)
	}

	e.killProc(holder, 1)
	e.jobAt(job.JobID, 2*time.Second, 6) // while the dead replica's lease runs out
	survivor.waitLog("that it took the job over", "job thread resumed", job.JobID)
	e.waitReplies(parent.TS, 6)
	bob = len(e.sb.slack.Ephemerals(sandboxApprover))
	e.redeliver(clicks[0])
	if got := e.ephemeralsSince(sandboxApprover, bob, 1)[0].PlainText(); !strings.Contains(got, "already confirmed") {
		t.Errorf("answer to a confirm redelivered to %s is %q, want already confirmed", survivor.name, got)
	}
	e.finishCutoverThread(job.JobID, parent.TS)
	if n := e.sb.mgn.Calls("StartCutover"); n != 1 {
		t.Errorf("StartCutover called %d times, want exactly 1", n)
	}
	if n := e.notices(web02Continuous); n != 1 {
		t.Errorf("%d notices %q, want 1", n, web02Continuous)
	}
}
