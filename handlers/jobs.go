package handlers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// Bounds of the jobs and audit answers.
const (
	maxJobs         = 20
	maxAuditEntries = 30
	jobsHistory     = 30 * 24 * time.Hour
)

// optionalServer resolves an optional SERVER argument (or a wave or application): the
// servers' IDs and " of NAME" for a title (not escaped), both empty when names is "" (every server). When it
// fails it has answered the user.
func (h *Handler) optionalServer(ctx context.Context, o origin, names string) (ids []string, of string, ok bool) {
	if names == "" {
		return nil, "", true
	}
	t, ok := h.resolveTarget(ctx, o, names, false)
	if !ok {
		return nil, "", false
	}
	if t.IsGroup() {
		return serverIDs(t.Servers), " of " + kindWord(t.Group.Kind) + " " + t.Group.Name, true
	}
	if len(t.Servers) > 1 {
		h.replyText(ctx, o, "Name one server here, or a wave or application, not "+plural(len(t.Servers), "server")+".")
		return nil, "", false
	}
	return serverIDs(t.Servers), " of " + t.Servers[0].DisplayName(), true
}

// groupScan is how many of the newest records are searched for those of a wave or
// application.
const groupScan = 1000

// within reports whether any of ids is in filter; an empty filter holds everything.
func within(filter, ids []string) bool {
	return len(filter) == 0 || slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(filter, id) })
}

// one is the store's filter for ids: the server when there is one, else "" (all, filtered
// afterwards with within), and how many records to read.
func one(ids []string, limit int) (string, int) {
	switch len(ids) {
	case 0:
		return "", limit
	case 1:
		return ids[0], limit
	}
	return "", groupScan
}

// jobs answers /cutover jobs [SERVER]: the bot's jobs with their threads, merged with MGN's
// (including those started elsewhere), newest first.
func (h *Handler) jobs(ctx context.Context, o origin, names string) {
	filter, of, ok := h.optionalServer(ctx, o, names)
	if !ok {
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actJobs, ServerIDs: filter, Outcome: "answered"})
	id, limit := one(filter, maxJobs)
	followed, err := h.store.RecentJobs(ctx, id, limit)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the bot's jobs", err))
		return
	}
	mgnJobs, err := h.aws.Jobs(ctx, h.cfg.Clock.Now().Add(-jobsHistory))
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "list MGN's jobs", err))
		return
	}
	fleet, _ := h.fleetServers(ctx, false) // names only; IDs do without
	name := func(id string) string {
		for _, s := range fleet {
			if s.ID == id {
				return s.DisplayName()
			}
		}
		return id
	}

	type row struct {
		id, kind, status, by string // by: who launched it, in words
		servers              []string
		at                   time.Time
		thread               string
		judged               bool // status is the followed thread's outcome
	}
	rows := map[string]*row{}
	for _, j := range followed {
		if !within(filter, j.ServerIDs) {
			continue
		}
		r := &row{id: j.JobID, kind: string(j.Kind), servers: j.ServerIDs, by: render.LaunchedBy(j), at: j.StartedAt}
		if j.ParentTS != "" {
			r.thread = threadLink(j.Channel, j.ParentTS)
		}
		r.status = "running"
		// The outcome of a job the bot followed to its end weighs the log's failures too,
		// which MGN's job list does not show.
		if j.Done && j.ParentTS != "" {
			r.status, r.judged = j.Outcome, true
		}
		rows[j.JobID] = r
	}
	for _, j := range mgnJobs {
		if !within(filter, j.ServerIDs()) {
			continue
		}
		r := rows[j.ID]
		if r == nil {
			r = &row{id: j.ID, servers: j.ServerIDs(), at: j.Created, by: render.LaunchedBy(migration.Launch{TaggedBy: j.Tags[migration.TagRequestedBy]})}
			rows[j.ID] = r
		}
		if !r.judged {
			r.status = jobStatus(j)
		}
		switch {
		case j.Mode() != "":
			r.kind = string(j.Mode())
		case j.InitiatedBy == migration.InitiatedByTerminate:
			r.kind = "terminate"
		case r.kind == "":
			r.kind = strings.ToLower(j.InitiatedBy)
		}
	}
	list := slices.Collect(maps.Values(rows))
	slices.SortFunc(list, func(a, b *row) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	if len(list) > maxJobs {
		list = list[:maxJobs]
	}
	title := "Recent launch jobs" + of
	if len(list) == 0 {
		h.replyText(ctx, o, "*"+esc(title)+":* none in the last 30 days. Start one with `/cutover launch SERVER test`.")
		return
	}
	var lines []string
	for _, r := range list {
		var names []string
		for _, id := range r.servers {
			names = append(names, esc(name(id)))
		}
		line := fmt.Sprintf("• %s · %s · %s · %s · %s %s", code(r.id), esc(r.kind), render.Truncate(strings.Join(names, ", "), 200),
			esc(r.status), r.by, h.ago(r.at))
		if r.thread != "" {
			line += fmt.Sprintf(" · <%s|thread>", r.thread)
		}
		lines = append(lines, line)
	}
	h.replyList(ctx, o, title, title, lines)
}

// jobStatus says how an MGN job stands. A launch job that ended is judged per server by
// launchStatus: COMPLETED only says that MGN stopped working on it, so a server that was not
// launched (failed, or left pending) counts as failed.
func jobStatus(j migration.Job) string {
	if j.Active() {
		return strings.ToLower(string(j.Status))
	}
	if j.Mode() == "" || len(j.Participants) == 0 {
		return "completed"
	}
	launched := 0
	for _, p := range j.Participants {
		// TERMINATED: launched, and terminated since by a later launch or a revert.
		if p.LaunchStatus == migration.LaunchLaunched || p.LaunchStatus == migration.LaunchTerminated {
			launched++
		}
	}
	switch failed := len(j.Participants) - launched; {
	case failed == 0:
		return "completed"
	case launched == 0:
		return "failed"
	default:
		return fmt.Sprintf("completed, %d of %d failed", failed, len(j.Participants))
	}
}

// auditLog answers /cutover audit [SERVER], newest first.
func (h *Handler) auditLog(ctx context.Context, o origin, names string) {
	filter, of, ok := h.optionalServer(ctx, o, names)
	if !ok {
		return
	}
	id, limit := one(filter, maxAuditEntries)
	entries, err := h.store.AuditLog(ctx, id, limit)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the audit log", err))
		return
	}
	entries = slices.DeleteFunc(entries, func(e store.AuditEntry) bool { return !within(filter, e.ServerIDs) })
	entries = entries[:min(len(entries), maxAuditEntries)]
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actAudit, ServerIDs: filter, Outcome: "answered"})
	title := "Audit log" + of
	if len(entries) == 0 {
		h.replyText(ctx, o, "*"+esc(title)+":* nothing recorded yet.")
		return
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, h.auditLine(e))
	}
	h.replyList(ctx, o, title+" · newest first", title, lines)
}

// replyList answers privately with a header and one line per item, within Slack's limits.
// header and title are text, not mrkdwn: they are escaped here.
func (h *Handler) replyList(ctx context.Context, o origin, header, title string, lines []string) {
	blocks := []slack.Block{render.Header(escPlain(header))}
	for _, c := range render.Lines(lines) {
		blocks = append(blocks, section(c))
	}
	h.reply(ctx, o, bot.Message{Text: fallback(esc(title)), Blocks: render.Fit(blocks, "")})
}

func (h *Handler) auditLine(e store.AuditEntry) string {
	who := "the bot"
	if e.User != "" {
		who = mention(e.User)
	}
	line := fmt.Sprintf("• %s %s *%s*", h.clock(e.At), who, esc(e.Action))
	if len(e.ServerIDs) > 0 {
		line += " " + code(render.Truncate(strings.Join(e.ServerIDs, ","), 120))
	}
	if e.Outcome != "" {
		line += " → " + esc(e.Outcome)
	}
	if e.JobID != "" {
		line += " " + code(e.JobID)
	}
	return render.Truncate(line, 400)
}
