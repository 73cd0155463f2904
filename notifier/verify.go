package notifier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
)

// Post-launch actions (SSM documents MGN runs on a launched instance) keep running after the
// job is COMPLETED. The notifier follows them in the job's participatingServers (one
// DescribeJobs a poll, no log read) until every launched server's active actions ended, then
// reports each action's status as MGN gives it. A server whose action that must succeed for
// cutover failed is "launched, not verified". How many actions a server runs is asked once
// per launched server (ListSourceServerActions), since MGN lists an action only once it started.

// DefaultVerifyWait is Config.VerifyWait's default.
const DefaultVerifyWait = 30 * time.Minute

// maxParallelActionLookups bounds the ListSourceServerActions calls made at once.
const maxParallelActionLookups = 8

// setActions copies what MGN reports of each server's post-launch actions into results.
func setActions(results []result, job migration.Job) {
	for i := range results {
		if p, ok := job.Participant(results[i].id); ok && p.PostLaunch != nil {
			results[i].actions = p.PostLaunch
		}
	}
}

// wantedActions asks MGN, once per follow, how many active post-launch actions each launched
// server runs.
func (n *Notifier) wantedActions(ctx context.Context, f *follow) error {
	if f.wanted != nil {
		return nil
	}
	var (
		g      errgroup.Group
		mu     sync.Mutex
		wanted = map[string]int{}
	)
	g.SetLimit(maxParallelActionLookups)
	for _, r := range f.results {
		if !r.ok {
			continue
		}
		g.Go(func() error {
			actions, err := n.aws.ServerActions(ctx, r.id)
			if errors.Is(err, migration.ErrNotFound) {
				return nil // deleted since: it runs nothing we can follow
			}
			if err != nil {
				return err
			}
			active := 0
			for _, a := range actions {
				if a.Active {
					active++
				}
			}
			mu.Lock()
			wanted[r.id] = active
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("post-launch actions: %w", err)
	}
	f.wanted = wanted
	for i := range f.results {
		f.results[i].wanted = wanted[f.results[i].id]
	}
	return nil
}

// verify follows the post-launch actions of an ended job's launched servers and reports
// whether the job is done: no launched server runs any, or their report is posted. It posts
// the report once every action ended, or once Config.VerifyWait passed since the job ended.
func (n *Notifier) verify(ctx context.Context, f *follow, gone bool) (bool, error) {
	if f.verifyPosted || gone {
		return true, nil
	}
	if err := n.wantedActions(ctx, f); err != nil {
		return false, err
	}
	need, pending := false, false
	for _, r := range f.results {
		if r.ok && r.wanted > 0 {
			need = true
			pending = pending || !r.actions.Settled(r.wanted)
		}
	}
	if !need {
		return true, nil
	}
	if pending && n.cfg.Clock.Now().Sub(f.endSeen) < n.cfg.VerifyWait {
		return false, nil
	}
	channel := n.channelOf(f.job)
	if _, err := n.poster.Post(ctx, channel, n.verificationMessage(f)); err != nil {
		f.unsure = true
		return false, fmt.Errorf("post post-launch report: %w", err)
	}
	f.verifyPosted = true
	n.logger.InfoContext(ctx, "job verified", "job_id", f.job.JobID, "outcome", outcome(f.results))
	if f.job.GroupID == "" {
		names := nameMap(f.results)
		if err := n.poster.Update(ctx, channel, f.job.ParentTS, n.parentMessage(f, names, f.results)); err != nil {
			n.logger.WarnContext(ctx, "job parent not updated", "job_id", f.job.JobID, "err", err)
		}
	}
	return true, nil
}

// Verdicts of a launched server's post-launch actions.
const (
	verdictNone       = iota // it runs none, or the job did not launch it
	verdictPending           // some are still running (or not started)
	verdictUnverified        // one that must succeed for cutover failed
	verdictVerified          // all ended, none that must succeed failed
)

func (r result) verdict() int {
	switch {
	case !r.ok || r.wanted == 0:
		return verdictNone
	case len(r.actions.Unverified()) > 0:
		return verdictUnverified
	case !r.actions.Settled(r.wanted):
		return verdictPending
	}
	return verdictVerified
}

// actionsLine says how one server's post-launch actions went.
func (r result) actionsLine(waited string) string {
	name := "*" + bot.Escape(r.name) + "*"
	summary := bot.Escape(r.actions.Summary())
	switch r.verdict() {
	case verdictUnverified:
		return fmt.Sprintf("%s: ⚠️ launched, not verified: %s", name, summary)
	case verdictPending:
		if summary == "" {
			return fmt.Sprintf("%s: ⏳ no post-launch action reported by MGN after %s (is the SSM agent running?)", name, waited)
		}
		return fmt.Sprintf("%s: ⏳ post-launch actions unfinished after %s: %s", name, waited, summary)
	}
	return fmt.Sprintf("%s: ✅ verified: %s", name, summary)
}

// maxVerifiedLines is how many verified servers the post-launch report lists one by one; more
// are counted.
const maxVerifiedLines = 20

// verificationMessage is the report of a job's post-launch actions: the servers not verified
// first, with MGN's failure reasons. It is broadcast to the channel when a server of a job of
// its own is not verified.
func (n *Notifier) verificationMessage(f *follow) bot.Message {
	var problems, fine []string
	unverified, verified := 0, 0
	waited := migration.HumanDuration(n.cfg.VerifyWait)
	for _, r := range f.results {
		switch r.verdict() {
		case verdictNone:
			continue
		case verdictVerified:
			verified++
			fine = append(fine, r.actionsLine(waited))
		case verdictUnverified:
			unverified++
			problems = append(problems, r.actionsLine(waited))
		default:
			problems = append(problems, r.actionsLine(waited))
		}
	}
	if len(fine) > maxVerifiedLines {
		fine = []string{fmt.Sprintf("✅ %d more servers verified: every post-launch action succeeded or was allowed to fail", len(fine))}
	}
	what := modeTitle(f.job.Kind) + " of " + nameList(f.job.ServerIDs, nameMap(f.results), maxParentServers)
	if f.job.GroupID != "" {
		what = "Job `" + bot.Escape(f.job.JobID) + "`"
	}
	head := fmt.Sprintf("Post-launch actions of %s: %d of %d servers verified", what, verified, verified+len(problems))
	if unverified > 0 {
		head += fmt.Sprintf(", %d not verified", unverified)
	}
	blocks := []slack.Block{render.Section("*" + head + "*")}
	for _, t := range render.Lines(append(problems, fine...)) {
		blocks = append(blocks, render.Section(t))
	}
	return bot.Message{Text: head, Blocks: render.Fit(blocks, "see `/cutover status`"), ThreadTS: f.job.ParentTS,
		Broadcast: unverified > 0 && f.job.GroupID == "", Metadata: verifiedMetadata(f.job.JobID)}
}
