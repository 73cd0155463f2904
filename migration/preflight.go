package migration

import (
	"fmt"
	"time"
)

// StaleTestAge is how old a server's last test launch may be before a cutover warns, and before
// the weekly reminder lists the server.
const StaleTestAge = 7 * 24 * time.Hour

// DefaultLagLimit is the replication lag above which a server counts as lagging: launches are
// refused and a notice is posted, unless configured otherwise.
const DefaultLagLimit = 15 * time.Minute

// Check is one pre-flight check of a launch.
type Check struct {
	Name   string // what was checked, e.g. "Replication"
	OK     bool   // passed; a failed check blocks the launch unless it is only a Warning
	Warn   bool   // passed, but a person should read Detail
	Detail string // in words a person understands
}

// Preflight is the outcome of the pre-flight checks of one server for one launch.
type Preflight struct {
	Server Server
	Mode   Mode
	Checks []Check
}

// OK reports whether every check passed, so the launch may go ahead.
func (p Preflight) OK() bool {
	for _, c := range p.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failures returns the checks that block the launch.
func (p Preflight) Failures() []Check {
	var out []Check
	for _, c := range p.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// LaunchContext is what the checks need to know beyond the server itself.
type LaunchContext struct {
	Now time.Time
	// ActiveJob is the ID of a job running for the server; "" when none.
	ActiveJob string
	// LastTestOK tells whether the latest test launch succeeded, when known; nil when unknown.
	LastTestOK *bool
	// LastTestActions is what MGN reported of the post-launch actions of the latest test
	// launch (see LastTest); nil when unknown or none ran.
	LastTestActions *PostLaunch
	// LagLimit is the lag above which replication counts as lagging; 0 means no limit.
	LagLimit time.Duration
	// Location is the time zone of the times the checks show (an initial sync's ETA); nil
	// keeps each time's own zone.
	Location *time.Location
}

// LastTest finds the job of s's latest test launch among jobs: the job s's lifecycle names,
// else (when the lifecycle names none, or a job not among jobs) the newest test job s took
// part in. It returns the job, s's part in it, and whether there is one.
func LastTest(s Server, jobs []Job) (Job, Participant, bool) {
	var (
		found  Job
		part   Participant
		newest time.Time
		ok     bool
	)
	for _, j := range jobs {
		if j.Mode() != ModeTest {
			continue
		}
		p, in := j.Participant(s.ID)
		if !in {
			continue
		}
		if j.ID == s.Lifecycle.LastTest.JobID {
			return j, p, true
		}
		if !ok || j.Created.After(newest) {
			found, part, newest, ok = j, p, j.Created, true
		}
	}
	return found, part, ok
}

// LastTestOK tells whether s's latest test launch (see LastTest) launched (true) or failed
// (false); nil when no such job is among jobs or the launch has not ended.
func LastTestOK(s Server, jobs []Job) *bool {
	_, p, ok := LastTest(s, jobs)
	if !ok {
		return nil
	}
	switch p.LaunchStatus {
	case LaunchFailed:
		return new(false)
	case LaunchLaunched:
		return new(true)
	}
	return nil
}

// LastTestActions returns what MGN reports of the post-launch actions of s's latest test
// launch among jobs (see LastTest); nil when there is none or it reports none.
func LastTestActions(s Server, jobs []Job) *PostLaunch {
	_, p, ok := LastTest(s, jobs)
	if !ok {
		return nil
	}
	return p.PostLaunch
}

// ActiveJob returns the ID of a job among jobs that still runs for server id, "" when none.
func ActiveJob(id string, jobs []Job) string {
	for _, j := range jobs {
		if _, in := j.Participant(id); in && j.Active() {
			return j.ID
		}
	}
	return ""
}

// CheckLaunch runs MGN's launch rules for a server: replication in continuous data replication
// with a lag present (and under LagLimit), a lifecycle state that allows this launch (a test from
// READY_FOR_TEST, TESTING or READY_FOR_CUTOVER; a cutover only from READY_FOR_CUTOVER), no other
// job running, and for a cutover a successful test. It reports every check, failed or not.
func CheckLaunch(s Server, mode Mode, lc LaunchContext) Preflight {
	p := Preflight{Server: s, Mode: mode}
	p.Checks = append(p.Checks, replicationCheck(s.Replication, lc))
	p.Checks = append(p.Checks, lifecycleCheck(s.Lifecycle.State, mode))
	if lc.ActiveJob != "" {
		p.Checks = append(p.Checks, Check{Name: "Jobs", Detail: fmt.Sprintf("job %s is still running for this server; MGN allows one job per server at a time", lc.ActiveJob)})
	} else {
		p.Checks = append(p.Checks, Check{Name: "Jobs", OK: true, Detail: "no other job running"})
	}
	if mode == ModeCutover {
		p.Checks = append(p.Checks, testCheck(s.Lifecycle.LastTest, lc))
		if c, ok := actionsCheck(lc.LastTestActions); ok {
			p.Checks = append(p.Checks, c)
		}
	}
	if s.Launched != nil && s.Launched.InstanceID != "" {
		p.Checks = append(p.Checks, Check{Name: "Earlier launch", OK: true, Warn: true,
			Detail: fmt.Sprintf("instance %s from an earlier launch will be terminated", s.Launched.InstanceID)})
	}
	return p
}

func replicationCheck(r Replication, lc LaunchContext) Check {
	c := Check{Name: "Replication"}
	switch {
	case r.Error != "":
		c.Detail = fmt.Sprintf("%s: %s", r.State.Label(), ReplicationErrorText(r.Error))
		if r.RawError != "" {
			c.Detail += " (" + r.RawError + ")"
		}
	case r.State == ReplicationInitialSync || r.State == ReplicationInitiating || r.State == ReplicationRescan:
		c.Detail = fmt.Sprintf("%s %.0f%%", r.State.Label(), r.Progress())
		if eta := r.ETA; !eta.IsZero() {
			if lc.Location != nil {
				eta = eta.In(lc.Location)
			}
			c.Detail += ", ETA " + eta.Format("Jan 2 15:04 MST")
		}
		c.Detail += "; launches wait for Continuous Data Replication"
	case r.State != ReplicationContinuous:
		c.Detail = fmt.Sprintf("%s, not Continuous Data Replication", r.State.Label())
	case !r.HasLag:
		c.Detail = "Continuous Data Replication, but MGN reports no lag yet, so the server is not launchable"
	case lc.LagLimit > 0 && r.Lag > lc.LagLimit:
		c.Detail = fmt.Sprintf("Continuous Data Replication but lagging %s", HumanDuration(r.Lag))
	default:
		c.OK = true
		c.Detail = "Continuous Data Replication"
		if r.Lag >= time.Second {
			c.Detail += ", lag " + HumanDuration(r.Lag)
		}
	}
	return c
}

func lifecycleCheck(st LifecycleState, mode Mode) Check {
	c := Check{Name: "Lifecycle", Detail: st.Label()}
	switch mode {
	case ModeTest:
		c.OK = st == LifecycleReadyForTest || st == LifecycleTesting || st == LifecycleReadyForCutover
		if !c.OK {
			c.Detail = st.Label() + "; a test launch needs Ready for testing, Test in progress or Ready for cutover"
		}
	case ModeCutover:
		c.OK = st == LifecycleReadyForCutover
		if !c.OK {
			c.Detail = st.Label() + "; a cutover needs Ready for cutover"
			if st == LifecycleReadyForTest || st == LifecycleTesting {
				c.Detail += " (launch a test, check it, then `/cutover ready`)"
			}
		}
	default:
		c.Detail = fmt.Sprintf("unknown launch mode %q", mode)
	}
	return c
}

func testCheck(last Milestone, lc LaunchContext) Check {
	c := Check{Name: "Test launch"}
	switch {
	case last.Initiated.IsZero():
		c.Detail = "no test launch on record; launch a test first"
	case lc.LastTestOK != nil && !*lc.LastTestOK:
		c.Detail = fmt.Sprintf("the last test launch (%s) failed", Ago(last.Initiated, lc.Now))
	default:
		c.OK = true
		c.Detail = "last test " + Ago(last.Initiated, lc.Now)
		if lc.Now.Sub(last.Initiated) > StaleTestAge {
			c.Warn = true
			c.Detail += ", more than 7 days ago"
		}
	}
	return c
}

// actionsCheck shows the post-launch actions of the last test: a warning when one that must
// succeed for cutover failed (MGN's words: "Cutover will not be enabled if the document has
// failed"). It reports false when no action ran.
func actionsCheck(pl *PostLaunch) (Check, bool) {
	if pl == nil || len(pl.Actions) == 0 {
		return Check{}, false
	}
	c := Check{Name: "Post-launch actions", OK: true, Detail: "last test: " + pl.Summary()}
	switch {
	case len(pl.Unverified()) > 0:
		c.Warn = true
		c.Detail = "the last test was not verified: " + pl.Summary()
	case !pl.Ended():
		c.Warn = true
		c.Detail += " (not finished yet)"
	}
	return c, true
}
