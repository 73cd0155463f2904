package notifier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// A launch of a wave or an application (a group launch) has one thread for all its batches'
// jobs. The parent lists every server's state (queued, starting, cleaning up, snapshot,
// converting, launching, launched with its IPs, verified, failed, left out), edited in place
// at most every two poll intervals; with many servers it shows the counts and the servers
// that changed since the last edit. Each job's log events are replies, one per event or
// combined when many arrive at once, with the job's metadata as for a job of its own; a short
// reply ends each job, and one reports its post-launch actions. When every batch has started
// or failed and every job is done, the final report lists every server with its instance and
// IPs, problems first, in parts of at most groupPartLines servers (the first part broadcast);
// each part carries its number in its metadata, so that nothing is posted twice. One replica
// at a time writes a group's thread, under the group's lease.

const (
	// maxGroupParentLines is how many servers the parent lists one by one; with more it
	// lists those whose state changed.
	maxGroupParentLines = 40
	// maxChangedLines bounds the changed servers a parent edit lists.
	maxChangedLines = 30
	// groupPartLines is how many servers one part of the final report lists.
	groupPartLines = 40
	// maxGroupButtonIDs is how many servers the Mark ready buttons of a final report may
	// name (two pairs of buttons); a larger wave gets the command instead.
	maxGroupButtonIDs = 2 * maxIDsPerValue
)

func groupLease(id string) string { return "group:" + id }

// groupFollow is a group launch's thread this replica writes, while it holds its lease.
type groupFollow struct {
	busy    bool
	g       migration.GroupLaunch
	batches []migration.Batch
	jobs    map[string]*follow // by job ID
	done    map[string]bool    // jobs finished (their thread part complete)
	// unsure: the follow was built from the store; the parent is looked for in the channel
	// and the final report's parts in the thread before anything is posted.
	unsure   bool
	shown    map[string]string // per server, the state the parent shows
	parentAt time.Time
	parts    map[int]bool // parts of the final report posted
}

func newGroupFollow(g migration.GroupLaunch) *groupFollow {
	return &groupFollow{g: g, jobs: map[string]*follow{}, done: map[string]bool{}, shown: map[string]string{}, parts: map[int]bool{}, unsure: true}
}

// FollowGroup opens the thread of a stored group launch: unless it has one, it posts the
// parent (under the group's lease; after looking for one a stopped replica may have posted)
// and wakes the poller, which follows the batches' jobs as they start. It returns the
// parent's ts, "" while another call or replica posts it.
func (n *Notifier) FollowGroup(ctx context.Context, groupID string) (string, error) {
	defer n.wakePoller()
	g, err := n.store.GroupLaunch(ctx, groupID)
	if err != nil {
		return "", fmt.Errorf("follow group %s: %w", groupID, err)
	}
	if g.ParentTS != "" {
		return g.ParentTS, nil
	}
	n.mu.Lock()
	gf := n.groups[groupID]
	if gf != nil && gf.busy {
		n.mu.Unlock()
		return "", nil
	}
	if gf == nil {
		gf = newGroupFollow(g)
		n.groups[groupID] = gf
	}
	gf.busy = true
	n.mu.Unlock()
	defer n.groupDone(gf)
	ok, err := n.store.AcquireLease(ctx, groupLease(groupID), n.cfg.Holder, n.leaseTTL(), n.cfg.Clock.Now())
	if err != nil || !ok {
		n.forgetGroup(groupID)
		return "", err
	}
	if err := n.groupParent(ctx, gf); err != nil {
		return "", err
	}
	return gf.g.ParentTS, nil
}

func (n *Notifier) groupDone(gf *groupFollow) {
	n.mu.Lock()
	gf.busy = false
	n.mu.Unlock()
}

func (n *Notifier) forgetGroup(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.groups, id)
}

// groupParent makes sure the group's thread parent is posted and stored: looked for in the
// channel first when the follow was built from the store.
func (n *Notifier) groupParent(ctx context.Context, gf *groupFollow) error {
	g := &gf.g
	channel := cmp.Or(g.Channel, n.cfg.Channel)
	if g.ParentTS == "" && gf.unsure {
		ts, err := n.poster.Find(ctx, channel, "", g.CreatedAt.Add(-slackClockSkew), groupParentMetadata(g.ID))
		switch {
		case n.unreadable(ctx, err, "group", g.ID):
		case err != nil:
			return fmt.Errorf("look for the group's thread parent: %w", err)
		case ts != "":
			n.logger.InfoContext(ctx, "group thread parent found in the channel", "group", g.ID, "ts", ts)
			g.Channel, g.ParentTS = channel, ts
			if err := n.store.SetGroupParent(ctx, g.ID, channel, ts); err != nil {
				return err
			}
		}
	}
	if g.ParentTS != "" {
		return nil
	}
	if _, err := n.serverNames(ctx, g.ServerIDs); err != nil {
		return err
	}
	if gf.batches == nil {
		batches, err := n.store.Batches(ctx, g.ID)
		if err != nil {
			return err
		}
		gf.batches = batches
	}
	ts, err := n.poster.Post(ctx, channel, n.groupParentMessage(gf, n.groupStates(gf), false))
	if err != nil {
		return fmt.Errorf("post group parent: %w", err)
	}
	g.Channel, g.ParentTS = channel, ts
	gf.parentAt = n.cfg.Clock.Now()
	n.logger.InfoContext(ctx, "group launch followed", "group", g.ID, "target", g.Target.String(), "servers", len(g.ServerIDs))
	return n.store.SetGroupParent(ctx, g.ID, channel, ts)
}

// pollGroup brings one group launch's thread up to date if this replica holds its lease.
func (n *Notifier) pollGroup(ctx context.Context, g migration.GroupLaunch) error {
	ok, err := n.store.AcquireLease(ctx, groupLease(g.ID), n.cfg.Holder, n.leaseTTL(), n.cfg.Clock.Now())
	if err != nil {
		return err
	}
	n.mu.Lock()
	gf := n.groups[g.ID]
	if !ok {
		if gf != nil && !gf.busy {
			delete(n.groups, g.ID) // another replica writes it
		}
		n.mu.Unlock()
		return nil
	}
	if gf != nil && gf.busy {
		n.mu.Unlock()
		return nil
	}
	if gf == nil {
		gf = newGroupFollow(g)
		n.groups[g.ID] = gf
	} else if gf.g.ParentTS == "" {
		gf.g.Channel, gf.g.ParentTS = g.Channel, g.ParentTS
	}
	gf.busy = true
	n.mu.Unlock()
	defer n.groupDone(gf)
	return n.advanceGroup(ctx, gf)
}

// advanceGroup posts what is new in a group launch: its parent, its jobs' events and reports,
// the parent's edit, and the final report once everything ended.
func (n *Notifier) advanceGroup(ctx context.Context, gf *groupFollow) error {
	g := &gf.g
	if err := n.groupParent(ctx, gf); err != nil {
		return err
	}
	batches, err := n.store.Batches(ctx, g.ID)
	if err != nil {
		return err
	}
	gf.batches = batches
	var errs []error
	for _, b := range batches {
		if b.State != migration.BatchStarted || gf.done[b.JobID] {
			continue
		}
		f, err := n.groupJob(ctx, gf, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f == nil {
			continue // done before this replica took the group
		}
		if err := n.advance(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", b.JobID, err))
			continue
		}
		if sj, err := n.store.Job(ctx, b.JobID); err == nil && sj.Done {
			gf.done[b.JobID] = true
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !n.groupEnded(gf) {
		n.refreshGroupParent(ctx, gf)
		return nil
	}
	return n.finishGroup(ctx, gf)
}

// groupJob returns the follow of a started batch's job, making it (and the job's record) when
// this replica has none; nil when the job is done already.
func (n *Notifier) groupJob(ctx context.Context, gf *groupFollow, b migration.Batch) (*follow, error) {
	if f := gf.jobs[b.JobID]; f != nil {
		return f, nil
	}
	g := gf.g
	sj, err := n.store.Job(ctx, b.JobID)
	if errors.Is(err, store.ErrNotFound) {
		// The batch started; its job is recorded here, with the group's requester: the
		// watcher leaves jobs tagged with a stored batch to their group.
		if _, err := n.store.FollowJob(ctx, migration.Launch{JobID: b.JobID, Kind: g.Mode, ServerIDs: b.ServerIDs, GroupID: g.ID,
			Channel: g.Channel, ParentTS: g.ParentTS, RequestedBy: g.RequestedBy, ApprovedBy: g.ApprovedBy, StartedAt: b.UpdatedAt}); err != nil {
			return nil, err
		}
		sj, err = n.store.Job(ctx, b.JobID)
	}
	if err != nil {
		return nil, err
	}
	if sj.Done {
		gf.done[b.JobID] = true
		return nil, nil
	}
	if sj.ParentTS != g.ParentTS {
		if err := n.store.SetJobParent(ctx, sj.JobID, g.Channel, g.ParentTS); err != nil {
			return nil, err
		}
		sj.Channel, sj.ParentTS = g.Channel, g.ParentTS
	}
	f := newFollow(sj)
	f.lease = groupLease(g.ID)
	// Read the log from its start, so that the parent knows where every server stands; the
	// items posted already are skipped.
	f.read, f.batch, f.skip, f.full = migration.Cursor{}, migration.Cursor{}, sj.Posted, true
	f.unsure = sj.Posted > 0 || gf.unsure
	f.seq, f.of = b.Seq, len(gf.batches)
	gf.jobs[b.JobID] = f
	return f, nil
}

// groupEnded reports whether every batch started or failed and every started job is done.
func (n *Notifier) groupEnded(gf *groupFollow) bool {
	for _, b := range gf.batches {
		switch {
		case !b.State.Final():
			return false
		case b.State == migration.BatchStarted && !gf.done[b.JobID]:
			return false
		}
	}
	return true
}

// launchState is where one server of a group launch stands.
type launchState struct {
	id, name string
	key      string // what it counts as: "launched", "converting", "left out", …
	detail   string // mrkdwn after the key: an instance and IPs, a reason
	rank     int    // problems first
}

// Ranks of server states, problems first.
const (
	rankProblem = iota
	rankRunning
	rankDone
)

func (s launchState) line() string {
	mark := map[int]string{rankProblem: "❌", rankRunning: "⏳", rankDone: "✅"}[s.rank]
	if s.key == "left out" || s.key == "not verified" {
		mark = "⚠️"
	}
	l := fmt.Sprintf("%s *%s*: %s", mark, bot.Escape(s.name), s.key)
	if s.detail != "" {
		l += " " + s.detail
	}
	return l
}

// groupStates is where every server of the group launch stands: its left-out servers, then
// each batch's.
func (n *Notifier) groupStates(gf *groupFollow) []launchState {
	names := n.cachedNames()
	name := func(id string) string { return cmp.Or(names[id], id) }
	var out []launchState
	leftOut := func(l migration.LeftOut) launchState {
		return launchState{id: l.ServerID, name: name(l.ServerID), key: "left out", detail: "— " + bot.Escape(l.Reason), rank: rankProblem}
	}
	for _, l := range gf.g.LeftOut {
		out = append(out, leftOut(l))
	}
	batches := gf.batches
	if batches == nil {
		batches = migration.SplitBatches(gf.g.ID, gf.g.ServerIDs)
	}
	for _, b := range batches {
		for _, l := range b.LeftOut {
			out = append(out, leftOut(l))
		}
		for _, id := range b.ServerIDs {
			s := launchState{id: id, name: name(id), rank: rankRunning}
			switch b.State {
			case migration.BatchQueued:
				s.key, s.detail = "queued", fmt.Sprintf("(job %d of %d)", b.Seq, len(batches))
			case migration.BatchStarting:
				s.key = "starting"
			case migration.BatchFailed:
				s.key, s.detail, s.rank = "not launched", "— "+bot.Escape(b.Error), rankProblem
			default:
				s = n.jobState(s, gf.jobs[b.JobID])
			}
			out = append(out, s)
		}
	}
	return out
}

// jobState is where server s stands in its job, as followed by f (nil: not followed yet).
func (n *Notifier) jobState(s launchState, f *follow) launchState {
	s.key = "pending"
	if f == nil {
		return s // the job started; its thread is not followed yet
	}
	if f.results != nil {
		i := slices.IndexFunc(f.results, func(r result) bool { return r.id == s.id })
		if i >= 0 {
			return resultState(s, f.results[i])
		}
	}
	if sl := f.servers[s.id]; sl != nil && sl.phase != "" {
		s.key = sl.phase
		if sl.phase == "failed" {
			s.rank, s.detail = rankProblem, "— "+bot.Escape(strings.Join(sl.failures, "; "))
		}
		return s
	}
	s.key = "pending"
	return s
}

// resultState is where a server stands once its job ended.
func resultState(s launchState, r result) launchState {
	if !r.ok {
		s.rank, s.key = rankProblem, "failed"
		if len(r.failures) > 0 {
			s.detail = "— " + bot.Escape(strings.Join(r.failures, "; "))
		} else {
			s.detail = "— " + bot.Escape(r.status)
		}
		return s
	}
	in, known := r.instances[r.target]
	s.detail = render.Instance(r.target, in, known, true)
	s.key, s.rank = "launched", rankDone
	switch r.verdict() {
	case verdictPending:
		s.key, s.rank = "verifying", rankRunning
	case verdictVerified:
		s.key = "verified"
	case verdictUnverified:
		s.key, s.rank = "not verified", rankProblem
		s.detail += " — " + bot.Escape(r.actions.Summary())
	}
	return s
}

// sortStates orders states problems first, then by name.
func sortStates(states []launchState) {
	slices.SortStableFunc(states, func(a, b launchState) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(strings.ToLower(a.name), strings.ToLower(b.name)), cmp.Compare(a.id, b.id))
	})
}

// stateCounts renders "412 launched · 10 converting · 18 left out", most common first.
func stateCounts(states []launchState) string {
	count := map[string]int{}
	for _, s := range states {
		count[s.key]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(count[b], count[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", count[k], k)
	}
	return strings.Join(parts, " · ")
}

// groupTitle is "Test launch of wave *Wave 1*".
func groupTitle(g migration.GroupLaunch) string {
	kind := "wave"
	if g.Target.Kind == migration.KindApplication {
		kind = "application"
	}
	return fmt.Sprintf("%s of %s %s", modeTitle(g.Mode), kind, bot.Escape(g.Target.Name))
}

// groupParentMessage is a group launch's thread parent: what, who, the counts of server
// states, and every server's state (problems first), or with many servers those whose state
// changed since the parent was last drawn.
//
// The last edit (final) lists, with many servers, those with a problem: the final report in
// the thread lists them all.
func (n *Notifier) groupParentMessage(gf *groupFollow, states []launchState, final bool) bot.Message {
	g := gf.g
	jobs := len(gf.batches)
	if gf.batches == nil {
		jobs = len(migration.SplitBatches(g.ID, g.ServerIDs))
	}
	launched := groupBy(g)
	head := fmt.Sprintf("%s %s — %s in %s", groupTitle(g), render.LaunchedBy(launched), plural(len(g.ServerIDs), "server"), plural(jobs, "job"))
	elapsed := migration.HumanDuration(max(n.cfg.Clock.Now().Sub(g.CreatedAt), 0))
	blocks := []slack.Block{render.Section("*" + groupTitle(g) + "* " + strings.TrimPrefix(head, groupTitle(g)+" ")),
		render.Context(stateCounts(states), "Elapsed: "+elapsed)}
	sorted := slices.Clone(states)
	sortStates(sorted)
	var lines []string
	if len(sorted) <= maxGroupParentLines {
		for _, s := range sorted {
			lines = append(lines, s.line())
		}
	} else {
		changed, heading := 0, "_Changed since the last update:_"
		if final {
			heading = "_Problems (the final report in the thread lists every server):_"
		}
		for _, s := range sorted {
			if (final && s.rank != rankProblem) || (!final && gf.shown[s.id] == s.line()) {
				continue
			}
			if changed++; changed <= maxChangedLines {
				lines = append(lines, s.line())
			}
		}
		if len(lines) > 0 {
			lines = append([]string{heading}, lines...)
		}
		if changed > maxChangedLines {
			lines = append(lines, fmt.Sprintf("…and %d more", changed-maxChangedLines))
		}
	}
	for _, t := range render.Lines(lines) {
		blocks = append(blocks, render.Section(t))
	}
	return bot.Message{Text: stripStars(head), Blocks: render.Fit(blocks, "see the thread"), Metadata: groupParentMetadata(g.ID)}
}

// groupBy is the group launch's requester and approvers, as render.LaunchedBy takes them.
func groupBy(g migration.GroupLaunch) migration.Launch {
	return migration.Launch{RequestedBy: g.RequestedBy, ApprovedBy: g.ApprovedBy}
}

func stripStars(s string) string { return strings.ReplaceAll(s, "*", "") }

// refreshGroupParent edits the parent when a server's state changed, at most every two poll
// intervals: chat.update allows about 50 edits a minute for the whole workspace.
func (n *Notifier) refreshGroupParent(ctx context.Context, gf *groupFollow) {
	now := n.cfg.Clock.Now()
	if now.Sub(gf.parentAt) < 2*n.cfg.PollInterval {
		return
	}
	states := n.groupStates(gf)
	if !slices.ContainsFunc(states, func(s launchState) bool { return gf.shown[s.id] != s.line() }) {
		return
	}
	g := gf.g
	if err := n.poster.Update(ctx, cmp.Or(g.Channel, n.cfg.Channel), g.ParentTS, n.groupParentMessage(gf, states, false)); err != nil {
		n.logger.WarnContext(ctx, "group parent not updated", "group", g.ID, "err", err)
		return
	}
	for _, s := range states {
		gf.shown[s.id] = s.line()
	}
	gf.parentAt = now
}

// finishGroup posts the final report of a group launch whose batches all ended (the parts not
// posted yet), edits the parent a last time and marks the group done.
func (n *Notifier) finishGroup(ctx context.Context, gf *groupFollow) error {
	g := gf.g
	channel := cmp.Or(g.Channel, n.cfg.Channel)
	for _, b := range gf.batches {
		if b.State != migration.BatchStarted {
			continue
		}
		if f := gf.jobs[b.JobID]; f == nil || f.results == nil {
			if _, err := n.endedJob(ctx, gf, b); err != nil {
				return err
			}
		}
	}
	if gf.unsure {
		msgs, err := n.poster.Replies(ctx, channel, g.ParentTS)
		switch {
		case n.unreadable(ctx, err, "group", g.ID):
		case err != nil:
			return fmt.Errorf("read the group's thread back: %w", err)
		default:
			for part := range groupParts(msgs, g.ID) {
				gf.parts[part] = true
			}
		}
		gf.unsure = false
	}
	states := n.groupStates(gf)
	sortStates(states)
	// The parent first, as for a job of its own: once the report is out, nothing changes.
	if err := n.poster.Update(ctx, channel, g.ParentTS, n.groupParentMessage(gf, states, true)); err != nil {
		n.logger.WarnContext(ctx, "group parent not updated", "group", g.ID, "err", err)
	}
	for i, m := range n.groupFinalMessages(gf, states) {
		part := i + 1
		if gf.parts[part] {
			continue
		}
		if _, err := n.poster.Post(ctx, channel, m); err != nil {
			gf.unsure = true
			return fmt.Errorf("post group report part %d: %w", part, err)
		}
		gf.parts[part] = true
	}
	out := groupOutcome(states)
	if err := n.store.FinishGroupLaunch(ctx, g.ID, out); err != nil {
		return err
	}
	n.forgetGroup(g.ID)
	if err := n.store.ReleaseLease(ctx, groupLease(g.ID), n.cfg.Holder); err != nil {
		n.logger.WarnContext(ctx, "group lease not released", "group", g.ID, "err", err)
	}
	n.logger.InfoContext(ctx, "group launch ended", "group", g.ID, "outcome", out, "parts", len(gf.parts))
	return nil
}

// endedJob is the follow of a batch's job that ended before this replica took the group:
// its results read from MGN again (the whole log, the participants, the instances and how
// many post-launch actions each server runs).
func (n *Notifier) endedJob(ctx context.Context, gf *groupFollow, b migration.Batch) (*follow, error) {
	sj, err := n.store.Job(ctx, b.JobID)
	if err != nil {
		return nil, err
	}
	f := newFollow(sj)
	f.full = false
	names, err := n.serverNames(ctx, sj.ServerIDs)
	if err != nil {
		return nil, err
	}
	job, err := n.aws.Job(ctx, b.JobID)
	gone := errors.Is(err, migration.ErrNotFound)
	if err != nil && !gone {
		return nil, err
	}
	if f.results, err = n.jobResults(ctx, f, job, names, gone); err != nil {
		return nil, err
	}
	setActions(f.results, job)
	if err := n.wantedActions(ctx, f); err != nil {
		return nil, err
	}
	gf.jobs[b.JobID] = f
	return f, nil
}

// groupOutcome is the short outcome stored with the group: "430 verified · 2 failed · 18 left out".
func groupOutcome(states []launchState) string { return stateCounts(states) }

// groupFinalMessages is a group launch's final report: every server with its instance and IPs,
// problems first, groupPartLines servers a message; the first is broadcast to the channel and
// the last carries the next steps.
func (n *Notifier) groupFinalMessages(gf *groupFollow, states []launchState) []bot.Message {
	g := gf.g
	launched := groupBy(g)
	head := fmt.Sprintf("%s finished: %s", groupTitle(g), stateCounts(states))
	chunks := slices.Collect(slices.Chunk(states, groupPartLines))
	if len(chunks) == 0 {
		chunks = [][]launchState{nil}
	}
	var out []bot.Message
	for i, chunk := range chunks {
		lines := make([]string, len(chunk))
		for k, s := range chunk {
			lines[k] = s.line()
		}
		var blocks []slack.Block
		text := head
		if i == 0 {
			blocks = append(blocks, render.Section("*"+head+"* — "+render.LaunchedBy(launched)))
			text += " — " + render.LaunchedBy(launched)
		} else {
			from := i*groupPartLines + 1
			text = fmt.Sprintf("%s, servers %d–%d of %d", groupTitle(g), from, from+len(chunk)-1, len(states))
			blocks = append(blocks, render.Context(text))
		}
		for _, t := range render.Lines(lines) {
			blocks = append(blocks, render.Section(t))
		}
		if i == len(chunks)-1 {
			blocks = append(blocks, n.groupNextSteps(g, states)...)
		}
		out = append(out, bot.Message{Text: stripStars(text), Blocks: render.Fit(blocks, "see `/cutover status "+g.Target.String()+"`"),
			ThreadTS: g.ParentTS, Broadcast: i == 0, Metadata: groupFinalMetadata(g.ID, i+1)})
	}
	return out
}

// groupNextSteps are the console's next steps after a group launch: after a test, Mark ready
// for cutover and Revert buttons for the servers launched and not left unverified (or the
// command, for many servers); after a cutover, how to finalize.
func (n *Notifier) groupNextSteps(g migration.GroupLaunch, states []launchState) []slack.Block {
	var ok []string
	for _, s := range states {
		if s.key == "launched" || s.key == "verified" {
			ok = append(ok, s.id)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	if g.Mode == migration.ModeCutover {
		return []slack.Block{render.Context(fmt.Sprintf("Finalizing is for approvers and cannot be undone: enable termination protection on the cutover instances first, then `/cutover finalize %s`.",
			bot.Escape(g.Target.String())))}
	}
	if len(ok) > maxGroupButtonIDs {
		return []slack.Block{render.Context(fmt.Sprintf("Next: `/cutover ready %s` marks the tested servers ready for cutover; `/cutover revert %s` backs them out.",
			bot.Escape(g.Target.String()), bot.Escape(g.Target.String())))}
	}
	return actions("group-"+g.ID, testNextSteps(ok)...)
}

// plural is "1 server", "3 servers".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// cachedNames returns the display names known, without asking AWS.
func (n *Notifier) cachedNames() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string, len(n.names))
	for id, name := range n.names {
		out[id] = name
	}
	return out
}

// maxBatchProblemLines bounds the servers a job's closing reply names.
const maxBatchProblemLines = 20

// batchMessage is the reply that closes one job of a group launch: how many of its servers
// launched, and those that did not.
func (n *Notifier) batchMessage(f *follow, results []result) bot.Message {
	ok := 0
	var problems []string
	for _, r := range results {
		if r.ok {
			ok++
			continue
		}
		if len(problems) < maxBatchProblemLines {
			problems = append(problems, r.short())
		}
	}
	head := fmt.Sprintf("Job `%s` (job %d of %d) ended: %d of %d launched", bot.Escape(f.job.JobID), f.seq, max(f.of, f.seq), ok, len(results))
	if failed := len(results) - ok; failed > len(problems) {
		problems = append(problems, fmt.Sprintf("…and %d more failed", failed-len(problems)))
	}
	blocks := []slack.Block{render.Section(head)}
	for _, t := range render.Lines(problems) {
		blocks = append(blocks, render.Section(t))
	}
	return bot.Message{Text: stripStars(head), Blocks: render.Fit(blocks, "see the final report"), ThreadTS: f.job.ParentTS,
		Metadata: finalMetadata(f.job.JobID)}
}
