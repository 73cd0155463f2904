package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// cardQueue holds the confirmations whose cards this replica changed and has not yet redrawn.
// Card edits wait for Slack's rate limits (chat.update is about 50 a minute), so they are made
// in the background, never on the path of a click, and several changes of one card fold into
// one edit of its latest state.
type cardQueue struct {
	// drawing is held by DrawCards: two passes at once could edit a card out of order.
	drawing sync.Mutex

	mu    sync.Mutex
	dirty map[string]bool
	wake  chan struct{}
	// drawn is a digest of the message last drawn per card, so that a card waiting only for
	// its thread link is not edited again with the same content.
	drawn map[string][32]byte
	// links are launched cards whose thread was not posted yet, by when to stop waiting.
	links map[string]time.Time
	// recheckAt is when Recheck may ask MGN again.
	recheckAt time.Time
}

func newCardQueue() cardQueue {
	return cardQueue{dirty: map[string]bool{}, wake: make(chan struct{}, 1), drawn: map[string][32]byte{}, links: map[string]time.Time{}}
}

// linkWait is how long a launched card waits for its job's thread before it is drawn without
// a link for good.
const linkWait = 2 * time.Minute

// cardChanged queues the card of confirmation id for a redraw.
func (h *Handler) cardChanged(id string) {
	q := &h.cards
	q.mu.Lock()
	q.dirty[id] = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// DrawCards redraws every card queued by cardChanged, each from its latest stored state. Run
// calls it whenever a card changes; tests call it directly. It returns the errors of the cards
// it could not redraw, which stay queued.
func (h *Handler) DrawCards(ctx context.Context) error {
	q := &h.cards
	q.drawing.Lock()
	defer q.drawing.Unlock()
	q.mu.Lock()
	ids := make([]string, 0, len(q.dirty))
	for id := range q.dirty {
		ids = append(ids, id)
	}
	clear(q.dirty)
	q.mu.Unlock()
	var errs []error
	for _, id := range ids {
		c, err := h.store.Confirmation(ctx, id)
		if err == nil {
			err = h.redraw(ctx, c)
		}
		switch {
		case err == nil:
		case bot.Permanent(err):
			// The card's message is gone (deleted, channel archived...): editing it again
			// would be refused again, and each try spends the workspace's chat.update budget.
			h.logger.ErrorContext(ctx, "card cannot be edited any more; giving it up", "confirmation", id, "err", err)
			if serr := h.store.CardShown(ctx, id, c.Version); serr != nil {
				errs = append(errs, serr)
			}
			h.cards.mu.Lock()
			delete(h.cards.links, id)
			h.cards.mu.Unlock()
		default:
			if ctx.Err() == nil {
				h.cardChanged(id)
			}
			errs = append(errs, fmt.Errorf("card %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// redraw edits c's card to show c, and records the version shown. A launched cutover whose
// thread is not posted yet is drawn without the thread's link and kept waiting for it (see
// linkWait).
func (h *Handler) redraw(ctx context.Context, c store.Confirmation) error {
	if c.MessageTS == "" {
		return nil // never posted: nothing to edit
	}
	thread, complete := "", true
	if c.State == store.Launched && c.Action == actionCutover && (c.JobID != "" || c.GroupKind != "") {
		thread = h.thread(ctx, c)
		complete = thread != "" || h.since(c.UpdatedAt) >= linkWait
	}
	m := h.drawCard(c, thread)
	digest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(digest)
	q := &h.cards
	q.mu.Lock()
	same := q.drawn[c.ID] == sum
	q.mu.Unlock()
	if !same {
		if err := h.poster.Update(ctx, c.Channel, c.MessageTS, m); err != nil {
			return err
		}
		q.mu.Lock()
		q.drawn[c.ID] = sum
		q.mu.Unlock()
	}
	q.mu.Lock()
	if complete {
		delete(q.links, c.ID)
	} else {
		q.links[c.ID] = c.UpdatedAt.Add(linkWait)
	}
	if complete || c.State.Final() {
		delete(q.drawn, c.ID)
	}
	q.mu.Unlock()
	if !complete {
		return nil
	}
	return h.store.CardShown(ctx, c.ID, c.Version)
}

// recheckEvery spaces the questions Recheck asks MGN.
const recheckEvery = 30 * time.Second

// Recheck asks MGN, at most every recheckEvery, whether it started late a launch whose call had
// an ambiguous answer and for which it had no job when asked (one DescribeJobs call for all of
// them); a launch it finds is recorded as launched, its card redrawn and its approver told.
// Sweep calls it. It returns the errors met.
func (h *Handler) Recheck(ctx context.Context) error {
	now := h.cfg.Clock.Now()
	open, ended, err := h.store.Rechecks(ctx, now)
	for _, c := range ended {
		h.cardChanged(c.ID)
	}
	if err != nil || len(open) == 0 {
		return err
	}
	h.cards.mu.Lock()
	due := !now.Before(h.cards.recheckAt)
	if due {
		h.cards.recheckAt = now.Add(recheckEvery)
	}
	h.cards.mu.Unlock()
	if !due {
		return nil
	}
	since := open[0].CreatedAt
	for _, c := range open {
		if c.CreatedAt.Before(since) {
			since = c.CreatedAt
		}
	}
	jobs, err := h.aws.Jobs(ctx, since.Add(-time.Minute))
	if err != nil {
		return fmt.Errorf("recheck: %w", err)
	}
	for _, c := range open {
		for _, j := range jobs {
			if j.Tags[migration.TagConfirmation] != c.ID {
				continue
			}
			answer := h.launched(ctx, c, j, "MGN started it late, after it had no job for it")
			h.tell(ctx, c, ":warning: Correction: "+answer)
			break
		}
	}
	return nil
}

// tell sends the approver who decided c an ephemeral update about it, in its channel.
func (h *Handler) tell(ctx context.Context, c store.Confirmation, text string) {
	if c.DecidedBy == "" || c.Channel == "" {
		return
	}
	text = fmt.Sprintf("Update on the %s you confirmed (%s): %s", words[c.Action].doing, cardLink(c, "its card"), text)
	if err := h.poster.Ephemeral(ctx, c.Channel, c.DecidedBy, bot.Message{Text: fallback(text), Blocks: []slack.Block{section(text)}}); err != nil {
		h.logger.WarnContext(ctx, "telling the approver failed", "confirmation", c.ID, "err", err)
	}
}

// thread returns the ts of the progress thread of c's launch job, having the follower open the
// thread when nobody did yet (the replica that launched it may have stopped first); "" while
// the thread is not posted.
func (h *Handler) thread(ctx context.Context, c store.Confirmation) string {
	if c.GroupKind != "" {
		if g, err := h.store.GroupLaunch(ctx, c.ID); err == nil && g.ParentTS != "" {
			return g.ParentTS
		}
		ts, err := h.follower.FollowGroup(ctx, c.ID)
		if err != nil {
			h.logger.ErrorContext(ctx, "follow group failed", "confirmation", c.ID, "err", err)
		}
		return ts
	}
	// A record without the requester was made by the watcher, from the job's MGN tag; Follow
	// puts the requester and the approvers in place of the tag.
	if j, err := h.store.Job(ctx, c.JobID); err == nil && j.RequestedBy != "" {
		return j.ParentTS
	}
	job := migration.Job{ID: c.JobID, Type: "LAUNCH", InitiatedBy: migration.InitiatedByStartCutover, Status: migration.JobStarted, Created: c.DecidedAt}
	for _, id := range c.ServerIDs {
		job.Participants = append(job.Participants, migration.Participant{ServerID: id})
	}
	ts, err := h.follower.Follow(ctx, job, c.RequestedBy, c.Approvals...)
	if err != nil {
		ref := newRef()
		h.logger.ErrorContext(ctx, "follow failed", "ref", ref, "job_id", c.JobID, "confirmation", c.ID, "err", err)
	}
	return ts
}

// sweepLease names the lease under which one replica at a time redraws the cards other
// replicas left behind.
const sweepLease = "cards:sweep"

// staleAfter is how long a card may lag behind its confirmation before any replica redraws
// it: the replica that made the change normally does within a second or two.
const staleAfter = 10 * time.Second

// Sweep does the periodic work of confirmations: it takes over the ones whose owner stopped
// (TakeOver), expires old cards (ExpireCards), redraws the cards that wait for their thread's
// link, and, on one replica at a time, redraws the cards that lag behind their state because
// the replica that changed them stopped. Run calls it every SweepInterval; tests call it
// directly. It returns the errors met; each step is tried again on the next sweep.
func (h *Handler) Sweep(ctx context.Context) error {
	var errs []error
	errs = append(errs, h.TakeOver(ctx), h.ExpireCards(ctx), h.Recheck(ctx))
	q := &h.cards
	q.mu.Lock()
	for id := range q.links {
		q.dirty[id] = true
	}
	q.mu.Unlock()
	now := h.cfg.Clock.Now()
	ok, err := h.store.AcquireLease(ctx, sweepLease, h.cfg.Holder, 3*h.cfg.SweepInterval, now)
	errs = append(errs, err)
	if ok {
		cs, err := h.store.StaleCards(ctx, now.Add(-staleAfter), 50)
		errs = append(errs, err)
		for _, c := range cs {
			h.cards.mu.Lock()
			h.cards.dirty[c.ID] = true
			h.cards.mu.Unlock()
		}
	}
	errs = append(errs, h.DrawCards(ctx))
	return errors.Join(errs...)
}

// Run keeps confirmation cards in step with the store, sweeps (see Sweep) and starts the
// batches of wave and application launches (see StartBatches) until ctx ends. It returns
// ctx's error, after the work it started has finished.
func (h *Handler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-h.cards.wake:
			}
			if err := h.DrawCards(ctx); err != nil && ctx.Err() == nil {
				h.logger.WarnContext(ctx, "cards not redrawn", "err", err)
				// Wait a little before trying again: Slack or the store is failing.
				t := h.cfg.Clock.NewTimer(h.cfg.SweepInterval)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C():
				}
			}
		}
	})
	wg.Go(func() { h.every(ctx, h.cfg.SweepInterval, nil, h.Sweep, "confirmation sweep incomplete") })
	wg.Go(func() { h.every(ctx, h.cfg.BatchInterval, h.batches, h.StartBatches, "batches not started") })
	wg.Wait()
	return ctx.Err()
}

// every runs f at once, then every interval of the handler's clock and whenever wake (nil:
// never) fires, until ctx ends; a failure is logged as problem.
func (h *Handler) every(ctx context.Context, interval time.Duration, wake <-chan struct{}, f func(context.Context) error, problem string) {
	clock.Every(ctx, h.cfg.Clock, interval, wake, func(ctx context.Context) {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			h.logger.WarnContext(ctx, problem, "err", err)
		}
	})
}
