package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// finalizeChecks are the checks before finalizing a cutover: the cutover instance is up (the
// server is CUTTING_OVER) and no job runs for the server.
func (h *Handler) finalizeChecks(ctx context.Context, servers []migration.Server) ([]migration.Preflight, error) {
	jobs, err := h.aws.Jobs(ctx, h.cfg.Now().Add(-jobsWindow))
	if err != nil {
		return nil, err
	}
	out := make([]migration.Preflight, len(servers))
	for i, s := range servers {
		p := migration.Preflight{Server: s}
		lc := migration.Check{Name: "Lifecycle", OK: s.Lifecycle.State == migration.LifecycleCuttingOver}
		if lc.OK {
			lc.Detail = "Cutover in progress since " + h.ago(s.Lifecycle.LastCutover.Initiated)
		} else {
			lc.Detail = s.Lifecycle.State.Label() + "; finalizing needs a launched cutover (Cutover in progress)"
		}
		p.Checks = append(p.Checks, lc)
		jc := migration.Check{Name: "Jobs", OK: true, Detail: "no job running"}
		if id := migration.ActiveJob(s.ID, jobs); id != "" {
			jc = migration.Check{Name: "Jobs", Detail: fmt.Sprintf("job %s is still running for this server; wait for it to end", id)}
		}
		p.Checks = append(p.Checks, jc)
		if s.Launched != nil && s.Launched.InstanceID != "" {
			p.Checks = append(p.Checks, migration.Check{Name: "Cutover instance", OK: true, Warn: true,
				Detail: fmt.Sprintf("%s is kept; enable its termination protection first", s.Launched.InstanceID)})
		}
		out[i] = p
	}
	return out, nil
}

// requestFinalize handles /cutover finalize SERVER: an operator or an approver asks, and a
// confirmation card waits for approvers, as for a cutover.
func (h *Handler) requestFinalize(ctx context.Context, o origin, names string) {
	if ok, gerr := h.allowed(ctx, o.user, h.operators(), h.approvers()); !ok {
		h.refuseAccess(ctx, o, actRequestFinalize, "ask to finalize a cutover", nil, gerr, h.operators(), h.approvers())
		return
	}
	servers, ok := h.resolve(ctx, o, names, false)
	if !ok {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actRequestFinalize, Outcome: outNotResolved, Detail: names})
		return
	}
	h.finalizeRequest(ctx, o, servers)
}

// finalizeRequest runs the finalize checks and, when they pass, posts the confirmation card.
func (h *Handler) finalizeRequest(ctx context.Context, o origin, servers []migration.Server) {
	pre, err := h.finalizeChecks(ctx, servers)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "run the checks", err))
		return
	}
	if !allOK(pre) {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actRequestFinalize, ServerIDs: serverIDs(servers), Outcome: "refused: checks failed", Detail: failureSummary(pre)})
		h.replyText(ctx, o, fmt.Sprintf("Sorry, the cutover of %s cannot be finalized yet:\n%s", serverNames(servers), strings.Join(checkLines(pre, true), "\n")))
		return
	}
	h.requestConfirmation(ctx, o, actionFinalize, migration.Target{Servers: servers}, pre, nil)
}

// finalizeClick handles the Finalize button the notifier posts after a cutover: it asks for the
// finalize as the command does, which posts a confirmation card for approvers; it never
// finalizes by itself.
func (h *Handler) finalizeClick(ctx context.Context, o origin, serverID string) {
	if ok, gerr := h.allowed(ctx, o.user, h.operators(), h.approvers()); !ok {
		h.refuseAccess(ctx, o, actRequestFinalize, "ask to finalize a cutover", []string{serverID}, gerr, h.operators(), h.approvers())
		return
	}
	servers, err := h.serversByID(ctx, []string{serverID})
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the server", err))
		return
	}
	h.finalizeRequest(ctx, o, servers)
}

// threadReply posts text in the thread of the clicked message (or starts one under it).
func (h *Handler) threadReply(ctx context.Context, o origin, cb slack.InteractionCallback, text string) {
	thread := cb.Container.ThreadTs
	if thread == "" {
		thread = cb.Container.MessageTs
	}
	channel := cb.Container.ChannelID
	if channel == "" {
		channel = o.channel
	}
	if _, err := h.poster.Post(ctx, channel, bot.Message{Text: fallback(text), Blocks: []slack.Block{section(text)}, ThreadTS: thread}); err != nil {
		h.logger.ErrorContext(ctx, "thread reply failed", "channel", channel, "err", err)
		h.replyText(ctx, o, text)
	}
}

// lifecycleChange is a move of a server's lifecycle state that a person asked for.
type lifecycleChange struct {
	verb string // actMarkReady or actRevert
	// plan says what to do with a server: call, or a polite refusal.
	plan func(s migration.Server) (call func(ctx context.Context, id string) (migration.Server, error), refusal string)
}

func (h *Handler) markReady() lifecycleChange {
	return lifecycleChange{verb: actMarkReady, plan: func(s migration.Server) (func(context.Context, string) (migration.Server, error), string) {
		switch s.Lifecycle.State {
		case migration.LifecycleTesting:
			return h.aws.MarkReadyForCutover, ""
		case migration.LifecycleReadyForCutover:
			return nil, serverRef(s) + " is already ready for cutover."
		}
		return nil, fmt.Sprintf("%s is %s; it can be marked ready for cutover only after a test launch (Test in progress).", serverRef(s), esc(s.Lifecycle.State.Label()))
	}}
}

func (h *Handler) revertTest(only bool) lifecycleChange {
	return lifecycleChange{verb: actRevert, plan: func(s migration.Server) (func(context.Context, string) (migration.Server, error), string) {
		switch s.Lifecycle.State {
		case migration.LifecycleTesting:
			return h.aws.RevertToReadyForTest, ""
		case migration.LifecycleCuttingOver:
			if !only {
				return h.aws.RevertToReadyForCutover, ""
			}
		case migration.LifecycleReadyForTest:
			return nil, serverRef(s) + " is already ready for testing."
		}
		return nil, fmt.Sprintf("%s is %s; only a test in progress (back to Ready for testing) or a cutover in progress (back to Ready for cutover) can be reverted.", serverRef(s), esc(s.Lifecycle.State.Label()))
	}}
}

// result words of a lifecycle change.
func changed(verb string, s migration.Server, after migration.Server) string {
	switch verb {
	case actMarkReady:
		return serverRef(s) + " is now ready for cutover."
	}
	return fmt.Sprintf("%s reverted from %s to %s.", serverRef(s), esc(s.Lifecycle.State.Label()), esc(after.Lifecycle.State.Label()))
}

// applyChange runs a lifecycle change on each server; it returns the lines saying what
// happened and whether anything changed.
func (h *Handler) applyChange(ctx context.Context, user string, servers []migration.Server, ch lifecycleChange) ([]string, bool) {
	var lines []string
	anyChanged := false
	for _, s := range servers {
		call, refusal := ch.plan(s)
		if call == nil {
			h.audit(ctx, store.AuditEntry{User: user, Action: ch.verb, ServerIDs: []string{s.ID}, Outcome: "refused: " + string(s.Lifecycle.State)})
			lines = append(lines, refusal)
			continue
		}
		after, err := call(ctx, s.ID)
		if err != nil {
			h.audit(ctx, store.AuditEntry{User: user, Action: ch.verb, ServerIDs: []string{s.ID}, Outcome: outFailed, Detail: err.Error()})
			lines = append(lines, serverRef(s)+": "+h.errorText(ctx, ch.verb, err))
			continue
		}
		h.audit(ctx, store.AuditEntry{User: user, Action: ch.verb, ServerIDs: []string{s.ID}, Outcome: "done: " + string(after.Lifecycle.State)})
		lines = append(lines, changed(ch.verb, s, after))
		anyChanged = true
	}
	if anyChanged {
		h.invalidate()
	}
	return lines, anyChanged
}

// ready handles /cutover ready SERVER.
func (h *Handler) ready(ctx context.Context, o origin, names string) {
	h.changeCommand(ctx, o, names, h.markReady(), "mark servers ready for cutover")
}

// revert handles /cutover revert SERVER.
func (h *Handler) revert(ctx context.Context, o origin, names string) {
	h.changeCommand(ctx, o, names, h.revertTest(false), "revert a test or cutover")
}

func (h *Handler) changeCommand(ctx context.Context, o origin, names string, ch lifecycleChange, doing string) {
	if ok, gerr := h.allowed(ctx, o.user, h.operators()); !ok {
		h.refuseAccess(ctx, o, ch.verb, doing, nil, gerr, h.operators())
		return
	}
	servers, ok := h.resolve(ctx, o, names, true)
	if !ok {
		return
	}
	lines, anyChanged := h.applyChange(ctx, o.user, servers, ch)
	text := strings.Join(lines, "\n")
	if anyChanged {
		notice := fmt.Sprintf("%s: %s", mention(o.user), text)
		if _, err := h.poster.Post(ctx, h.cfg.Channel, bot.Message{Text: fallback(notice), Blocks: []slack.Block{section(notice)}}); err != nil {
			h.logger.WarnContext(ctx, "lifecycle notice failed", "err", err)
		} else if o.channel != h.cfg.Channel {
			text += "\n(Posted in " + channelRef(h.cfg.Channel) + ".)"
		}
	}
	h.replyText(ctx, o, text)
}

// changeClick handles the Mark ready and Revert buttons under a test's final report.
func (h *Handler) changeClick(ctx context.Context, o origin, cb slack.InteractionCallback, value string, ch lifecycleChange, doing string) {
	ids := strings.Split(value, ",")
	if ok, gerr := h.allowed(ctx, o.user, h.operators()); !ok {
		h.refuseAccess(ctx, o, ch.verb, doing, ids, gerr, h.operators())
		return
	}
	servers, err := h.serversByID(ctx, ids)
	if err != nil {
		if errors.Is(err, migration.ErrNotFound) {
			h.replyText(ctx, o, "Sorry, one of these servers is no longer in MGN (deleted or archived): "+code(value)+".")
			return
		}
		h.replyText(ctx, o, h.errorText(ctx, "read the servers", err))
		return
	}
	lines, anyChanged := h.applyChange(ctx, o.user, servers, ch)
	text := strings.Join(lines, "\n")
	if !anyChanged {
		h.replyText(ctx, o, text)
		return
	}
	h.threadReply(ctx, o, cb, fmt.Sprintf("%s: %s", mention(o.user), text))
}
