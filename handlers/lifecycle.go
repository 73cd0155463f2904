package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// finalizeChecks are the checks before finalizing a cutover: the cutover instance is up (the
// server is CUTTING_OVER) and no job runs for the server.
func (h *Handler) finalizeChecks(ctx context.Context, servers []migration.Server) ([]migration.Preflight, error) {
	jobs, err := h.aws.Jobs(ctx, h.cfg.Clock.Now().Add(-jobsWindow))
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
	t, ok := h.resolveTarget(ctx, o, names, false)
	if !ok {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actRequestFinalize, Outcome: outNotResolved, Detail: names})
		return
	}
	h.finalizeRequest(ctx, o, t)
}

// finalizeRequest runs the finalize checks and, when they pass, posts the confirmation card.
// Of a wave or application, the servers that fail them are left out, and nothing is asked
// when none passes.
func (h *Handler) finalizeRequest(ctx context.Context, o origin, t migration.Target) {
	servers := t.Servers
	pre, err := h.finalizeChecks(ctx, servers)
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "run the checks", err))
		return
	}
	if t.IsGroup() {
		pass, left := splitChecks(pre)
		if len(pass) == 0 {
			h.audit(ctx, store.AuditEntry{User: o.user, Action: actRequestFinalize, ServerIDs: serverIDs(servers), Outcome: "refused: checks failed",
				Detail: t.Group.String() + ": " + failureSummary(pre)})
			h.replyText(ctx, o, fmt.Sprintf("Sorry, no server of %s can be finalized yet.\n%s", groupRef(t.Group), h.leftOutLines(left, maxLeftOutShown)))
			return
		}
		h.requestConfirmation(ctx, o, actionFinalize, migration.Target{Group: t.Group, Servers: checkedServers(pass)}, pass, left)
		return
	}
	if !allOK(pre) {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actRequestFinalize, ServerIDs: serverIDs(servers), Outcome: "refused: checks failed", Detail: failureSummary(pre)})
		h.replyText(ctx, o, fmt.Sprintf("Sorry, the cutover of %s cannot be finalized yet:\n%s", serverNames(servers), strings.Join(checkLines(pre, true), "\n")))
		return
	}
	h.requestConfirmation(ctx, o, actionFinalize, t, pre, nil)
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
	h.finalizeRequest(ctx, o, migration.Target{Servers: servers})
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

// changedText says what a lifecycle change did.
func changedText(verb string, s migration.Server, after migration.Server) string {
	switch verb {
	case actMarkReady:
		return serverRef(s) + " is now ready for cutover."
	}
	return fmt.Sprintf("%s reverted from %s to %s.", serverRef(s), esc(s.Lifecycle.State.Label()), esc(after.Lifecycle.State.Label()))
}

// maxParallelChanges bounds the lifecycle changes of a wave or application sent at once.
const maxParallelChanges = 5

// applyChange runs a lifecycle change on each server (a few at a time for many servers); it
// returns the lines saying what happened, in the servers' order, and how many changed.
func (h *Handler) applyChange(ctx context.Context, user string, servers []migration.Server, ch lifecycleChange) ([]string, int) {
	lines := make([]string, len(servers))
	var (
		g       errgroup.Group
		mu      sync.Mutex
		changed int
	)
	g.SetLimit(maxParallelChanges)
	for i, s := range servers {
		g.Go(func() error {
			call, refusal := ch.plan(s)
			if call == nil {
				h.audit(ctx, store.AuditEntry{User: user, Action: ch.verb, ServerIDs: []string{s.ID}, Outcome: "refused: " + string(s.Lifecycle.State)})
				lines[i] = refusal
				return nil
			}
			after, err := call(ctx, s.ID)
			if err != nil {
				h.audit(ctx, store.AuditEntry{User: user, Action: ch.verb, ServerIDs: []string{s.ID}, Outcome: outFailed, Detail: err.Error()})
				lines[i] = serverRef(s) + ": " + h.errorText(ctx, ch.verb, err)
				return nil
			}
			h.audit(ctx, store.AuditEntry{User: user, Action: ch.verb, ServerIDs: []string{s.ID}, Outcome: "done: " + string(after.Lifecycle.State)})
			lines[i] = changedText(ch.verb, s, after)
			mu.Lock()
			changed++
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	if changed > 0 {
		h.invalidate()
	}
	return lines, changed
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
	t, ok := h.resolveTarget(ctx, o, names, true)
	if !ok {
		return
	}
	lines, changed := h.applyChange(ctx, o.user, t.Servers, ch)
	head := ""
	if t.IsGroup() {
		head = fmt.Sprintf("%s of %s: %d of %s changed.", capitalize(changeWord(ch.verb)), groupRef(t.Group), changed, plural(len(t.Servers), "server"))
	}
	if changed > 0 {
		notice, rest := mention(o.user)+": "+head, lines
		if head == "" && len(lines) > 0 {
			notice, rest = mention(o.user)+": "+lines[0], lines[1:]
		}
		if _, err := h.poster.Post(ctx, h.cfg.Channel, listMessage(notice, rest)); err != nil {
			h.logger.WarnContext(ctx, "lifecycle notice failed", "err", err)
		} else if o.channel != h.cfg.Channel {
			lines = append(lines, "(Posted in "+channelRef(h.cfg.Channel)+".)")
		}
	}
	h.reply(ctx, o, listMessage(head, lines))
}

// changeWord names a lifecycle change for a sentence.
func changeWord(verb string) string {
	if verb == actMarkReady {
		return "mark ready for cutover"
	}
	return "revert"
}

// listMessage is a message of a head line (may be "") and one line per item, within Slack's
// limits: a long list is cut, and says so.
func listMessage(head string, lines []string) bot.Message {
	all := lines
	if head != "" {
		all = append([]string{head}, lines...)
	}
	var blocks []slack.Block
	for _, t := range render.Lines(all) {
		blocks = append(blocks, section(t))
	}
	return bot.Message{Text: fallback(strings.Join(all, "\n")), Blocks: render.Fit(blocks, "`/cutover status` shows every server")}
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
	lines, changed := h.applyChange(ctx, o.user, servers, ch)
	text := render.Truncate(strings.Join(lines, "\n"), render.MaxSectionText-100)
	if changed == 0 {
		h.replyText(ctx, o, text)
		return
	}
	h.threadReply(ctx, o, cb, fmt.Sprintf("%s: %s", mention(o.user), text))
}
