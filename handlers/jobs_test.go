package handlers

import (
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/migration"
)

func TestJobStatusJudgedPerServer(t *testing.T) {
	t.Parallel()
	launch := func(status migration.JobStatus, launchStatuses ...string) migration.Job {
		j := migration.Job{ID: "mgnjob-1", Type: "LAUNCH", InitiatedBy: "START_TEST", Status: status}
		for i, ls := range launchStatuses {
			j.Participants = append(j.Participants, migration.Participant{ServerID: "s-" + string(rune('a'+i)), LaunchStatus: ls})
		}
		return j
	}
	tests := []struct {
		name string
		job  migration.Job
		want string
	}{
		{"running", launch(migration.JobStarted, migration.LaunchInProgress), "started"},
		{"all launched", launch(migration.JobCompleted, migration.LaunchLaunched, migration.LaunchLaunched), "completed"},
		{"launched, since terminated", launch(migration.JobCompleted, migration.LaunchTerminated), "completed"},
		{"one failed", launch(migration.JobCompleted, migration.LaunchLaunched, migration.LaunchFailed), "completed, 1 of 2 failed"},
		{"completed but never launched", launch(migration.JobCompleted, migration.LaunchPending), "failed"},
		{"completed, one left pending", launch(migration.JobCompleted, migration.LaunchLaunched, migration.LaunchPending), "completed, 1 of 2 failed"},
		{"all failed", launch(migration.JobCompleted, migration.LaunchFailed, migration.LaunchFailed), "failed"},
		{"terminate job", migration.Job{ID: "mgnjob-2", Type: "TERMINATE", InitiatedBy: migration.InitiatedByTerminate, Status: migration.JobCompleted,
			Participants: []migration.Participant{{ServerID: "s-a"}}}, "completed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jobStatus(tt.job); got != tt.want {
				t.Errorf("jobStatus(%+v): got %q, want %q", tt.job, got, tt.want)
			}
		})
	}
}

// A job whose log reported a failure ends COMPLETED with every server LAUNCHED; the outcome
// its thread recorded, not MGN's status, is what /cutover jobs shows.
func TestJobsShowThreadOutcome(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	job, err := r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeTest, ServerIDs: []string{mgnemu.SampleWeb01}, RequestedBy: operator, Request: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.FollowJob(t.Context(), migration.Launch{JobID: job.ID, Kind: "test", ServerIDs: []string{mgnemu.SampleWeb01},
		Channel: migrationChannel, ParentTS: "1741010520.000100", RequestedBy: operator, StartedAt: start}); err != nil {
		t.Fatal(err)
	}
	if err := r.store.FinishJob(t.Context(), job.ID, "failed"); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Hour)
	jobs, err := r.aws.Jobs(t.Context(), start.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Status != migration.JobCompleted || jobStatus(jobs[0]) != "completed" {
		t.Fatalf("MGN jobs: got %+v, want one COMPLETED with its server launched", jobs)
	}
	contains(t, "jobs", r.run(eve, "jobs"), "`"+job.ID+"` · test · web01 · failed · requested by <@U0OPER>")
}

// A job the bot did not start is attributed only to what its MGN tag claims, shown literally.
func TestJobsShowTagAsTag(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	job, err := r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeTest, ServerIDs: []string{mgnemu.SampleWeb01}, RequestedBy: "*eve* <!here>", Request: "r2"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.run(eve, "jobs")
	contains(t, "jobs", got, "`"+job.ID+"` · test · web01 · ", " · tagged as requested by `*eve* &lt;!here&gt;` ")
	lacks(t, "jobs", got, "started by", "requested by <@")
}
