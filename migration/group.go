package migration

import (
	"slices"
	"strconv"
	"time"
)

// GroupLaunch is a launch of a wave or an application, as cutoverbot records it: the servers
// that passed the pre-flight checks, split into batches of at most MaxServersPerJob that start
// one after another as MGN has capacity, and the one Slack thread that follows them all. The
// store keeps it; the handlers start its batches and the notifier writes its thread.
type GroupLaunch struct {
	ID     string // random; a cutover's is its confirmation's ID
	Mode   Mode
	Target Group // the wave or application
	// RequestedBy and ApprovedBy are Slack user IDs, as on Launch.
	RequestedBy string
	ApprovedBy  []string
	// ServerIDs are the servers to launch, in batch order; LeftOut those left out when it
	// was requested, with why.
	ServerIDs []string
	LeftOut   []LeftOut
	Channel   string // the thread's channel; "" until posted
	ParentTS  string // the thread's first message; "" until posted
	CreatedAt time.Time
	Done      bool
	Outcome   string    // set when Done
	UpdatedAt time.Time // set by the store
}

// LeftOut is a server left out of a launch, and why, in words.
type LeftOut struct {
	ServerID string `json:"server_id"`
	Reason   string `json:"reason"`
}

// BatchState is where a batch of a group launch is.
type BatchState string

// Batch states: queued until a replica claims it (starting), then started (MGN has its job)
// or failed (MGN has none, for good); a starting batch whose replica stopped is claimed again.
const (
	BatchQueued   BatchState = "queued"
	BatchStarting BatchState = "starting"
	BatchStarted  BatchState = "started"
	BatchFailed   BatchState = "failed"
)

// Final reports whether nothing more happens to a batch in state s.
func (s BatchState) Final() bool { return s == BatchStarted || s == BatchFailed }

// Batch is one job's worth of a group launch.
type Batch struct {
	GroupID   string
	Seq       int // from 1, in start order
	ServerIDs []string
	// LeftOut are servers dropped from the batch when it started, because their pre-flight
	// checks no longer passed.
	LeftOut []LeftOut
	State   BatchState
	JobID   string // set once started
	Error   string // why nothing was launched, once failed
	// NextTry is when a queued batch may be tried again (MGN had no capacity); Busy is how
	// many servers were in active jobs then: capacity frees up when that number drops.
	NextTry   time.Time
	Busy      int
	UpdatedAt time.Time
}

// Key names the batch in the job's cutoverbot:batch tag: "<group launch ID>/<seq>".
func (b Batch) Key() string { return BatchKey(b.GroupID, b.Seq) }

// BatchKey is the key of batch seq of group launch id.
func BatchKey(id string, seq int) string { return id + "/" + strconv.Itoa(seq) }

// SplitBatches cuts ids into batches of at most MaxServersPerJob servers, in order, as even
// as possible (450 servers make 150, 150, 150), numbered from 1.
func SplitBatches(groupID string, ids []string) []Batch {
	n := (len(ids) + MaxServersPerJob - 1) / MaxServersPerJob
	if n == 0 {
		return nil
	}
	size := (len(ids) + n - 1) / n
	var out []Batch
	for chunk := range slices.Chunk(ids, size) {
		out = append(out, Batch{GroupID: groupID, Seq: len(out) + 1, ServerIDs: slices.Clone(chunk), State: BatchQueued})
	}
	return out
}
