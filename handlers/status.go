package handlers

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// statusPageSize is how many servers one status page lists.
const statusPageSize = 100

// maxLine bounds one server's line in the fleet status, so that a page of them stays within
// Slack's blocks.
const maxLine = 280

// Severity ranks of a server in the fleet status, problems first.
const (
	rankProblem = iota
	rankLagging
	rankSyncing
	rankHealthy
	rankDone
)

var rankMarks = []string{"🔴", "🟠", "🔵", "🟢", "⚪"}

func (h *Handler) rank(s migration.Server) int {
	r := s.Replication
	switch {
	case s.CutOver():
		return rankDone
	case r.Problem() || r.State == migration.ReplicationDisconnected:
		return rankProblem
	case r.State == migration.ReplicationBacklog || (r.HasLag && r.Lag > h.cfg.LagLimit):
		return rankLagging
	case r.State != migration.ReplicationContinuous || !r.HasLag:
		return rankSyncing
	}
	return rankHealthy
}

// replicationText is a server's replication in a few words, with %, lag, ETA or error.
func (h *Handler) replicationText(s migration.Server) string {
	r := s.Replication
	switch {
	case r.Error != "":
		return r.State.Label() + ": " + migration.ReplicationErrorText(r.Error)
	case s.CutOver() && r.State == migration.ReplicationDisconnected:
		return "Disconnected (cut over)"
	case r.State == migration.ReplicationInitialSync || r.State == migration.ReplicationInitiating || r.State == migration.ReplicationRescan:
		t := fmt.Sprintf("%s %.0f%%", r.State.Label(), r.Progress())
		if !r.ETA.IsZero() {
			t += ", ETA " + h.clock(r.ETA)
		}
		return t
	case r.State == migration.ReplicationContinuous && r.HasLag && r.Lag > h.cfg.LagLimit:
		return "Continuous Data Replication, lagging " + migration.HumanDuration(r.Lag)
	case r.State == migration.ReplicationContinuous && r.HasLag && r.Lag >= time.Minute:
		return "Continuous Data Replication, lag " + migration.HumanDuration(r.Lag)
	case r.State == migration.ReplicationContinuous && !r.HasLag:
		return "Continuous Data Replication (no lag reported yet)"
	}
	t := r.State.Label()
	if r.HasLag && r.Lag >= time.Minute {
		t += ", lag " + migration.HumanDuration(r.Lag)
	}
	if b := r.BacklogBytes(); b > 0 {
		t += ", " + bytesText(b) + " backlog"
	}
	return t
}

// serverLine is one server in the fleet status.
func (h *Handler) serverLine(s migration.Server) string {
	last := "never tested"
	switch {
	case s.CutOver() && !s.Lifecycle.LastCutover.Initiated.IsZero():
		last = "cut over " + h.ago(s.Lifecycle.LastCutover.Initiated)
	case !s.Lifecycle.LastTest.Initiated.IsZero():
		last = "last test " + h.ago(s.Lifecycle.LastTest.Initiated)
	}
	line := fmt.Sprintf("%s %s · %s · %s · %s", rankMarks[h.rank(s)], serverRef(s),
		esc(render.Truncate(h.replicationText(s), 140)), esc(s.Lifecycle.State.Label()), last)
	return render.Truncate(line, maxLine)
}

// counts renders "4 Continuous Data Replication · 1 Stalled", most common first.
func counts(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], esc(k))
	}
	return strings.Join(parts, " · ")
}

// statusFleet answers /cutover status and the Next page button.
func (h *Handler) statusFleet(ctx context.Context, o origin, page int, replace bool) {
	fleet, err := h.fleetServers(ctx, false)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "list the source servers", err))
		return
	}
	m := h.fleetMessage(fleet, page, h.waveLines(ctx, fleet))
	h.answerPage(ctx, o, m, replace)
}

// answerPage answers with a status page, in place of the page clicked from when replace.
func (h *Handler) answerPage(ctx context.Context, o origin, m bot.Message, replace bool) {
	if replace && o.responseURL != "" {
		err := h.poster.Respond(ctx, o.responseURL, m, bot.RespondOptions{ReplaceOriginal: true})
		if err == nil {
			return
		}
		h.logger.WarnContext(ctx, "replacing the status page failed, answering anew", "user", o.user, "err", err)
		o.responseURL = ""
	}
	h.reply(ctx, o, m)
}

// maxWaveLines bounds the waves the fleet status lists.
const maxWaveLines = 20

// waveLines are the fleet status's lines of waves: name, servers, MGN's health and progress,
// planned cutover. Without waves, or when MGN cannot list them, there are none (a line says
// why when it failed).
func (h *Handler) waveLines(ctx context.Context, fleet []migration.Server) []string {
	prog, err := h.programOf(ctx)
	if err != nil {
		h.logger.WarnContext(ctx, "waves not listed", "err", err)
		return []string{"*Waves:* " + h.errorText(ctx, "list the waves", err)}
	}
	if len(prog.Waves) == 0 {
		return nil
	}
	lines := []string{"*Waves:*"}
	for i, w := range prog.Waves {
		if i == maxWaveLines {
			lines = append(lines, fmt.Sprintf("…and %d more waves", len(prog.Waves)-maxWaveLines))
			break
		}
		lines = append(lines, h.waveLine(w, len(prog.WaveServers(fleet, w.ID))))
	}
	return lines
}

var healthMarks = map[migration.Health]string{migration.HealthHealthy: "🟢", migration.HealthLagging: "🟠", migration.HealthError: "🔴"}

// waveLine is one wave in words: "🟢 *Wave 1* · 3 servers · healthy · in progress · cutover
// Mon 7 Dec 2026, in 14 days".
func (h *Handler) waveLine(w migration.Wave, servers int) string {
	mark := healthMarks[w.Health]
	if mark == "" {
		mark = "⚪"
	}
	line := fmt.Sprintf("%s *%s* · %s · %s · %s", mark, esc(w.Name), plural(servers, "server"), esc(w.Health.Label()), esc(w.Progress.Label()))
	if d, ok := h.cutoverDate(w); ok {
		line += " · cutover " + render.PlannedCutover(d, h.cfg.Clock.Now(), h.cfg.Location)
	}
	return render.Truncate(line, maxLine)
}

// cutoverDate is a wave's planned cutover: its cutover-date tag, else the configured date.
func (h *Handler) cutoverDate(w migration.Wave) (time.Time, bool) {
	if d, ok := w.CutoverDate(); ok {
		return d, true
	}
	return h.cfg.CutoverDate, !h.cfg.CutoverDate.IsZero()
}

// fleetMessage renders one page of the fleet status: the counts, the waves, then one line per
// server, problems first, within Slack's limits.
func (h *Handler) fleetMessage(fleet []migration.Server, page int, waves []string) bot.Message {
	return h.statusMessage(statusView{title: "Migration status", servers: fleet, extra: waves,
		planned: h.cfg.CutoverDate, empty: "MGN lists no source servers in this region yet. Install the replication agent on a source server to add it."}, page)
}

// statusView is what a status page shows: a title, servers, lines after the counts, the
// planned cutover date (zero: none) and what to say without servers; ref names the wave or
// application on its Next page button ("" for the fleet).
type statusView struct {
	title   string
	servers []migration.Server
	extra   []string
	planned time.Time
	empty   string
	ref     string
}

// statusMessage renders one page of a status: the counts, then one line per server, problems
// first, within Slack's limits.
func (h *Handler) statusMessage(v statusView, page int) bot.Message {
	servers := slices.Clone(v.servers)
	ranks := make(map[string]int, len(servers))
	repl, life := map[string]int{}, map[string]int{}
	byRank := make([]int, len(rankMarks))
	for _, s := range servers {
		r := h.rank(s)
		ranks[s.ID] = r
		byRank[r]++
		repl[s.Replication.State.Label()]++
		life[s.Lifecycle.State.Label()]++
	}
	slices.SortStableFunc(servers, func(a, b migration.Server) int {
		return cmp.Or(cmp.Compare(ranks[a.ID], ranks[b.ID]),
			cmp.Compare(strings.ToLower(a.DisplayName()), strings.ToLower(b.DisplayName())), cmp.Compare(a.ID, b.ID))
	})
	pages := max(1, (len(servers)+statusPageSize-1)/statusPageSize)
	page = min(max(page, 1), pages)
	from, to := (page-1)*statusPageSize, min(page*statusPageSize, len(servers))

	var attention []string
	for r, what := range []string{"stalled or failing", "lagging", "syncing"} {
		if byRank[r] > 0 {
			attention = append(attention, fmt.Sprintf("%s %d %s", rankMarks[r], byRank[r], what))
		}
	}
	summary := []string{
		"*Replication:* " + counts(repl),
		"*Lifecycle:* " + counts(life),
	}
	if len(attention) > 0 {
		summary = append(summary, "*Needs attention:* "+strings.Join(attention, " · "))
	} else if len(servers) > 0 {
		summary = append(summary, "*Needs attention:* nothing :tada:")
	}
	if d := v.planned; !d.IsZero() {
		summary = append(summary, fmt.Sprintf("*Planned cutover:* %s · %d of %d servers cut over",
			render.PlannedCutover(d, h.cfg.Clock.Now(), h.cfg.Location), byRank[rankDone], len(servers)))
	}
	blocks := []slack.Block{
		render.Header(fmt.Sprintf("%s · %s", v.title, plural(len(servers), "server"))),
		section(strings.Join(summary, "\n")),
	}
	for _, t := range render.Lines(v.extra) {
		blocks = append(blocks, section(t))
	}
	if len(servers) == 0 {
		blocks = append(blocks, section(v.empty))
		return bot.Message{Text: fallback(v.title + ": no servers"), Blocks: blocks}
	}
	blocks = append(blocks, slack.NewDividerBlock())
	lines := make([]string, 0, to-from)
	for _, s := range servers[from:to] {
		lines = append(lines, h.serverLine(s))
	}
	// Room for the trailing context and button.
	chunks := render.Lines(lines)
	room := render.MaxBlocks - len(blocks) - 2
	cut := 0
	if len(chunks) > room {
		cut = len(chunks) - room
		chunks = chunks[:room]
	}
	for _, c := range chunks {
		blocks = append(blocks, section(c))
	}
	note := fmt.Sprintf("Problems first · times in %s", h.cfg.Location)
	if pages > 1 {
		note = fmt.Sprintf("Page %d of %d · servers %d–%d of %d · %s", page, pages, from+1, to, len(servers), note)
	}
	if cut > 0 {
		note += " · some lines did not fit"
	}
	blocks = append(blocks, render.Context(note, "`/cutover status SERVER` shows one server in detail"))
	if pages > 1 {
		next, label := page+1, "Next page"
		if page == pages {
			next, label = 1, "First page"
		}
		value := strconv.Itoa(next)
		if v.ref != "" {
			value += " " + v.ref
		}
		blocks = append(blocks, render.Actions("status_pages", render.Button(render.ActionStatusPage, label, value, ""))...)
	}
	text := fmt.Sprintf("%s: %s", v.title, plural(len(servers), "server"))
	if len(attention) > 0 {
		text += ", " + strings.Join(attention, ", ")
	}
	return bot.Message{Text: fallback(text), Blocks: render.Fit(blocks, "")}
}

// statusGroup answers /cutover status wave NAME (or app NAME) and its Next page button: the
// group's servers as in the fleet status, under MGN's summary of the group.
func (h *Handler) statusGroup(ctx context.Context, o origin, names string, page int, replace bool) {
	t, ok := h.resolveTarget(ctx, o, names, false)
	if !ok {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actStatus, Outcome: outNotResolved, Detail: render.Truncate(names, 200)})
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actStatus, Outcome: "answered", Detail: t.Group.String()})
	prog, err := h.programOf(ctx)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "list the waves and applications", err))
		return
	}
	v := statusView{title: capitalize(kindWord(t.Group.Kind)) + " " + escPlain(t.Group.Name), servers: t.Servers, ref: t.Group.Ref()}
	if t.Group.Kind == migration.KindWave {
		w, _ := prog.Wave(t.Group.ID)
		v.extra = append(v.extra, "*MGN:* "+strings.TrimPrefix(h.waveLine(w, len(t.Servers)), healthMarks[w.Health]+" "))
		if d, ok := h.cutoverDate(w); ok {
			v.planned = d
		}
		var apps []string
		for _, a := range prog.Applications {
			if a.WaveID == w.ID {
				apps = append(apps, esc(a.Name))
			}
		}
		v.extra = append(v.extra, "*Applications:* "+render.Truncate(strings.Join(apps, ", "), 1000))
	} else {
		a, _ := prog.Application(t.Group.ID)
		line := fmt.Sprintf("*MGN:* %s · %s · %s", plural(a.Servers, "server"), esc(a.Health.Label()), esc(a.Progress.Label()))
		if w, ok := prog.Wave(a.WaveID); ok {
			line += " · in wave *" + esc(w.Name) + "*"
			if d, ok := h.cutoverDate(w); ok {
				v.planned = d
			}
		}
		v.extra = append(v.extra, line)
	}
	h.answerPage(ctx, o, h.statusMessage(v, page), replace)
}

// maxDetailed is how many servers /cutover status SERVER describes at once.
const maxDetailed = 5

// statusServers answers /cutover status SERVER, and status wave NAME or app NAME.
func (h *Handler) statusServers(ctx context.Context, o origin, names string) {
	if _, _, ok := migration.ParseGroup(names); ok {
		h.statusGroup(ctx, o, names, 1, false)
		return
	}
	servers, ok := h.resolve(ctx, o, names, false)
	if !ok {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actStatus, Outcome: outNotResolved, Detail: render.Truncate(names, 200)})
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actStatus, ServerIDs: serverIDs(servers), Outcome: "answered"})
	more := 0
	if len(servers) > maxDetailed {
		more = len(servers) - maxDetailed
		servers = servers[:maxDetailed]
	}
	var ids []string
	for _, s := range servers {
		if s.Launched != nil && s.Launched.InstanceID != "" {
			ids = append(ids, s.Launched.InstanceID)
		}
	}
	instances := map[string]migration.Instance{}
	instErr := ""
	if len(ids) > 0 {
		got, err := h.aws.Instances(ctx, ids)
		if err != nil {
			instErr = h.errorText(ctx, "read the launched instances", err)
		}
		for _, i := range got {
			instances[i.ID] = i
		}
	}
	var blocks []slack.Block
	for i, s := range servers {
		if i > 0 {
			blocks = append(blocks, slack.NewDividerBlock())
		}
		blocks = append(blocks, render.Header(escPlain(s.DisplayName())))
		for _, chunk := range render.Lines(h.detailLines(ctx, s, instances, instErr)) {
			blocks = append(blocks, section(chunk))
		}
	}
	if more > 0 {
		blocks = append(blocks, render.Context(fmt.Sprintf("%d more servers named; ask for them separately.", more)))
	}
	h.reply(ctx, o, bot.Message{Text: fallback("Status of " + serverNames(servers)), Blocks: render.Fit(blocks, "")})
}

// detailLines describe one server: replication with disks, lifecycle, jobs and its instance.
func (h *Handler) detailLines(ctx context.Context, s migration.Server, instances map[string]migration.Instance, instErr string) []string {
	r := s.Replication
	host := s.FQDN
	if host == "" {
		host = s.Hostname
	}
	lines := []string{fmt.Sprintf("%s %s · %s", rankMarks[h.rank(s)], code(s.ID), esc(host))}
	lines = append(lines, "*Replication:* "+esc(h.replicationText(s)))
	if r.RawError != "" {
		lines = append(lines, "> "+esc(render.Truncate(r.RawError, 500)))
	}
	lag := "not reported yet"
	if r.HasLag {
		lag = migration.HumanDuration(r.Lag)
	}
	snap := "none yet"
	if !r.LastSnapshot.IsZero() {
		snap = h.clock(r.LastSnapshot) + " (" + h.ago(r.LastSnapshot) + ")"
	}
	lines = append(lines, fmt.Sprintf("*Lag:* %s · *Backlog:* %s · *Last snapshot:* %s", lag, bytesText(r.BacklogBytes()), snap))
	for _, d := range r.Disks {
		pct := 0.0
		if d.TotalBytes > 0 {
			pct = 100 * float64(d.ReplicatedBytes) / float64(d.TotalBytes)
		}
		line := fmt.Sprintf("• %s: %s of %s (%.0f%%)", code(d.Device), bytesText(d.ReplicatedBytes), bytesText(d.TotalBytes), pct)
		if d.BacklogBytes > 0 {
			line += ", backlog " + bytesText(d.BacklogBytes)
		}
		lines = append(lines, line)
	}
	lc := s.Lifecycle
	lines = append(lines, fmt.Sprintf("*Lifecycle:* %s · added %s · agent last seen %s", esc(lc.State.Label()), h.ago(lc.Added), h.ago(lc.LastSeen)))
	lines = append(lines, "*Last test:* "+h.milestone(lc.LastTest, "marked ready for cutover"))
	lines = append(lines, "*Last cutover:* "+h.milestone(lc.LastCutover, "finalized"))
	if jobs, err := h.store.RecentJobs(ctx, s.ID, 1); err == nil && len(jobs) > 0 {
		j := jobs[0]
		line := fmt.Sprintf("*Last job:* %s %s, %s %s", code(j.JobID), esc(string(j.Kind)), render.LaunchedBy(j), h.ago(j.StartedAt))
		if j.Done {
			line += " · " + esc(j.Outcome)
		}
		if j.ParentTS != "" {
			line += fmt.Sprintf(" · <%s|thread>", threadLink(j.Channel, j.ParentTS))
		}
		lines = append(lines, line)
	} else if err != nil {
		h.logger.WarnContext(ctx, "recent jobs failed", "server_id", s.ID, "err", err)
	}
	switch {
	case s.Launched == nil:
		lines = append(lines, "*Launched instance:* none yet")
	default:
		in, ok := instances[s.Launched.InstanceID]
		line := "*Launched instance:* " + render.Instance(s.Launched.InstanceID, in, ok, true)
		if !ok && instErr != "" {
			line = "*Launched instance:* " + code(s.Launched.InstanceID) + " (" + instErr + ")"
		}
		if s.Launched.FirstBoot != "" {
			line += " · first boot " + esc(strings.ToLower(s.Launched.FirstBoot))
		}
		lines = append(lines, line)
	}
	var extra []string
	if s.ReplicatorID != "" {
		extra = append(extra, "*Replication server:* "+code(s.ReplicatorID))
	}
	if s.RecommendedInstanceType != "" {
		extra = append(extra, "*Recommended type:* "+esc(s.RecommendedInstanceType))
	}
	if s.OS != "" {
		extra = append(extra, "*OS:* "+esc(render.Truncate(s.OS, 80)))
	}
	if len(extra) > 0 {
		lines = append(lines, strings.Join(extra, " · "))
	}
	return lines
}

// milestone renders a last test or cutover: when, its job, and whether it was reverted or
// finalized.
func (h *Handler) milestone(m migration.Milestone, finalized string) string {
	if m.Initiated.IsZero() {
		return "never"
	}
	t := h.clock(m.Initiated) + " (" + h.ago(m.Initiated) + ")"
	if m.JobID != "" {
		t += ", job " + code(m.JobID)
	}
	if !m.Reverted.IsZero() {
		t += ", reverted " + h.ago(m.Reverted)
	}
	if !m.Finalized.IsZero() {
		t += ", " + finalized + " " + h.ago(m.Finalized)
	}
	return t
}

// bytesText renders a size in binary units: "30 GiB", "512 MiB".
func bytesText(n int64) string {
	const (
		kib = 1 << 10
		mib = 1 << 20
		gib = 1 << 30
		tib = 1 << 40
	)
	f := func(v float64, unit string) string {
		if v == float64(int64(v)) {
			return fmt.Sprintf("%d %s", int64(v), unit)
		}
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	switch {
	case n >= tib:
		return f(float64(n)/tib, "TiB")
	case n >= gib:
		return f(float64(n)/gib, "GiB")
	case n >= mib:
		return f(float64(n)/mib, "MiB")
	case n >= kib:
		return f(float64(n)/kib, "KiB")
	}
	return fmt.Sprintf("%d B", n)
}
