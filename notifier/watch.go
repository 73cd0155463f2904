package notifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// WatchOnce does one pass of the watcher: it posts a notice for each server whose
// replication changed since the last pass (the first pass after start only records the
// states), gives every launch job it has not seen its own thread, including launches
// started in the AWS console or through the API, and retries reminder firings claimed but
// not posted (RetryReminders).
func (n *Notifier) WatchOnce(ctx context.Context) error {
	return errors.Join(n.watchServers(ctx), n.discoverJobs(ctx), n.RetryReminders(ctx))
}

// serverState is the compact replication state kept per server in the store, e.g.
// "CONTINUOUS|ok|lag0": replication state, error code ("ok" for none), lag above the
// threshold. Only changes of these are announced; the lag value itself is not part of it.
type serverState struct {
	repl    migration.ReplicationState
	errCode string
	lagHigh bool
}

func stateOf(s migration.Server, threshold time.Duration) serverState {
	st := serverState{repl: s.Replication.State, errCode: s.Replication.Error}
	st.lagHigh = s.Replication.HasLag && s.Replication.Lag > threshold
	return st
}

func (s serverState) String() string {
	code := s.errCode
	if code == "" {
		code = "ok"
	}
	lag := "lag0"
	if s.lagHigh {
		lag = "lag1"
	}
	return string(s.repl) + "|" + code + "|" + lag
}

func parseState(v string) (serverState, bool) {
	parts := strings.Split(v, "|")
	if len(parts) != 3 || (parts[2] != "lag0" && parts[2] != "lag1") {
		return serverState{}, false
	}
	st := serverState{repl: migration.ReplicationState(parts[0]), errCode: parts[1], lagHigh: parts[2] == "lag1"}
	if st.errCode == "ok" {
		st.errCode = ""
	}
	return st, true
}

// problem reports whether the replication needs a person (as migration.Replication.Problem).
func (s serverState) problem() bool {
	switch s.repl {
	case migration.ReplicationStalled, migration.ReplicationStopped, migration.ReplicationPaused:
		return true
	}
	return s.errCode != ""
}

// watchServers posts one notice per server state transition, across restarts: the states are
// compared with those stored at the last pass, whichever replica made it. Of several replicas seeing the
// same transition only the one whose compare-and-swap wins posts it.
func (n *Notifier) watchServers(ctx context.Context) error {
	servers, err := n.aws.Servers(ctx)
	if err != nil {
		return fmt.Errorf("watch servers: %w", err)
	}
	n.learnNames(servers)
	stored, err := n.store.ServerStates(ctx)
	if err != nil {
		return fmt.Errorf("watch servers: %w", err)
	}
	now := n.cfg.Clock.Now()
	var errs []error
	for _, s := range servers {
		next := stateOf(s, n.cfg.LagThreshold).String()
		prev := stored[s.ID]
		if prev == next {
			continue
		}
		won, err := n.store.SwapServerState(ctx, s.ID, prev, next, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// The stored state is the last one announced, so a change that happened while no
		// replica was running is announced too. A server with no stored state is the baseline
		// (the first read into an empty store, or a server new to MGN): recorded, not posted.
		if !won || prev == "" {
			continue // another replica announces it, or a baseline
		}
		text := n.notice(s, prev, next)
		if text == "" {
			continue
		}
		if _, err := n.poster.Post(ctx, n.cfg.Channel, bot.Message{Text: text}); err != nil {
			// Put the old state back, so that the next pass announces the change.
			if _, err2 := n.store.SwapServerState(ctx, s.ID, next, prev, now); err2 != nil {
				err = errors.Join(err, err2)
			}
			errs = append(errs, fmt.Errorf("notice for %s: %w", s.ID, err))
			continue
		}
		n.logger.InfoContext(ctx, "replication notice posted", "server_id", s.ID, "from", prev, "to", next)
	}
	return errors.Join(errs...)
}

// notice says in words what changed between two stored states; "" when nothing worth a
// post changed. A return to Continuous Data Replication from a backlog is not announced:
// it is the normal way replication catches up.
func (n *Notifier) notice(s migration.Server, prevV, nextV string) string {
	prev, ok1 := parseState(prevV)
	next, ok2 := parseState(nextV)
	if !ok1 || !ok2 {
		return ""
	}
	name := bot.Escape(s.DisplayName())
	var lines []string
	switch {
	case next.problem() && (!prev.problem() || prev.errCode != next.errCode || prev.repl != next.repl):
		lines = append(lines, "⚠️ "+problemText(name, s.Replication))
	case prev.problem() && !next.problem():
		lines = append(lines, fmt.Sprintf("✅ %s replication recovered (%s)", name, next.repl.Label()))
	case next.repl == migration.ReplicationContinuous && prev.repl != migration.ReplicationContinuous &&
		prev.repl != migration.ReplicationBacklog:
		lines = append(lines, fmt.Sprintf("✅ %s reached Continuous Data Replication — ready to test (`/cutover launch %s test`)", name, name))
	}
	threshold := migration.HumanDuration(n.cfg.LagThreshold)
	switch {
	case next.lagHigh && !prev.lagHigh:
		lines = append(lines, fmt.Sprintf("🐢 %s lag is %s (threshold %s)", name, migration.HumanDuration(s.Replication.Lag), threshold))
	case prev.lagHigh && !next.lagHigh && !next.problem() && s.Replication.HasLag:
		lines = append(lines, fmt.Sprintf("✅ %s lag is back under %s (now %s)", name, threshold, migration.HumanDuration(s.Replication.Lag)))
	}
	return strings.Join(lines, "\n")
}

// problemText is "file01 replication stalled: <what the error means> (<raw error>)".
func problemText(name string, r migration.Replication) string {
	verb := "has an error"
	switch r.State {
	case migration.ReplicationStalled:
		verb = "stalled"
	case migration.ReplicationPaused:
		verb = "is paused"
	case migration.ReplicationStopped:
		verb = "stopped"
	}
	s := name + " replication " + verb
	if r.Error != "" {
		s += ": " + bot.Escape(migration.ReplicationErrorText(r.Error))
	}
	if r.RawError != "" {
		s += " (" + bot.Escape(r.RawError) + ")"
	}
	return s
}

// discoverJobs gives each LAUNCH job not yet in the store its thread. A job the bot started
// races with Follow: whichever stores it first posts its parent. The watcher cannot tell the
// bot's launches from others (anyone may tag a job), so it records a requester tag only as a
// tag, which Follow replaces with who asked and approved. On the first pass after start,
// jobs that already ended are recorded without a post, while running ones are followed: a
// launch running while the bot was down still gets its thread.
func (n *Notifier) discoverJobs(ctx context.Context) error {
	now := n.cfg.Clock.Now()
	n.mu.Lock()
	from := n.jobsFrom
	n.mu.Unlock()
	first := from.IsZero()
	if first {
		from = now.Add(-discoveryLookback)
	}
	jobs, err := n.aws.Jobs(ctx, from)
	if err != nil {
		return fmt.Errorf("discover jobs: %w", err)
	}
	slices.Reverse(jobs) // oldest first, so threads appear in launch order
	var errs []error
	for _, j := range jobs {
		if j.Type != "LAUNCH" || n.isKnown(j.ID) {
			continue
		}
		if mine, err := n.batchJob(ctx, j); err != nil || mine {
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		_, err := n.store.Job(ctx, j.ID)
		switch {
		case err == nil:
		case !errors.Is(err, store.ErrNotFound):
			errs = append(errs, err)
			continue
		case first && !j.Active():
			_, err = n.store.FollowJob(ctx, migration.Launch{
				JobID: j.ID, Kind: j.Mode(), ServerIDs: j.ServerIDs(), TaggedBy: j.Tags[migration.TagRequestedBy],
				StartedAt: j.Created, Done: true, Outcome: "ended before cutoverbot watched",
			})
		default:
			who := j.Tags[migration.TagRequestedBy]
			if who == "" {
				n.logger.InfoContext(ctx, "launch started outside cutoverbot", "job_id", j.ID, "servers", len(j.Participants))
			}
			sj := migration.Launch{JobID: j.ID, Kind: j.Mode(), ServerIDs: j.ServerIDs(), Channel: n.cfg.Channel,
				TaggedBy: who, StartedAt: j.Created}
			if sj.StartedAt.IsZero() {
				sj.StartedAt = now
			}
			_, err = n.startThread(ctx, sj)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.mu.Lock()
		n.known[j.ID] = j.Created
		n.mu.Unlock()
	}
	if len(errs) == 0 {
		// The next listing overlaps this one, for clock skew and for jobs MGN lists late.
		margin := max(2*n.cfg.WatchInterval, 5*time.Minute)
		n.mu.Lock()
		n.jobsFrom = now.Add(-margin)
		for id, created := range n.known {
			if created.Before(n.jobsFrom.Add(-margin)) {
				delete(n.known, id)
			}
		}
		n.mu.Unlock()
	}
	return errors.Join(errs...)
}

// batchJob reports whether j is the job of a batch of a group launch, whose thread follows
// it: its batch tag names a batch in the store that started j, or is starting (the job is not
// recorded yet, and is looked at again on the next pass). A tag naming no stored batch, or
// another job, gets no special treatment: anyone can tag a job.
func (n *Notifier) batchJob(ctx context.Context, j migration.Job) (bool, error) {
	key := j.Tags[migration.TagBatch]
	if key == "" {
		return false, nil
	}
	b, err := n.store.Batch(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case b.JobID == j.ID:
		n.mu.Lock()
		n.known[j.ID] = j.Created
		n.mu.Unlock()
		return true, nil
	}
	return b.State == migration.BatchStarting || b.State == migration.BatchQueued, nil
}

func (n *Notifier) isKnown(jobID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.known[jobID]
	return ok
}
