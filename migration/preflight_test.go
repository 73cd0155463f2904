package migration_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
)

var preflightNow = time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)

// launchable is a server every launch rule accepts.
func launchable() migration.Server {
	return migration.Server{
		ID: "s-40000000000000001", Hostname: "web01",
		Replication: migration.Replication{State: migration.ReplicationContinuous, HasLag: true, Lag: 2 * time.Second,
			Disks: []migration.Disk{{TotalBytes: 100, ReplicatedBytes: 100}}},
		Lifecycle: migration.Lifecycle{State: migration.LifecycleReadyForCutover,
			LastTest: migration.Milestone{Initiated: preflightNow.Add(-2 * 24 * time.Hour), JobID: "mgnjob-1"}},
	}
}

func check(t *testing.T, p migration.Preflight, name string) migration.Check {
	t.Helper()
	for _, c := range p.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("check %q: got none among %+v, want one", name, p.Checks)
	return migration.Check{}
}

func hasCheck(p migration.Preflight, name string) bool {
	return slices.ContainsFunc(p.Checks, func(c migration.Check) bool { return c.Name == name })
}

func TestCheckLaunchLifecycle(t *testing.T) {
	allowed := map[migration.Mode][]migration.LifecycleState{
		migration.ModeTest:    {migration.LifecycleReadyForTest, migration.LifecycleTesting, migration.LifecycleReadyForCutover},
		migration.ModeCutover: {migration.LifecycleReadyForCutover},
	}
	states := []migration.LifecycleState{
		migration.LifecycleNotReady, migration.LifecycleReadyForTest, migration.LifecycleTesting,
		migration.LifecycleReadyForCutover, migration.LifecycleCuttingOver, migration.LifecycleCutover,
		migration.LifecycleDisconnected, migration.LifecycleDiscovered, migration.LifecyclePendingInstallation,
		migration.LifecycleStopped,
	}
	for _, mode := range []migration.Mode{migration.ModeTest, migration.ModeCutover} {
		for _, st := range states {
			t.Run(string(mode)+"/"+string(st), func(t *testing.T) {
				s := launchable()
				s.Lifecycle.State = st
				p := migration.CheckLaunch(s, mode, migration.LaunchContext{Now: preflightNow})
				want := slices.Contains(allowed[mode], st)
				c := check(t, p, "Lifecycle")
				if c.OK != want {
					t.Errorf("Lifecycle check OK: got %v (%q), want %v", c.OK, c.Detail, want)
				}
				if p.OK() != want {
					t.Errorf("Preflight.OK: got %v (failures %+v), want %v", p.OK(), p.Failures(), want)
				}
				if !strings.HasPrefix(c.Detail, st.Label()) {
					t.Errorf("Lifecycle detail: got %q, want it to start with %q", c.Detail, st.Label())
				}
				if p.Mode != mode || p.Server.ID != s.ID {
					t.Errorf("Preflight: got mode %q server %q, want %q %q", p.Mode, p.Server.ID, mode, s.ID)
				}
			})
		}
	}
	t.Run("cutover from testing points at the next step", func(t *testing.T) {
		s := launchable()
		s.Lifecycle.State = migration.LifecycleTesting
		c := check(t, migration.CheckLaunch(s, migration.ModeCutover, migration.LaunchContext{Now: preflightNow}), "Lifecycle")
		if !strings.Contains(c.Detail, "/cutover ready") {
			t.Errorf("detail: got %q, want it to mention /cutover ready", c.Detail)
		}
	})
	t.Run("unknown mode", func(t *testing.T) {
		p := migration.CheckLaunch(launchable(), "rehearsal", migration.LaunchContext{Now: preflightNow})
		if c := check(t, p, "Lifecycle"); c.OK || !strings.Contains(c.Detail, "rehearsal") {
			t.Errorf("Lifecycle check: got %+v, want a failure naming the mode", c)
		}
	})
}

func TestCheckLaunchReplication(t *testing.T) {
	eta := time.Date(2025, 11, 25, 14, 20, 0, 0, time.UTC)
	tests := []struct {
		name     string
		r        migration.Replication
		lagLimit time.Duration
		wantOK   bool
		want     string // the whole detail
	}{
		{name: "continuous with lag", r: migration.Replication{State: migration.ReplicationContinuous, HasLag: true, Lag: 2 * time.Second},
			wantOK: true, want: "Continuous Data Replication, lag 2 s"},
		{name: "continuous, zero lag", r: migration.Replication{State: migration.ReplicationContinuous, HasLag: true},
			wantOK: true, want: "Continuous Data Replication"},
		{name: "initial sync with progress and ETA", r: migration.Replication{State: migration.ReplicationInitialSync, ETA: eta,
			Disks: []migration.Disk{{TotalBytes: 100, ReplicatedBytes: 63}}},
			want: "Initial sync 63%, ETA Nov 25 14:20 UTC; launches wait for Continuous Data Replication"},
		{name: "initiating without ETA", r: migration.Replication{State: migration.ReplicationInitiating},
			want: "Initiating 0%; launches wait for Continuous Data Replication"},
		{name: "stalled with error", r: migration.Replication{State: migration.ReplicationStalled, HasLag: true, Lag: 3 * time.Hour,
			Error: "AGENT_NOT_SEEN", RawError: "agent silent for 3 hours"},
			want: "Stalled: " + migration.ReplicationErrorText("AGENT_NOT_SEEN") + " (agent silent for 3 hours)"},
		{name: "continuous with error", r: migration.Replication{State: migration.ReplicationContinuous, HasLag: true, Error: "UNSTABLE_NETWORK"},
			want: "Continuous Data Replication: " + migration.ReplicationErrorText("UNSTABLE_NETWORK")},
		{name: "backlog", r: migration.Replication{State: migration.ReplicationBacklog, HasLag: true, Lag: 12 * time.Minute},
			want: "Backlog, not Continuous Data Replication"},
		{name: "no lag", r: migration.Replication{State: migration.ReplicationContinuous},
			want: "Continuous Data Replication, but MGN reports no lag yet, so the server is not launchable"},
		{name: "lag over limit", r: migration.Replication{State: migration.ReplicationContinuous, HasLag: true, Lag: 7*time.Minute + 30*time.Second},
			lagLimit: 5 * time.Minute, want: "Continuous Data Replication but lagging 7 min"},
		{name: "lag at limit", r: migration.Replication{State: migration.ReplicationContinuous, HasLag: true, Lag: 5 * time.Minute},
			lagLimit: 5 * time.Minute, wantOK: true, want: "Continuous Data Replication, lag 5 min"},
		{name: "large lag without limit", r: migration.Replication{State: migration.ReplicationContinuous, HasLag: true, Lag: 2 * time.Hour},
			wantOK: true, want: "Continuous Data Replication, lag 2 h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := launchable()
			s.Lifecycle.State = migration.LifecycleReadyForTest
			s.Replication = tt.r
			p := migration.CheckLaunch(s, migration.ModeTest, migration.LaunchContext{Now: preflightNow, LagLimit: tt.lagLimit})
			c := check(t, p, "Replication")
			if c.OK != tt.wantOK || c.Detail != tt.want {
				t.Errorf("Replication check: got OK=%v %q, want OK=%v %q", c.OK, c.Detail, tt.wantOK, tt.want)
			}
			if p.OK() != tt.wantOK {
				t.Errorf("Preflight.OK: got %v, want %v", p.OK(), tt.wantOK)
			}
		})
	}
}

func TestCheckLaunchJobsAndTests(t *testing.T) {
	no, yes := false, true
	tests := []struct {
		name      string
		mode      migration.Mode
		edit      func(*migration.Server)
		lc        migration.LaunchContext
		wantOK    bool
		wantFail  []string // names of the failed checks
		wantWarn  string   // name of a passed check that warns
		wantInDet map[string]string
		noCheck   string // a check that must not be present
	}{
		{name: "cutover, all good", mode: migration.ModeCutover, wantOK: true,
			wantInDet: map[string]string{"Jobs": "no other job running", "Test launch": "last test 2 days ago"}},
		{name: "test has no test check", mode: migration.ModeTest, wantOK: true, noCheck: "Test launch"},
		{name: "active job", mode: migration.ModeTest, lc: migration.LaunchContext{ActiveJob: "mgnjob-9"},
			wantFail: []string{"Jobs"}, wantInDet: map[string]string{"Jobs": "mgnjob-9"}},
		{name: "cutover without test", mode: migration.ModeCutover,
			edit:     func(s *migration.Server) { s.Lifecycle.LastTest = migration.Milestone{} },
			wantFail: []string{"Test launch"}, wantInDet: map[string]string{"Test launch": "no test launch on record"}},
		{name: "cutover after failed test", mode: migration.ModeCutover, lc: migration.LaunchContext{LastTestOK: &no},
			wantFail: []string{"Test launch"}, wantInDet: map[string]string{"Test launch": "the last test launch (2 days ago) failed"}},
		{name: "cutover after successful test", mode: migration.ModeCutover, lc: migration.LaunchContext{LastTestOK: &yes}, wantOK: true},
		{name: "cutover after stale test warns", mode: migration.ModeCutover,
			edit:   func(s *migration.Server) { s.Lifecycle.LastTest.Initiated = preflightNow.Add(-9 * 24 * time.Hour) },
			wantOK: true, wantWarn: "Test launch",
			wantInDet: map[string]string{"Test launch": "last test 9 days ago, more than 7 days ago"}},
		{name: "earlier launch warns", mode: migration.ModeTest,
			edit: func(s *migration.Server) {
				s.Launched = &migration.LaunchedInstance{InstanceID: "i-0123456789abcdef0", JobID: "mgnjob-1", FirstBoot: "SUCCEEDED"}
			},
			wantOK: true, wantWarn: "Earlier launch",
			wantInDet: map[string]string{"Earlier launch": "instance i-0123456789abcdef0 from an earlier launch will be terminated"}},
		{name: "launched record without instance does not warn", mode: migration.ModeTest,
			edit:   func(s *migration.Server) { s.Launched = &migration.LaunchedInstance{JobID: "mgnjob-1"} },
			wantOK: true, noCheck: "Earlier launch"},
		{name: "everything wrong", mode: migration.ModeCutover, lc: migration.LaunchContext{ActiveJob: "mgnjob-2"},
			edit: func(s *migration.Server) {
				s.Replication = migration.Replication{State: migration.ReplicationStalled, Error: "AGENT_NOT_SEEN"}
				s.Lifecycle = migration.Lifecycle{State: migration.LifecycleNotReady}
			},
			wantFail: []string{"Replication", "Lifecycle", "Jobs", "Test launch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := launchable()
			if tt.edit != nil {
				tt.edit(&s)
			}
			lc := tt.lc
			lc.Now = preflightNow
			p := migration.CheckLaunch(s, tt.mode, lc)
			if p.OK() != tt.wantOK {
				t.Errorf("OK: got %v, want %v (checks %+v)", p.OK(), tt.wantOK, p.Checks)
			}
			var failed []string
			for _, c := range p.Failures() {
				failed = append(failed, c.Name)
			}
			if !slices.Equal(failed, tt.wantFail) {
				t.Errorf("Failures: got %v, want %v", failed, tt.wantFail)
			}
			var warned []string
			for _, c := range p.Checks {
				if c.Warn {
					warned = append(warned, c.Name)
					if !c.OK {
						t.Errorf("check %q: got Warn without OK, want warnings to pass", c.Name)
					}
				}
			}
			var wantWarned []string
			if tt.wantWarn != "" {
				wantWarned = []string{tt.wantWarn}
			}
			if !slices.Equal(warned, wantWarned) {
				t.Errorf("warnings: got %v, want %v", warned, wantWarned)
			}
			for name, sub := range tt.wantInDet {
				if c := check(t, p, name); !strings.Contains(c.Detail, sub) {
					t.Errorf("check %q detail: got %q, want it to contain %q", name, c.Detail, sub)
				}
			}
			if tt.noCheck != "" && hasCheck(p, tt.noCheck) {
				t.Errorf("check %q: got one, want none", tt.noCheck)
			}
		})
	}
}

func TestPreflightFailures(t *testing.T) {
	p := migration.Preflight{Checks: []migration.Check{
		{Name: "a", OK: true}, {Name: "b"}, {Name: "c", OK: true, Warn: true}, {Name: "d"},
	}}
	if p.OK() {
		t.Errorf("OK: got true, want false")
	}
	var got []string
	for _, c := range p.Failures() {
		got = append(got, c.Name)
	}
	if want := []string{"b", "d"}; !slices.Equal(got, want) {
		t.Errorf("Failures: got %v, want %v", got, want)
	}
	if empty := (migration.Preflight{}); !empty.OK() || len(empty.Failures()) != 0 {
		t.Errorf("empty preflight: got OK=%v failures %v, want true and none", empty.OK(), empty.Failures())
	}
}

// TestLastTest is the one rule for "did the server's last test fail?": the job the lifecycle
// names, else the newest test job of the server.
func TestLastTest(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	job := func(id, initiatedBy string, created time.Time, status string) migration.Job {
		return migration.Job{ID: id, InitiatedBy: initiatedBy, Created: created, Status: migration.JobCompleted,
			Participants: []migration.Participant{{ServerID: "s-1", LaunchStatus: status}}}
	}
	older := job("mgnjob-old", migration.InitiatedByStartTest, t0, migration.LaunchFailed)
	newer := job("mgnjob-new", migration.InitiatedByStartTest, t0.Add(time.Hour), migration.LaunchLaunched)
	cutover := job("mgnjob-cut", migration.InitiatedByStartCutover, t0.Add(2*time.Hour), migration.LaunchFailed)
	running := job("mgnjob-run", migration.InitiatedByStartTest, t0.Add(3*time.Hour), migration.LaunchInProgress)
	other := migration.Job{ID: "mgnjob-other", InitiatedBy: migration.InitiatedByStartTest, Created: t0.Add(4 * time.Hour),
		Participants: []migration.Participant{{ServerID: "s-2", LaunchStatus: migration.LaunchFailed}}}
	server := func(lastJob string) migration.Server {
		s := migration.Server{ID: "s-1"}
		s.Lifecycle.LastTest.JobID = lastJob
		return s
	}
	tests := []struct {
		name    string
		s       migration.Server
		jobs    []migration.Job
		wantJob string
		want    *bool
	}{
		{"the lifecycle names the job", server("mgnjob-old"), []migration.Job{older, newer, cutover}, "mgnjob-old", new(false)},
		{"no job named: the newest test", server(""), []migration.Job{older, newer, cutover, other}, "mgnjob-new", new(true)},
		{"named job not listed: the newest test", server("mgnjob-gone"), []migration.Job{newer, older}, "mgnjob-new", new(true)},
		{"still running", server("mgnjob-run"), []migration.Job{running, older}, "mgnjob-run", nil},
		{"only a cutover", server(""), []migration.Job{cutover}, "", nil},
		{"no jobs", server(""), nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, _, ok := migration.LastTest(tt.s, tt.jobs)
			if ok != (tt.wantJob != "") || j.ID != tt.wantJob {
				t.Errorf("LastTest: got %q (found %v), want %q", j.ID, ok, tt.wantJob)
			}
			got := migration.LastTestOK(tt.s, tt.jobs)
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("LastTestOK: got %v, want %v", fmtBool(got), fmtBool(tt.want))
			}
		})
	}
	if id := migration.ActiveJob("s-1", []migration.Job{older, {ID: "mgnjob-act", Status: migration.JobStarted,
		Participants: []migration.Participant{{ServerID: "s-1"}}}}); id != "mgnjob-act" {
		t.Errorf("ActiveJob: got %q, want mgnjob-act", id)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}

func TestCheckLaunchShowsLastTestActions(t *testing.T) {
	s := launchable()
	failed := &migration.PostLaunch{Actions: []migration.ActionRun{{Name: "Smoke test", MustSucceed: true, State: migration.ActionFailed, FailureReason: "HTTP 503"}}}
	fine := &migration.PostLaunch{Actions: []migration.ActionRun{{Name: "Smoke test", MustSucceed: true, State: migration.ActionSucceeded}}}
	jobs := []migration.Job{{ID: "mgnjob-1", InitiatedBy: migration.InitiatedByStartTest, Status: migration.JobCompleted,
		Participants: []migration.Participant{{ServerID: s.ID, LaunchStatus: migration.LaunchLaunched, PostLaunch: failed}}}}
	if got := migration.LastTestActions(s, jobs); got != failed {
		t.Fatalf("LastTestActions: got %+v, want the last test's report", got)
	}
	p := migration.CheckLaunch(s, migration.ModeCutover, migration.LaunchContext{Now: preflightNow, LastTestActions: migration.LastTestActions(s, jobs)})
	c := check(t, p, "Post-launch actions")
	if !c.OK || !c.Warn || !strings.Contains(c.Detail, "not verified") || !strings.Contains(c.Detail, "HTTP 503") {
		t.Errorf("failed must-succeed action: got %+v, want a warning naming the failure", c)
	}
	if !p.OK() {
		t.Errorf("a failed post-launch action warns and does not block: got failures %+v", p.Failures())
	}
	c = check(t, migration.CheckLaunch(s, migration.ModeCutover, migration.LaunchContext{Now: preflightNow, LastTestActions: fine}), "Post-launch actions")
	if !c.OK || c.Warn || !strings.Contains(c.Detail, "Smoke test succeeded") {
		t.Errorf("succeeded action: got %+v, want a passed check naming it", c)
	}
	for _, lc := range []migration.LaunchContext{{Now: preflightNow}, {Now: preflightNow, LastTestActions: &migration.PostLaunch{}}} {
		if hasCheck(migration.CheckLaunch(s, migration.ModeCutover, lc), "Post-launch actions") {
			t.Errorf("no action ran (%+v): got a post-launch check, want none", lc.LastTestActions)
		}
	}
	if hasCheck(migration.CheckLaunch(s, migration.ModeTest, migration.LaunchContext{Now: preflightNow, LastTestActions: failed}), "Post-launch actions") {
		t.Error("a test launch got a post-launch check, want it only for a cutover")
	}
}
