package mgnemu

import (
	"sync"
	"time"
)

// ManualClock is a clock that moves only when told to. Its Now method fits
// Options.Now. It is safe for concurrent use; the zero value starts at the zero time.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock set to t.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *ManualClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to t. Moving it backwards undoes nothing that already happened.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Pace sets how long each phase of a job takes, in clock time.
// A zero Pace in Options means FastPace.
type Pace struct {
	Start      time.Duration // job creation to JOB_START
	Stagger    time.Duration // delay between the starts of successive servers in one job
	Cleanup    time.Duration // CLEANUP_START to CLEANUP_END
	Snapshot   time.Duration // SNAPSHOT_START to SNAPSHOT_END
	Conversion time.Duration // CONVERSION_START to CONVERSION_END
	Launch     time.Duration // LAUNCH_START to the target instance running (LAUNCHED)
	FirstBoot  time.Duration // LAUNCHED to firstBoot SUCCEEDED; the server's part ends then
	Boot       time.Duration // pending to running for MGN's own conversion server
	Shutdown   time.Duration // shutting-down to terminated, for instances not removed by a cleanup phase
	SSMAgent   time.Duration // end of a server's part of a launch job to the SSM agent seen on its new instance
	Action     time.Duration // run time of each post-launch action; they run one after another
}

// FastPace runs a single-server job through all its events in about 10 seconds.
func FastPace() Pace {
	return Pace{
		Start:      500 * time.Millisecond,
		Stagger:    250 * time.Millisecond,
		Cleanup:    time.Second,
		Snapshot:   2 * time.Second,
		Conversion: 3 * time.Second,
		Launch:     2 * time.Second,
		FirstBoot:  time.Second,
		Boot:       500 * time.Millisecond,
		Shutdown:   500 * time.Millisecond,
		SSMAgent:   time.Second,
		Action:     2 * time.Second,
	}
}

// RealisticPace is close to what MGN takes: about 12 minutes for a single-server job.
func RealisticPace() Pace {
	return Pace{
		Start:      10 * time.Second,
		Stagger:    5 * time.Second,
		Cleanup:    20 * time.Second,
		Snapshot:   45 * time.Second,
		Conversion: 6 * time.Minute,
		Launch:     90 * time.Second,
		FirstBoot:  2 * time.Minute,
		Boot:       40 * time.Second,
		Shutdown:   30 * time.Second,
		SSMAgent:   2 * time.Minute,
		Action:     3 * time.Minute,
	}
}

// Total is the clock time a single-server launch job takes from creation to
// JOB_END. Post-launch actions run after it (see PostLaunch).
func (p Pace) Total() time.Duration {
	return p.Start + p.Cleanup + p.Snapshot + p.Conversion + p.Launch + p.FirstBoot
}

// PostLaunch is the clock time from the end of a server's part of a launch job
// until the last of its n post-launch actions has finished.
func (p Pace) PostLaunch(n int) time.Duration {
	return p.SSMAgent + time.Duration(n)*p.Action
}
