package notifier

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

var (
	_ AWS    = (*awsmgn.Client)(nil)
	_ Poster = (*bot.Poster)(nil)
	_ Store  = (*store.Store)(nil)
)

// epoch is a Monday, 09:00 UTC.
var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const channel = "C0MIGRATION"

// rig is the real chain on loopback: the MGN emulator on a manual clock behind the real
// migration client, the Slack emulator behind slack-go and the bot's poster, and the
// SQLite store in the test's temporary directory.
type rig struct {
	clock  *clock.Manual
	mgn    *mgnemu.Server
	aws    *awsmgn.Client
	slack  *slackemu.Server
	poster *bot.Poster
	dsn    string
	store  *store.Store
	logger *slog.Logger
	tr     *testrig.Rig
}

type rigOptions struct {
	servers      []mgnemu.SourceServer // nil: the sample fleet
	postInterval time.Duration         // Slack's per-channel limit; 0: unlimited
	realClock    bool                  // jobs run on time.Now instead of the manual clock
	quiet        bool                  // discard logs (benchmarks)
	maxActive    int                   // mgnemu's quota of servers in active jobs; 0: MGN's 200
	attempts     int                   // the SDK's attempts per call; 0: 3
	dsn          string                // the store's database; "": an SQLite file in the test's directory
	waves        bool                  // MGN has the sample fleet's applications and waves
}

func newRig(tb testing.TB, o rigOptions) *rig {
	tb.Helper()
	to := testrig.Options{Start: epoch, RealClock: o.realClock, Fleet: o.servers, MaxActive: o.maxActive,
		RetryMaxAttempts: cmp.Or(o.attempts, 3), PostInterval: o.postInterval, DSN: o.dsn}
	if o.quiet {
		to.Logger = slog.New(slog.DiscardHandler)
	}
	if o.servers == nil && !o.waves {
		// The sample fleet, without its applications and waves.
		to.Fleet = mgnemu.SampleFleet(epoch)
		if o.realClock {
			to.Fleet = mgnemu.SampleFleet(time.Now())
		}
	}
	if o.postInterval > 0 {
		// A little slower than Slack's limit, as in production, so 429s stay rare.
		to.Poster = bot.PosterConfig{ChannelInterval: o.postInterval * 5 / 4, Burst: 3, UpdateInterval: o.postInterval}
	}
	tr := testrig.New(tb, to)
	r := &rig{clock: tr.Clock, mgn: tr.MGN, aws: tr.AWS, slack: tr.Slack, poster: tr.Poster, dsn: tr.DSN, store: tr.Store,
		logger: tr.Logger, tr: tr}
	r.slack.AddChannel(channel, "migration")
	return r
}

// openStore opens another handle on the rig's database, as another replica would.
func (r *rig) openStore(tb testing.TB) *store.Store { return r.tr.OpenStore(tb) }

func (r *rig) notifier(tb testing.TB, st Store, holder string, edit func(*Config)) *Notifier {
	tb.Helper()
	cfg := Config{Channel: channel, Holder: holder, Clock: r.clock}
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(r.logger, r.aws, r.poster, st, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

var requests atomic.Int64

func (r *rig) startTest(t *testing.T, tags map[string]string, ids ...string) migration.Job {
	t.Helper()
	j, err := r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeTest, ServerIDs: ids,
		RequestedBy: tags[migration.TagRequestedBy], Request: fmt.Sprint("request-", requests.Add(1))})
	if err != nil {
		t.Fatalf("start test %v: %v", ids, err)
	}
	return j
}

// drive advances the clock by step and runs one poll pass of each notifier until done
// reports true; it fails the test after 400 steps.
func (r *rig) drive(t *testing.T, step time.Duration, done func() bool, ns ...*Notifier) {
	t.Helper()
	for range 400 {
		if done() {
			return
		}
		r.clock.Advance(step)
		for _, n := range ns {
			_ = n.PollOnce(t.Context()) // failures are retried by the next pass
		}
	}
	t.Fatal("not done after 400 poll passes")
}

func (r *rig) jobDone(t *testing.T, id string) func() bool {
	return func() bool {
		j, err := r.store.Job(t.Context(), id)
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		return j.Done
	}
}

// thread returns the event lines of a thread (each reply split into its lines) and the
// final, broadcast reply.
func (r *rig) thread(t testing.TB, parentTS string) (lines []string, final *slackemu.Message) {
	t.Helper()
	for _, m := range r.slack.Replies(channel, parentTS) {
		if m.Metadata != nil && m.Metadata.EventType == eventJobVerified {
			continue // the post-launch report, after the final one; see verified
		}
		if m.Broadcast {
			if final != nil {
				t.Errorf("second final reply in thread %s: %q", parentTS, m.Text)
			}
			final = &m
			continue
		}
		if final != nil {
			t.Errorf("reply after the final reply: %q", m.Text)
		}
		lines = append(lines, strings.Split(m.Text, "\n")...)
	}
	return lines, final
}

// verified returns the post-launch reports in a thread.
func (r *rig) verified(parentTS string) []slackemu.Message {
	var out []slackemu.Message
	for _, m := range r.slack.Replies(channel, parentTS) {
		if m.Metadata != nil && m.Metadata.EventType == eventJobVerified {
			out = append(out, m)
		}
	}
	return out
}

// wantLines is the job's whole log as the thread should show it, one line per event.
func (r *rig) wantLines(t testing.TB, jobID string) []string {
	t.Helper()
	events, _, err := r.aws.JobLog(t.Context(), jobID, migration.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, s := range r.mgn.Servers() {
		names[s.SourceServerID] = s.Tags["Name"]
	}
	var out []string
	for _, e := range events {
		out = append(out, eventLine(e, names[e.ServerID]))
	}
	return out
}

// checkThread fails unless the thread holds every log event once, in log order.
func (r *rig) checkThread(t *testing.T, jobID, parentTS string) (final *slackemu.Message) {
	t.Helper()
	got, final := r.thread(t, parentTS)
	want := r.wantLines(t, jobID)
	if !slices.Equal(got, want) {
		t.Errorf("thread of %s:\ngot  %d lines %q\nwant %d lines %q", jobID, len(got), got, len(want), want)
	}
	if final == nil {
		t.Fatalf("thread of %s has no final reply", jobID)
	}
	return final
}

// parents returns the channel's top-level messages.
func (r *rig) parents() []slackemu.Message {
	var out []slackemu.Message
	for _, m := range r.slack.Messages(channel) {
		if m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

func (r *rig) instance(t *testing.T, id string) mgnemu.Instance {
	t.Helper()
	for _, in := range r.mgn.Instances() {
		if in.InstanceID == id {
			return in
		}
	}
	t.Fatalf("no instance %s in the emulator", id)
	return mgnemu.Instance{}
}

func (r *rig) participant(t *testing.T, jobID, serverID string) mgnemu.ParticipatingServer {
	t.Helper()
	for _, j := range r.mgn.Jobs() {
		if j.JobID != jobID {
			continue
		}
		for _, p := range j.ParticipatingServers {
			if p.SourceServerID == serverID {
				return p
			}
		}
	}
	t.Fatalf("no participant %s in job %s", serverID, jobID)
	return mgnemu.ParticipatingServer{}
}

// blockTypes returns the types of a message's blocks and, for actions blocks, their sizes.
func blockTypes(t *testing.T, m slackemu.Message) (types []string, actionSizes []int) {
	t.Helper()
	for _, raw := range m.Blocks {
		var b struct {
			Type     string            `json:"type"`
			Elements []json.RawMessage `json:"elements"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		types = append(types, b.Type)
		if b.Type == "actions" {
			actionSizes = append(actionSizes, len(b.Elements))
		}
	}
	return types, actionSizes
}

func contains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: got %q, want it to contain %q", what, got, w)
		}
	}
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
