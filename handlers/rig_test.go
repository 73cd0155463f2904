package handlers

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// The compile-time proof that the real types satisfy the handlers' interfaces.
var (
	_ AWS    = (*awsmgn.Client)(nil)
	_ Poster = (*bot.Poster)(nil)
	_ Store  = (*store.Store)(nil)
	_ Groups = (*slack.Client)(nil)

	_ bot.Dispatcher = (*Handler)(nil)
)

// Workspace of the tests.
const (
	migrationChannel = "C0MIGRATE"
	otherChannel     = "C0OTHER"
	operator         = "U0OPER"  // an operator, directly
	carol            = "U0CAROL" // an operator through the S0OPS group
	alice            = "U0ALICE" // operator and approver, directly
	bob              = "U0BOB"   // an approver through the S0APPROVE group
	eve              = "U0EVE"   // neither
	opsGroup         = "S0OPS"
	approverGroup    = "S0APPROVE"
)

// start is the tests' clock start: a Monday, 14:02 UTC.
var start = time.Date(2025, 3, 3, 14, 2, 0, 0, time.UTC)

// approverIDs are ten more approvers in S0APPROVE, for concurrent clicks.
var approverIDs = func() []string {
	var ids []string
	for i := range 10 {
		ids = append(ids, "U0APP"+string(rune('A'+i)))
	}
	return ids
}()

// rig is the real chain on loopback: the MGN emulator behind awsmgn.Client, the Slack
// emulator behind slack-go and bot.Poster, the SQLite store, and a Socket Mode bot whose
// dispatcher hands each envelope to the test, which then calls the Handler directly.
type rig struct {
	t        *testing.T
	clock    *clock.Manual
	mgn      *mgnemu.Server
	slack    *slackemu.Server
	aws      *awsmgn.Client
	poster   *bot.Poster
	store    *store.Store
	follower *follower
	h        *Handler

	cmds   chan slack.SlashCommand
	clicks chan slack.InteractionCallback
	lost   *atomic.Int64 // answers the lossy proxy dropped

	loseMu sync.Mutex
	lose   func(path string) bool // which answers the proxy drops; nil: none
}

// capture is a bot.Dispatcher that passes envelopes on to the test.
type capture struct {
	cmds   chan slack.SlashCommand
	clicks chan slack.InteractionCallback
}

func (c *capture) SlashCommand(_ context.Context, cmd slack.SlashCommand) { c.cmds <- cmd }
func (c *capture) Interaction(_ context.Context, cb slack.InteractionCallback) {
	c.clicks <- cb
}

// follower stands in for the notifier: it posts the launch announcement and records calls.
type follower struct {
	poster  *bot.Poster
	channel string

	mu    sync.Mutex
	calls []followCall
	err   error // when set, Follow fails with it and posts nothing

	groups     map[string]string // group launch ID -> the parent FollowGroup posted
	groupCalls []string
}

type followCall struct {
	job         migration.Job
	requestedBy string
	approvedBy  []string
	parentTS    string
}

func (f *follower) Follow(ctx context.Context, job migration.Job, requestedBy string, approvedBy ...string) (string, error) {
	f.mu.Lock()
	fail := f.err
	f.mu.Unlock()
	if fail != nil {
		return "", fail
	}
	ts, err := f.poster.Post(ctx, f.channel, bot.Message{Text: "Launch " + job.ID + " requested by <@" + requestedBy + ">"})
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, followCall{job: job, requestedBy: requestedBy, approvedBy: approvedBy, parentTS: ts})
	return ts, err
}

// FollowGroup posts a group launch's thread parent once and records the call.
func (f *follower) FollowGroup(ctx context.Context, groupID string) (string, error) {
	f.mu.Lock()
	fail := f.err
	ts, posted := f.groups[groupID]
	f.groupCalls = append(f.groupCalls, groupID)
	f.mu.Unlock()
	if fail != nil {
		return "", fail
	}
	if posted {
		return ts, nil
	}
	ts, err := f.poster.Post(ctx, f.channel, bot.Message{Text: "Group launch " + groupID})
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups == nil {
		f.groups = map[string]string{}
	}
	f.groups[groupID] = ts
	return ts, nil
}

// GroupCalls lists the group launches FollowGroup was called for, a call each.
func (f *follower) GroupCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.groupCalls)
}

func (f *follower) Calls() []followCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]followCall(nil), f.calls...)
}

type rigOptions struct {
	fleet []mgnemu.SourceServer // nil: the sample fleet, with its applications and waves
	// applications and waves go with fleet.
	applications []mgnemu.Application
	waves        []mgnemu.Wave
	maxActive    int // MGN's quota of servers in active jobs; 0: its 200
	config       func(*Config)
	// lose names MGN operations whose answers are lost after MGN acted on them (their paths,
	// e.g. "/StartCutover"): the adapter talks to MGN through a proxy that drops them. Tests
	// change what is lost with rig.loseIf.
	lose []string
}

func newRig(t *testing.T, opts rigOptions) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	quiet := slog.New(slog.DiscardHandler)
	r := &rig{t: t, cmds: make(chan slack.SlashCommand, 64), clicks: make(chan slack.InteractionCallback, 64)}

	to := testrig.Options{Start: start, Fleet: opts.fleet, Applications: opts.applications, Waves: opts.waves,
		MaxActive: opts.maxActive, Poster: bot.PosterConfig{Burst: 100}, Logger: quiet}
	if opts.lose != nil {
		lose := opts.lose
		r.loseIf(func(path string) bool { return slices.Contains(lose, path) })
		to.MGNURL = func(target string) string {
			u, lost := testrig.LossyProxy(t, target, r.losing)
			r.lost = lost
			return u
		}
	}
	tr := testrig.New(t, to)
	r.clock, r.mgn, r.aws, r.slack, r.poster, r.store = tr.Clock, tr.MGN, tr.AWS, tr.Slack, tr.Poster, tr.Store
	r.slack.AddChannel(migrationChannel, "migration")
	r.slack.AddChannel(otherChannel, "random")
	for _, u := range append([]string{operator, carol, alice, bob, eve}, approverIDs...) {
		r.slack.AddUser(u, strings.ToLower(u[3:]))
	}
	r.slack.AddUserGroup(opsGroup, carol)
	r.slack.AddUserGroup(approverGroup, append([]string{bob}, approverIDs...)...)
	api := tr.API
	r.follower = &follower{poster: r.poster, channel: migrationChannel}

	cfg := Config{
		Channel:   migrationChannel,
		Operators: []string{operator, opsGroup, alice},
		Approvers: []string{alice, approverGroup},
		Clock:     r.clock,
	}
	if opts.config != nil {
		opts.config(&cfg)
	}
	r.h = New(logger, r.aws, r.poster, r.store, r.follower, api, cfg)

	b := bot.New(quiet, api, &capture{cmds: r.cmds, clicks: r.clicks}, bot.Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// wait bounds every wait of a test.
const wait = 10 * time.Second

// command delivers a slash command through Slack and returns it as the handler receives it.
func (r *rig) command(user, channel, text string) slack.SlashCommand {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), wait)
	defer cancel()
	if _, err := r.slack.SlashCommand(ctx, user, channel, text); err != nil {
		r.t.Fatalf("slash command %q: %v", text, err)
	}
	select {
	case cmd := <-r.cmds:
		return cmd
	case <-ctx.Done():
		r.t.Fatalf("slash command %q never reached the dispatcher", text)
	}
	return slack.SlashCommand{}
}

// run has user type /cutover text in the migration channel and handles it; it returns the
// newest ephemeral message shown to user afterwards.
func (r *rig) run(user, text string) string {
	r.t.Helper()
	return r.runIn(user, migrationChannel, text)
}

func (r *rig) runIn(user, channel, text string) string {
	r.t.Helper()
	before := len(r.slack.Ephemerals(user))
	r.h.SlashCommand(r.t.Context(), r.command(user, channel, text))
	r.drawCards()
	eph := r.slack.Ephemerals(user)
	if len(eph) <= before {
		r.t.Fatalf("/cutover %s by %s: no answer", text, user)
	}
	return eph[len(eph)-1].PlainText()
}

// clickOn delivers a click on a channel message's button and returns it as the handler
// receives it, without handling it.
func (r *rig) clickOn(user, ts, actionID string) slack.InteractionCallback {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), wait)
	defer cancel()
	if _, err := r.slack.Click(ctx, user, migrationChannel, ts, actionID); err != nil {
		r.t.Fatalf("click %s: %v", actionID, err)
	}
	return r.receiveClick(ctx)
}

func (r *rig) receiveClick(ctx context.Context) slack.InteractionCallback {
	r.t.Helper()
	select {
	case cb := <-r.clicks:
		return cb
	case <-ctx.Done():
		r.t.Fatal("click never reached the dispatcher")
	}
	return slack.InteractionCallback{}
}

// click has user press a button on a channel message and handles it; it returns the newest
// ephemeral message shown to user afterwards, "" when none was added.
func (r *rig) click(user, ts, actionID string) string {
	r.t.Helper()
	before := len(r.slack.Ephemerals(user))
	r.h.Interaction(r.t.Context(), r.clickOn(user, ts, actionID))
	r.drawCards()
	eph := r.slack.Ephemerals(user)
	if len(eph) <= before {
		return ""
	}
	return eph[len(eph)-1].PlainText()
}

// drawCards has the handler redraw the cards that changed, as its Run loop does.
func (r *rig) drawCards() {
	r.t.Helper()
	if err := r.h.DrawCards(r.t.Context()); err != nil {
		r.t.Fatalf("DrawCards: %v", err)
	}
}

// sweep runs one pass of the handler's periodic work: takeovers, expiry, card redraws.
func (r *rig) sweep() {
	r.t.Helper()
	if err := r.h.Sweep(r.t.Context()); err != nil {
		r.t.Fatalf("Sweep: %v", err)
	}
}

// loseIf sets which MGN answers the lossy proxy drops, by path; nil drops none.
func (r *rig) loseIf(f func(path string) bool) {
	r.loseMu.Lock()
	defer r.loseMu.Unlock()
	r.lose = f
}

func (r *rig) losing(path string) bool {
	r.loseMu.Lock()
	defer r.loseMu.Unlock()
	return r.lose != nil && r.lose(path)
}

// channelMessages returns the migration channel's top-level messages.
func (r *rig) channelMessages() []slackemu.Message { return r.slack.Messages(migrationChannel) }

// lastCard returns the newest channel message with a Confirm button.
func (r *rig) lastCard() slackemu.Message {
	r.t.Helper()
	msgs := r.channelMessages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if strings.Contains(string(joinBlocks(msgs[i])), `"confirm"`) {
			return msgs[i]
		}
	}
	r.t.Fatal("no confirmation card in the channel")
	return slackemu.Message{}
}

// message returns the channel message with ts as it is now.
func (r *rig) message(ts string) slackemu.Message {
	r.t.Helper()
	for _, m := range r.channelMessages() {
		if m.TS == ts {
			return m
		}
	}
	r.t.Fatalf("no message %s in the channel", ts)
	return slackemu.Message{}
}

func joinBlocks(m slackemu.Message) []byte {
	var b []byte
	for _, raw := range m.Blocks {
		b = append(b, raw...)
		b = append(b, '\n')
	}
	return b
}

// lifecycle returns a server's lifecycle state in the emulator.
func (r *rig) lifecycle(id string) string {
	r.t.Helper()
	s, ok := r.mgn.Server(id)
	if !ok {
		r.t.Fatalf("no server %s", id)
	}
	return s.LifeCycle.State
}

func contains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s: got %q, want it to contain %q", what, got, w)
		}
	}
}

func lacks(t *testing.T, what, got string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(got, w) {
			t.Errorf("%s: got %q, want no %q", what, got, w)
		}
	}
}
