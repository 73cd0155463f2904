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

// Actions a confirmation card asks for. Both are irreversible and follow one approval policy:
// requested by an operator or an approver, confirmed by Config.Approvals approvers other than
// the requester (unless self-approval is on), the pre-flight checks run again at the deciding
// click.
const (
	actionCutover  = "cutover"
	actionFinalize = "finalize"
)

// cardWords are the words of a confirmation card for one action.
type cardWords struct {
	header, button, dialogTitle, dialogConfirm, effect, doing string
}

var words = map[string]cardWords{
	actionCutover: {
		header: "Cutover requested", button: "Confirm cutover", dialogTitle: "Start cutover?", dialogConfirm: "Cut over",
		effect: "*What will happen:* instances from earlier launches of these servers are terminated, a final snapshot is taken, " +
			"a converter starts and the cutover instance is launched. :warning: *This affects production.*",
		doing: "cutover",
	},
	actionFinalize: {
		header: "Finalize cutover requested", button: "Finalize cutover", dialogTitle: "Finalize cutover?", dialogConfirm: "Finalize",
		effect: "*What will happen:* MGN finalizes the cutover: replication stops and the replication resources are removed; " +
			"the cutover instance is kept. Enable termination protection on the cutover instance first; " +
			"this stops replication and cannot be undone.",
		doing: "finalize",
	},
}

// Card budget: what a card's body may use of Slack's 50 blocks, leaving room for the header,
// the effect, the status and the buttons whatever the number of servers and their names.
const (
	maxCardServers    = 20 // servers listed by name on a card
	maxCardCheckLines = 40 // failing or warning check lines on a card of many servers
	maxCardBody       = 10 // sections of the body
	detailedChecksMax = 5  // up to this many servers, every check of every server is listed
)

// requestConfirmation stores a confirmation for t's servers (those of a wave or application
// that passed the checks, the others in leftOut), posts its card in the migration channel and
// tells the requester where it is. A request for a server that already has one waiting is
// pointed at that card instead.
func (h *Handler) requestConfirmation(ctx context.Context, o origin, action string, t migration.Target, pre []migration.Preflight, leftOut []migration.LeftOut) {
	servers := t.Servers
	ids := serverIDs(servers)
	auditAction := actRequestCutover
	if action == actionFinalize {
		auditAction = actRequestFinalize
	}
	if c, ok := h.waiting(ctx, action, ids); ok {
		h.pointAtWaiting(ctx, o, c, servers)
		return
	}
	now := h.cfg.Clock.Now()
	c := store.Confirmation{
		ID: newID(), Action: action, ServerIDs: ids, RequestedBy: o.user,
		CreatedAt: now, ExpiresAt: now.Add(h.cfg.ConfirmTTL), ApprovalsNeeded: h.cfg.Approvals,
		Title: words[action].header + ": " + plainNames(servers),
	}
	if t.IsGroup() {
		c.GroupKind, c.GroupID, c.GroupName = string(t.Group.Kind), t.Group.ID, t.Group.Name
		c.Title = fmt.Sprintf("%s: %s (%s)", words[action].header, t.Group, plural(len(servers), "server"))
	}
	c.Body = h.cardBody(c, servers, pre, leftOut)
	if err := h.store.CreateConfirmation(ctx, c); err != nil {
		if held, ok := errors.AsType[*store.AlreadyRequestedError](err); ok {
			if other, rerr := h.store.Confirmation(ctx, held.ID); rerr == nil {
				h.pointAtWaiting(ctx, o, other, servers)
				return
			}
		}
		h.audit(ctx, store.AuditEntry{User: o.user, Action: auditAction, ServerIDs: ids, Outcome: outFailed, Detail: err.Error()})
		h.replyText(ctx, o, h.errorText(ctx, "record the "+action+" request", err))
		return
	}
	c.State, c.Version = store.Pending, 1
	ts, err := h.poster.Post(ctx, h.cfg.Channel, h.drawCard(c, ""))
	if err != nil {
		// Nobody can click a card that was never posted; close the request.
		if _, derr := h.store.CancelConfirmation(context.WithoutCancel(ctx), c.ID, "", now); derr != nil {
			h.logger.WarnContext(ctx, "closing an unposted confirmation failed", "err", derr)
		}
		h.audit(ctx, store.AuditEntry{User: o.user, Action: auditAction, ServerIDs: ids, Outcome: "failed: card not posted", Detail: err.Error()})
		h.replyText(ctx, o, h.errorText(ctx, "post the confirmation card in "+channelRef(h.cfg.Channel), err))
		return
	}
	c.Channel, c.MessageTS = h.cfg.Channel, ts
	if err := h.recordCard(ctx, c); err != nil {
		// A card whose place is not recorded could never be redrawn: close it now, while
		// its place is known, rather than leave its buttons to a request nobody can follow.
		ref := newRef()
		h.logger.ErrorContext(ctx, "recording the card failed; closing it", "ref", ref, "confirmation", c.ID, "err", err)
		if _, derr := h.store.CancelConfirmation(context.WithoutCancel(ctx), c.ID, "", now); derr != nil {
			h.logger.WarnContext(ctx, "closing an unrecorded confirmation failed", "confirmation", c.ID, "err", derr)
		}
		closed := c
		closed.State, closed.Error = store.Cancelled, fmt.Sprintf("this request could not be recorded (ref %s)", ref)
		if uerr := h.poster.Update(ctx, c.Channel, ts, h.drawCard(closed, "")); uerr != nil {
			h.logger.ErrorContext(ctx, "closing an unrecorded card failed", "ref", ref, "err", uerr)
		}
		h.audit(ctx, store.AuditEntry{User: o.user, Action: auditAction, ServerIDs: ids, Outcome: "failed: card not recorded", Detail: "ref " + ref})
		h.replyText(ctx, o, fmt.Sprintf("Sorry, I could not record the %s request (ref %s), so I closed its card; nothing was launched. Try again in a minute.",
			words[action].doing, ref))
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: auditAction, ServerIDs: ids, Outcome: "card posted", Detail: "confirmation " + c.ID})
	text := fmt.Sprintf("The %s of %s waits for %s: I posted %s in %s. It expires at %s.",
		words[action].doing, serverNames(servers), approversWanted(c.Needed(), h.cfg.SelfApproval, "you"), cardLink(c, "a confirmation card"),
		channelRef(h.cfg.Channel), h.clock(c.ExpiresAt))
	if len(leftOut) > 0 {
		text += "\n" + h.leftOutLines(leftOut, maxLeftOutShown)
	}
	h.replyText(ctx, o, text)
}

// pointAtWaiting answers a request for servers that one pending confirmation, c, already
// holds: it points at c's card.
func (h *Handler) pointAtWaiting(ctx context.Context, o origin, c store.Confirmation, servers []migration.Server) {
	auditAction := actRequestCutover
	if c.Action == actionFinalize {
		auditAction = actRequestFinalize
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: auditAction, ServerIDs: serverIDs(servers), Outcome: "refused: already requested", Detail: "confirmation " + c.ID})
	h.replyText(ctx, o, fmt.Sprintf("A %s request for %s is already waiting: %s, asked by %s at %s. Approvers confirm it there; it expires at %s.",
		words[c.Action].doing, serverNames(servers), cardLink(c, "its card"), mention(c.RequestedBy), h.clock(c.CreatedAt), h.clock(c.ExpiresAt)))
}

// recordCard records where c's card was posted, trying three times: a card whose place is not
// recorded cannot be redrawn.
func (h *Handler) recordCard(ctx context.Context, c store.Confirmation) error {
	var err error
	for try := range 3 {
		if try > 0 {
			t := time.NewTimer(time.Duration(try) * 200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = h.store.SetConfirmationMessage(ctx, c.ID, c.Channel, c.MessageTS); err == nil {
			return nil
		}
	}
	return err
}

// waiting returns a pending confirmation of action for any of the servers, if there is one.
func (h *Handler) waiting(ctx context.Context, action string, ids []string) (store.Confirmation, bool) {
	cs, err := h.store.Confirmations(ctx, store.Pending)
	if err != nil {
		h.logger.WarnContext(ctx, "reading waiting requests failed", "err", err)
		return store.Confirmation{}, false
	}
	now := h.cfg.Clock.Now()
	for _, c := range cs {
		if c.Action == action && c.ExpiresAt.After(now) && slices.ContainsFunc(c.ServerIDs, func(id string) bool { return slices.Contains(ids, id) }) {
			return c, true
		}
	}
	return store.Confirmation{}, false
}

// approversWanted says who must confirm a request by requester ("you" or a mention): "an
// approver", "an approver other than you", "2 approvers other than <@U1>".
func approversWanted(n int, selfApproval bool, requester string) string {
	who := "an approver"
	if n > 1 {
		who = fmt.Sprintf("%d approvers", n)
	}
	if selfApproval {
		return who
	}
	return who + " other than " + requester
}

// cardLink links to a confirmation's card, or names it when it has no message yet.
func cardLink(c store.Confirmation, label string) string {
	if c.MessageTS == "" {
		return label
	}
	return fmt.Sprintf("<%s|%s>", threadLink(c.Channel, c.MessageTS), label)
}

// cardBody is what a card shows of a request: who asked for what, then the pre-flight checks,
// as mrkdwn sections that fit the card's budget whatever the number of servers and the length
// of their names: long lists are shortened ("…and 87 more"), never the card's buttons.
func (h *Handler) cardBody(c store.Confirmation, servers []migration.Server, pre []migration.Preflight, leftOut []migration.LeftOut) []string {
	of := ""
	if c.GroupKind != "" {
		of = " of " + groupRef(confirmationGroup(c))
	}
	request := append([]string{fmt.Sprintf("%s asked at %s to %s %s%s:", mention(c.RequestedBy), h.clock(c.CreatedAt), verb(c.Action),
		plural(len(servers), "server"), of)}, serverList(servers)...)
	body := render.Lines(request)
	if len(leftOut) > 0 {
		body = append(body, render.Truncate(h.leftOutLines(leftOut, maxCardServers), render.MaxSectionText))
	}
	var checks []string
	if len(pre) <= detailedChecksMax {
		checks = checkLines(pre, false)
	} else {
		var notable []string
		for _, l := range checkLines(pre, false) {
			if !strings.HasPrefix(l, "✅") {
				notable = append(notable, l)
			}
		}
		if len(notable) > maxCardCheckLines {
			notable = append(notable[:maxCardCheckLines], fmt.Sprintf("…and %d more", len(notable)-maxCardCheckLines))
		}
		checks = append(notable, fmt.Sprintf("✅ Every other check passed on all %d servers.", len(pre)))
	}
	body = append(body, render.Lines(append([]string{"*Pre-flight checks*"}, checks...))...)
	if len(body) > maxCardBody {
		body = append(body[:maxCardBody-1], "…more checks are not shown; `/cutover status SERVER` shows each server.")
	}
	return body
}

// drawCard is a confirmation's card in its current state: its request, and while pending the
// checks, the approvals so far and the buttons; afterwards what became of it. thread is the
// ts of the launch's progress thread, "" when unknown.
func (h *Handler) drawCard(c store.Confirmation, thread string) bot.Message {
	w := words[c.Action]
	blocks := []slack.Block{render.Header(c.Title)}
	status := h.cardStatus(c, thread)
	open := c.State == store.Pending || c.State.InProgress()
	body := c.Body
	if !open {
		body = body[:min(len(body), 2)] // a closed card keeps the request, not the checks
		if len(body) == 2 && strings.HasPrefix(body[1], "*Pre-flight checks*") {
			body = body[:1]
		}
	}
	for _, b := range body {
		blocks = append(blocks, section(b))
	}
	if open {
		blocks = append(blocks, section(w.effect))
	}
	blocks = append(blocks, section(status))
	if c.State == store.Pending {
		blocks = append(blocks, render.Context(fmt.Sprintf("Expires at %s (%s from the request). %s",
			h.clock(c.ExpiresAt), migration.HumanDuration(c.ExpiresAt.Sub(c.CreatedAt)), h.rule(c))))
		confirm := render.Button(render.ActionConfirm, w.button, c.ID, slack.StyleDanger)
		confirm.Confirm = render.Confirm(w.dialogTitle,
			fmt.Sprintf("%s %s now? %s", capitalize(verb(c.Action)), strings.TrimPrefix(c.Title, w.header+": "), dialogNote(c.Action)),
			w.dialogConfirm, "Cancel", slack.StyleDanger)
		cancel := render.Button(render.ActionCancel, "Cancel", c.ID, "")
		blocks = append(blocks, render.Actions("confirmation", confirm, cancel)...)
	}
	// The body was built to fit; Fit only guards the count, and keeps the buttons last.
	if len(blocks) > render.MaxBlocks {
		tail := blocks[len(blocks)-3:]
		blocks = append(render.Fit(blocks[:len(blocks)-3], "")[:render.MaxBlocks-4], tail...)
	}
	return bot.Message{Text: fallback(mrkdwnOfPlain(c.Title) + ". " + status), Blocks: blocks, Metadata: cardMetadata(c.ID)}
}

// mrkdwnOfPlain turns text escaped for plain_text (EscapePlain) into text escaped for mrkdwn.
func mrkdwnOfPlain(s string) string {
	return esc(strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s))
}

// cardMetadata names a confirmation's card in its message metadata, so that a card whose post
// Slack took while its answer was lost is found, not posted twice.
func cardMetadata(id string) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: "cutoverbot_card", EventPayload: map[string]any{"confirmation": id}}
}

// rule says who may confirm a card.
func (h *Handler) rule(c store.Confirmation) string {
	who := "a cutover approver other than the requester"
	if h.cfg.SelfApproval {
		who = "a cutover approver"
	}
	if c.Needed() > 1 {
		who = fmt.Sprintf("%d distinct cutover approvers", c.Needed())
		if !h.cfg.SelfApproval {
			who += " other than the requester"
		}
		return "It needs " + who + "."
	}
	return "Only " + who + " can confirm."
}

// cardStatus is the status line of a card in c's state.
func (h *Handler) cardStatus(c store.Confirmation, thread string) string {
	approved := "approved by " + mentions(c.Approvals)
	switch c.State {
	case store.Pending:
		if len(c.Approvals) == 0 {
			return fmt.Sprintf(":lock: Waiting for %s.", approversWanted(c.Needed(), h.cfg.SelfApproval, mention(c.RequestedBy)))
		}
		return fmt.Sprintf(":lock: Approved by %s (%d of %d); waiting for %d more.", mentions(c.Approvals), len(c.Approvals), c.Needed(), c.Needed()-len(c.Approvals))
	case store.Confirmed, store.Calling:
		doing := "checking the pre-flight again and starting…"
		switch {
		case c.Error != "":
			doing = ":warning: " + c.Error
		case !c.LeaseUntil.After(h.cfg.Clock.Now()):
			doing = "the replica carrying it out stopped; another replica is taking over and asks MGN what happened…"
		case c.State == store.Calling:
			doing = "asking MGN to start it…"
		}
		return fmt.Sprintf(":hourglass_flowing_sand: Requested by %s, %s at %s — %s", mention(c.RequestedBy), approved, h.clock(c.DecidedAt), doing)
	case store.Launched:
		head := fmt.Sprintf(":white_check_mark: Requested by %s, %s at %s", mention(c.RequestedBy), approved, h.clock(c.DecidedAt))
		if c.Action == actionFinalize {
			return head + ".\n" + c.Detail
		}
		where := "progress follows in a thread in " + channelRef(c.Channel)
		if thread != "" {
			where = fmt.Sprintf("progress in <%s|its thread>", threadLink(c.Channel, thread))
		}
		if c.GroupKind != "" {
			progress, _, _ := strings.Cut(c.Detail, "; progress is followed")
			return fmt.Sprintf("%s — %s; %s.", head, progress, where)
		}
		return fmt.Sprintf("%s — job %s; %s.", head, code(c.JobID), where)
	case store.Failed:
		late := ""
		if c.RecheckUntil.After(h.cfg.Clock.Now()) {
			late = fmt.Sprintf("\nMGN had no job for it when asked; should MGN start it late, this card will say so (it is watched until %s).", h.clock(c.RecheckUntil))
		}
		return fmt.Sprintf(":x: Requested by %s, %s at %s, but nothing was launched: %s%s\nAsk again with `/cutover %s`.",
			mention(c.RequestedBy), approved, h.clock(c.DecidedAt), c.Error, late, retryCommand(c))
	case store.Cancelled:
		if c.DecidedBy == "" {
			if c.Error != "" {
				return ":no_entry_sign: Closed: " + c.Error + "; nothing was launched. Ask again."
			}
			return ":no_entry_sign: Closed; nothing was launched."
		}
		return fmt.Sprintf(":no_entry_sign: Cancelled by %s at %s; nothing was launched.", mention(c.DecidedBy), h.clock(c.DecidedAt))
	case store.Expired:
		return fmt.Sprintf(":hourglass: Expired at %s; %s and nothing was launched. Ask again with `/cutover %s`.",
			h.clock(c.ExpiresAt), notEnough(c), retryCommand(c))
	}
	return "State: " + esc(string(c.State))
}

func notEnough(c store.Confirmation) string {
	if len(c.Approvals) == 0 {
		return "nobody confirmed it"
	}
	return fmt.Sprintf("it had %d of the %d approvals it needed", len(c.Approvals), c.Needed())
}

// mentions lists users as mentions: "<@U1>, <@U2>".
func mentions(users []string) string {
	m := make([]string, len(users))
	for i, u := range users {
		m[i] = mention(u)
	}
	if len(m) == 0 {
		return "nobody"
	}
	return strings.Join(m, ", ")
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

// serverList is one line per server, at most maxCardServers.
func serverList(servers []migration.Server) []string {
	var lines []string
	for i, s := range servers {
		if i == maxCardServers {
			lines = append(lines, fmt.Sprintf("…and %d more", len(servers)-maxCardServers))
			break
		}
		lines = append(lines, "• "+serverRef(s)+" · "+esc(s.Lifecycle.State.Label()))
	}
	return lines
}

func retryCommand(c store.Confirmation) string {
	if c.GroupKind != "" {
		g := confirmationGroup(c)
		if c.Action == actionFinalize {
			return "finalize " + g.String()
		}
		return "launch " + g.String() + " cutover"
	}
	if c.Action == actionFinalize {
		return "finalize " + strings.Join(c.ServerIDs, ",")
	}
	return "launch " + strings.Join(c.ServerIDs, ",") + " cutover"
}

// decided explains to a clicker that the confirmation is no longer waiting for approvals.
func (h *Handler) decided(c store.Confirmation) string {
	by := fmt.Sprintf("%s at %s", mention(c.DecidedBy), h.clock(c.DecidedAt))
	switch c.State {
	case store.Cancelled:
		if c.DecidedBy == "" {
			return "This request was closed; nothing was launched."
		}
		return "This request was already cancelled by " + by + "."
	case store.Expired:
		return fmt.Sprintf("This request expired at %s; nothing was launched.", h.clock(c.ExpiresAt))
	case store.Launched:
		t := "This request was already confirmed by " + by
		if c.JobID != "" {
			t += " — job " + code(c.JobID)
		}
		return t + "."
	case store.Failed:
		return fmt.Sprintf("This request was already confirmed by %s, and nothing was launched: %s", by, c.Error)
	case store.Confirmed, store.Calling:
		if !c.LeaseUntil.After(h.cfg.Clock.Now()) {
			return fmt.Sprintf("This request was confirmed by %s, but the replica carrying it out stopped. Another replica is taking it over: "+
				"it asks MGN whether the %s started, and the card will say what happened.", by, words[c.Action].doing)
		}
		return fmt.Sprintf("This request was already confirmed by %s, and the %s is being started; the card will name the job.", by, words[c.Action].doing)
	}
	return "This request was already confirmed by " + by + "."
}

// confirmClick handles the Confirm button of a card: approvers only, never the requester unless
// self-approval is on, Config.Approvals distinct approvers, and exactly one launch however many
// clicks arrive, on however many replicas.
func (h *Handler) confirmClick(ctx context.Context, o origin, id string) {
	c, err := h.store.Confirmation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actConfirm, Outcome: "refused: unknown confirmation", Detail: id})
		h.replyText(ctx, o, "Sorry, I have no record of this request; it may come from an older installation. Ask again with `/cutover launch SERVER cutover`.")
		return
	}
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the request", err))
		return
	}
	action := actionOf(actConfirm, c.Action)
	if ok, gerr := h.allowed(ctx, o.user, h.approvers()); !ok {
		h.refuseAccess(ctx, o, action, "confirm a "+words[c.Action].doing, c.ServerIDs, gerr, h.approvers())
		return
	}
	if c.State != store.Pending {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: c.ServerIDs, Outcome: "ignored: already decided", JobID: c.JobID, Detail: id})
		h.replyText(ctx, o, h.decided(c))
		return
	}
	if !h.cfg.SelfApproval && o.user == c.RequestedBy {
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: c.ServerIDs, Outcome: "refused: self-approval", Detail: id})
		h.replyText(ctx, o, "Sorry, you asked for this yourself, and someone else must confirm it (two-person rule). Ask another approver.")
		return
	}
	c, did, withdrawn, ok := h.approve(ctx, o, c, action)
	if !ok {
		return
	}
	if did == store.ApprovalRepeated && len(withdrawn) > 0 {
		// Recorded by an earlier attempt of this click, before others were withdrawn.
		did = store.ApprovalAdded
	}
	switch did {
	case store.ApprovalRepeated:
		h.replyText(ctx, o, fmt.Sprintf("You approved this already (%d of %d); it waits for %d more.", len(c.Approvals), c.Needed(), c.Needed()-len(c.Approvals)))
		return
	case store.ApprovalAdded:
		more := c.Needed() - len(c.Approvals)
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actionOf(actApprove, c.Action), ServerIDs: c.ServerIDs,
			Outcome: fmt.Sprintf("approved (%d of %d)", len(c.Approvals), c.Needed()), Detail: id})
		h.cardChanged(c.ID)
		no := ""
		if len(withdrawn) > 0 {
			no = fmt.Sprintf(", but the approval of %s no longer counts: no longer a cutover approver", mentions(withdrawn))
		}
		h.replyText(ctx, o, fmt.Sprintf("Your approval is recorded (%d of %d)%s. The %s starts when %d more approver%s confirm%s.",
			len(c.Approvals), c.Needed(), no, words[c.Action].doing, more, pluralS(more), verbS(more)))
		return
	case store.ApprovalUnvouched:
		// Approvals kept arriving while this click checked the earlier ones: it is recorded,
		// and the next click (this approver's too) decides.
		h.cardChanged(c.ID)
		h.replyText(ctx, o, "Your approval is recorded, but other approvals arrived at the same moment and I could not check them yet. "+
			"Click *Confirm* again to decide.")
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: c.ServerIDs, Outcome: "confirmed",
		Detail: fmt.Sprintf("confirmation %s; approved by %s", id, strings.Join(c.Approvals, ","))})
	h.cardChanged(c.ID)
	// This click won: carry the action out even if the click's context ends. The approver
	// hears at once that theirs was the deciding click, and then what MGN did, which takes
	// the pre-flight and the call. The launch does not wait for Slack to take the first
	// answer (at most decidingWait, in the background); the second follows it.
	ctx = context.WithoutCancel(ctx)
	told := make(chan struct{})
	go func() {
		defer close(told)
		tctx, cancel := context.WithTimeout(ctx, decidingWait)
		defer cancel()
		h.replyText(tctx, o, deciding(c))
	}()
	answer := h.carry(ctx, c, false)
	<-told
	h.replyText(ctx, o, answer)
}

// decidingWait bounds how long the deciding approver's first answer may wait for Slack.
const decidingWait = 5 * time.Second

// deciding tells the approver whose click decided c that it is being carried out.
func deciding(c store.Confirmation) string {
	doing := "starting the cutover"
	if c.Action == actionFinalize {
		doing = "finalizing the cutover"
	}
	return ":hourglass_flowing_sand: Confirmed: yours was the deciding approval. Checking the servers again and " + doing +
		" now; I will tell you here what MGN did."
}

// approve records o's approval of c. A decision rests on every approval at the moment it is
// taken, so when o's click would decide, the earlier approvers are checked again first (see
// vouch), and the store decides only on approvals so checked; when others arrived meanwhile,
// they are checked too and it approves again, a few times at most. It returns what the store
// did and the approvals withdrawn, or false when it has answered o already.
func (h *Handler) approve(ctx context.Context, o origin, c store.Confirmation, action string) (store.Confirmation, store.Approval, []string, bool) {
	var (
		withdrawn []string
		did       store.Approval
	)
	for range 3 {
		w, vouched, ok := h.vouch(ctx, o, c, action)
		if !ok {
			return c, did, nil, false
		}
		withdrawn = append(withdrawn, w...)
		var err error
		c, did, err = h.store.Approve(ctx, c.ID, o.user, h.cfg.Holder, h.cfg.Clock.Now(), h.cfg.LeaseTTL, vouched)
		if !h.decisionAnswered(ctx, o, c, action, err) {
			return c, did, nil, false
		}
		if did != store.ApprovalUnvouched {
			break
		}
	}
	return c, did, withdrawn, true
}

// vouch checks, when o's click would decide c, that the others who approved it are approvers
// still, and returns those who are (vouched). The approvals of those who are not any more are
// withdrawn (and audited) and returned. When their membership cannot be read, nothing is
// decided: it answers o and reports false.
func (h *Handler) vouch(ctx context.Context, o origin, c store.Confirmation, action string) (withdrawn, vouched []string, ok bool) {
	others := slices.DeleteFunc(slices.Clone(c.Approvals), func(a string) bool { return a == o.user })
	if len(others)+1 < c.Needed() {
		return nil, nil, true
	}
	var stale []string
	for _, a := range others {
		ok, gerr := h.allowed(ctx, a, h.approvers())
		switch {
		case ok:
			vouched = append(vouched, a)
			continue
		case gerr != nil:
			ref := newRef()
			h.logger.WarnContext(ctx, "user group lookup failed", "ref", ref, "user", a, "err", gerr)
			h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: c.ServerIDs,
				Outcome: "refused: earlier approver's membership unknown (ref " + ref + ")", Detail: c.ID})
			h.replyText(ctx, o, fmt.Sprintf("Sorry, I could not check that %s, who approved this earlier, is still a cutover approver: "+
				"Slack did not answer (ref %s). Nothing was decided; try again in a minute.", mention(a), ref))
			return nil, nil, false
		}
		stale = append(stale, a)
	}
	if len(stale) == 0 {
		return nil, vouched, true
	}
	c, err := h.store.WithdrawApprovals(ctx, c.ID, stale, h.cfg.Clock.Now())
	if !h.decisionAnswered(ctx, o, c, action, err) {
		return nil, nil, false
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: actionOf(actApprove, c.Action), ServerIDs: c.ServerIDs,
		Outcome: "approvals withdrawn: no longer approvers", Detail: c.ID + ": " + strings.Join(stale, ",")})
	h.cardChanged(c.ID)
	return stale, vouched, true
}

// decisionAnswered answers a click whose store step failed (expired, decided meanwhile, store
// error) and reports whether the click may go on.
func (h *Handler) decisionAnswered(ctx context.Context, o origin, c store.Confirmation, action string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrExpired):
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: c.ServerIDs, Outcome: "refused: expired", Detail: c.ID})
		h.cardChanged(c.ID)
		h.replyText(ctx, o, fmt.Sprintf("Sorry, this request expired at %s, so nothing was launched. Ask for it again with `/cutover %s`.", h.clock(c.ExpiresAt), retryCommand(c)))
	case errors.Is(err, store.ErrAlreadyDecided):
		h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: c.ServerIDs, Outcome: "ignored: already decided", JobID: c.JobID, Detail: c.ID})
		h.replyText(ctx, o, h.decided(c))
	default:
		h.replyText(ctx, o, h.errorText(ctx, "record the confirmation", err))
	}
	return false
}

func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func verbS(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

// cancelClick handles the Cancel button of a card: the requester, an operator or an approver.
func (h *Handler) cancelClick(ctx context.Context, o origin, id string) {
	c, err := h.store.Confirmation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h.replyText(ctx, o, "Sorry, I have no record of this request.")
		return
	}
	if err != nil {
		h.replyText(ctx, o, h.errorText(ctx, "read the request", err))
		return
	}
	action := actionOf(actCancel, c.Action)
	if o.user != c.RequestedBy {
		if ok, gerr := h.allowed(ctx, o.user, h.operators(), h.approvers()); !ok {
			h.refuseAccess(ctx, o, action, "cancel someone else's request", c.ServerIDs, gerr, h.operators(), h.approvers())
			return
		}
	}
	now := h.cfg.Clock.Now()
	c, err = h.store.CancelConfirmation(ctx, id, o.user, now)
	if !h.decisionAnswered(ctx, o, c, action, err) {
		return
	}
	h.audit(ctx, store.AuditEntry{User: o.user, Action: action, ServerIDs: c.ServerIDs, Outcome: "cancelled", Detail: id})
	h.cardChanged(c.ID)
	h.replyText(ctx, o, fmt.Sprintf(":no_entry_sign: You cancelled the %s request; nothing was launched.", words[c.Action].doing))
}

// ExpireCards marks the confirmations past their expiry as expired and has their cards redrawn,
// so that an unanswered card does not keep its buttons. Run calls it; with several replicas
// each card is expired by one of them. It returns the store's error.
func (h *Handler) ExpireCards(ctx context.Context) error {
	cs, err := h.store.ExpireConfirmations(ctx, h.cfg.Clock.Now())
	if err != nil {
		return fmt.Errorf("expire cards: %w", err)
	}
	for _, c := range cs {
		h.audit(ctx, store.AuditEntry{Action: actionOf(actExpire, c.Action), ServerIDs: c.ServerIDs, Outcome: "expired", Detail: c.ID})
		h.cardChanged(c.ID)
	}
	return nil
}

// ago renders how long ago t was, relative to the handler's clock.
func (h *Handler) since(t time.Time) time.Duration { return h.cfg.Clock.Now().Sub(t) }
