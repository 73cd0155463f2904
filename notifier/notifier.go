// Package notifier is what cutoverbot posts without being asked: the progress of every MGN
// launch job in a Slack thread (for launches the bot starts and for those started in the AWS
// console or through the API), passive notices when a server's replication changes (reached
// Continuous Data Replication, stalled, recovered, lagging), and the weekly reminder to run
// test launches, grouped by wave. A launch of a wave or application has one thread for all
// its jobs (group.go), and every launch's post-launch actions are reported once they ended
// (verify.go).
//
// It polls: job logs every Config.PollInterval, read from a cursor kept in the store, and
// source servers and the job list every Config.WatchInterval. Several replicas on one store
// share the work and post each thing once: a lease per job, a compare-and-swap per server
// state, a claim per reminder firing.
//
// Everything it posts is also recorded in the store, and carries Slack message metadata
// naming what it is (see metadata.go: the thread parent, the log items a reply shows, the
// final report, the reminder's firing). Slack may take a message whose answer never
// arrives, or the process may die between Slack's answer and the store write; so whenever
// a thread is picked up from the store rather than continued in memory (a restart, a
// replica taking a job over, or after a post failed), the notifier first reads the thread
// back (conversations.replies) and skips the log items and the final report already there,
// and looks for a parent the store lacks in the channel's history. A reminder firing that
// was claimed but not posted is retried by the watcher's next pass (by another replica once
// the claim expires), after a look at the channel's history for it. The thread parent and
// final report say who requested and approved a launch, from the store; a launch started
// elsewhere is attributed only to what its MGN tag claims.
//
// It leaves out: EventBridge or CloudTrail push (it only polls), TERMINATE and diagnostic
// jobs (only LAUNCH jobs get threads), and the answers to its buttons (the handlers own them).
package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/migration"
)

// AWS is what the notifier reads from MGN and EC2. *awsmgn.Client satisfies it.
type AWS interface {
	Servers(ctx context.Context) ([]migration.Server, error)
	Job(ctx context.Context, id string) (migration.Job, error)
	Jobs(ctx context.Context, from time.Time) ([]migration.Job, error)
	JobLog(ctx context.Context, jobID string, cur migration.Cursor) ([]migration.Event, migration.Cursor, error)
	Instances(ctx context.Context, ids []string) ([]migration.Instance, error)
	ServerActions(ctx context.Context, serverID string) ([]migration.ServerAction, error)
	Program(ctx context.Context) (migration.Program, error)
}

// Poster sends messages to Slack and reads back what was posted. *bot.Poster satisfies it.
type Poster interface {
	// Post posts m; a post with metadata whose answer was lost is not sent twice.
	Post(ctx context.Context, channel string, m bot.Message) (string, error)
	Update(ctx context.Context, channel, ts string, m bot.Message) error
	// Pending is how many posts and updates for channel wait their turn.
	Pending(channel string) int
	// Replies returns the thread of ts with its messages' metadata, the parent first.
	Replies(ctx context.Context, channel, ts string) ([]slack.Message, error)
	// Find returns the ts of a message carrying md: in the thread of threadTS, or when that
	// is "" in the channel's messages since oldest; "" when there is none.
	Find(ctx context.Context, channel, threadTS string, oldest time.Time, md slack.SlackMetadata) (string, error)
}

// Store is the durable state the notifier keeps. *store.Store satisfies it.
type Store interface {
	FollowJob(ctx context.Context, j migration.Launch) (bool, error)
	SetJobRequester(ctx context.Context, jobID, requestedBy string, approvedBy []string) error
	Job(ctx context.Context, jobID string) (migration.Launch, error)
	ActiveJobs(ctx context.Context) ([]migration.Launch, error)
	SetJobParent(ctx context.Context, jobID, channel, ts string) error
	SaveProgress(ctx context.Context, jobID, cursor string, posted int) error
	FinishJob(ctx context.Context, jobID, outcome string) error
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
	ClaimReminder(ctx context.Context, firing time.Time, holder string, ttl time.Duration, now time.Time) (bool, error)
	FinishReminder(ctx context.Context, firing time.Time, ts string, now time.Time) error
	UnfinishedReminders(ctx context.Context) ([]time.Time, error)
	ServerStates(ctx context.Context) (map[string]string, error)
	SwapServerState(ctx context.Context, serverID, prev, next string, now time.Time) (bool, error)

	GroupLaunch(ctx context.Context, id string) (migration.GroupLaunch, error)
	ActiveGroupLaunches(ctx context.Context) ([]migration.GroupLaunch, error)
	SetGroupParent(ctx context.Context, id, channel, ts string) error
	FinishGroupLaunch(ctx context.Context, id, outcome string) error
	Batches(ctx context.Context, groupID string) ([]migration.Batch, error)
	Batch(ctx context.Context, key string) (migration.Batch, error)
}

// Config tunes a Notifier. Zero values pick the defaults named on each field.
type Config struct {
	Channel       string        // channel ID for threads, notices and the reminder; required
	PollInterval  time.Duration // how often running jobs' logs are read; 0 -> DefaultPollInterval
	WatchInterval time.Duration // how often servers and the job list are read; 0 -> 1m
	LagThreshold  time.Duration // replication lag above which a notice is posted; 0 -> migration.DefaultLagLimit
	ReminderSpec  string        // cron spec of the weekly reminder; "" -> DefaultReminderSpec
	// Location is the time zone of ReminderSpec and of dates shown; nil -> UTC.
	Location    *time.Location
	CutoverDate time.Time // planned final cutover (a date in Location); zero = none
	// Holder names this replica in job leases; "" -> a random ID. Two replicas must differ.
	Holder string
	// Clock is the time of leases, elapsed times, ages and the poll and watch tickers; nil ->
	// the real clock. (The weekly reminder's cron schedule runs on the real clock.)
	Clock clock.Clock
	// CombineAfter is how many unposted events a thread (or queued posts the channel) may
	// have before the events are combined into one reply; 0 -> 5.
	CombineAfter int
	// VerifyWait is how long after a job ended its post-launch actions are waited for before
	// they are reported as they stand; 0 -> DefaultVerifyWait.
	VerifyWait time.Duration
}

// Defaults of Config, also the defaults of cutoverbot's configuration.
const (
	DefaultPollInterval  = 15 * time.Second
	DefaultWatchInterval = time.Minute
	DefaultReminderSpec  = "0 9 * * MON" // Mondays at 09:00
)

const (
	defaultCombineAfter = 5

	// leasePolls is how many poll intervals a job lease lasts without renewal.
	leasePolls = 3
	// maxParallelJobs bounds the jobs worked on at once in one pass (MGN runs at most 20).
	maxParallelJobs = 20
	// discoveryLookback is how far back the first job listing after start looks.
	discoveryLookback = 24 * time.Hour
)

// Notifier follows launch jobs into Slack threads, posts replication notices and the
// weekly reminder. Run starts its goroutines and waits for them; the other methods do one
// piece of work on the caller's goroutine.
type Notifier struct {
	logger *slog.Logger
	aws    AWS
	poster Poster
	store  Store
	cfg    Config
	sched  cron.Schedule
	wake   chan struct{}
	// remind serialises the reminder work of this replica: the cron firing and the
	// watcher's retry pass never post the same firing at once.
	remind sync.Mutex

	mu       sync.Mutex
	follows  map[string]*follow      // by job ID: threads this replica is posting
	groups   map[string]*groupFollow // by group launch ID: group threads this replica is posting
	names    map[string]string       // server ID -> display name
	namesAt  time.Time               // last refresh of names (cfg.Clock)
	known    map[string]time.Time
	jobsFrom time.Time // next job listing starts here; zero before the first
}

// New returns a Notifier. It fails when cfg.Channel is empty or the reminder spec does not
// parse.
func New(logger *slog.Logger, aws AWS, poster Poster, st Store, cfg Config) (*Notifier, error) {
	if cfg.Channel == "" {
		return nil, errors.New("notifier: channel is required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = DefaultWatchInterval
	}
	if cfg.LagThreshold <= 0 {
		cfg.LagThreshold = migration.DefaultLagLimit
	}
	if cfg.ReminderSpec == "" {
		cfg.ReminderSpec = DefaultReminderSpec
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.CombineAfter <= 0 {
		cfg.CombineAfter = defaultCombineAfter
	}
	if cfg.VerifyWait <= 0 {
		cfg.VerifyWait = DefaultVerifyWait
	}
	if cfg.Holder == "" {
		cfg.Holder = fmt.Sprintf("notifier-%x", time.Now().UnixNano())
	}
	sched, err := cron.ParseStandard(cfg.ReminderSpec)
	if err != nil {
		return nil, fmt.Errorf("notifier: reminder schedule %q: %w", cfg.ReminderSpec, err)
	}
	return &Notifier{
		logger:  logger.With("component", "notifier"),
		aws:     aws,
		poster:  poster,
		store:   st,
		cfg:     cfg,
		sched:   sched,
		wake:    make(chan struct{}, 1),
		follows: map[string]*follow{},
		groups:  map[string]*groupFollow{},
		names:   map[string]string{},
		known:   map[string]time.Time{},
	}, nil
}

// NextReminder returns the first reminder firing after after, in Config.Location.
func (n *Notifier) NextReminder(after time.Time) time.Time {
	return n.sched.Next(after.In(n.cfg.Location))
}

// Run polls job logs every PollInterval (and at once when Follow adds a job), watches
// servers and the job list every WatchInterval, and posts the reminder on its schedule. It
// returns ctx's error when ctx ends, after its goroutines and any running reminder have
// finished and the job leases it holds are released.
func (n *Notifier) Run(ctx context.Context) error {
	c := cron.New(cron.WithLocation(n.cfg.Location), cron.WithLogger(cronLogger{n.logger}))
	var id cron.EntryID
	id = c.Schedule(n.sched, cron.FuncJob(func() {
		// Prev is the scheduled time of this firing: the same on every replica, so it keys
		// the once-only post.
		firing := c.Entry(id).Prev
		n.logger.InfoContext(ctx, "reminder firing", "at", firing)
		if err := n.Remind(ctx, firing); err != nil {
			n.logger.ErrorContext(ctx, "reminder not posted", "at", firing, "err", err)
		}
	}))
	c.Start()

	var wg sync.WaitGroup
	wg.Go(func() {
		clock.Every(ctx, n.cfg.Clock, n.cfg.PollInterval, n.wake, func(ctx context.Context) {
			if err := n.PollOnce(ctx); err != nil && ctx.Err() == nil {
				n.logger.WarnContext(ctx, "job poll incomplete", "err", err)
			}
		})
	})
	wg.Go(func() {
		clock.Every(ctx, n.cfg.Clock, n.cfg.WatchInterval, nil, func(ctx context.Context) {
			if err := n.WatchOnce(ctx); err != nil && ctx.Err() == nil {
				n.logger.WarnContext(ctx, "watch incomplete", "err", err)
			}
		})
	})
	<-ctx.Done()
	wg.Wait()
	<-c.Stop().Done()
	n.releaseLeases(ctx)
	return ctx.Err()
}

// releaseLeases hands the jobs this replica follows to other replicas at once, instead of
// after the leases expire.
func (n *Notifier) releaseLeases(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n.mu.Lock()
	leases := make([]string, 0, len(n.follows)+len(n.groups))
	for id := range n.follows {
		leases = append(leases, leaseName(id))
	}
	for id := range n.groups {
		leases = append(leases, groupLease(id))
	}
	clear(n.follows)
	clear(n.groups)
	n.mu.Unlock()
	for _, l := range leases {
		if err := n.store.ReleaseLease(ctx, l, n.cfg.Holder); err != nil {
			n.logger.WarnContext(ctx, "lease not released", "lease", l, "err", err)
		}
	}
}

// serverNames returns display names for ids, reading the servers again when one is unknown
// (at most once per poll interval). A server MGN no longer lists is named by its ID. It
// fails when names are missing and the servers could not be read, so that no thread reply
// shows a bare ID for a server that has a name.
func (n *Notifier) serverNames(ctx context.Context, ids []string) (map[string]string, error) {
	n.mu.Lock()
	missing := false
	for _, id := range ids {
		if _, ok := n.names[id]; !ok {
			missing = true
			break
		}
	}
	stale := n.namesAt.IsZero() || n.cfg.Clock.Now().Sub(n.namesAt) >= n.cfg.PollInterval
	n.mu.Unlock()
	if missing && stale {
		servers, err := n.aws.Servers(ctx)
		if err != nil {
			return nil, fmt.Errorf("server names: %w", err)
		}
		n.learnNames(servers)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		if name, ok := n.names[id]; ok {
			out[id] = name
		} else {
			out[id] = id
		}
	}
	return out, nil
}

func (n *Notifier) learnNames(servers []migration.Server) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range servers {
		n.names[s.ID] = s.DisplayName()
	}
	n.namesAt = n.cfg.Clock.Now()
}

// cronLogger sends robfig/cron's logs to slog: its Info chatter at Debug, errors at Error.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
