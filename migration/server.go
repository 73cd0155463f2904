package migration

import (
	"strings"
	"time"
)

// ReplicationState is MGN's dataReplicationState.
type ReplicationState string

// Data replication states, as MGN names them.
const (
	ReplicationStopped                 ReplicationState = "STOPPED"
	ReplicationInitiating              ReplicationState = "INITIATING"
	ReplicationInitialSync             ReplicationState = "INITIAL_SYNC"
	ReplicationBacklog                 ReplicationState = "BACKLOG"
	ReplicationCreatingSnapshot        ReplicationState = "CREATING_SNAPSHOT"
	ReplicationContinuous              ReplicationState = "CONTINUOUS"
	ReplicationPaused                  ReplicationState = "PAUSED"
	ReplicationRescan                  ReplicationState = "RESCAN"
	ReplicationStalled                 ReplicationState = "STALLED"
	ReplicationDisconnected            ReplicationState = "DISCONNECTED"
	ReplicationPendingSnapshotShipping ReplicationState = "PENDING_SNAPSHOT_SHIPPING"
	ReplicationShippingSnapshot        ReplicationState = "SHIPPING_SNAPSHOT"
)

// LifecycleState is MGN's lifeCycle.state: where a server is in the migration.
type LifecycleState string

// Lifecycle states, as MGN names them.
const (
	LifecycleNotReady            LifecycleState = "NOT_READY"
	LifecycleReadyForTest        LifecycleState = "READY_FOR_TEST"
	LifecycleTesting             LifecycleState = "TESTING"
	LifecycleReadyForCutover     LifecycleState = "READY_FOR_CUTOVER"
	LifecycleCuttingOver         LifecycleState = "CUTTING_OVER"
	LifecycleCutover             LifecycleState = "CUTOVER"
	LifecycleDisconnected        LifecycleState = "DISCONNECTED"
	LifecycleDiscovered          LifecycleState = "DISCOVERED"
	LifecyclePendingInstallation LifecycleState = "PENDING_INSTALLATION"
	LifecycleStopped             LifecycleState = "STOPPED"
)

// Server is an MGN source server: a machine being replicated into AWS.
type Server struct {
	ID       string // s- followed by 17 hex digits
	ARN      string
	Hostname string // from the agent's identification hints
	FQDN     string
	Name     string // the Name tag; "" when absent
	Archived bool
	// ApplicationID is the MGN application the server belongs to; "" when none.
	ApplicationID string

	Replication Replication
	Lifecycle   Lifecycle

	// Launched is the instance of the latest test or cutover launch; nil before the first.
	Launched *LaunchedInstance
	// ReplicatorID is the EC2 ID of the replication server receiving this server's data.
	ReplicatorID string
	// RecommendedInstanceType is what MGN's right-sizing proposes ("" when unknown).
	RecommendedInstanceType string
	// OS is the source's operating system as the agent reported it.
	OS string
}

// DisplayName is how people call the server: its Name tag, else its hostname, else its ID.
func (s Server) DisplayName() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Hostname != "":
		return shortHost(s.Hostname)
	case s.FQDN != "":
		return shortHost(s.FQDN)
	}
	return s.ID
}

func shortHost(h string) string {
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// Replication is a server's data replication: state, progress, lag and error.
type Replication struct {
	State ReplicationState
	Disks []Disk
	// Lag is how far the replica is behind the source; valid only when HasLag. MGN leaves it
	// unset until a server is launchable.
	Lag    time.Duration
	HasLag bool
	// ETA is when initial sync should finish; zero when MGN gives none.
	ETA          time.Time
	LastSnapshot time.Time
	// Error is MGN's dataReplicationError.error (e.g. AGENT_NOT_SEEN); "" when healthy.
	Error    string
	RawError string
}

// Disk is one replicated disk and its progress.
type Disk struct {
	Device                                    string
	TotalBytes, ReplicatedBytes, BacklogBytes int64
}

// TotalBytes is the size of all the server's disks.
func (r Replication) TotalBytes() int64 {
	var n int64
	for _, d := range r.Disks {
		n += d.TotalBytes
	}
	return n
}

// BacklogBytes is how much written data still waits to be replicated.
func (r Replication) BacklogBytes() int64 {
	var n int64
	for _, d := range r.Disks {
		n += d.BacklogBytes
	}
	return n
}

// Progress is the share of all disks replicated, from 0 to 100; 0 when the size is unknown.
func (r Replication) Progress() float64 {
	var total, done int64
	for _, d := range r.Disks {
		total += d.TotalBytes
		done += d.ReplicatedBytes
	}
	if total <= 0 {
		return 0
	}
	return 100 * float64(done) / float64(total)
}

// Healthy reports whether the disks are in continuous data replication with no error.
func (r Replication) Healthy() bool {
	return r.State == ReplicationContinuous && r.Error == ""
}

// Problem reports whether the replication needs a person: stalled, erroring or stopped.
func (r Replication) Problem() bool {
	return r.Error != "" || r.State == ReplicationStalled || r.State == ReplicationStopped || r.State == ReplicationPaused
}

// Lifecycle is where a server stands in the migration, with its milestones.
type Lifecycle struct {
	State       LifecycleState
	Added       time.Time
	LastSeen    time.Time
	LastTest    Milestone
	LastCutover Milestone
}

// Milestone records the latest test or cutover of a server: when it was started (and by which
// job), reverted and finalized. Zero times mean "never".
type Milestone struct {
	Initiated time.Time
	JobID     string
	Reverted  time.Time
	Finalized time.Time
}

// LaunchedInstance is the EC2 instance of a server's latest launch.
type LaunchedInstance struct {
	InstanceID string
	JobID      string
	FirstBoot  string // WAITING, SUCCEEDED, UNKNOWN or STOPPED
}

// CutOver reports whether the server's migration is over (cut over, or disconnected after it).
func (s Server) CutOver() bool {
	return s.Lifecycle.State == LifecycleCutover || !s.Lifecycle.LastCutover.Finalized.IsZero()
}
