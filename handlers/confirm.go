package handlers

import (
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

// Actions a confirmation card asks for.
const (
	actionCutover  = "cutover"
	actionFinalize = "finalize"
)

// launchBudget bounds the work after a confirmation was won (pre-flight, launch, card edit).
// It does not end with the click's context, so that a won confirmation is not left half done.
const launchBudget = 2 * time.Minute

// cardWords are the words of a confirmation card for one action.
type cardWords struct {
	header, button, dialogTitle, dialogConfirm, effect string
}

var words = map[string]cardWords{
	actionCutover: {
		header: "Cutover requested", button: "Confirm cutover", dialogTitle: "Start cutover?", dialogConfirm: "Cut over",
		effect: "*What will happen:* instances from earlier launches of these servers are terminated, a final snapshot is taken, " +
			"a converter starts and the cutover instance is launched. :warning: *This affects production.*",
	},
	actionFinalize: {
		header: "Finalize cutover requested", button: "Finalize cutover", dialogTitle: "Finalize cutover?", dialogConfirm: "Finalize",
		effect: "*What will happen:* MGN finalizes the cutover: replication stops and the replication resources are removed; " +
			"the cutover instance is kept. Enable termination protection on the cutover instance first; " +
			"this stops replication and cannot be undone.",
	},
}

// requestConfirmation stores a confirmation, posts its card in the migration channel and tells
// the requester where it is.
func (h *Handler) requestConfirmation(ctx context.Context, o origin, action string, servers []migration.Server, pre []migration.Preflight) {
	now := h.cfg.Now()
	c := store.Confirmation{
		ID: newID(), Action: action, ServerIDs: serverIDs(servers), RequestedBy: o.user,
		CreatedAt: now, ExpiresAt: now.Add(h.cfg.ConfirmTTL),
	}
	auditAction := "request " + action
	if err := h.store.CreateConfirmation(ctx, c); err != nil {
		h.audit(ctx, o.user, auditAction, c.ServerIDs, "failed", "", err.Error())
		h.replyText(ctx, o, h.errorText(ctx, "record the "+action+" request", err))
		return
	}
	card := h.card(c, servers, pre)
	ts, err := h.poster.Post(ctx, h.cfg.Channel, card)
	if err != nil {
		// Nobody can click a card that was never posted; close the request.
		if _, derr := h.store.DecideConfirmation(context.WithoutCancel(ctx), c.ID, store.Cancelled, "", now); derr != nil {
			h.logger.WarnContext(ctx, "closing an unposted confirmation failed", "err", derr)
		}
		h.audit(ctx, o.user, auditAction, c.ServerIDs, "failed: card not posted", "", err.Error())
		h.replyText(ctx, o, h.errorText(ctx, "post the confirmation card in "+channelRef(h.cfg.Channel), err))
		return
	}
	if err := h.store.SetConfirmationMessage(ctx, c.ID, h.cfg.Channel, ts); err != nil {
		h.logger.WarnContext(ctx, "recording the card failed", "err", err)
	}
	h.audit(ctx, o.user, auditAction, c.ServerIDs, "card posted", "", "confirmation "+c.ID)
	text := fmt.Sprintf("The %s of %s waits for an approver: I posted <%s|a confirmation card> in %s. It expires at %s.",
		action, serverNames(servers), threadLink(h.cfg.Channel, ts), channelRef(h.cfg.Channel), h.clock(c.ExpiresAt))
	if !h.cfg.SelfApproval {
		text += " Someone else must confirm it."
	}
	h.replyText(ctx, o, text)
}

// card is the confirmation card: who asked, the servers, the checks, what will happen, the
// expiry, and the buttons.
func (h *Handler) card(c store.Confirmation, servers []migration.Server, pre []migration.Preflight) bot.Message {
	w := words[c.Action]
	blocks := []slack.Block{
		render.Header(w.header + ": " + plainNames(servers)),
		section(fmt.Sprintf("%s asked at %s to %s %s:\n%s", mention(c.RequestedBy), h.clock(c.CreatedAt), verb(c.Action),
			plural(len(servers), "server"), serverList(servers))),
	}
	for _, chunk := range render.Lines(append([]string{"*Pre-flight checks*"}, checkLines(pre, false)...)) {
		blocks = append(blocks, section(chunk))
	}
	blocks = append(blocks, section(w.effect))
	rule := "Only the cutover approvers can confirm."
	if !h.cfg.SelfApproval {
		rule = "Only a cutover approver other than the requester can confirm."
	}
	blocks = append(blocks, render.Context(fmt.Sprintf("Expires at %s (%s from the request). %s",
		h.clock(c.ExpiresAt), migration.HumanDuration(c.ExpiresAt.Sub(c.CreatedAt)), rule)))
	confirm := render.Button(render.ActionConfirm, w.button, c.ID, slack.StyleDanger)
	confirm.Confirm = render.Confirm(w.dialogTitle,
		fmt.Sprintf("%s %s now? %s", capitalize(verb(c.Action)), plainNames(servers), dialogNote(c.Action)),
		w.dialogConfirm, "Cancel", slack.StyleDanger)
	cancel := render.Button(render.ActionCancel, "Cancel", c.ID, "")
	blocks = append(blocks, render.Actions("confirmation", confirm, cancel)...)
	blocks = render.Fit(blocks, "")
	text := fmt.Sprintf("%s: %s, requested by %s; an approver must confirm.", w.header, serverNames(servers), mention(c.RequestedBy))
	return bot.Message{Text: fallback(text), Blocks: blocks}
}

func dialogNote(action string) string {
	if action == actionFinalize {
		return "Replication stops; this cannot be undone."
	}
	return "Instances from earlier launches are terminated; this affects production."
}

func verb(action string) string {
	if action == actionFinalize {
		return "finalize the cutover of"
	}
	return "cut over"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// serverList is one line per server, at most 20.
func serverList(servers []migration.Server) string {
	var lines []string
	for i, s := range servers {
		if i == 20 {
			lines = append(lines, fmt.Sprintf("…and %d more", len(servers)-20))
			break
		}
		lines = append(lines, "• "+serverRef(s)+" · "+esc(s.Lifecycle.State.Label()))
	}
	return strings.Join(lines, "\n")
}

// closedCard is the card after its decision: the request, and what became of it, without
// buttons. The servers are named when the fleet is at hand, else by their IDs.
func (h *Handler) closedCard(ctx context.Context, c store.Confirmation, status string) bot.Message {
	w := words[c.Action]
	ids := strings.Join(c.ServerIDs, ", ")
	names := ids
	if fleet, err := h.fleetServers(ctx, false); err == nil {
		named := make([]string, len(c.ServerIDs))
		for i, id := range c.ServerIDs {
			named[i] = id
			if j := slices.IndexFunc(fleet, func(s migration.Server) bool { return s.ID == id }); j >= 0 {
				named[i] = escPlain(fleet[j].DisplayName())
			}
		}
		names = strings.Join(named, ", ")
	}
	blocks := []slack.Block{
		render.Header(w.header + ": " + names),
		section(fmt.Sprintf("%s asked to %s %s at %s.", mention(c.RequestedBy), verb(c.Action), code(ids), h.clock(c.CreatedAt))),
		section(status),
	}
	return bot.Message{Text: fallback(status), Blocks: blocks}
}

// closeCard replaces the card in place with its closed form saying status; the card's place
// is the stored one, else the clicked message. It reports whether the card now says so: a
// caller whose only answer is the card tells the clicker instead when it does not.
func (h *Handler) closeCard(ctx context.Context, c store.Confirmation, cb slack.InteractionCallback, status string) bool {
	channel, ts := c.Channel, c.MessageTS
	if channel == "" || ts == "" {
		channel, ts = cb.Container.ChannelID, cb.Container.MessageTs
	}
	if channel == "" || ts == "" {
		h.logger.WarnContext(ctx, "card not updated: its message is unknown", "confirmation", c.ID)
		return false
	}
	if err := h.poster.Update(ctx, channel, ts, h.closedCard(ctx, c, status)); err != nil {
		h.logger.ErrorContext(ctx, "card update failed", "confirmation", c.ID, "channel", channel, "ts", ts, "err", err)
		return false
	}
	return true
}

// closeCardOrTell closes the card, or tells the clicker the status when the card cannot say it.
func (h *Handler) closeCardOrTell(ctx context.Context, o origin, c store.Confirmation, cb slack.InteractionCallback, status string) {
	if !h.closeCard(ctx, c, cb, status) {
		h.replyText(ctx, o, status)
	}
}

// decided explains to a clicker that the confirmation was decided already.
func (h *Handler) decided(c store.Confirmation) string {
	switch c.State {
	case store.Cancelled:
		if c.DecidedBy == "" {
			return "This request was closed; nothing was launched."
		}
		return fmt.Sprintf("This request was already cancelled by %s at %s.", mention(c.DecidedBy), h.clock(c.DecidedAt))
	case store.Expired:
		return fmt.Sprintf("This request expired at %s; nothing was launched.", h.clock(c.ExpiresAt))
	case store.Launched:
		t := fmt.Sprintf("This request was already confirmed by %s at %s", mention(c.DecidedBy), h.clock(c.DecidedAt))
		if c.JobID != "" {
			t += " — job " + code(c.JobID)
		}
		return t + "."
	case store.Failed:
		return fmt.Sprintf("This request was already confirmed by %s at %s, and it failed: %s", mention(c.DecidedBy), h.clock(c.DecidedAt), esc(c.Error))
	}
	return fmt.Sprintf("This request was already confirmed by %s at %s.", mention(c.DecidedBy), h.clock(c.DecidedAt))
}

// expiredStatus is what an expired card says.
func (h *Handler) expiredStatus(c store.Confirmation) string {
	return fmt.Sprintf(":hourglass: Expired at %s; nobody confirmed it and nothing was launched. Ask again with `/cutover %s`.",
		h.clock(c.ExpiresAt), retryCommand(c))
}

func retryCommand(c store.Confirmation) string {
	if c.Action == actionFinalize {
		return "finalize " + strings.Join(c.ServerIDs, ",")
	}
	return "launch " + strings.Join(c.ServerIDs, ",") + " cutover"
}

// confirmClick handles the Confirm button of a card: approvers only, never the requester
// unless self-approval is on, and exactly one launch however many clicks arrive.
func (h *Handler) confirmClick(ctx context.Context, o origin, cb slack.InteractionCallback, id string) {
	c, err := h.store.Confirmation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h.audit(ctx, o.user, "confirm", nil, "refused: unknown confirmation", "", id)
		h.replyText(ctx, o, "Sorry, I have no record of this request; it may come from an older installation. Ask again with `/cutover launch SERVER cutover`.")
		return
	}
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the request", err))
		return
	}
	doing := "confirm a cutover"
	if c.Action == actionFinalize {
		doing = "confirm finalizing a cutover"
	}
	if ok, gerr := h.allowed(ctx, o.user, h.approvers()); !ok {
		h.refuseAccess(ctx, o, "confirm "+c.Action, doing, c.ServerIDs, gerr, h.approvers())
		return
	}
	if !h.cfg.SelfApproval && o.user == c.RequestedBy && c.State == store.Pending {
		h.audit(ctx, o.user, "confirm "+c.Action, c.ServerIDs, "refused: self-approval", "", id)
		h.replyText(ctx, o, "Sorry, you asked for this yourself, and a second person must confirm it (two-person rule). Ask another approver.")
		return
	}
	now := h.cfg.Now()
	c, err = h.store.DecideConfirmation(ctx, id, store.Confirmed, o.user, now)
	switch {
	case errors.Is(err, store.ErrExpired):
		h.audit(ctx, o.user, "confirm "+c.Action, c.ServerIDs, "refused: expired", "", id)
		h.closeCard(ctx, c, cb, h.expiredStatus(c))
		h.replyText(ctx, o, fmt.Sprintf("Sorry, this request expired at %s, so nothing was launched. Ask for it again with `/cutover %s`.", h.clock(c.ExpiresAt), retryCommand(c)))
		return
	case errors.Is(err, store.ErrAlreadyDecided):
		h.audit(ctx, o.user, "confirm "+c.Action, c.ServerIDs, "ignored: already decided", c.JobID, id)
		h.replyText(ctx, o, h.decided(c))
		return
	case err != nil:
		h.replyText(ctx, o, h.errorText(ctx, "record the confirmation", err))
		return
	}
	h.audit(ctx, o.user, "confirm "+c.Action, c.ServerIDs, "confirmed", "", id)
	// This click won; finish even if the click's context ends.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), launchBudget)
	defer cancel()
	confirmed := fmt.Sprintf("Confirmed by %s at %s", mention(o.user), h.clock(now))
	h.closeCard(ctx, c, cb, ":hourglass_flowing_sand: "+confirmed+" — starting…")
	if c.Action == actionFinalize {
		h.finalizeConfirmed(ctx, o, cb, c, confirmed)
		return
	}
	h.cutoverConfirmed(ctx, o, cb, c, confirmed)
}

// fail records a confirmed request that could not launch and says why on the card.
func (h *Handler) fail(ctx context.Context, o origin, cb slack.InteractionCallback, c store.Confirmation, confirmed, why, errText string) {
	if err := h.store.CompleteConfirmation(ctx, c.ID, store.Failed, "", errText); err != nil {
		h.logger.WarnContext(ctx, "recording a failed confirmation failed", "err", err)
	}
	status := fmt.Sprintf(":x: %s, but nothing was launched: %s", confirmed, why)
	h.closeCard(ctx, c, cb, status)
	h.replyText(ctx, o, status)
}

func (h *Handler) cutoverConfirmed(ctx context.Context, o origin, cb slack.InteractionCallback, c store.Confirmation, confirmed string) {
	h.invalidate()
	servers, err := h.serversByID(ctx, c.ServerIDs)
	if err != nil {
		h.audit(ctx, o.user, "StartCutover", c.ServerIDs, "failed: servers", "", err.Error())
		h.fail(ctx, o, cb, c, confirmed, h.errorText(ctx, "read the servers again", err), err.Error())
		return
	}
	pre, err := h.preflight(ctx, servers, migration.ModeCutover)
	if err != nil {
		h.audit(ctx, o.user, "StartCutover", c.ServerIDs, "failed: pre-flight", "", err.Error())
		h.fail(ctx, o, cb, c, confirmed, h.errorText(ctx, "run the pre-flight checks again", err), err.Error())
		return
	}
	if !allOK(pre) {
		h.audit(ctx, o.user, "StartCutover", c.ServerIDs, "refused: pre-flight failed", "", failureSummary(pre))
		h.fail(ctx, o, cb, c, confirmed, "the pre-flight checks no longer pass:\n"+strings.Join(checkLines(pre, true), "\n"), failureSummary(pre))
		return
	}
	job, err := h.aws.StartCutover(ctx, c.ServerIDs, map[string]string{
		migration.TagRequestedBy: c.RequestedBy, migration.TagApprovedBy: o.user, migration.TagConfirmation: c.ID,
	})
	h.invalidate()
	if err != nil {
		h.audit(ctx, o.user, "StartCutover", c.ServerIDs, "failed", "", err.Error())
		h.fail(ctx, o, cb, c, confirmed, h.errorText(ctx, "start the cutover", err), err.Error())
		return
	}
	h.audit(ctx, o.user, "StartCutover", c.ServerIDs, "started", job.ID, "confirmation "+c.ID)
	if err := h.store.CompleteConfirmation(ctx, c.ID, store.Launched, job.ID, ""); err != nil {
		h.logger.WarnContext(ctx, "recording a launched confirmation failed", "job_id", job.ID, "err", err)
	}
	status := fmt.Sprintf(":white_check_mark: %s — job %s; %s.", confirmed, code(job.ID), h.follow(ctx, job, o.user))
	h.closeCardOrTell(ctx, o, c, cb, status)
}

// serversByID reads the named servers afresh.
func (h *Handler) serversByID(ctx context.Context, ids []string) ([]migration.Server, error) {
	fleet, err := h.fleetServers(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []migration.Server
	for _, id := range ids {
		i := slices.IndexFunc(fleet, func(s migration.Server) bool { return s.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("source server %s: %w", id, migration.ErrNotFound)
		}
		out = append(out, fleet[i])
	}
	return out, nil
}

// cancelClick handles the Cancel button of a card: the requester, an operator or an approver.
func (h *Handler) cancelClick(ctx context.Context, o origin, cb slack.InteractionCallback, id string) {
	c, err := h.store.Confirmation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h.replyText(ctx, o, "Sorry, I have no record of this request.")
		return
	}
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the request", err))
		return
	}
	if o.user != c.RequestedBy {
		if ok, gerr := h.allowed(ctx, o.user, h.operators(), h.approvers()); !ok {
			h.refuseAccess(ctx, o, "cancel "+c.Action, "cancel someone else's request", c.ServerIDs, gerr, h.operators(), h.approvers())
			return
		}
	}
	now := h.cfg.Now()
	c, err = h.store.DecideConfirmation(ctx, id, store.Cancelled, o.user, now)
	switch {
	case errors.Is(err, store.ErrExpired):
		h.closeCard(ctx, c, cb, h.expiredStatus(c))
		h.replyText(ctx, o, fmt.Sprintf("This request had already expired at %s; nothing was launched.", h.clock(c.ExpiresAt)))
		return
	case errors.Is(err, store.ErrAlreadyDecided):
		h.replyText(ctx, o, h.decided(c))
		return
	case err != nil:
		h.replyText(ctx, o, h.errorText(ctx, "record the cancellation", err))
		return
	}
	h.audit(ctx, o.user, "cancel "+c.Action, c.ServerIDs, "cancelled", "", id)
	h.closeCardOrTell(ctx, o, c, cb, fmt.Sprintf(":no_entry_sign: Cancelled by %s at %s; nothing was launched.", mention(o.user), h.clock(now)))
}

// ExpireCards marks the confirmations past their expiry as expired and edits their cards to
// say so, so that an unanswered card does not keep its buttons. Call it periodically (every
// minute is plenty); with several replicas each card is edited by one of them. It returns the
// store's error; a card that cannot be edited is logged.
func (h *Handler) ExpireCards(ctx context.Context) error {
	cs, err := h.store.ExpireConfirmations(ctx, h.cfg.Now())
	if err != nil {
		return fmt.Errorf("expire cards: %w", err)
	}
	for _, c := range cs {
		h.audit(ctx, "", "expire "+c.Action, c.ServerIDs, "expired", "", c.ID)
		h.closeCard(ctx, c, slack.InteractionCallback{}, h.expiredStatus(c))
	}
	return nil
}
