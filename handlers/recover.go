package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// SettleInterrupted settles the requests that were confirmed at least `after` ago but whose
// outcome was never recorded: the process stopped between an approver's click and the end of
// the AWS call. A cutover that MGN did start (its job carries the confirmation's tag) is recorded
// as launched and followed; one it did not start is recorded as failed and its card says to ask
// again, so a restart never launches a second time on its own. A finalize is judged by the
// servers' lifecycle. `after` keeps it off requests a live process (this replica or another) is
// still carrying out. It returns the first error that stopped it.
func (h *Handler) SettleInterrupted(ctx context.Context, after time.Duration) error {
	cs, err := h.store.Confirmations(ctx, store.Confirmed)
	if err != nil {
		return fmt.Errorf("settle interrupted requests: %w", err)
	}
	now := h.cfg.Now()
	for _, c := range cs {
		if now.Sub(c.DecidedAt) < after {
			continue
		}
		if err := h.settle(ctx, c); err != nil {
			return fmt.Errorf("settle request %s: %w", c.ID, err)
		}
	}
	return nil
}

func (h *Handler) settle(ctx context.Context, c store.Confirmation) error {
	confirmed := fmt.Sprintf("Confirmed by %s at %s", mention(c.DecidedBy), h.clock(c.DecidedAt))
	var job *migration.Job
	done := false
	switch c.Action {
	case actionCutover:
		jobs, err := h.aws.Jobs(ctx, c.DecidedAt.Add(-time.Minute))
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(jobs, func(j migration.Job) bool { return j.Tags[migration.TagConfirmation] == c.ID }); i >= 0 {
			job, done = &jobs[i], true
		}
	case actionFinalize:
		servers, err := h.serversByID(ctx, c.ServerIDs)
		if err != nil {
			return err
		}
		done = !slices.ContainsFunc(servers, func(s migration.Server) bool { return s.Lifecycle.State != migration.LifecycleCutover })
	}
	state, jobID, errText := store.Failed, "", "interrupted before AWS was called"
	if done {
		state, errText = store.Launched, ""
		if job != nil {
			jobID = job.ID
		}
	}
	err := h.store.CompleteConfirmation(ctx, c.ID, state, jobID, errText)
	if errors.Is(err, store.ErrAlreadyDecided) {
		return nil // another replica settled it
	}
	if err != nil {
		return err
	}
	h.audit(ctx, "", "settle "+c.Action, c.ServerIDs, string(state), jobID, "request "+c.ID+" interrupted by a restart")
	status := fmt.Sprintf(":x: %s, but cutoverbot stopped before the request reached AWS; nothing was changed. Ask again with `/cutover %s`.",
		confirmed, retryCommand(c))
	if done {
		status = fmt.Sprintf(":white_check_mark: %s.", confirmed)
		if job != nil {
			status = fmt.Sprintf(":white_check_mark: %s — job %s; %s.", confirmed, code(job.ID), h.follow(ctx, *job, c.DecidedBy))
		}
	}
	h.closeCard(ctx, c, slack.InteractionCallback{}, status)
	return nil
}
