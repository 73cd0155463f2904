package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// A launch of a wave or an application (a group launch) runs the pre-flight checks per server,
// leaves out the servers that fail them (named, with why) and launches the rest, in batches of
// at most MGN's 200 servers per job. The first batch starts within the command (or the
// confirming click); the others wait in the store and start as MGN has room (its quota of
// servers across active jobs), each exactly once across replicas and restarts: a batch is
// claimed under a lease and fence (store.ClaimBatch), and its job carries the batch's tag, so
// that a lost answer, or a replica taking a claim over, is settled by asking MGN, never by
// asking again.

// confirmationGroup is the wave or application a confirmation is for.
func confirmationGroup(c store.Confirmation) migration.Group {
	return migration.Group{Kind: migration.GroupKind(c.GroupKind), ID: c.GroupID, Name: c.GroupName}
}

// splitChecks separates the servers whose checks pass from those left out, with why: the
// first check that failed (`/cutover status SERVER` shows the others).
func splitChecks(pre []migration.Preflight) (pass []migration.Preflight, left []migration.LeftOut) {
	for _, p := range pre {
		if p.OK() {
			pass = append(pass, p)
			continue
		}
		c := p.Failures()[0]
		left = append(left, migration.LeftOut{ServerID: p.Server.ID, Reason: c.Name + ": " + c.Detail})
	}
	return pass, left
}

func checkedServers(pre []migration.Preflight) []migration.Server {
	out := make([]migration.Server, len(pre))
	for i, p := range pre {
		out[i] = p.Server
	}
	return out
}

// nameOf is a server's display name, as last listed, else its ID.
func (h *Handler) nameOf(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if name, ok := h.names[id]; ok {
		return name
	}
	return id
}

// maxLeftOutShown bounds the servers left out that an answer names.
const maxLeftOutShown = 10

// maxLeftOutReason bounds the reason shown for each server left out.
const maxLeftOutReason = 110

// leftOutLines lists servers left out of a launch and why, at most limit of them.
func (h *Handler) leftOutLines(left []migration.LeftOut, limit int) string {
	lines := []string{fmt.Sprintf("*Left out* (%s whose pre-flight checks failed):", plural(len(left), "server"))}
	for i, l := range left {
		if i == limit {
			lines = append(lines, fmt.Sprintf("…and %d more", len(left)-limit))
			break
		}
		lines = append(lines, fmt.Sprintf("• *%s* %s: %s", esc(h.nameOf(l.ServerID)), code(l.ServerID), esc(render.Truncate(l.Reason, maxLeftOutReason))))
	}
	return strings.Join(lines, "\n")
}

// launchGroup launches a wave or an application: the pre-flight per server, the failing
// servers left out, nothing at all when none passes; a test starts at once, a cutover waits
// on one confirmation card for all the servers that passed.
func (h *Handler) launchGroup(ctx context.Context, o origin, t migration.Target, mode migration.Mode, action string) {
	pre, err := h.preflight(ctx, t.Servers, mode)
	if err != nil {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: serverIDs(t.Servers), Outcome: "failed: pre-flight", Detail: err.Error()})
		h.replyText(ctx, o, h.errorText(ctx, "run the pre-flight checks", err))
		return
	}
	pass, left := splitChecks(pre)
	if len(pass) == 0 {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: serverIDs(t.Servers), Outcome: "refused: pre-flight failed",
			Detail: t.Group.String() + ": " + failureSummary(pre)})
		h.replyText(ctx, o, fmt.Sprintf("Sorry, nothing of %s can be launched: no server passes the pre-flight checks, so nothing was launched.\n%s",
			groupRef(t.Group), h.leftOutLines(left, maxLeftOutShown)))
		return
	}
	servers := checkedServers(pass)
	if mode == migration.ModeCutover {
		h.requestConfirmation(ctx, o, actionCutover, migration.Target{Group: t.Group, Servers: servers}, pass, left)
		return
	}
	g := migration.GroupLaunch{ID: newID(), Mode: mode, Target: t.Group, RequestedBy: o.user, ServerIDs: serverIDs(servers),
		LeftOut: left, CreatedAt: h.cfg.Clock.Now()}
	first, ts, err := h.startGroup(ctx, g)
	if err != nil {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actStartTest, ServerIDs: g.ServerIDs, Outcome: outFailed, Detail: err.Error()})
		h.replyText(ctx, o, h.errorText(ctx, "queue the test launch of "+groupRef(t.Group), err))
		return
	}
	text := fmt.Sprintf("Test launch of %s: %s.", groupRef(t.Group), h.groupProgress(g, first, ts))
	if warn := warnings(pass); warn != "" && len(pass) <= detailedChecksMax {
		text += "\n" + warn
	}
	if len(left) > 0 {
		text += "\n" + h.leftOutLines(left, maxLeftOutShown)
	}
	h.replyText(ctx, o, text)
}

// batchRun is what one attempt to start a batch did.
type batchRun struct {
	batch   migration.Batch // as claimed
	state   migration.BatchState
	job     migration.Job // started
	why     string        // failed or waiting: in words
	unknown bool          // MGN could not be asked whether it started the job
	busy    int           // waiting: servers in active jobs
}

// startGroup stores g with its batches (once: a replica that took a cutover over stores it
// again, and the first one stays) and, when it stored them, starts the first batch at once,
// claimed as it was stored, without checking its servers again (the command just did); it has
// the thread opened. It returns the first
// attempt and the thread's ts ("" while not posted). Later batches start in Run.
func (h *Handler) startGroup(ctx context.Context, g migration.GroupLaunch) (batchRun, string, error) {
	c, created, err := h.store.CreateGroupLaunch(ctx, g, migration.SplitBatches(g.ID, g.ServerIDs), h.cfg.Holder, h.cfg.Clock.Now(), h.cfg.LeaseTTL)
	if err != nil {
		return batchRun{}, "", err
	}
	first := h.firstBatch(ctx, g.ID)
	if created {
		first = h.runBatch(ctx, c, true)
	}
	ts, err := h.follower.FollowGroup(ctx, g.ID)
	if err != nil {
		h.logger.ErrorContext(ctx, "follow group failed", "group", g.ID, "err", err)
	}
	h.wakeBatches()
	return first, ts, nil
}

// groupProgress says where a group launch stands after its first attempt: "2 servers in 1
// job: job `mgnjob-…` started; progress is followed in its thread in #migration".
func (h *Handler) groupProgress(g migration.GroupLaunch, first batchRun, ts string) string {
	n := (len(g.ServerIDs) + migration.MaxServersPerJob - 1) / migration.MaxServersPerJob
	s := fmt.Sprintf("%s in %s", plural(len(g.ServerIDs), "server"), plural(n, "job"))
	switch {
	case first.state == migration.BatchStarted:
		s += fmt.Sprintf(": job %s started", code(first.job.ID))
		switch {
		case n == 2:
			s += ", the other job starts as MGN has room"
		case n > 2:
			s += fmt.Sprintf(", the other %d jobs start as MGN has room", n-1)
		}
	case first.unknown:
		s += ": AWS's answer to the first job was lost; I keep asking MGN whether it started, and the thread will say"
	case first.state == migration.BatchFailed:
		s += ": the first job was not launched: " + first.why
	case first.state == migration.BatchStarting:
		s += ": the first job is being started"
	default:
		s += ": the first job waits for room in MGN"
		if first.busy > 0 {
			s += fmt.Sprintf(" (%s are in active jobs)", plural(first.busy, "server"))
		}
	}
	where := "progress is followed in a thread in " + channelRef(h.cfg.Channel)
	if ts != "" {
		where = fmt.Sprintf("progress is followed in <%s|its thread> in %s", threadLink(h.cfg.Channel, ts), channelRef(h.cfg.Channel))
	}
	return s + "; " + where
}

// maxBatchesPerPass bounds the batches one pass of StartBatches starts.
const maxBatchesPerPass = 10

// StartBatches starts the batches of group launches that are due: queued ones whose turn has
// come, and claims whose replica stopped (after asking MGN whether it started them). Run calls
// it every BatchInterval and when a group launch is queued; tests call it directly. It returns
// the store's error.
func (h *Handler) StartBatches(ctx context.Context) error {
	for range maxBatchesPerPass {
		c, ok, err := h.store.ClaimBatch(ctx, "", h.cfg.Holder, h.cfg.Clock.Now(), h.cfg.LeaseTTL)
		if err != nil {
			return fmt.Errorf("start batches: %w", err)
		}
		if !ok {
			return nil
		}
		if run := h.runBatch(ctx, c, false); run.state == migration.BatchStarted {
			if _, err := h.follower.FollowGroup(ctx, c.GroupID); err != nil {
				h.logger.WarnContext(ctx, "follow group failed", "group", c.GroupID, "err", err)
			}
		}
	}
	return nil
}

func (h *Handler) wakeBatches() {
	select {
	case h.batches <- struct{}{}:
	default:
	}
}

// runBatch starts a batch this replica claimed. A claim taken over from a stopped replica
// first asks MGN for the job tagged with the batch's key. Unless checked, the servers are read
// again and checked: those failing now are left out, and nothing is launched when none pass.
// While MGN has no room (its answer is a conflict while other jobs run, or fewer servers are
// in active jobs than when it last refused) the batch goes back to the queue.
func (h *Handler) runBatch(ctx context.Context, c store.BatchClaim, checked bool) batchRun {
	run := batchRun{batch: c.Batch, state: migration.BatchQueued}
	key := c.Key()
	g, err := h.store.GroupLaunch(ctx, c.GroupID)
	if err != nil {
		h.logger.ErrorContext(ctx, "group launch of a batch unreadable", "batch", key, "err", err)
		h.releaseBatch(ctx, c)
		run.unknown = true
		return run
	}
	if c.TakenOver {
		job, found, err := h.aws.FindLaunch(ctx, migration.TagBatch, key, g.CreatedAt)
		switch {
		case err != nil:
			h.logger.WarnContext(ctx, "asking MGN about a batch taken over failed", "batch", key, "err", err)
			h.releaseBatch(ctx, c)
			run.unknown = true
			return run
		case found:
			return h.batchStarted(ctx, c, g, job, c.ServerIDs, nil, "the replica that claimed it had started it")
		}
	}
	now := h.cfg.Clock.Now()
	fleet, err := h.fleetServers(ctx, !checked)
	if err != nil {
		return h.requeueBatch(ctx, c, run, store.BatchOutcome{Busy: c.Busy}, h.errorText(ctx, "list the source servers", err))
	}
	var (
		servers []migration.Server
		left    []migration.LeftOut
	)
	for _, id := range c.ServerIDs {
		if i := slices.IndexFunc(fleet, func(s migration.Server) bool { return s.ID == id }); i >= 0 {
			servers = append(servers, fleet[i])
		} else {
			left = append(left, migration.LeftOut{ServerID: id, Reason: "no longer in MGN (deleted or archived)"})
		}
	}
	jobs, err := h.aws.Jobs(ctx, now.Add(-jobsWindow))
	if err != nil {
		return h.requeueBatch(ctx, c, run, store.BatchOutcome{Busy: c.Busy}, h.errorText(ctx, "list MGN's jobs", err))
	}
	if !checked {
		pass, l := splitChecks(h.checks(servers, g.Mode, jobs))
		servers, left = checkedServers(pass), append(left, l...)
	}
	if len(servers) == 0 {
		return h.failBatch(ctx, c, run, left, "no server of this job passes the pre-flight checks any more")
	}
	busy := busyServers(jobs)
	if c.Busy >= 0 && busy >= c.Busy {
		// MGN refused at this load, and nothing has freed up since.
		if h.since(g.CreatedAt) > h.cfg.BatchPatience {
			return h.failBatch(ctx, c, run, left, fmt.Sprintf("MGN had no room for this job for %s", migration.HumanDuration(h.cfg.BatchPatience)))
		}
		run.busy = busy
		return h.requeueBatch(ctx, c, run, store.BatchOutcome{Busy: c.Busy, ServerIDs: serverIDs(servers), LeftOut: left}, "")
	}
	if err := h.store.RenewBatch(ctx, key, c.Fence, h.cfg.Clock.Now(), h.cfg.LeaseTTL); err != nil {
		h.logger.WarnContext(ctx, "not starting a batch: the claim is no longer ours", "batch", key, "err", err)
		return run
	}
	ids := serverIDs(servers)
	req := migration.LaunchRequest{Mode: g.Mode, ServerIDs: ids, RequestedBy: g.RequestedBy, ApprovedBy: g.ApprovedBy, Batch: key, Since: g.CreatedAt}
	if g.Mode == migration.ModeCutover {
		req.Confirmation = g.ID
	} else {
		req.Request = g.ID
	}
	callCtx, cancel := context.WithTimeout(ctx, h.cfg.LeaseTTL/3)
	job, err := h.aws.Launch(callCtx, req)
	cancel()
	h.invalidate()
	action := actStartTest
	if g.Mode == migration.ModeCutover {
		action = actStartCutover
	}
	switch {
	case errors.Is(err, migration.ErrOutcomeUnknown):
		ref := newRef()
		h.logger.ErrorContext(ctx, "outcome of a batch launch unknown", "ref", ref, "batch", key, "err", err)
		h.audit(ctx, store.AuditEntry{User: g.RequestedBy, Action: action, ServerIDs: ids, Outcome: outUnknown, Detail: "batch " + key + "; ref " + ref})
		h.releaseBatch(ctx, c)
		run.unknown = true
		return run
	case errors.Is(err, migration.ErrConflict) && busy > 0, errors.Is(err, migration.ErrThrottled), errors.Is(err, migration.ErrUnavailable):
		// No room in MGN while other jobs run (or a passing refusal): the next attempt checks
		// the servers again, so a server that changed is left out then.
		h.logger.InfoContext(ctx, "batch waits for room in MGN", "batch", key, "busy", busy, "err", err)
		run.busy = busy
		if !errors.Is(err, migration.ErrConflict) {
			busy = c.Busy
		}
		return h.requeueBatch(ctx, c, run, store.BatchOutcome{Busy: busy, ServerIDs: ids, LeftOut: left}, "")
	case err != nil:
		h.audit(ctx, store.AuditEntry{User: g.RequestedBy, Action: action, ServerIDs: ids, Outcome: outFailed, Detail: "batch " + key + ": " + err.Error()})
		return h.failBatch(ctx, c, run, left, h.errorText(ctx, "start the job", err))
	}
	return h.batchStarted(ctx, c, g, job, ids, left, "")
}

// checks runs the launch checks of servers against MGN's recent jobs.
func (h *Handler) checks(servers []migration.Server, mode migration.Mode, jobs []migration.Job) []migration.Preflight {
	now := h.cfg.Clock.Now()
	out := make([]migration.Preflight, len(servers))
	for i, s := range servers {
		out[i] = migration.CheckLaunch(s, mode, migration.LaunchContext{Now: now, LagLimit: h.cfg.LagLimit, Location: h.cfg.Location,
			ActiveJob: migration.ActiveJob(s.ID, jobs), LastTestOK: migration.LastTestOK(s, jobs), LastTestActions: migration.LastTestActions(s, jobs)})
	}
	return out
}

// busyServers counts the servers in MGN's active jobs: MGN takes 200 across them all.
func busyServers(jobs []migration.Job) int {
	n := 0
	for _, j := range jobs {
		if j.Active() {
			n += len(j.Participants)
		}
	}
	return n
}

func (h *Handler) batchStarted(ctx context.Context, c store.BatchClaim, g migration.GroupLaunch, job migration.Job, ids []string, left []migration.LeftOut, how string) batchRun {
	err := h.store.CompleteBatch(ctx, c.Key(), store.BatchOutcome{State: migration.BatchStarted, JobID: job.ID, ServerIDs: ids, LeftOut: left},
		c.Fence, h.cfg.Clock.Now())
	if err != nil && !errors.Is(err, store.ErrAlreadyDecided) {
		h.logger.ErrorContext(ctx, "recording a started batch failed", "batch", c.Key(), "job_id", job.ID, "err", err)
	}
	action := actStartTest
	if g.Mode == migration.ModeCutover {
		action = actStartCutover
	}
	detail := fmt.Sprintf("%s, batch %d", g.Target, c.Seq)
	if how != "" {
		detail += "; " + how
	}
	h.audit(ctx, store.AuditEntry{User: g.RequestedBy, Action: action, ServerIDs: ids, Outcome: outStarted, JobID: job.ID, Detail: detail})
	h.logger.InfoContext(ctx, "batch started", "batch", c.Key(), "job_id", job.ID, "servers", len(ids))
	return batchRun{batch: c.Batch, state: migration.BatchStarted, job: job}
}

func (h *Handler) failBatch(ctx context.Context, c store.BatchClaim, run batchRun, left []migration.LeftOut, why string) batchRun {
	err := h.store.CompleteBatch(ctx, c.Key(), store.BatchOutcome{State: migration.BatchFailed, Error: stripMarkup(why), ServerIDs: []string{}, LeftOut: left},
		c.Fence, h.cfg.Clock.Now())
	if err != nil {
		h.logger.WarnContext(ctx, "recording a failed batch failed", "batch", c.Key(), "err", err)
		return run
	}
	h.logger.WarnContext(ctx, "batch not launched", "batch", c.Key(), "why", stripMarkup(why))
	run.state, run.why = migration.BatchFailed, why
	return run
}

// requeueBatch puts a claimed batch back in the queue, to be tried again after BatchInterval.
func (h *Handler) requeueBatch(ctx context.Context, c store.BatchClaim, run batchRun, o store.BatchOutcome, why string) batchRun {
	o.State, o.NextTry = migration.BatchQueued, h.cfg.Clock.Now().Add(h.cfg.BatchInterval)
	if err := h.store.CompleteBatch(ctx, c.Key(), o, c.Fence, h.cfg.Clock.Now()); err != nil {
		h.logger.WarnContext(ctx, "requeueing a batch failed", "batch", c.Key(), "err", err)
	}
	if why != "" {
		h.logger.WarnContext(ctx, "batch waits", "batch", c.Key(), "why", stripMarkup(why))
	}
	run.why = why
	return run
}

// releaseBatch ends this replica's claim at once, so that the next pass asks MGN again.
func (h *Handler) releaseBatch(ctx context.Context, c store.BatchClaim) {
	if err := h.store.ReleaseBatch(context.WithoutCancel(ctx), c.Key(), c.Fence); err != nil {
		h.logger.WarnContext(ctx, "releasing a batch failed", "batch", c.Key(), "err", err)
	}
}

// carryGroup carries out the confirmed cutover of a wave or application: the servers whose
// checks no longer pass are left out (named on the card), the others are handed to batches,
// the first of which starts now. A replica taking it over finds the batches already stored
// when the first owner got that far, and leaves them to run.
func (h *Handler) carryGroup(ctx context.Context, c store.Confirmation, resumed bool) string {
	f := c.Token()
	// The stored group launch says first whether the replica that took the click queued it.
	g, err := h.store.GroupLaunch(ctx, c.ID)
	switch {
	case err == nil:
		return h.groupLaunched(ctx, c, g, h.firstBatch(ctx, g.ID), g.ParentTS, "the replica that took the click had queued it")
	case !errors.Is(err, store.ErrNotFound):
		if rerr := h.store.ReleaseConfirmation(ctx, c.ID, f); rerr != nil {
			h.logger.WarnContext(ctx, "releasing a confirmation failed", "confirmation", c.ID, "err", rerr)
		}
		return h.errorText(ctx, "read the cutover's batches; another pass tries again", err)
	}
	if resumed {
		if why := h.tooLate(c); why != "" {
			return h.notLaunched(ctx, c, f, why)
		}
	}
	servers, gone, ok, answer := h.readAgain(ctx, c, f, false)
	if !ok {
		return answer
	}
	pre, err := h.preflight(ctx, servers, migration.ModeCutover)
	if err != nil {
		return h.notLaunched(ctx, c, f, h.errorText(ctx, "run the pre-flight checks again", err))
	}
	pass, left := splitChecks(pre)
	left = append(gone, left...)
	if len(pass) == 0 {
		h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actStartCutover, ServerIDs: c.ServerIDs, Outcome: outPreflight, Detail: failureSummary(pre)})
		return h.notLaunched(ctx, c, f, "no server passes the pre-flight checks any more:\n"+h.leftOutLines(left, maxLeftOutShown))
	}
	if !h.beginCall(ctx, c, f) {
		return h.latestDecided(ctx, c.ID)
	}
	g = migration.GroupLaunch{ID: c.ID, Mode: migration.ModeCutover, Target: confirmationGroup(c), RequestedBy: c.RequestedBy,
		ApprovedBy: c.Approvals, ServerIDs: serverIDs(checkedServers(pass)), LeftOut: left, CreatedAt: h.cfg.Clock.Now()}
	first, ts, err := h.startGroup(ctx, g)
	if err != nil {
		return h.notLaunched(ctx, c, f, h.errorText(ctx, "queue the cutover", err))
	}
	if g, err = h.store.GroupLaunch(ctx, c.ID); err != nil {
		h.logger.WarnContext(ctx, "rereading a group launch failed", "group", c.ID, "err", err)
	}
	if first.state == migration.BatchFailed && len(g.ServerIDs) <= migration.MaxServersPerJob {
		return h.notLaunched(ctx, c, f, first.why)
	}
	return h.groupLaunched(ctx, c, g, first, ts, "")
}

// goneServers lists, as left out, the ids that MGN did not return among servers.
func goneServers(ids []string, servers []migration.Server) []migration.LeftOut {
	var gone []migration.LeftOut
	for _, id := range ids {
		if !slices.ContainsFunc(servers, func(s migration.Server) bool { return s.ID == id }) {
			gone = append(gone, migration.LeftOut{ServerID: id, Reason: "MGN no longer has this server (archived or deleted)"})
		}
	}
	return gone
}

// firstBatch is where the first batch of a stored group launch stands.
func (h *Handler) firstBatch(ctx context.Context, id string) batchRun {
	bs, err := h.store.Batches(ctx, id)
	if err != nil || len(bs) == 0 {
		return batchRun{state: migration.BatchQueued}
	}
	b := bs[0]
	return batchRun{batch: b, state: b.State, job: migration.Job{ID: b.JobID}, why: b.Error}
}

// groupLaunched records that c's cutover was handed to its batches, and says where it stands.
func (h *Handler) groupLaunched(ctx context.Context, c store.Confirmation, g migration.GroupLaunch, first batchRun, ts, how string) string {
	progress := h.groupProgress(g, first, ts)
	err := h.store.CompleteConfirmation(ctx, c.ID, store.Outcome{State: store.Launched, JobID: first.job.ID, Detail: progress}, c.Token(), h.cfg.Clock.Now())
	if err != nil && !errors.Is(err, store.ErrAlreadyDecided) {
		h.logger.ErrorContext(ctx, "recording a launched confirmation failed", "confirmation", c.ID, "err", err)
	}
	detail := "confirmation " + c.ID
	if how != "" {
		detail += "; " + how
	}
	h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actStartCutover, ServerIDs: g.ServerIDs, Outcome: "queued", JobID: first.job.ID, Detail: detail})
	h.cardChanged(c.ID)
	text := fmt.Sprintf(":white_check_mark: The cutover of %s: %s.", groupRef(confirmationGroup(c)), progress)
	if len(g.LeftOut) > 0 {
		text += "\n" + h.leftOutLines(g.LeftOut, maxLeftOutShown)
	}
	return text
}
