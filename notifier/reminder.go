package notifier

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
)

// maxReminderServers is how many servers the reminder lists; the rest are counted. It keeps
// the message far inside Slack's 50 blocks (a few sections of lines, four actions blocks).
const maxReminderServers = 100

// dueServer is a server the reminder lists.
type dueServer struct {
	s          migration.Server
	failed     bool // its last test launch failed
	launchable bool
	why        string // why it cannot be launched yet
}

// dueForTest returns the servers not cut over (nor cutting over, nor disconnected) whose
// last test launch failed (failed holds their IDs), is older than migration.StaleTestAge at
// now, or that were never tested: failed tests first, then the stalest. Servers that cannot be
// launched yet (initial sync, stalled...) are listed too, with the reason (times in loc) and no
// button, so that nobody forgets them.
func dueForTest(servers []migration.Server, failed map[string]bool, now time.Time, loc *time.Location) []dueServer {
	var due []dueServer
	for _, s := range servers {
		switch {
		case s.Archived || s.CutOver():
			continue
		case s.Lifecycle.State == migration.LifecycleCuttingOver || s.Lifecycle.State == migration.LifecycleDisconnected:
			continue
		}
		last := s.Lifecycle.LastTest.Initiated
		if !failed[s.ID] && !last.IsZero() && now.Sub(last) <= migration.StaleTestAge {
			continue
		}
		d := dueServer{s: s, failed: failed[s.ID]}
		// The checks print an initial sync's ETA in the ETA's zone.
		s.Replication.ETA = s.Replication.ETA.In(loc)
		p := migration.CheckLaunch(s, migration.ModeTest, migration.LaunchContext{Now: now})
		if d.launchable = p.OK(); !d.launchable {
			d.why = p.Failures()[0].Detail
		}
		due = append(due, d)
	}
	slices.SortStableFunc(due, func(a, b dueServer) int {
		return cmp.Or(
			-boolCompare(a.failed, b.failed),
			a.s.Lifecycle.LastTest.Initiated.Compare(b.s.Lifecycle.LastTest.Initiated),
			cmp.Compare(a.s.DisplayName(), b.s.DisplayName()))
	})
	return due
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// failedTests returns the IDs of the servers whose latest test launch (the job their lifecycle
// names) failed, judged by the job's launch status for the server, from MGN's jobs of the last
// migration.StaleTestAge (older tests are due anyway).
func (n *Notifier) failedTests(ctx context.Context, servers []migration.Server, now time.Time) (map[string]bool, error) {
	jobs, err := n.aws.Jobs(ctx, now.Add(-migration.StaleTestAge))
	if err != nil {
		return nil, err
	}
	byID := make(map[string]migration.Job, len(jobs))
	for _, j := range jobs {
		byID[j.ID] = j
	}
	failed := map[string]bool{}
	for _, s := range servers {
		if j, ok := byID[s.Lifecycle.LastTest.JobID]; ok {
			if p, ok := j.Participant(s.ID); ok && p.LaunchStatus == migration.LaunchFailed {
				failed[s.ID] = true
			}
		}
	}
	return failed, nil
}

// Remind posts the weekly reminder for the firing at firing (its scheduled time): the
// servers due for a test launch, each with a Launch test button, and the days left until
// the planned cutover. It posts nothing when no server is due, and at most once per firing
// across replicas and retries: the firing is claimed in the store before the post, so a
// failed post is not retried.
func (n *Notifier) Remind(ctx context.Context, firing time.Time) error {
	servers, err := n.aws.Servers(ctx)
	if err != nil {
		return fmt.Errorf("reminder: %w", err)
	}
	n.learnNames(servers)
	failed, err := n.failedTests(ctx, servers, firing)
	if err != nil {
		return fmt.Errorf("reminder: %w", err)
	}
	due := dueForTest(servers, failed, firing, n.cfg.Location)
	if len(due) == 0 {
		n.logger.InfoContext(ctx, "reminder: no server due for a test launch", "at", firing)
		return nil
	}
	first, err := n.store.Once(ctx, "reminder:"+firing.UTC().Format(time.RFC3339), n.cfg.Now())
	if err != nil {
		return fmt.Errorf("reminder: %w", err)
	}
	if !first {
		n.logger.InfoContext(ctx, "reminder already posted", "at", firing)
		return nil
	}
	if _, err := n.poster.Post(ctx, n.cfg.Channel, n.reminderMessage(due, firing)); err != nil {
		return fmt.Errorf("post reminder: %w", err)
	}
	n.logger.InfoContext(ctx, "reminder posted", "at", firing, "servers", len(due))
	return nil
}

func (n *Notifier) reminderMessage(due []dueServer, now time.Time) bot.Message {
	noun, verb := "servers", "have"
	if len(due) == 1 {
		noun, verb = "server", "has"
	}
	nFailed := 0
	for _, d := range due {
		if d.failed {
			nFailed++
		}
	}
	intro := fmt.Sprintf("*%d %s* %s had no test launch in the last 7 days.", len(due), noun, verb)
	if nFailed > 0 {
		intro = fmt.Sprintf("*%d %s* need a test launch: %d had none in the last 7 days, and the last test of %d failed.",
			len(due), noun, len(due)-nFailed, nFailed)
	}
	if left := n.daysLeft(now); left != "" {
		intro += "\n" + left
	}
	shown := due[:min(len(due), maxReminderServers)]
	lines := make([]string, 0, len(shown))
	var buttons []slack.BlockElement
	for _, d := range shown {
		name := d.s.DisplayName()
		l := "• *" + bot.Escape(name) + "*"
		if t := d.s.Lifecycle.LastTest.Initiated; t.IsZero() {
			l += " — never tested"
		} else {
			l += " — last test " + migration.Ago(t, now)
			if d.failed {
				l += " ❌ failed"
			}
		}
		if d.launchable {
			buttons = append(buttons, render.Button(render.ActionLaunchTest, "Launch test: "+bot.EscapePlain(name), d.s.ID, ""))
		} else {
			l += " · not launchable yet: " + bot.Escape(d.why)
		}
		lines = append(lines, l)
	}
	blocks := []slack.Block{render.Header("Weekly test launch reminder"), render.Section(intro)}
	for _, t := range render.Lines(lines) {
		blocks = append(blocks, render.Section(t))
	}
	blocks = append(blocks, actions("reminder", buttons...)...)
	if rest := len(due) - len(shown); rest > 0 {
		blocks = append(blocks, render.Context(fmt.Sprintf("and %d more; see `/cutover status`", rest)))
	}
	text := fmt.Sprintf("Weekly reminder: %d %s %s had no test launch in the last 7 days", len(due), noun, verb)
	if nFailed > 0 {
		text = fmt.Sprintf("Weekly reminder: %d %s need a test launch", len(due), noun)
	}
	return bot.Message{Text: text, Blocks: render.Fit(blocks, "see `/cutover status`")}
}

// daysLeft says how far the planned cutover date is from now, in calendar days in the
// configured time zone; "" when no date is set.
func (n *Notifier) daysLeft(now time.Time) string {
	if n.cfg.CutoverDate.IsZero() {
		return ""
	}
	date := n.cfg.CutoverDate.Format(time.DateOnly)
	days := render.DaysUntil(n.cfg.CutoverDate, now, n.cfg.Location)
	switch {
	case days > 1:
		return fmt.Sprintf("%d days left until the planned cutover on %s.", days, date)
	case days == 1:
		return fmt.Sprintf("1 day left until the planned cutover on %s.", date)
	case days == 0:
		return fmt.Sprintf("The planned cutover is today (%s).", date)
	}
	return fmt.Sprintf("The planned cutover date %s passed %d days ago.", date, -days)
}

// actions is render.Actions with action IDs made unique within each block, as Slack
// requires: the first button of a kind keeps its action ID, later ones get ":2", ":3"…
// appended. A handler matches the part before the colon.
func actions(blockIDPrefix string, buttons ...slack.BlockElement) []slack.Block {
	blocks := render.Actions(blockIDPrefix, buttons...)
	for _, b := range blocks {
		ab, ok := b.(*slack.ActionBlock)
		if !ok || ab.Elements == nil {
			continue
		}
		seen := map[string]int{}
		for _, e := range ab.Elements.ElementSet {
			btn, ok := e.(*slack.ButtonBlockElement)
			if !ok {
				continue
			}
			seen[btn.ActionID]++
			btn.ActionID = render.NumberedActionID(btn.ActionID, seen[btn.ActionID])
		}
	}
	return blocks
}
