package notifier

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/migration"
)

// BenchmarkProgressFanout follows 20 concurrent test launches of 50 servers each through both
// emulators in real time (MGN allows 20 active jobs but only 200 servers across them, so the
// emulator's quota is raised to load the notifier five times beyond what MGN would):
// Slack allows one post per 20 ms per channel (Slack's 1 s, 50 times faster), jobs run at
// mgnemu's fast pace, and logs are polled every 250 ms. It reports the DescribeJobLogItems
// calls per job per poll, the events delivered, lost and duplicated, and the worst delay
// from a log event to the Slack reply carrying it.
func BenchmarkProgressFanout(b *testing.B) {
	const (
		jobs, perJob = 20, 50
		poll         = 250 * time.Millisecond
		postEvery    = 20 * time.Millisecond
	)
	for range b.N {
		b.StopTimer()
		fleet := launchable(mgnemu.GenerateFleet(3*jobs*perJob, time.Now()), jobs*perJob)
		r := newRig(b, rigOptions{servers: fleet, realClock: true, quiet: true, postInterval: postEvery, maxActive: jobs * perJob})
		n := r.notifier(b, r.store, "bench", func(c *Config) { c.Clock, c.PollInterval = clock.Real{}, poll })
		var started []migration.Job
		var parents []string
		for i := range jobs {
			var ids []string
			for _, s := range fleet[i*perJob : (i+1)*perJob] {
				ids = append(ids, s.SourceServerID)
			}
			j, err := r.aws.Launch(b.Context(), migration.LaunchRequest{Mode: migration.ModeTest, ServerIDs: ids, Request: fmt.Sprint("bench-", i)})
			if err != nil {
				b.Fatal(err)
			}
			started = append(started, j)
		}
		b.StartTimer()
		for _, j := range started {
			// A parent not posted now is posted by the next poll pass.
			_, _ = n.Follow(b.Context(), j, "U1")
		}
		r.mgn.ResetCalls()
		before := r.aws.Calls()["DescribeJobLogItems"]
		jobPolls := 0
		tick := time.NewTicker(poll)
		deadline := time.Now().Add(3 * time.Minute)
		for {
			active, err := r.store.ActiveJobs(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if len(active) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d jobs still active after 3 minutes", len(active))
			}
			jobPolls += len(active)
			_ = n.PollOnce(b.Context())
			<-tick.C
		}
		tick.Stop()
		b.StopTimer()
		logCalls := r.aws.Calls()["DescribeJobLogItems"] - before
		logRequests := r.mgn.Calls("DescribeJobLogItems")

		for _, j := range started {
			sj, err := r.store.Job(b.Context(), j.ID)
			if err != nil {
				b.Fatal(err)
			}
			parents = append(parents, sj.ParentTS)
		}
		var delivered, lost, dup int
		var worst time.Duration
		for i, j := range started {
			events, _, err := r.aws.JobLog(b.Context(), j.ID, migration.Cursor{})
			if err != nil {
				b.Fatal(err)
			}
			want := r.wantLines(b, j.ID)
			var got []string
			var posted []time.Time
			for _, m := range r.slack.Replies(channel, parents[i]) {
				if m.Broadcast {
					continue
				}
				for _, l := range strings.Split(m.Text, "\n") {
					got = append(got, l)
					posted = append(posted, m.Posted)
				}
			}
			for k, l := range want {
				if k < len(got) && got[k] == l {
					delivered++
					worst = max(worst, posted[k].Sub(events[k].Time))
				} else if !slices.Contains(got, l) {
					lost++
				}
			}
			dup += max(len(got)-len(want), 0)
			if !slices.Equal(got, want) {
				b.Errorf("job %s: thread differs from its log: got %d lines, want %d", j.ID, len(got), len(want))
			}
		}
		// Calls made by the adapter, and requests the emulator received (SDK retries too).
		b.ReportMetric(float64(logCalls)/float64(jobPolls), "logcalls/jobpoll")
		b.ReportMetric(float64(logRequests)/float64(jobPolls), "logrequests/jobpoll")
		b.ReportMetric(float64(delivered), "events")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(dup), "duplicated")
		b.ReportMetric(worst.Seconds(), "worst-delay-s")
		b.ReportMetric(float64(r.slack.Calls("chat.postMessage")), "posts")
		b.StartTimer()
	}
}

// launchable returns the first n servers of fleet that MGN would launch now.
func launchable(fleet []mgnemu.SourceServer, n int) []mgnemu.SourceServer {
	var out []mgnemu.SourceServer
	for _, s := range fleet {
		d := s.DataReplicationInfo
		switch s.LifeCycle.State {
		case "READY_FOR_TEST", "TESTING", "READY_FOR_CUTOVER":
		default:
			continue
		}
		if s.IsArchived || d.DataReplicationState != "CONTINUOUS" || d.LagDuration == "" || d.DataReplicationError != nil {
			continue
		}
		out = append(out, s)
		if len(out) == n {
			break
		}
	}
	return out
}
