package migration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is what a launch is for.
type Mode string

// Launch modes: a test instance (repeatable, not production-impacting) or the cutover.
const (
	ModeTest    Mode = "test"
	ModeCutover Mode = "cutover"
)

// JobStatus is MGN's job status. COMPLETED says the job ended, not that it succeeded.
type JobStatus string

// Job statuses.
const (
	JobPending   JobStatus = "PENDING"
	JobStarted   JobStatus = "STARTED"
	JobCompleted JobStatus = "COMPLETED"
)

// Job initiators (MGN's initiatedBy).
const (
	InitiatedByStartTest    = "START_TEST"
	InitiatedByStartCutover = "START_CUTOVER"
	InitiatedByTerminate    = "TERMINATE"
	InitiatedByDiagnostic   = "DIAGNOSTIC"
)

// Launch statuses of a job's participating server.
const (
	LaunchPending    = "PENDING"
	LaunchInProgress = "IN_PROGRESS"
	LaunchLaunched   = "LAUNCHED"
	LaunchFailed     = "FAILED"
	LaunchTerminated = "TERMINATED"
)

// Job is an MGN job: a launch (test or cutover) or a termination of launched instances.
type Job struct {
	ID           string
	Type         string // LAUNCH or TERMINATE
	InitiatedBy  string // START_TEST, START_CUTOVER, TERMINATE, DIAGNOSTIC
	Status       JobStatus
	Created      time.Time
	Ended        time.Time // zero while running
	Participants []Participant
	Tags         map[string]string
}

// Participant is one server in a job and how its launch went.
type Participant struct {
	ServerID     string
	LaunchStatus string // PENDING, IN_PROGRESS, LAUNCHED, FAILED, TERMINATED
	InstanceID   string // the launched EC2 instance; "" until known
	// PostLaunch is what MGN reports of the post-launch actions on the launched instance;
	// nil while it reports nothing (no active actions, or the SSM agent not seen yet).
	PostLaunch *PostLaunch
}

// Mode tells whether the job launches test or cutover instances; "" for other jobs.
func (j Job) Mode() Mode {
	switch j.InitiatedBy {
	case InitiatedByStartTest:
		return ModeTest
	case InitiatedByStartCutover:
		return ModeCutover
	}
	return ""
}

// Active reports whether the job still runs.
func (j Job) Active() bool { return j.Status != JobCompleted }

// ServerIDs lists the participating servers in job order.
func (j Job) ServerIDs() []string {
	ids := make([]string, len(j.Participants))
	for i, p := range j.Participants {
		ids[i] = p.ServerID
	}
	return ids
}

// Participant returns the participant for a server.
func (j Job) Participant(serverID string) (Participant, bool) {
	for _, p := range j.Participants {
		if p.ServerID == serverID {
			return p, true
		}
	}
	return Participant{}, false
}

// EventKind is a job log event, as MGN names it.
type EventKind string

// Job log events in their usual order, then the failures.
const (
	EventJobStart              EventKind = "JOB_START"
	EventServerSkipped         EventKind = "SERVER_SKIPPED"
	EventCleanupStart          EventKind = "CLEANUP_START"
	EventCleanupEnd            EventKind = "CLEANUP_END"
	EventCleanupFail           EventKind = "CLEANUP_FAIL"
	EventSnapshotStart         EventKind = "SNAPSHOT_START"
	EventSnapshotEnd           EventKind = "SNAPSHOT_END"
	EventSnapshotFail          EventKind = "SNAPSHOT_FAIL"
	EventUsingPreviousSnapshot EventKind = "USING_PREVIOUS_SNAPSHOT"
	EventConversionStart       EventKind = "CONVERSION_START"
	EventConversionEnd         EventKind = "CONVERSION_END"
	EventConversionFail        EventKind = "CONVERSION_FAIL"
	EventLaunchStart           EventKind = "LAUNCH_START"
	EventLaunchFailed          EventKind = "LAUNCH_FAILED"
	EventJobCancel             EventKind = "JOB_CANCEL"
	EventJobEnd                EventKind = "JOB_END"
)

// Failure reports whether the event says something went wrong.
func (k EventKind) Failure() bool {
	switch k {
	case EventCleanupFail, EventSnapshotFail, EventConversionFail, EventLaunchFailed, EventServerSkipped, EventJobCancel:
		return true
	}
	return false
}

// Event is one item of a job's log.
type Event struct {
	Time               time.Time
	Kind               EventKind
	ServerID           string // "" for job-wide events
	ConversionServerID string
	TargetInstanceID   string
	RawError           string
	Attempt, Attempts  int // attempt count and maximum, on retried steps; 0 when absent
}

// Cursor marks how far a job's log has been read, so that each poll fetches only new items.
// The zero Cursor is the start of the log.
type Cursor struct {
	Seen       int    // log items already returned
	PageToken  string // token of the page holding item Seen ("" = first page)
	PageOffset int    // items of that page already returned
}

// String encodes the cursor for storage; ParseCursor reverses it.
func (c Cursor) String() string {
	return fmt.Sprintf("%d:%d:%s", c.Seen, c.PageOffset, c.PageToken)
}

// ParseCursor decodes a stored cursor; "" is the zero cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	seen, rest, ok1 := strings.Cut(s, ":")
	off, token, ok2 := strings.Cut(rest, ":")
	n, err1 := strconv.Atoi(seen)
	o, err2 := strconv.Atoi(off)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || n < 0 || o < 0 {
		return Cursor{}, fmt.Errorf("malformed log cursor %q", s)
	}
	return Cursor{Seen: n, PageOffset: o, PageToken: token}, nil
}

// Instance roles, derived from the tags MGN puts on the EC2 instances it manages.
const (
	RoleTarget      = "target"
	RoleConversion  = "conversion server"
	RoleReplication = "replication server"
)

// The Name tags MGN gives its own servers.
const (
	ConversionServerName  = "AWS Application Migration Service Conversion Server"
	ReplicationServerName = "AWS Application Migration Service Replication Server"
)

// Instance is an EC2 instance as the bot reports it.
type Instance struct {
	ID        string
	State     string // pending, running, shutting-down, terminated, stopping, stopped
	Type      string
	PrivateIP string
	PublicIP  string // "" when it has none
	Name      string
	Role      string // RoleTarget, RoleConversion, RoleReplication or ""
	// ServerID is the source server a target instance was launched for ("" when unknown).
	ServerID string
	JobID    string
	Launched time.Time
}
