package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// jobsWindow is how far back MGN's jobs are read to find running ones and the last test.
const jobsWindow = 7 * 24 * time.Hour

// preflight runs the launch checks for each server against MGN's recent jobs.
func (h *Handler) preflight(ctx context.Context, servers []migration.Server, mode migration.Mode) ([]migration.Preflight, error) {
	jobs, err := h.aws.Jobs(ctx, h.cfg.Clock.Now().Add(-jobsWindow))
	if err != nil {
		return nil, err
	}
	return h.checks(servers, mode, jobs), nil
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
	action, doing, roles := actLaunchTest, "launch a test", []role{h.operators()}
	if mode == migration.ModeCutover {
		// A cutover is requested by an operator or an approver, and confirmed on its card.
		action, doing, roles = actRequestCutover, "ask for a cutover", []role{h.operators(), h.approvers()}
	}
	if ok, gerr := h.allowed(ctx, o.user, roles...); !ok {
		h.refuseAccess(ctx, o, action, doing, nil, gerr, roles...)
		return
	}
	t, ok := h.resolveTarget(ctx, o, names, false)
	if !ok {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, Outcome: outNotResolved, Detail: detail})
		return
	}
	if t.IsGroup() {
		h.launchGroup(ctx, o, t, mode, action)
		return
	}
	servers := t.Servers
	ids := serverIDs(servers)
	pre, err := h.preflight(ctx, servers, mode)
	if err != nil {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: ids, Outcome: "failed: pre-flight", Detail: err.Error()})
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
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: ids, Outcome: "refused: pre-flight failed", Detail: failureSummary(pre)})
		h.replyText(ctx, o, text)
		return
	}
	if mode == migration.ModeCutover {
		h.requestConfirmation(ctx, o, actionCutover, migration.Target{Servers: servers}, pre, nil)
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
	req := migration.LaunchRequest{Mode: migration.ModeTest, ServerIDs: ids, RequestedBy: o.user, Request: newID(), Since: h.cfg.Clock.Now()}
	job, err := h.aws.Launch(ctx, req)
	h.invalidate()
	switch {
	case errors.Is(err, migration.ErrOutcomeUnknown):
		ref := newRef()
		h.logger.ErrorContext(ctx, "outcome of a test launch unknown", "ref", ref, "request", req.Request, "err", err)
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actStartTest, ServerIDs: ids, Outcome: outUnknown, Detail: "request " + req.Request + "; ref " + ref})
		h.replyText(ctx, o, fmt.Sprintf(":warning: AWS's answer to the test launch of %s was lost, and I could not ask MGN whether it started (ref %s). "+
			"If it did, its thread appears in %s within a minute; `/cutover jobs` shows MGN's jobs. Do not launch again before you checked.",
			serverNames(servers), ref, channelRef(h.cfg.Channel)))
		return
	case err != nil:
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actStartTest, ServerIDs: ids, Outcome: outFailed, Detail: err.Error()})
		h.replyText(ctx, o, h.errorText(ctx, "start the test launch of "+serverNames(servers), err))
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actStartTest, ServerIDs: ids, Outcome: outStarted, JobID: job.ID, Detail: "request " + req.Request})
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
