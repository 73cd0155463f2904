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

// optionalServer resolves an optional SERVER argument: the server's ID and " of NAME" for a
// title (not escaped), both "" when names is "" (every server). When it fails it has answered the user.
func (h *Handler) optionalServer(ctx context.Context, o origin, names string) (id, of string, ok bool) {
	if names == "" {
		return "", "", true
	}
	servers, ok := h.resolve(ctx, o, names, false)
	if !ok {
		return "", "", false
	}
	if len(servers) > 1 {
		h.replyText(ctx, o, "Name one server here, not "+plural(len(servers), "server")+".")
		return "", "", false
	}
	return servers[0].ID, " of " + servers[0].DisplayName(), true
}

// jobs answers /cutover jobs [SERVER]: the bot's jobs with their threads, merged with MGN's
// (including those started elsewhere), newest first.
func (h *Handler) jobs(ctx context.Context, o origin, names string) {
	filter, of, ok := h.optionalServer(ctx, o, names)
	if !ok {
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actJobs, ServerIDs: nonEmpty(filter), Outcome: "answered"})
	followed, err := h.store.RecentJobs(ctx, filter, maxJobs)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the bot's jobs", err))
		return
	}
	mgnJobs, err := h.aws.Jobs(ctx, h.cfg.Now().Add(-jobsHistory))
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
		if filter != "" {
			if _, ok := j.Participant(filter); !ok {
				continue
			}
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

func nonEmpty(id string) []string {
	if id == "" {
		return nil
	}
	return []string{id}
}

// auditLog answers /cutover audit [SERVER], newest first.
func (h *Handler) auditLog(ctx context.Context, o origin, names string) {
	filter, of, ok := h.optionalServer(ctx, o, names)
	if !ok {
		return
	}
	entries, err := h.store.AuditLog(ctx, filter, maxAuditEntries)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the audit log", err))
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actAudit, ServerIDs: nonEmpty(filter), Outcome: "answered"})
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
