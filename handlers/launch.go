package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
)

// jobsWindow is how far back MGN's jobs are read to find running ones and the last test.
const jobsWindow = 7 * 24 * time.Hour

// preflight runs the launch checks for each server against MGN's recent jobs.
func (h *Handler) preflight(ctx context.Context, servers []migration.Server, mode migration.Mode) ([]migration.Preflight, error) {
	now := h.cfg.Now()
	jobs, err := h.aws.Jobs(ctx, now.Add(-jobsWindow))
	if err != nil {
		return nil, err
	}
	out := make([]migration.Preflight, len(servers))
	for i, s := range servers {
		lc := migration.LaunchContext{Now: now, LagLimit: h.cfg.LagLimit}
		lastTest := time.Time{}
		for _, j := range jobs {
			p, ok := j.Participant(s.ID)
			if !ok {
				continue
			}
			if j.Active() && lc.ActiveJob == "" {
				lc.ActiveJob = j.ID
			}
			if j.Mode() != migration.ModeTest {
				continue
			}
			// The lifecycle's last test names its job; otherwise the newest test job decides.
			latest := j.ID == s.Lifecycle.LastTest.JobID || (s.Lifecycle.LastTest.JobID == "" && j.Created.After(lastTest))
			if !latest {
				continue
			}
			lastTest = j.Created
			switch p.LaunchStatus {
			case migration.LaunchFailed:
				lc.LastTestOK = new(false)
			case migration.LaunchLaunched:
				lc.LastTestOK = new(true)
			default:
				lc.LastTestOK = nil
			}
		}
		// The checks print the ETA of an initial sync in the ETA's zone: show the configured one.
		s.Replication.ETA = s.Replication.ETA.In(h.cfg.Location)
		out[i] = migration.CheckLaunch(s, mode, lc)
	}
	return out, nil
}

// checkLines renders the checks of each server, one line per check; with several servers each
// line names its server.
func checkLines(pre []migration.Preflight, onlyFailures bool) []string {
	var lines []string
	for _, p := range pre {
		for _, c := range p.Checks {
			if onlyFailures && c.OK {
				continue
			}
			mark := "✅"
			switch {
			case !c.OK:
				mark = "❌"
			case c.Warn:
				mark = "⚠️"
			}
			who := ""
			if len(pre) > 1 {
				who = esc(p.Server.DisplayName()) + " · "
			}
			lines = append(lines, fmt.Sprintf("%s %s*%s:* %s", mark, who, esc(c.Name), esc(c.Detail)))
		}
	}
	return lines
}

func allOK(pre []migration.Preflight) bool {
	for _, p := range pre {
		if !p.OK() {
			return false
		}
	}
	return true
}

// launch handles /cutover launch SERVER test|cutover and the reminder's Launch test button.
func (h *Handler) launch(ctx context.Context, o origin, names string, mode migration.Mode, detail string) {
	action := "launch " + string(mode)
	doing := "launch a test"
	if mode == migration.ModeCutover {
		doing = "request a cutover"
	}
	if ok, gerr := h.allowed(ctx, o.user, h.operators()); !ok {
		h.refuseAccess(ctx, o, action, doing, nil, gerr, h.operators())
		return
	}
	servers, ok := h.resolve(ctx, o, names, false)
	if !ok {
		h.audit(ctx, o.user, action, nil, "refused: server not resolved", "", detail)
		return
	}
	ids := serverIDs(servers)
	pre, err := h.preflight(ctx, servers, mode)
	if err != nil {
		h.audit(ctx, o.user, action, ids, "failed: pre-flight", "", err.Error())
		h.replyText(ctx, o, h.errorText(ctx, "run the pre-flight checks", err))
		return
	}
	if !allOK(pre) {
		what := "a test launch"
		if mode == migration.ModeCutover {
			what = "a cutover"
		}
		text := fmt.Sprintf("Sorry, %s of %s cannot start yet. These pre-flight checks failed:\n%s",
			what, serverNames(servers), strings.Join(checkLines(pre, true), "\n"))
		h.audit(ctx, o.user, action, ids, "refused: pre-flight failed", "", failureSummary(pre))
		h.replyText(ctx, o, text)
		return
	}
	if mode == migration.ModeCutover {
		h.requestConfirmation(ctx, o, actionCutover, servers, pre)
		return
	}
	h.startTest(ctx, o, servers, pre)
}

func failureSummary(pre []migration.Preflight) string {
	var parts []string
	for _, p := range pre {
		for _, c := range p.Failures() {
			parts = append(parts, p.Server.ID+" "+c.Name+": "+c.Detail)
		}
	}
	return strings.Join(parts, "; ")
}

// startTest starts a test launch whose checks passed, has it followed in a thread and tells
// the requester where.
func (h *Handler) startTest(ctx context.Context, o origin, servers []migration.Server, pre []migration.Preflight) {
	ids := serverIDs(servers)
	request := newID()
	job, err := h.aws.StartTest(ctx, ids, map[string]string{migration.TagRequestedBy: o.user, migration.TagRequest: request})
	h.invalidate()
	if err != nil {
		h.audit(ctx, o.user, "StartTest", ids, "failed", "", err.Error())
		h.replyText(ctx, o, h.errorText(ctx, "start the test launch of "+serverNames(servers), err))
		return
	}
	h.audit(ctx, o.user, "StartTest", ids, "started", job.ID, "request "+request)
	text := fmt.Sprintf("Test launch of %s started: job %s. %s.", serverNames(servers), code(job.ID), capitalize(h.follow(ctx, job, o.user)))
	if warn := warnings(pre); warn != "" {
		text += "\n" + warn
	}
	h.replyText(ctx, o, text)
}

// warnings lists the checks that passed with a warning.
func warnings(pre []migration.Preflight) string {
	var lines []string
	for _, l := range checkLines(pre, false) {
		if strings.HasPrefix(l, "⚠️") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

func channelRef(id string) string { return "<#" + escPlain(id) + ">" }
