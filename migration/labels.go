package migration

import (
	"fmt"
	"strings"
	"time"
)

var replicationLabels = map[ReplicationState]string{
	ReplicationStopped:                 "Stopped",
	ReplicationInitiating:              "Initiating",
	ReplicationInitialSync:             "Initial sync",
	ReplicationBacklog:                 "Backlog",
	ReplicationCreatingSnapshot:        "Creating snapshot",
	ReplicationContinuous:              "Continuous Data Replication",
	ReplicationPaused:                  "Paused",
	ReplicationRescan:                  "Rescanning",
	ReplicationStalled:                 "Stalled",
	ReplicationDisconnected:            "Disconnected",
	ReplicationPendingSnapshotShipping: "Pending snapshot shipping",
	ReplicationShippingSnapshot:        "Shipping snapshot",
}

// Label is the console's words for the state, e.g. "Continuous Data Replication".
func (s ReplicationState) Label() string { return label(replicationLabels, s) }

var lifecycleLabels = map[LifecycleState]string{
	LifecycleNotReady:            "Not ready",
	LifecycleReadyForTest:        "Ready for testing",
	LifecycleTesting:             "Test in progress",
	LifecycleReadyForCutover:     "Ready for cutover",
	LifecycleCuttingOver:         "Cutover in progress",
	LifecycleCutover:             "Cutover complete",
	LifecycleDisconnected:        "Disconnected",
	LifecycleDiscovered:          "Discovered",
	LifecyclePendingInstallation: "Pending installation",
	LifecycleStopped:             "Stopped",
}

// Label is the console's words for the state, e.g. "Ready for testing".
func (s LifecycleState) Label() string { return label(lifecycleLabels, s) }

// label looks a value up, falling back to the raw value in sentence case so that a state
// added to MGN later still reads sensibly.
func label[K ~string](m map[K]string, k K) string {
	if l, ok := m[k]; ok {
		return l
	}
	if k == "" {
		return "Unknown"
	}
	s := strings.ToLower(strings.ReplaceAll(string(k), "_", " "))
	return strings.ToUpper(s[:1]) + s[1:]
}

// replicationErrors maps dataReplicationError.error to what it means and what usually fixes it.
var replicationErrors = map[string]string{
	"AGENT_NOT_SEEN":                                "the agent has not been seen: check that it runs and can reach the MGN endpoint on TCP 443",
	"SNAPSHOTS_FAILURE":                             "snapshots fail: check IAM and SCPs for ec2:CreateSnapshot",
	"NOT_CONVERGING":                                "replication is not converging: the source writes faster than the link carries; check bandwidth or the staging disk type",
	"UNSTABLE_NETWORK":                              "the network between source and replication server is unstable",
	"FAILED_TO_CREATE_SECURITY_GROUP":               "the replication security group could not be created",
	"FAILED_TO_LAUNCH_REPLICATION_SERVER":           "the replication server could not be launched",
	"FAILED_TO_BOOT_REPLICATION_SERVER":             "the replication server did not boot",
	"FAILED_TO_AUTHENTICATE_WITH_SERVICE":           "the replication server could not authenticate with MGN",
	"FAILED_TO_DOWNLOAD_REPLICATION_SOFTWARE":       "the replication server could not download its software",
	"FAILED_TO_CREATE_STAGING_DISKS":                "the staging disks could not be created",
	"FAILED_TO_ATTACH_STAGING_DISKS":                "the staging disks could not be attached",
	"FAILED_TO_PAIR_REPLICATION_SERVER_WITH_AGENT":  "the replication server could not pair with the agent",
	"FAILED_TO_CONNECT_AGENT_TO_REPLICATION_SERVER": "the agent cannot reach the replication server: check TCP 1500 from source to staging subnet",
	"FAILED_TO_START_DATA_TRANSFER":                 "the data transfer could not start",
	"UNSUPPORTED_VM_CONFIGURATION":                  "the source machine's configuration is not supported",
	"LAST_SNAPSHOT_JOB_FAILED":                      "the last snapshot job failed",
	"FAILED_TO_SETUP_FSX_PROXY":                     "the FSx proxy could not be set up",
	"FAILED_TO_CREATE_FSX_SNAPSHOT":                 "the FSx snapshot could not be created",
}

// ReplicationErrorText explains an MGN replication error code in words, with the usual fix.
func ReplicationErrorText(code string) string {
	if t, ok := replicationErrors[code]; ok {
		return t
	}
	return label(map[string]string{}, code)
}

var launchStatusLabels = map[string]string{
	LaunchPending:    "Pending",
	LaunchInProgress: "In progress",
	LaunchLaunched:   "Launched",
	LaunchFailed:     "Failed",
	LaunchTerminated: "Terminated",
}

var healthLabels = map[Health]string{HealthHealthy: "healthy", HealthLagging: "lagging", HealthError: "error"}

// Label is the console's word for the health, in lower case: "healthy", "lagging", "error".
func (h Health) Label() string { return strings.ToLower(label(healthLabels, h)) }

var progressLabels = map[Progress]string{ProgressNotStarted: "not started", ProgressInProgress: "in progress", ProgressCompleted: "completed"}

// Label is the console's words for the progress, in lower case: "not started", "in progress".
func (p Progress) Label() string { return strings.ToLower(label(progressLabels, p)) }

// LaunchStatusLabel gives a participant's launch status in words.
func LaunchStatusLabel(s string) string { return label(launchStatusLabels, s) }

// Describe says in plain words what a job log event means. name is how the event's server is
// called ("" for job-wide events).
func (e Event) Describe(name string) string {
	who := name
	if who == "" {
		who = e.ServerID
	}
	var s string
	switch e.Kind {
	case EventJobStart:
		s = "Job started"
	case EventJobEnd:
		s = "Job ended"
	case EventJobCancel:
		s = "Job cancelled"
	case EventServerSkipped:
		s = who + ": skipped"
	case EventCleanupStart:
		s = who + ": removing instances from earlier launches"
	case EventCleanupEnd:
		s = who + ": instances from earlier launches removed"
	case EventCleanupFail:
		s = who + ": removing instances from earlier launches failed"
	case EventSnapshotStart:
		s = who + ": taking the final snapshot"
	case EventSnapshotEnd:
		s = who + ": snapshot taken"
	case EventUsingPreviousSnapshot:
		s = who + ": using the previous snapshot"
	case EventSnapshotFail:
		s = who + ": snapshot failed"
	case EventConversionStart:
		s = who + ": converter started"
		if e.ConversionServerID != "" {
			s += " (conversion server " + e.ConversionServerID + ")"
		}
	case EventConversionEnd:
		s = who + ": conversion finished"
	case EventConversionFail:
		s = who + ": conversion failed"
	case EventLaunchStart:
		s = who + ": launching the target instance"
		if e.TargetInstanceID != "" {
			s += " " + e.TargetInstanceID
		}
	case EventLaunchFailed:
		s = who + ": launch failed"
	default:
		s = label(map[EventKind]string{}, e.Kind)
		if who != "" {
			s = who + ": " + s
		}
	}
	if e.Attempts > 0 {
		s += fmt.Sprintf(" (attempt %d of %d)", e.Attempt, e.Attempts)
	}
	if e.RawError != "" {
		s += ": " + e.RawError
	}
	return s
}

// Ago renders how long ago t was, coarsely ("3 days ago", "40 min ago", "never").
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return HumanDuration(d) + " ago"
}

// HumanDuration renders a duration coarsely for people: "45 s", "12 min", "3 h 20 min", "9 days".
func HumanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 24*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%d h %d min", h, m)
		}
		return fmt.Sprintf("%d h", h)
	case d < 48*time.Hour:
		return "1 day"
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
