package notifier

import (
	"cmp"
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
	// wave is the wave the server belongs to (through its application); nil for none.
	wave *migration.Wave
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
		p := migration.CheckLaunch(s, migration.ModeTest, migration.LaunchContext{Now: now, Location: loc})
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

// failedTests returns the IDs of the servers whose latest test launch failed (see
// migration.LastTestOK), from MGN's jobs of the last migration.StaleTestAge (older tests are
// due anyway).
func (n *Notifier) failedTests(ctx context.Context, servers []migration.Server, now time.Time) (map[string]bool, error) {
	jobs, err := n.aws.Jobs(ctx, now.Add(-migration.StaleTestAge))
	if err != nil {
		return nil, err
	}
	failed := map[string]bool{}
	for _, s := range servers {
		if ok := migration.LastTestOK(s, jobs); ok != nil && !*ok {
			failed[s.ID] = true
		}
	}
	return failed, nil
}

// Bounds of a reminder firing's claim. Another replica retries a firing once its claim has
// expired; the post runs under a shorter deadline, so that a post still in flight cannot
// reach Slack after another replica found the firing unposted.
const (
	reminderClaim       = 10 * time.Minute
	reminderPostTimeout = 5 * time.Minute
)

// Remind posts the weekly reminder for the firing at firing (its scheduled time): the
// servers due for a test launch, each with a Launch test button, and the days left until
// the planned cutover. It posts nothing when no server is due, and once per firing across
// replicas and retries: the firing is claimed in the store before the post and marked done
// after it. A firing claimed but not posted (the post failed, the process died) is retried
// by RetryReminders.
func (n *Notifier) Remind(ctx context.Context, firing time.Time) error {
	n.remind.Lock()
	defer n.remind.Unlock()
	due, err := n.dueAt(ctx, firing)
	if err != nil {
		return fmt.Errorf("reminder: %w", err)
	}
	if len(due) == 0 {
		n.logger.InfoContext(ctx, "reminder: no server due for a test launch", "at", firing)
		return nil
	}
	ok, err := n.store.ClaimReminder(ctx, firing, n.cfg.Holder, reminderClaim, n.cfg.Clock.Now())
	if err != nil {
		return fmt.Errorf("reminder: %w", err)
	}
	if !ok {
		n.logger.InfoContext(ctx, "reminder already claimed", "at", firing)
		return nil
	}
	return n.postReminder(ctx, firing, due)
}

// RetryReminders finishes the reminder firings that were claimed but not marked done: for
// each whose claim this replica holds or that expired, it looks for the reminder in the
// channel's history (it may have been posted by a process that died before recording it)
// and posts it only when it is not there and servers are still due. A firing that a later
// one has replaced is closed without a post. The watcher calls it on every pass.
func (n *Notifier) RetryReminders(ctx context.Context) error {
	n.remind.Lock()
	defer n.remind.Unlock()
	firings, err := n.store.UnfinishedReminders(ctx)
	if err != nil {
		return fmt.Errorf("retry reminders: %w", err)
	}
	var errs []error
	for _, firing := range firings {
		if err := n.retryReminder(ctx, firing); err != nil {
			errs = append(errs, fmt.Errorf("retry reminder %s: %w", firing.Format(time.RFC3339), err))
		}
	}
	return errors.Join(errs...)
}

func (n *Notifier) retryReminder(ctx context.Context, firing time.Time) error {
	now := n.cfg.Clock.Now()
	if next := n.NextReminder(firing); !next.After(now) {
		// The next firing says all this one would have.
		n.logger.InfoContext(ctx, "reminder firing superseded, not retried", "at", firing, "next", next)
		return n.store.FinishReminder(ctx, firing, "", now)
	}
	ok, err := n.store.ClaimReminder(ctx, firing, n.cfg.Holder, reminderClaim, now)
	if err != nil || !ok {
		return err // !ok: another replica holds the firing, and may still be posting it
	}
	ts, err := n.poster.Find(ctx, n.cfg.Channel, "", firing.Add(-slackClockSkew), reminderMetadata(firing))
	if err != nil && !n.unreadable(ctx, err, "at", firing) {
		return err
	}
	if ts != "" {
		n.logger.InfoContext(ctx, "reminder found posted", "at", firing, "ts", ts)
		return n.store.FinishReminder(ctx, firing, ts, now)
	}
	due, err := n.dueAt(ctx, firing)
	if err != nil {
		return err
	}
	if len(due) == 0 {
		n.logger.InfoContext(ctx, "reminder: no server due any more", "at", firing)
		return n.store.FinishReminder(ctx, firing, "", now)
	}
	n.logger.InfoContext(ctx, "reminder retried", "at", firing)
	return n.postReminder(ctx, firing, due)
}

// dueAt returns the servers due for a test launch at firing, with their waves. When MGN's
// waves cannot be listed, the servers are listed without them.
func (n *Notifier) dueAt(ctx context.Context, firing time.Time) ([]dueServer, error) {
	servers, err := n.aws.Servers(ctx)
	if err != nil {
		return nil, err
	}
	n.learnNames(servers)
	failed, err := n.failedTests(ctx, servers, firing)
	if err != nil {
		return nil, err
	}
	due := dueForTest(servers, failed, firing, n.cfg.Location)
	prog, err := n.aws.Program(ctx)
	if err != nil {
		n.logger.WarnContext(ctx, "reminder: waves not listed, servers shown without them", "err", err)
		return due, nil
	}
	for i := range due {
		if w, ok := prog.WaveOf(due[i].s); ok {
			due[i].wave = &w
		}
	}
	return due, nil
}

// postReminder posts the claimed firing's reminder and marks the firing done. When the post
// fails, the claim stays for RetryReminders.
func (n *Notifier) postReminder(ctx context.Context, firing time.Time, due []dueServer) error {
	pctx, cancel := context.WithTimeout(ctx, reminderPostTimeout)
	defer cancel()
	ts, err := n.poster.Post(pctx, n.cfg.Channel, n.reminderMessage(due, firing))
	if err != nil {
		return fmt.Errorf("post reminder: %w", err)
	}
	n.logger.InfoContext(ctx, "reminder posted", "at", firing, "servers", len(due))
	if err := n.store.FinishReminder(ctx, firing, ts, n.cfg.Clock.Now()); err != nil {
		return fmt.Errorf("reminder posted, not recorded: %w", err)
	}
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
	shown := due[:min(len(due), maxReminderServers)]
	groups := byWave(shown)
	if len(groups) == 1 && groups[0].wave == nil {
		if left := n.daysLeft(now); left != "" {
			intro += "\n" + left
		}
	}
	blocks := []slack.Block{render.Header("Weekly test launch reminder"), render.Section(intro)}
	for _, g := range groups {
		var lines []string
		var buttons []slack.BlockElement
		if g.wave != nil {
			head := "*" + bot.Escape(g.wave.Name) + "*"
			if when := n.waveDate(*g.wave, now); when != "" {
				head += " — planned cutover " + when
			}
			lines = append(lines, head+fmt.Sprintf(" · %s due", plural(len(g.due), "server")))
			if slices.ContainsFunc(g.due, func(d dueServer) bool { return d.launchable }) {
				buttons = append(buttons, render.Button(render.ActionLaunchTest, "Launch test: "+bot.EscapePlain(g.wave.Name),
					migration.Group{Kind: migration.KindWave, ID: g.wave.ID, Name: g.wave.Name}.Ref(), slack.StylePrimary))
			}
		} else if len(groups) > 1 {
			head := "*Not in a wave*"
			if left := n.daysLeft(now); left != "" {
				head += " — " + strings.TrimSuffix(strings.ToLower(left[:1])+left[1:], ".")
			}
			lines = append(lines, head)
		}
		for _, d := range g.due {
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
		for _, t := range render.Lines(lines) {
			blocks = append(blocks, render.Section(t))
		}
		id := "reminder"
		if g.wave != nil {
			id += "-" + g.wave.ID
		}
		blocks = append(blocks, actions(id, buttons...)...)
	}
	if rest := len(due) - len(shown); rest > 0 {
		blocks = append(blocks, render.Context(fmt.Sprintf("and %d more; see `/cutover status`", rest)))
	}
	text := fmt.Sprintf("Weekly reminder: %d %s %s had no test launch in the last 7 days", len(due), noun, verb)
	if nFailed > 0 {
		text = fmt.Sprintf("Weekly reminder: %d %s need a test launch", len(due), noun)
	}
	return bot.Message{Text: text, Blocks: render.Fit(blocks, "see `/cutover status`"), Metadata: reminderMetadata(now)}
}

// waveDue is the due servers of one wave; wave is nil for those in no wave.
type waveDue struct {
	wave *migration.Wave
	due  []dueServer
}

// byWave groups due servers by wave, each group in the order given: the waves in order of
// their first due server, the servers in no wave last.
func byWave(due []dueServer) []waveDue {
	var groups []waveDue
	idx := map[string]int{}
	var none []dueServer
	for _, d := range due {
		if d.wave == nil {
			none = append(none, d)
			continue
		}
		i, ok := idx[d.wave.ID]
		if !ok {
			i = len(groups)
			idx[d.wave.ID] = i
			groups = append(groups, waveDue{wave: d.wave})
		}
		groups[i].due = append(groups[i].due, d)
	}
	if len(none) > 0 {
		groups = append(groups, waveDue{due: none})
	}
	return groups
}

// waveDate says when a wave is planned to cut over (its cutover-date tag, else CUTOVER_DATE),
// seen from now; "" when neither is set.
func (n *Notifier) waveDate(w migration.Wave, now time.Time) string {
	d, ok := w.CutoverDate()
	if !ok {
		d, ok = n.cfg.CutoverDate, !n.cfg.CutoverDate.IsZero()
	}
	if !ok {
		return ""
	}
	return render.PlannedCutover(d, now, n.cfg.Location)
}

// daysLeft says how far the planned cutover date is from now; "" when no date is set.
func (n *Notifier) daysLeft(now time.Time) string {
	if n.cfg.CutoverDate.IsZero() {
		return ""
	}
	return "Planned cutover: " + render.PlannedCutover(n.cfg.CutoverDate, now, n.cfg.Location) + "."
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
