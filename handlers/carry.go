package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// carry carries out a confirmation this replica owns, because it took the deciding click or
// took the work over from a replica that stopped (resumed). A resumed one first asks MGN what
// the earlier owner did (the job carrying the confirmation's tag, or the servers' state) and
// records that; it launches only when MGN has nothing, the confirmation is younger than
// Config.TakeoverWindow and the pre-flight passes. Otherwise carry runs the pre-flight again,
// begins the fenced AWS call, calls MGN once, and records what MGN did. The card is redrawn in
// the background; carry returns the answer for the person who confirmed.
func (h *Handler) carry(ctx context.Context, c store.Confirmation, resumed bool) string {
	h.invalidate()
	if c.Action == actionFinalize {
		return h.carryFinalize(ctx, c, resumed)
	}
	if c.GroupKind != "" {
		return h.carryGroup(ctx, c, resumed)
	}
	f := c.Token()
	// A resumed confirmation asks MGN first, before anything that may fail: the replica that
	// took the click may have started the launch.
	if resumed {
		job, found, err := h.aws.FindLaunch(ctx, migration.TagConfirmation, c.ID, c.CreatedAt)
		if err != nil {
			return h.unknown(ctx, c, f, fmt.Errorf("%w: %w", migration.ErrOutcomeUnknown, err))
		}
		if found {
			return h.launched(ctx, c, job, "the replica that took the click had started it")
		}
		if why := h.tooLate(c); why != "" {
			return h.notLaunched(ctx, c, f, why)
		}
	}
	servers, _, ok, answer := h.readAgain(ctx, c, f, false)
	if !ok {
		return answer
	}
	pre, err := h.preflight(ctx, servers, migration.ModeCutover)
	if err != nil {
		return h.notLaunched(ctx, c, f, h.errorText(ctx, "run the pre-flight checks again", err))
	}
	if !allOK(pre) {
		h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actStartCutover, ServerIDs: c.ServerIDs, Outcome: outPreflight, Detail: failureSummary(pre)})
		return h.notLaunched(ctx, c, f, "the pre-flight checks no longer pass:\n"+strings.Join(checkLines(pre, true), "\n"))
	}
	if !h.beginCall(ctx, c, f) {
		return h.latestDecided(ctx, c.ID)
	}
	callCtx, cancel := context.WithTimeout(ctx, h.cfg.LeaseTTL/3)
	defer cancel()
	job, err := h.aws.Launch(callCtx, migration.LaunchRequest{
		Mode: migration.ModeCutover, ServerIDs: c.ServerIDs, RequestedBy: c.RequestedBy, ApprovedBy: c.Approvals,
		Confirmation: c.ID, Since: c.CreatedAt,
	})
	h.invalidate()
	switch {
	case errors.Is(err, migration.ErrOutcomeUnknown):
		return h.unknown(ctx, c, f, err)
	case err != nil:
		h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actStartCutover, ServerIDs: c.ServerIDs, Outcome: outFailed, Detail: err.Error()})
		// MGN had no job when asked; unless it clearly refused, it may still start one late.
		late := !migration.Refused(err) && !errors.Is(err, migration.ErrConflict)
		return h.notLaunchedAsked(ctx, c, f, h.errorText(ctx, "start the cutover", err), late)
	}
	return h.launched(ctx, c, job, "")
}

// readAgain reads c's servers afresh at the deciding click or a takeover. For a wave or an
// application, a server MGN no longer has (archived or deleted since the card) is left out, as
// one whose checks fail is, and returned in gone; a card of named servers needs them all. When
// the read fails it returns false and the answer: nothing was launched, or, when unsure (a
// resumed finalize whose earlier owner may have finalized some servers), that MGN is asked
// again later.
func (h *Handler) readAgain(ctx context.Context, c store.Confirmation, f store.Fence, unsure bool) (servers []migration.Server, gone []migration.LeftOut, ok bool, answer string) {
	servers, err := h.serversByID(ctx, c.ServerIDs)
	if errors.Is(err, migration.ErrNotFound) && c.GroupKind != "" {
		gone, err = goneServers(c.ServerIDs, servers), nil
	}
	switch {
	case err == nil:
		return servers, gone, true, ""
	case unsure:
		return nil, nil, false, h.unknown(ctx, c, f, fmt.Errorf("%w: %w", migration.ErrOutcomeUnknown, err))
	}
	return nil, nil, false, h.notLaunched(ctx, c, f, h.errorText(ctx, "read the servers again", err))
}

// tooLate says why a resumed confirmation is not launched late, "" when it may still be.
func (h *Handler) tooLate(c store.Confirmation) string {
	if age := h.since(c.DecidedAt); age > h.cfg.TakeoverWindow {
		return fmt.Sprintf("the replica that took the click stopped before the request reached MGN, and it is %s old now, "+
			"so it was not started late (the limit is %s)", migration.HumanDuration(age), migration.HumanDuration(h.cfg.TakeoverWindow))
	}
	return ""
}

// beginCall records that this replica is about to call AWS for c. It reports false when the
// replica no longer owns c (another took it over) and must not call.
func (h *Handler) beginCall(ctx context.Context, c store.Confirmation, f store.Fence) bool {
	err := h.store.BeginCall(ctx, c.ID, f, h.cfg.Clock.Now(), h.cfg.LeaseTTL)
	if err != nil {
		h.logger.WarnContext(ctx, "not calling AWS: the confirmation is no longer ours", "confirmation", c.ID, "err", err)
		return false
	}
	return true
}

// latestDecided explains the confirmation's current state to the person who confirmed it,
// when this replica no longer carries it out.
func (h *Handler) latestDecided(ctx context.Context, id string) string {
	c, err := h.store.Confirmation(ctx, id)
	if err != nil {
		return h.errorText(ctx, "read the request", err)
	}
	return h.decided(c)
}

// launched records that MGN has c's job, has its progress followed and says so.
func (h *Handler) launched(ctx context.Context, c store.Confirmation, job migration.Job, how string) string {
	err := h.store.CompleteConfirmation(ctx, c.ID, store.Outcome{State: store.Launched, JobID: job.ID}, c.Token(), h.cfg.Clock.Now())
	if err != nil && !errors.Is(err, store.ErrAlreadyDecided) {
		h.logger.ErrorContext(ctx, "recording a launched confirmation failed", "confirmation", c.ID, "job_id", job.ID, "err", err)
	}
	detail := "confirmation " + c.ID
	if how != "" {
		detail += "; " + how
	}
	h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actStartCutover, ServerIDs: c.ServerIDs, Outcome: outStarted, JobID: job.ID, Detail: detail})
	// The thread is opened, and its link put on the card, in the background (see redraw): its
	// first message waits for the channel's rate limit, and the click is answered now.
	h.cardChanged(c.ID)
	return fmt.Sprintf(":white_check_mark: The cutover of %s started: job %s; progress follows in a thread in %s.",
		h.idNames(c.ServerIDs), code(job.ID), channelRef(c.Channel))
}

// recheckWindow is how long MGN is asked again whether it started, late, a launch whose call
// had an ambiguous answer and for which MGN had no job when asked.
const recheckWindow = 10 * time.Minute

// notLaunched records that nothing was launched for c, because of why (mrkdwn), and says so.
// Only the owner holding f may record it; when it no longer does, another replica decides.
func (h *Handler) notLaunched(ctx context.Context, c store.Confirmation, f store.Fence, why string) string {
	return h.notLaunchedAsked(ctx, c, f, why, false)
}

// notLaunchedAsked is notLaunched after an AWS call: with late, the call's answer was
// ambiguous, so MGN is asked again for a while whether it started the launch late (see
// Recheck).
func (h *Handler) notLaunchedAsked(ctx context.Context, c store.Confirmation, f store.Fence, why string, late bool) string {
	o := store.Outcome{State: store.Failed, Error: why}
	if late {
		o.RecheckUntil = h.cfg.Clock.Now().Add(recheckWindow)
	}
	err := h.store.CompleteConfirmation(ctx, c.ID, o, f, h.cfg.Clock.Now())
	switch {
	case errors.Is(err, store.ErrLeaseLost), errors.Is(err, store.ErrAlreadyDecided):
		return h.latestDecided(ctx, c.ID)
	case err != nil:
		// Not recorded: the confirmation stays in progress, and a replica taking it over later
		// may still launch it. Say only what is known.
		ref := newRef()
		h.logger.ErrorContext(ctx, "recording a failed confirmation failed", "ref", ref, "confirmation", c.ID, "err", err)
		h.cardChanged(c.ID)
		return fmt.Sprintf(":warning: MGN did not start the %s this time (%s), but I could not record that (ref %s). "+
			"Another attempt may follow within %s of your approval; the card will say what happened.",
			words[c.Action].doing, strings.TrimSuffix(why, "."), ref, migration.HumanDuration(h.cfg.TakeoverWindow))
	}
	h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actionOf(actConfirm, c.Action), ServerIDs: c.ServerIDs, Outcome: "nothing launched", Detail: stripMarkup(why)})
	h.cardChanged(c.ID)
	return fmt.Sprintf(":x: Nothing was launched: %s\nAsk again with `/cutover %s`.", why, retryCommand(c))
}

// unknownRetry is how long a confirmation whose AWS call's outcome MGN could not tell waits
// before a replica asks MGN again.
const unknownRetry = 30 * time.Second

// unknown handles a call whose outcome MGN could not tell: the card says so, and a replica asks
// MGN again after unknownRetry (see TakeOver), until MGN answers.
func (h *Handler) unknown(ctx context.Context, c store.Confirmation, f store.Fence, err error) string {
	ref := newRef()
	h.logger.ErrorContext(ctx, "outcome of an AWS call unknown", "ref", ref, "confirmation", c.ID, "err", err)
	if c.Error == "" {
		h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actionOf(actConfirm, c.Action), ServerIDs: c.ServerIDs, Outcome: outUnknown, Detail: "ref " + ref})
	}
	note := fmt.Sprintf("AWS's answer was lost and MGN could not be asked yet whether the %s started (ref %s); asking again every %s. "+
		"Do not ask again until this card says what happened.", words[c.Action].doing, ref, migration.HumanDuration(unknownRetry))
	if rerr := h.store.RetryLater(ctx, c.ID, f, h.cfg.Clock.Now(), unknownRetry, note); rerr != nil {
		h.logger.WarnContext(ctx, "scheduling a new question to MGN failed", "confirmation", c.ID, "err", rerr)
	}
	h.cardChanged(c.ID)
	return fmt.Sprintf(":warning: AWS's answer was lost and I could not yet ask MGN whether the %s started (ref %s). "+
		"I keep asking; the card will say what happened. Do not ask again until it does.", words[c.Action].doing, ref)
}

// carryFinalize finalizes each server of a finalize confirmation this replica owns; a resumed
// one counts the servers MGN already finalized as done and finalizes the rest only within the
// takeover window.
func (h *Handler) carryFinalize(ctx context.Context, c store.Confirmation, resumed bool) string {
	f := c.Token()
	// Which servers are finalized already is read from MGN: a resumed one that cannot read
	// them does not know what the earlier owner did, and asks again later.
	servers, gone, ok, answer := h.readAgain(ctx, c, f, resumed)
	if !ok {
		return answer
	}
	var done, lines []string
	for _, l := range gone {
		lines = append(lines, fmt.Sprintf("• %s: not finalized: %s", code(l.ServerID), esc(l.Reason)))
	}
	var rest []migration.Server
	for _, s := range servers {
		if s.CutOver() {
			done = append(done, s.ID)
			lines = append(lines, "• "+serverRef(s)+": cutover finalized; replication stopped.")
			continue
		}
		rest = append(rest, s)
	}
	if len(rest) > 0 && resumed {
		if why := h.tooLate(c); why != "" {
			if len(done) == 0 {
				return h.notLaunched(ctx, c, f, why)
			}
			for _, s := range rest {
				lines = append(lines, "• "+serverRef(s)+": not finalized: "+why)
			}
			rest = nil
		}
	}
	if len(rest) > 0 {
		pre, err := h.finalizeChecks(ctx, rest)
		if err != nil {
			return h.notLaunched(ctx, c, f, h.errorText(ctx, "run the checks again", err))
		}
		if c.GroupKind != "" {
			// A wave or application: the servers whose checks fail now are left out.
			pass, left := splitChecks(pre)
			for _, l := range left {
				lines = append(lines, fmt.Sprintf("• *%s* %s: not finalized: %s", esc(h.nameOf(l.ServerID)), code(l.ServerID), esc(l.Reason)))
			}
			pre, rest = pass, checkedServers(pass)
		}
		if !allOK(pre) {
			return h.notLaunched(ctx, c, f, "the checks no longer pass:\n"+strings.Join(checkLines(pre, true), "\n"))
		}
		if len(rest) > 0 && !h.beginCall(ctx, c, f) {
			return h.latestDecided(ctx, c.ID)
		}
		for _, s := range rest {
			callCtx, cancel := context.WithTimeout(ctx, h.cfg.LeaseTTL/3)
			_, err := h.aws.FinalizeCutover(callCtx, s.ID)
			cancel()
			if errors.Is(err, migration.ErrOutcomeUnknown) {
				return h.unknown(ctx, c, f, err)
			}
			if err != nil {
				h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actFinalizeCutover, ServerIDs: []string{s.ID}, Outcome: outFailed, Detail: err.Error()})
				lines = append(lines, "• "+serverRef(s)+": "+h.errorText(ctx, "finalize the cutover", err))
				continue
			}
			h.audit(ctx, store.AuditEntry{User: c.DecidedBy, Action: actFinalizeCutover, ServerIDs: []string{s.ID}, Outcome: "finalized", Detail: "confirmation " + c.ID})
			done = append(done, s.ID)
			lines = append(lines, "• "+serverRef(s)+": cutover finalized; replication stopped.")
			// Renew between servers: a long list must not outlive the lease.
			if err := h.store.RenewConfirmation(ctx, c.ID, f, h.cfg.Clock.Now(), h.cfg.LeaseTTL); err != nil {
				h.logger.WarnContext(ctx, "renewing a finalize failed", "confirmation", c.ID, "err", err)
			}
		}
		h.invalidate()
	}
	text := render.Truncate(strings.Join(lines, "\n"), render.MaxSectionText-200)
	if len(done) == 0 {
		return h.notLaunched(ctx, c, f, "\n"+text)
	}
	err := h.store.CompleteConfirmation(ctx, c.ID, store.Outcome{State: store.Launched, Detail: text}, f, h.cfg.Clock.Now())
	if err != nil && !errors.Is(err, store.ErrAlreadyDecided) {
		h.logger.ErrorContext(ctx, "recording a finalize failed", "confirmation", c.ID, "err", err)
	}
	h.cardChanged(c.ID)
	return ":white_check_mark: Finalize:\n" + text
}

// maxTakeovers bounds the confirmations one sweep takes over, and carries out at once.
const maxTakeovers = 8

// TakeOver takes over, in one pass, the confirmations whose owner's lease ended (the replica
// that took the click stopped, or an AWS call's outcome was unknown) and carries them out as
// carry does for a resumed one, telling the approver who decided. Run calls it every
// SweepInterval; tests call it directly. It returns the store's error.
func (h *Handler) TakeOver(ctx context.Context) error {
	cs, err := h.store.TakeOverConfirmations(ctx, h.cfg.Holder, h.cfg.Clock.Now(), h.cfg.LeaseTTL, maxTakeovers)
	if err != nil {
		return fmt.Errorf("take over: %w", err)
	}
	var g errgroup.Group
	for _, c := range cs {
		g.Go(func() error {
			retry := c.Error != "" // a question to MGN asked again, not a replica that stopped
			if !retry {
				h.audit(ctx, store.AuditEntry{Action: actionOf(actTakeOver, c.Action), ServerIDs: c.ServerIDs,
					Outcome: "taken over from " + string(c.State), Detail: "confirmation " + c.ID})
				h.cardChanged(c.ID)
			}
			answer := h.carry(ctx, c, true)
			if now, err := h.store.Confirmation(ctx, c.ID); err == nil && !now.State.Final() && retry {
				return nil // still unknown: nothing new to tell
			}
			h.tell(ctx, c, answer)
			return nil
		})
	}
	return g.Wait()
}

// idNames names servers by their display names, as last read from MGN (serversByID reads them
// at every deciding click and takeover), else by their IDs. It never lists the fleet.
func (h *Handler) idNames(ids []string) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = code(id)
		if name := h.nameOf(id); name != id {
			names[i] = esc(name)
		}
	}
	if len(names) > maxCardServers {
		return strings.Join(names[:maxCardServers], ", ") + fmt.Sprintf(" and %d more", len(names)-maxCardServers)
	}
	return strings.Join(names, ", ")
}

// stripMarkup makes mrkdwn a plain line for the audit log.
func stripMarkup(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("*", "", "`", "").Replace(s)), " ")
}
