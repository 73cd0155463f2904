package notifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

const (
	// maxReplyChars and maxReplyLines bound a combined thread reply.
	maxReplyChars = 3500
	maxReplyLines = 100
	// quietPolls is how many passes without a new log item make the notifier ask MGN for the
	// job's status, in case the log never says JOB_END.
	quietPolls = 4
	// maxIDsPerValue keeps a button value of comma-separated server IDs under Slack's
	// 2,000 characters (an ID is 19 characters).
	maxIDsPerValue = 90
	// maxParentServers is how many server names the thread parent lists.
	maxParentServers = 10
)

// follow is a job thread this replica posts into, while it holds the job's lease.
//
// Progress is stored as (cursor, posted): posted counts the log items posted, and the cursor
// points at or before item posted, so a replica that takes over reads from the cursor and
// skips posted-cursor.Seen items. While events read are still waiting to be posted, the
// stored cursor is the one they were read from.
type follow struct {
	busy   bool
	job    migration.Launch
	read   migration.Cursor  // the next log read starts here
	batch  migration.Cursor  // where buf[0] was read from
	skip   int               // items at read posted before this follow began
	buf    []migration.Event // read, not yet posted; buf[0] is log item number posted
	posted int
	full   bool // the summary below saw the log from its first item

	servers map[string]*serverLog
	phase   string // the latest event, in words
	ended   bool   // JOB_END or JOB_CANCEL was read
	quiet   int    // passes without a new log item
	// completed is set when MGN reported the job COMPLETED before the latest read, so
	// every log item is read once buf is empty.
	completed *migration.Job

	parentPhase string    // phase last shown on the parent
	parentAt    time.Time // when the parent was last posted or updated

	// What was posted but not yet recorded, because the store failed: the next pass records
	// it instead of posting it again.
	parentStored bool // the parent's ts is in the store
	unsaved      bool // posted and the cursor are ahead of the store
	finalPosted  bool // the final reply is posted; the job is not yet marked done

	// unsure means Slack may show more than this follow knows: it was built from the store
	// (a restart, a takeover) or a post failed after Slack may have taken it. The thread is
	// read back before anything more is posted.
	unsure bool

	// lease is the lease the thread is written under: the job's, or its group launch's.
	lease string
	// results is how each server's launch ended, once the job ended; kept while the
	// post-launch actions are followed.
	results []result
	// wanted is, per launched server, how many active post-launch actions MGN runs on its
	// instance (ListSourceServerActions); nil until asked.
	wanted map[string]int
	// endSeen is when this replica found the job ended: post-launch actions are waited for
	// from then on, at most Config.VerifyWait.
	endSeen time.Time
	// verifyPosted is set once the post-launch report is posted.
	verifyPosted bool
	// seq and of number a group launch's job: job seq of of.
	seq, of int
}

// serverLog is what the log said about one server.
type serverLog struct {
	conversion []string // conversion server IDs, in the order seen
	target     string   // target instance from LAUNCH_START
	failures   []string // failure events in words, with their raw errors
	phase      string   // where its launch stands, in a word or two ("converting")
}

func newFollow(j migration.Launch) *follow {
	f := &follow{job: j, posted: j.Posted, servers: map[string]*serverLog{}, parentStored: j.ParentTS != "", lease: leaseName(j.JobID)}
	c, err := migration.ParseCursor(j.Cursor)
	if err != nil || c.Seen > j.Posted {
		c = migration.Cursor{}
	}
	f.read, f.batch = c, c
	f.skip = j.Posted - c.Seen
	f.full = c.Seen == 0
	return f
}

// absorb records what an event says about the job.
func (f *follow) absorb(e migration.Event, name string) {
	switch e.Kind {
	case migration.EventJobEnd, migration.EventJobCancel:
		f.ended = true
	}
	f.phase = e.Describe(name)
	if e.ServerID == "" {
		return
	}
	s := f.servers[e.ServerID]
	if s == nil {
		s = &serverLog{}
		f.servers[e.ServerID] = s
	}
	if e.ConversionServerID != "" && !slices.Contains(s.conversion, e.ConversionServerID) {
		s.conversion = append(s.conversion, e.ConversionServerID)
	}
	if e.Kind == migration.EventLaunchStart && e.TargetInstanceID != "" {
		s.target = e.TargetInstanceID
	}
	if e.Kind.Failure() {
		s.failures = append(s.failures, e.Describe(name))
	}
	if p := phases[e.Kind]; p != "" && (len(s.failures) == 0 || e.Kind.Failure()) {
		s.phase = p
	}
}

// phases says where a server's launch stands after each of its log events.
var phases = map[migration.EventKind]string{
	migration.EventCleanupStart: "cleaning up", migration.EventCleanupEnd: "cleaned up",
	migration.EventSnapshotStart: "snapshot", migration.EventSnapshotEnd: "snapshot taken", migration.EventUsingPreviousSnapshot: "snapshot taken",
	migration.EventConversionStart: "converting", migration.EventConversionEnd: "converted", migration.EventLaunchStart: "launching",
	migration.EventCleanupFail: "failed", migration.EventSnapshotFail: "failed", migration.EventConversionFail: "failed",
	migration.EventLaunchFailed: "failed", migration.EventServerSkipped: "skipped",
}

// storedCursor is the cursor to store with posted.
func (f *follow) storedCursor() string {
	if len(f.buf) > 0 {
		return f.batch.String()
	}
	return f.read.String()
}

func leaseName(jobID string) string { return "job:" + jobID }

func (n *Notifier) leaseTTL() time.Duration { return leasePolls * n.cfg.PollInterval }

func (n *Notifier) channelOf(j migration.Launch) string {
	if j.Channel != "" {
		return j.Channel
	}
	return n.cfg.Channel
}

// Follow starts the thread of a launch the bot started: it records the job with who
// requested it and who approved it (Slack user IDs; no approvers for a test launch), posts
// the parent message ("Cutover of db01 requested by <@U1>, approved by <@U2> — job
// mgnjob-…") and wakes the poller, which posts the job's log events as replies. When the job
// is already followed (the watcher found it first) it records the requester and approvers
// in place of the job's tag, posts nothing, and returns the existing parent's ts, which is
// "" while that parent is still being posted; the parent is edited to name them.
func (n *Notifier) Follow(ctx context.Context, job migration.Job, requestedBy string, approvedBy ...string) (string, error) {
	started := job.Created
	if started.IsZero() {
		started = n.cfg.Clock.Now()
	}
	return n.startThread(ctx, migration.Launch{
		JobID: job.ID, Kind: job.Mode(), ServerIDs: job.ServerIDs(), Channel: n.cfg.Channel,
		RequestedBy: requestedBy, ApprovedBy: approvedBy, StartedAt: started,
	})
}

// startThread stores sj and, if this call stored it, posts its parent under the job's lease.
func (n *Notifier) startThread(ctx context.Context, sj migration.Launch) (string, error) {
	n.mu.Lock()
	f := n.follows[sj.JobID]
	if f != nil {
		n.mu.Unlock()
		return n.followed(ctx, sj) // this replica follows it already
	}
	// Hold the job while it is stored and its parent posted: this replica's poller may see
	// the stored job at once, and must leave the parent to this call.
	f = newFollow(sj)
	f.busy = true
	n.follows[sj.JobID] = f
	n.mu.Unlock()
	defer n.done(f)

	created, err := n.store.FollowJob(ctx, sj)
	if err != nil || !created {
		n.forget(sj.JobID)
		if err != nil {
			return "", fmt.Errorf("follow job %s: %w", sj.JobID, err)
		}
		return n.followed(ctx, sj)
	}
	defer n.wakePoller()
	ok, err := n.store.AcquireLease(ctx, leaseName(sj.JobID), n.cfg.Holder, n.leaseTTL(), n.cfg.Clock.Now())
	if err != nil || !ok {
		// The replica that holds the lease posts the parent of a stored job that has none.
		n.forget(sj.JobID)
		return "", err
	}
	if err := n.postParent(ctx, f); err != nil {
		return "", err
	}
	return f.job.ParentTS, nil
}

// followed handles a Follow or a discovery of a job already stored: it returns the parent's
// ts ("" while the parent is being posted) and, when the bot knows who requested the job
// and the store does not, records them in place of the job's tag.
func (n *Notifier) followed(ctx context.Context, sj migration.Launch) (string, error) {
	got, err := n.store.Job(ctx, sj.JobID)
	if err != nil {
		return "", fmt.Errorf("follow job %s: %w", sj.JobID, err)
	}
	if sj.RequestedBy != "" && (got.RequestedBy != sj.RequestedBy || !slices.Equal(got.ApprovedBy, sj.ApprovedBy)) {
		// The watcher stored the job from its MGN tag; the bot knows who asked.
		if err := n.store.SetJobRequester(ctx, sj.JobID, sj.RequestedBy, sj.ApprovedBy); err != nil {
			return got.ParentTS, fmt.Errorf("follow job %s: %w", sj.JobID, err)
		}
		n.wakePoller()
	}
	return got.ParentTS, nil
}

func (n *Notifier) wakePoller() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Notifier) done(f *follow) {
	n.mu.Lock()
	f.busy = false
	n.mu.Unlock()
}

// PollOnce does one pass over the jobs being followed: for each whose lease this replica
// holds or takes, it reads the new log items, posts them into the thread, updates the
// parent and, when the job has ended, posts the final reply. Jobs are worked on in
// parallel. It returns the errors of the jobs that could not be brought up to date; they
// are tried again on the next pass.
func (n *Notifier) PollOnce(ctx context.Context) error {
	jobs, err := n.store.ActiveJobs(ctx)
	if err != nil {
		return fmt.Errorf("poll jobs: %w", err)
	}
	groups, err := n.store.ActiveGroupLaunches(ctx)
	if err != nil {
		return fmt.Errorf("poll group launches: %w", err)
	}
	active := make(map[string]bool, len(jobs))
	var (
		g    errgroup.Group
		mu   sync.Mutex
		errs []error
	)
	g.SetLimit(maxParallelJobs)
	for _, gl := range groups {
		g.Go(func() error {
			if err := n.pollGroup(ctx, gl); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("group launch %s: %w", gl.ID, err))
				mu.Unlock()
			}
			return nil
		})
	}
	for _, sj := range jobs {
		if sj.GroupID != "" {
			continue // written by its group launch's pass
		}
		active[sj.JobID] = true
		g.Go(func() error {
			if err := n.pollJob(ctx, sj); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("job %s: %w", sj.JobID, err))
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	n.mu.Lock()
	for id, f := range n.follows {
		if !active[id] && !f.busy {
			delete(n.follows, id) // finished by another replica
		}
	}
	n.mu.Unlock()
	return errors.Join(errs...)
}

// pollJob brings one job's thread up to date if this replica holds its lease.
func (n *Notifier) pollJob(ctx context.Context, sj migration.Launch) error {
	ok, err := n.store.AcquireLease(ctx, leaseName(sj.JobID), n.cfg.Holder, n.leaseTTL(), n.cfg.Clock.Now())
	if err != nil {
		return err
	}
	n.mu.Lock()
	f := n.follows[sj.JobID]
	if !ok {
		// Another replica follows this job.
		if f != nil && !f.busy {
			delete(n.follows, sj.JobID)
		}
		n.mu.Unlock()
		return nil
	}
	if f != nil && f.busy {
		n.mu.Unlock()
		return nil
	}
	// Reload when another replica posted more. A store behind this replica only missed a
	// save that failed: the follow in memory knows better.
	reload := f == nil || sj.Posted > f.posted
	if f == nil {
		f = &follow{}
		n.follows[sj.JobID] = f
	}
	f.busy = true
	n.mu.Unlock()
	defer n.done(f)

	if reload {
		// Read again under the lease: another replica may have posted since ActiveJobs.
		fresh, err := n.store.Job(ctx, sj.JobID)
		if err != nil {
			n.forget(sj.JobID)
			return err
		}
		nf := newFollow(fresh)
		nf.busy, nf.unsure = true, true
		n.mu.Lock() // startThread reads busy under the lock
		*f = *nf
		n.mu.Unlock()
		if fresh.ParentTS != "" {
			n.logger.InfoContext(ctx, "job thread resumed", "job_id", sj.JobID, "posted", fresh.Posted)
		}
	} else if f.job.RequestedBy != sj.RequestedBy || !slices.Equal(f.job.ApprovedBy, sj.ApprovedBy) {
		// Follow recorded who asked for a job the watcher found first: show it.
		f.job.RequestedBy, f.job.ApprovedBy, f.job.TaggedBy = sj.RequestedBy, sj.ApprovedBy, sj.TaggedBy
		f.parentPhase = ""
	}
	return n.advance(ctx, f)
}

func (n *Notifier) forget(jobID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.follows, jobID)
}

// advance reads the job's new log items, posts them, and finishes the job when it ended.
func (n *Notifier) advance(ctx context.Context, f *follow) error {
	id := f.job.JobID
	if f.unsure {
		if err := n.reconcile(ctx, f); err != nil {
			return err
		}
	}
	if !f.parentStored {
		if err := n.postParent(ctx, f); err != nil {
			return err
		}
	}
	names, err := n.serverNames(ctx, f.job.ServerIDs)
	if err != nil {
		return err
	}
	if f.finalPosted {
		// The launch is reported; what is left is its post-launch actions: one DescribeJobs
		// a pass, no log read.
		return n.finishJob(ctx, f, names)
	}

	wasCompleted := f.completed
	events, next, readErr := n.aws.JobLog(ctx, id, f.read)
	if readErr != nil {
		// Items read before the failure come without a usable cursor: read them again
		// next time, and post what is already buffered meanwhile.
		events = nil
	}
	if len(f.buf) == 0 {
		f.batch = f.read
	}
	fresh := 0
	for _, e := range events {
		f.absorb(e, names[e.ServerID])
		if f.skip > 0 {
			f.skip--
			continue
		}
		f.buf = append(f.buf, e)
		fresh++
	}
	if readErr == nil {
		f.read = next
	}
	if fresh == 0 {
		f.quiet++
	} else {
		f.quiet = 0
	}

	if err := n.postEvents(ctx, f, names); err != nil {
		return errors.Join(readErr, err)
	}
	if readErr != nil {
		return readErr
	}

	// MGN's status COMPLETED means every log item was written; it is checked after the
	// log's JOB_END (the last item), or now and then when the log is quiet.
	if f.completed == nil && (f.ended || f.quiet >= quietPolls) {
		job, err := n.aws.Job(ctx, id)
		switch {
		case errors.Is(err, migration.ErrNotFound):
			return n.finish(ctx, f, migration.Job{ID: id}, names, true)
		case err != nil:
			return err
		case job.Status == migration.JobCompleted:
			f.completed = &job
			f.quiet = 0
		default:
			f.quiet = 0
		}
	}
	if f.completed != nil && len(f.buf) == 0 && (f.ended || wasCompleted != nil) {
		return n.finish(ctx, f, *f.completed, names, false)
	}
	n.refreshParent(ctx, f, names)
	return nil
}

// reconcile brings a follow that may know less than Slack shows (f.unsure) up to what the
// thread holds, before anything more is posted. A parent missing from the store is looked
// for in the channel's history since the job started; the thread is read back, the log
// items its replies show are skipped, and a final report already there is not posted again.
func (n *Notifier) reconcile(ctx context.Context, f *follow) error {
	channel := n.channelOf(f.job)
	id := f.job.JobID
	if f.job.ParentTS == "" {
		ts, err := n.poster.Find(ctx, channel, "", f.job.StartedAt.Add(-slackClockSkew), parentMetadata(id))
		if n.unreadable(ctx, err, "job_id", id) {
			f.unsure = false
			return nil
		}
		if err != nil {
			return fmt.Errorf("look for the thread parent: %w", err)
		}
		if ts == "" {
			f.unsure = false // no parent, so no thread either
			return nil
		}
		n.logger.InfoContext(ctx, "thread parent found in the channel", "job_id", id, "ts", ts)
		f.job.Channel, f.job.ParentTS, f.parentStored = channel, ts, false
		f.parentPhase, f.parentAt = "", time.Time{}
	}
	msgs, err := n.poster.Replies(ctx, channel, f.job.ParentTS)
	if n.unreadable(ctx, err, "job_id", id) {
		f.unsure = false
		return nil
	}
	if se, ok := errors.AsType[slack.SlackErrorResponse](err); ok && se.Err == "thread_not_found" {
		// Someone deleted the parent: the store's account is all there is.
		n.logger.WarnContext(ctx, "job thread not found in Slack", "job_id", id, "ts", f.job.ParentTS)
		f.unsure = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the thread back: %w", err)
	}
	shown := readThread(msgs, id)
	if extra := shown.posted - f.posted; extra > 0 {
		n.logger.InfoContext(ctx, "thread shows replies not recorded", "job_id", id, "recorded", f.posted, "shown", shown.posted)
		// The first of them may be read already and waiting; skip the rest as they are read.
		dropped := min(extra, len(f.buf))
		f.buf = f.buf[dropped:]
		f.skip += extra - dropped
		f.posted = shown.posted
		f.unsaved = true
	}
	if shown.final && !f.finalPosted {
		n.logger.InfoContext(ctx, "final report found in the thread", "job_id", id)
		f.finalPosted = true
	}
	if shown.verified && !f.verifyPosted {
		n.logger.InfoContext(ctx, "post-launch report found in the thread", "job_id", id)
		f.verifyPosted = true
	}
	f.unsure = false
	return nil
}

// unreadable reports whether err says that the bot may not read the channel back: a scope
// not granted (channels:history, groups:history) or a public channel it posts to without
// being a member. It logs that as an error a person must fix: meanwhile the notifier goes on
// from the store's account, which repeats a post that a crash cut off before it was
// recorded.
func (n *Notifier) unreadable(ctx context.Context, err error, kv ...any) bool {
	se, ok := errors.AsType[slack.SlackErrorResponse](err)
	if !ok || (se.Err != "missing_scope" && se.Err != "not_in_channel") {
		return false
	}
	n.logger.ErrorContext(ctx, "cannot read the channel back; grant channels:history (groups:history for a private channel) and invite the bot",
		append(kv, "channel", n.cfg.Channel, "err", err)...)
	return true
}

// postEvents posts the buffered events in log order, one reply each, or combined when the
// thread or the channel falls behind. Progress is stored after each reply. Each reply's
// metadata names the log items it shows, so that a reply Slack took whose answer or store
// write was lost is found (by the poster, or by reconcile) instead of posted again.
func (n *Notifier) postEvents(ctx context.Context, f *follow, names map[string]string) error {
	channel := n.channelOf(f.job)
	for len(f.buf) > 0 {
		k := 1
		if len(f.buf) > n.cfg.CombineAfter || n.poster.Pending(channel) > n.cfg.CombineAfter {
			k = len(f.buf)
		}
		lines, size := make([]string, 0, k), 0
		for _, e := range f.buf[:k] {
			l := eventLine(e, names[e.ServerID])
			if len(lines) > 0 && (size+len(l)+1 > maxReplyChars || len(lines) == maxReplyLines) {
				break
			}
			lines = append(lines, l)
			size += len(l) + 1
		}
		k = len(lines)
		// Renew the lease before each reply. A reply that waits in the poster's queue
		// longer than the lease lasts may also be posted by a replica taking over; a
		// deadline on the post would not help, since a post cut off in flight may have
		// reached Slack and would be posted again by this replica.
		ok, err := n.store.AcquireLease(ctx, f.lease, n.cfg.Holder, n.leaseTTL(), n.cfg.Clock.Now())
		if err != nil {
			return err
		}
		if !ok {
			n.forget(f.job.JobID)
			return nil
		}
		_, err = n.poster.Post(ctx, channel, bot.Message{Text: strings.Join(lines, "\n"), ThreadTS: f.job.ParentTS,
			Metadata: eventsMetadata(f.job.JobID, f.posted+1, f.posted+k)})
		if err != nil {
			f.unsure = true
			return fmt.Errorf("post job events: %w", err)
		}
		f.posted += k
		f.buf = f.buf[k:]
		f.unsaved = true
		if ok, err := n.saveProgress(ctx, f); !ok || err != nil {
			return err
		}
	}
	if f.unsaved {
		_, err := n.saveProgress(ctx, f)
		return err
	}
	return nil
}

// saveProgress records what the thread shows. It reports false when another replica has
// advanced the thread further; this one then stops following it.
func (n *Notifier) saveProgress(ctx context.Context, f *follow) (bool, error) {
	err := n.store.SaveProgress(ctx, f.job.JobID, f.storedCursor(), f.posted)
	if errors.Is(err, store.ErrStale) {
		n.forget(f.job.JobID)
		n.logger.WarnContext(ctx, "job thread advanced by another replica", "job_id", f.job.JobID)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f.unsaved = false
	return true, nil
}

// eventLine is one log event as a thread reply line.
func eventLine(e migration.Event, name string) string {
	l := bot.Escape(e.Describe(name))
	if e.Kind.Failure() {
		l = "❌ " + l
	}
	return l
}

// postParent posts the thread parent, unless an earlier call did, and records it.
func (n *Notifier) postParent(ctx context.Context, f *follow) error {
	names, err := n.serverNames(ctx, f.job.ServerIDs)
	if err != nil {
		return err
	}
	if f.job.ParentTS == "" {
		channel := n.channelOf(f.job)
		if f.phase == "" {
			f.phase = "waiting for MGN to start the job"
		}
		ts, err := n.poster.Post(ctx, channel, n.parentMessage(f, names, nil))
		if err != nil {
			f.unsure = true
			return fmt.Errorf("post job parent: %w", err)
		}
		f.job.Channel, f.job.ParentTS = channel, ts
		f.parentPhase, f.parentAt = f.phase, n.cfg.Clock.Now()
	}
	if err := n.store.SetJobParent(ctx, f.job.JobID, f.job.Channel, f.job.ParentTS); err != nil {
		return err
	}
	f.parentStored = true
	n.logger.InfoContext(ctx, "job followed", "job_id", f.job.JobID, "servers", len(f.job.ServerIDs),
		"requested_by", f.job.RequestedBy, "approved_by", strings.Join(f.job.ApprovedBy, ","), "tagged_by", f.job.TaggedBy)
	return nil
}

// refreshParent edits the parent when the phase changed, at most every two poll intervals:
// chat.update allows about 50 edits a minute for the whole workspace.
func (n *Notifier) refreshParent(ctx context.Context, f *follow, names map[string]string) {
	if f.job.GroupID != "" {
		return // the group's parent is drawn by its group (refreshGroupParent)
	}
	now := n.cfg.Clock.Now()
	if f.phase == f.parentPhase || now.Sub(f.parentAt) < 2*n.cfg.PollInterval {
		return
	}
	if err := n.poster.Update(ctx, n.channelOf(f.job), f.job.ParentTS, n.parentMessage(f, names, nil)); err != nil {
		n.logger.WarnContext(ctx, "job parent not updated", "job_id", f.job.JobID, "err", err)
		return
	}
	f.parentPhase, f.parentAt = f.phase, now
}

func modeTitle(kind migration.Mode) string {
	switch kind {
	case migration.ModeTest:
		return "Test launch"
	case migration.ModeCutover:
		return "Cutover"
	}
	return "Launch"
}

func nameList(ids []string, names map[string]string, limit int) string {
	var parts []string
	for _, id := range ids[:min(len(ids), limit)] {
		parts = append(parts, bot.Escape(names[id]))
	}
	s := strings.Join(parts, ", ")
	if len(ids) > limit {
		s += fmt.Sprintf(" and %d more", len(ids)-limit)
	}
	return s
}

// parentMessage is the thread parent: what, who, the job, the phase and elapsed time, and at
// the end the outcome per server.
func (n *Notifier) parentMessage(f *follow, names map[string]string, results []result) bot.Message {
	j := f.job
	rest := fmt.Sprintf(" of %s %s — job `%s`", nameList(j.ServerIDs, names, maxParentServers), render.LaunchedBy(j), j.JobID)
	head := modeTitle(j.Kind) + rest
	elapsed := migration.HumanDuration(max(n.cfg.Clock.Now().Sub(j.StartedAt), 0))
	blocks := []slack.Block{render.Section("*" + modeTitle(j.Kind) + "*" + rest)}
	if results == nil {
		blocks = append(blocks, render.Context("Phase: "+bot.Escape(f.phase), "Elapsed: "+elapsed))
	} else {
		lines := make([]string, 0, len(results))
		for _, r := range results {
			lines = append(lines, r.short())
		}
		blocks = append(blocks, render.Context(outcomeText(results)+" after "+elapsed))
		for _, t := range render.Lines(lines) {
			blocks = append(blocks, render.Section(t))
		}
	}
	return bot.Message{Text: head, Blocks: render.Fit(blocks, "see the thread"), Metadata: parentMetadata(j.JobID)}
}

// result is how one server's launch ended.
type result struct {
	id, name  string
	ok        bool
	status    string // launchStatus in words, when neither launched nor failed
	failures  []string
	target    string
	instances map[string]migration.Instance
	conv      []string
	replic    string
	// actions is what MGN reports of the post-launch actions on the instance (nil: nothing
	// yet); wanted is how many active ones the server runs (see wantedActions).
	actions *migration.PostLaunch
	wanted  int
}

func (r result) short() string {
	switch {
	case r.verdict() == verdictUnverified:
		return fmt.Sprintf("*%s*: ⚠️ launched `%s`, not verified: %s", bot.Escape(r.name), bot.Escape(r.target), bot.Escape(r.actions.Summary()))
	case r.ok:
		return fmt.Sprintf("*%s*: ✅ launched `%s`", bot.Escape(r.name), bot.Escape(r.target))
	case len(r.failures) > 0:
		return fmt.Sprintf("*%s*: ❌ failed: %s", bot.Escape(r.name), bot.Escape(strings.Join(r.failures, "; ")))
	}
	return fmt.Sprintf("*%s*: ❌ %s", bot.Escape(r.name), bot.Escape(r.status))
}

func (r result) instance(id string) string {
	in, ok := r.instances[id]
	return render.Instance(id, in, ok, false)
}

// long is the final reply's line for the server: its outcome, its target instance with the
// IPs, and the MGN-managed servers seen for it.
func (r result) long() string {
	var b strings.Builder
	switch {
	case r.ok && r.target != "":
		in, known := r.instances[r.target]
		fmt.Fprintf(&b, "*%s*: ✅ launched %s", bot.Escape(r.name), render.Instance(r.target, in, known, true))
	default:
		b.WriteString(r.short())
		if r.target != "" {
			b.WriteString(" · target " + r.instance(r.target))
		}
	}
	for _, c := range r.conv {
		b.WriteString(" · conversion server " + r.instance(c))
	}
	if r.replic != "" {
		b.WriteString(" · replication server " + r.instance(r.replic))
	}
	return b.String()
}

func outcomeText(results []result) string {
	ok := 0
	for _, r := range results {
		if r.ok {
			ok++
		}
	}
	switch {
	case len(results) == 0:
		return "Ended"
	case ok == len(results):
		return "Launched"
	case ok == 0:
		return "Failed"
	}
	return fmt.Sprintf("%d of %d launched", ok, len(results))
}

// outcome is the short outcome stored with the job: "launched", "1 of 2 launched", and how
// many launched servers are not verified, if any.
func outcome(results []result) string {
	s := strings.ToLower(outcomeText(results))
	unverified := 0
	for _, r := range results {
		if r.verdict() == verdictUnverified {
			unverified++
		}
	}
	if unverified > 0 {
		s += fmt.Sprintf(", %d not verified", unverified)
	}
	return s
}

// finishJob reads the job of a follow whose final report is out, and finishes it.
func (n *Notifier) finishJob(ctx context.Context, f *follow, names map[string]string) error {
	job, err := n.aws.Job(ctx, f.job.JobID)
	switch {
	case errors.Is(err, migration.ErrNotFound):
		return n.finish(ctx, f, migration.Job{ID: f.job.JobID}, names, true)
	case err != nil:
		return err
	}
	return n.finish(ctx, f, job, names, false)
}

// finish reports an ended job: once, the final reply with every server's outcome, instance
// and IPs (for a batch of a group launch, a short reply: the group's thread ends with the
// report of all its servers), and the parent updated; then, when launched servers run
// post-launch actions, once they all ended (or Config.VerifyWait passed), the report of their
// outcome. The job is done after that. gone means MGN no longer knows the job.
func (n *Notifier) finish(ctx context.Context, f *follow, job migration.Job, names map[string]string, gone bool) error {
	id := f.job.JobID
	if f.results == nil {
		results, err := n.jobResults(ctx, f, job, names, gone)
		if err != nil {
			return err
		}
		f.results = results
		f.endSeen = n.cfg.Clock.Now()
		n.logger.InfoContext(ctx, "job ended", "job_id", id, "outcome", outcome(results), "posted", f.posted)
	}
	setActions(f.results, job)
	channel := n.channelOf(f.job)
	if !f.finalPosted {
		if f.job.GroupID == "" {
			if err := n.poster.Update(ctx, channel, f.job.ParentTS, n.parentMessage(f, names, f.results)); err != nil {
				n.logger.WarnContext(ctx, "job parent not updated", "job_id", id, "err", err)
			}
		}
		// After a crash between this post and FinishJob, reconcile finds the report in the
		// thread.
		m := n.finalMessage(f, f.results)
		if f.job.GroupID != "" {
			m = n.batchMessage(f, f.results)
		}
		if _, err := n.poster.Post(ctx, channel, m); err != nil {
			f.unsure = true
			return fmt.Errorf("post job outcome: %w", err)
		}
		f.finalPosted = true
	}
	done, err := n.verify(ctx, f, gone)
	if err != nil || !done {
		return err
	}
	if err := n.store.FinishJob(ctx, id, outcome(f.results)); err != nil {
		return err
	}
	n.logger.InfoContext(ctx, "job done", "job_id", id, "outcome", outcome(f.results))
	if f.job.GroupID != "" {
		return nil // the group launch holds the lease and the follow
	}
	n.forget(id)
	if err := n.store.ReleaseLease(ctx, f.lease, n.cfg.Holder); err != nil {
		n.logger.WarnContext(ctx, "job lease not released", "job_id", id, "err", err)
	}
	return nil
}

// jobResults is how each server of an ended job fared: its launch status and the log's
// failures, its target instance with the IPs, and the MGN-managed servers seen for it.
func (n *Notifier) jobResults(ctx context.Context, f *follow, job migration.Job, names map[string]string, gone bool) ([]result, error) {
	id := f.job.JobID
	if !f.full && !gone {
		// This replica resumed the thread midway: read the whole log once for the summary.
		events, _, err := n.aws.JobLog(ctx, id, migration.Cursor{})
		if err != nil {
			return nil, err
		}
		f.servers = map[string]*serverLog{}
		for _, e := range events {
			f.absorb(e, names[e.ServerID])
		}
		f.full = true
	}
	servers, err := n.aws.Servers(ctx)
	if err != nil {
		return nil, err
	}
	n.learnNames(servers)
	if names, err = n.serverNames(ctx, f.job.ServerIDs); err != nil {
		return nil, err
	}
	replicator := map[string]string{}
	for _, s := range servers {
		replicator[s.ID] = s.ReplicatorID
	}

	var results []result
	ids := f.job.ServerIDs
	if len(job.Participants) > 0 {
		ids = job.ServerIDs()
	}
	var lookup []string
	for _, sid := range ids {
		p, _ := job.Participant(sid)
		sl := f.servers[sid]
		if sl == nil {
			sl = &serverLog{}
		}
		r := result{id: sid, name: names[sid], target: p.InstanceID, conv: sl.conversion, replic: replicator[sid], failures: sl.failures}
		if r.target == "" {
			r.target = sl.target
		}
		r.ok = p.LaunchStatus == migration.LaunchLaunched && len(sl.failures) == 0
		switch {
		case gone:
			r.status = "job no longer in MGN"
		case p.LaunchStatus == "":
			r.status = "not in the job"
		default:
			r.status = strings.ToLower(migration.LaunchStatusLabel(p.LaunchStatus))
		}
		lookup = append(lookup, r.conv...)
		if r.target != "" {
			lookup = append(lookup, r.target)
		}
		if r.replic != "" {
			lookup = append(lookup, r.replic)
		}
		results = append(results, r)
	}
	instances := map[string]migration.Instance{}
	if len(lookup) > 0 {
		got, err := n.aws.Instances(ctx, lookup)
		if err != nil {
			return nil, err
		}
		for _, in := range got {
			instances[in.ID] = in
		}
	}
	for i := range results {
		results[i].instances = instances
	}
	return results, nil
}

// finalMessage is the last reply of a thread, broadcast to the channel: the outcome per
// server with instances and IPs, and the next steps as buttons.
func (n *Notifier) finalMessage(f *follow, results []result) bot.Message {
	j := f.job
	head := fmt.Sprintf("%s of %s finished: %s", modeTitle(j.Kind), nameList(j.ServerIDs, nameMap(results), maxParentServers), strings.ToLower(outcomeText(results)))
	by := render.LaunchedBy(j)
	lines := make([]string, 0, len(results))
	var okIDs []string
	for _, r := range results {
		lines = append(lines, r.long())
		if r.ok {
			okIDs = append(okIDs, r.id)
		}
	}
	blocks := []slack.Block{render.Section("*" + head + "* — " + by)}
	for _, t := range render.Lines(lines) {
		blocks = append(blocks, render.Section(t))
	}
	var buttons []slack.BlockElement
	switch {
	case len(okIDs) == 0:
	case j.Kind == migration.ModeTest:
		buttons = testNextSteps(okIDs)
	case j.Kind == migration.ModeCutover:
		blocks = append(blocks, render.Context("Finalizing is for approvers and cannot be undone: enable termination protection on the cutover instances first."))
		for _, r := range results {
			if !r.ok {
				continue
			}
			name := bot.EscapePlain(r.name)
			b := render.Button(render.ActionFinalize, "Finalize cutover: "+name, r.id, slack.StyleDanger)
			b.Confirm = render.Confirm("Finalize cutover of "+name+"?",
				fmt.Sprintf("MGN stops replicating %s and removes its replication resources; this cannot be undone. Enable termination protection on %s first.", name, bot.EscapePlain(r.target)),
				"Finalize", "Cancel", slack.StyleDanger)
			buttons = append(buttons, b)
		}
	}
	blocks = append(blocks, actions("job-"+j.JobID, buttons...)...)
	return bot.Message{Text: head + " — " + by, Blocks: render.Fit(blocks, "see the thread and /cutover status"), ThreadTS: j.ParentTS,
		Broadcast: true, Metadata: finalMetadata(j.JobID)}
}

// testNextSteps are the console's next steps after a test, for the servers ids: Mark ready for
// cutover and Revert to ready for testing, a pair for each maxIDsPerValue servers.
func testNextSteps(ids []string) []slack.BlockElement {
	var buttons []slack.BlockElement
	chunks := slices.Collect(slices.Chunk(ids, maxIDsPerValue))
	for i, c := range chunks {
		suffix := ""
		if len(chunks) > 1 {
			suffix = fmt.Sprintf(" (%d/%d)", i+1, len(chunks))
		}
		value := strings.Join(c, ",")
		buttons = append(buttons,
			render.Button(render.ActionMarkReady, "Mark ready for cutover"+suffix, value, slack.StylePrimary),
			render.Button(render.ActionRevertTest, "Revert to ready for testing"+suffix, value, ""))
	}
	return buttons
}

func nameMap(results []result) map[string]string {
	m := make(map[string]string, len(results))
	for _, r := range results {
		m[r.id] = r.name
	}
	return m
}
