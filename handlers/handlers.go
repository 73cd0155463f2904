// Package handlers answers the /cutover slash command and the clicks on cutoverbot's buttons:
// it parses what a person typed, checks who may do what, runs the pre-flight checks, starts
// MGN launches (a cutover only behind a confirmation card that an approver confirms), changes
// lifecycle states, and renders status, jobs and the audit log as Block Kit within Slack's
// limits. Every answer is specific: a refusal says why, an AWS error says what it means.
// A command may name a whole MGN wave or application; its launch is split into batches of at
// most 200 servers that Run starts as MGN has room (see group.go).
//
// It leaves out following a job's progress (a Follower does that), passive notices and the
// weekly reminder, and the Socket Mode connection: a Handler is handed each slash command and
// interaction after the envelope was acknowledged.
package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/store"
)

// AWS is what the handlers need from MGN and EC2; *awsmgn.Client satisfies it.
type AWS interface {
	Servers(ctx context.Context) ([]migration.Server, error)
	ServersByID(ctx context.Context, ids []string) ([]migration.Server, error)
	Launch(ctx context.Context, req migration.LaunchRequest) (migration.Job, error)
	FindLaunch(ctx context.Context, key, value string, since time.Time) (migration.Job, bool, error)
	Jobs(ctx context.Context, from time.Time) ([]migration.Job, error)
	MarkReadyForCutover(ctx context.Context, id string) (migration.Server, error)
	RevertToReadyForTest(ctx context.Context, id string) (migration.Server, error)
	RevertToReadyForCutover(ctx context.Context, id string) (migration.Server, error)
	FinalizeCutover(ctx context.Context, id string) (migration.Server, error)
	Instances(ctx context.Context, ids []string) ([]migration.Instance, error)
	Program(ctx context.Context) (migration.Program, error)
}

// Poster sends messages to Slack; *bot.Poster satisfies it.
type Poster interface {
	Post(ctx context.Context, channel string, m bot.Message) (string, error)
	Update(ctx context.Context, channel, ts string, m bot.Message) error
	Ephemeral(ctx context.Context, channel, user string, m bot.Message) error
	Respond(ctx context.Context, responseURL string, m bot.Message, opts bot.RespondOptions) error
}

// Store is the durable state the handlers use; *store.Store satisfies it.
type Store interface {
	CreateConfirmation(ctx context.Context, c store.Confirmation) error
	SetConfirmationMessage(ctx context.Context, id, channel, ts string) error
	Confirmation(ctx context.Context, id string) (store.Confirmation, error)
	Confirmations(ctx context.Context, state store.ConfirmationState) ([]store.Confirmation, error)
	Approve(ctx context.Context, id, user, owner string, now time.Time, ttl time.Duration, vouched []string) (store.Confirmation, store.Approval, error)
	WithdrawApprovals(ctx context.Context, id string, users []string, now time.Time) (store.Confirmation, error)
	CancelConfirmation(ctx context.Context, id, by string, now time.Time) (store.Confirmation, error)
	BeginCall(ctx context.Context, id string, f store.Fence, now time.Time, ttl time.Duration) error
	RenewConfirmation(ctx context.Context, id string, f store.Fence, now time.Time, ttl time.Duration) error
	ReleaseConfirmation(ctx context.Context, id string, f store.Fence) error
	RetryLater(ctx context.Context, id string, f store.Fence, now time.Time, wait time.Duration, note string) error
	Rechecks(ctx context.Context, now time.Time) (open, ended []store.Confirmation, err error)
	CompleteConfirmation(ctx context.Context, id string, o store.Outcome, f store.Fence, now time.Time) error
	TakeOverConfirmations(ctx context.Context, owner string, now time.Time, ttl time.Duration, limit int) ([]store.Confirmation, error)
	ExpireConfirmations(ctx context.Context, now time.Time) ([]store.Confirmation, error)
	StaleCards(ctx context.Context, before time.Time, limit int) ([]store.Confirmation, error)
	CardShown(ctx context.Context, id string, version int64) error
	Job(ctx context.Context, jobID string) (migration.Launch, error)
	RecentJobs(ctx context.Context, serverID string, limit int) ([]migration.Launch, error)
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	Once(ctx context.Context, key string, now time.Time) (bool, error)
	Audit(ctx context.Context, e store.AuditEntry) error
	AuditLog(ctx context.Context, serverID string, limit int) ([]store.AuditEntry, error)

	CreateGroupLaunch(ctx context.Context, g migration.GroupLaunch, batches []migration.Batch, owner string, now time.Time, ttl time.Duration) (store.BatchClaim, bool, error)
	GroupLaunch(ctx context.Context, id string) (migration.GroupLaunch, error)
	Batches(ctx context.Context, groupID string) ([]migration.Batch, error)
	ClaimBatch(ctx context.Context, groupID, owner string, now time.Time, ttl time.Duration) (store.BatchClaim, bool, error)
	RenewBatch(ctx context.Context, key string, f store.Fence, now time.Time, ttl time.Duration) error
	CompleteBatch(ctx context.Context, key string, o store.BatchOutcome, f store.Fence, now time.Time) error
	ReleaseBatch(ctx context.Context, key string, f store.Fence) error
}

// Groups resolves Slack user groups to their members (usergroups.users.list); *slack.Client
// satisfies it.
type Groups interface {
	GetUserGroupMembersContext(ctx context.Context, group string, opts ...slack.GetUserGroupMembersOption) ([]string, error)
}

// Follower follows a launch job's progress in a thread of the migration channel; the notifier
// implements it. Follow records the job with who requested it and who approved it (none for a
// test launch), and posts the thread's parent message (the launch announcement) or has it
// posted soon; it returns the parent's ts, "" while it is not posted. FollowGroup does the same
// for a stored launch of a wave or application: one thread for all its batches' jobs, which it
// follows as the batches start.
type Follower interface {
	Follow(ctx context.Context, job migration.Job, requestedBy string, approvedBy ...string) (parentTS string, err error)
	FollowGroup(ctx context.Context, groupID string) (parentTS string, err error)
}

// Config tunes a Handler. Zero values pick the defaults named on each field.
type Config struct {
	Channel   string   // migration channel: launches, cards and notices go here
	Operators []string // U… user IDs or S… user-group IDs allowed to launch tests and request cutovers and finalizes
	Approvers []string // U… user IDs or S… user-group IDs allowed to request and to confirm cutovers and finalizes
	// SelfApproval lets the requester's own approval count; false: approvers other than the
	// requester must confirm (two-person rule).
	SelfApproval bool
	// Approvals is how many distinct approvers must confirm a cutover or finalize; 0 -> 1.
	Approvals  int
	ConfirmTTL time.Duration // how long a confirmation card can be confirmed; 0 -> 30 min
	// Location is the time zone of the times shown; nil -> UTC.
	Location *time.Location
	// CutoverDate is the planned final cutover date shown in status; zero = none.
	CutoverDate time.Time
	// LagLimit is the replication lag above which a launch is refused; 0 -> migration.DefaultLagLimit.
	LagLimit time.Duration
	// Clock is the time of everything the handlers measure, record and wait for (leases,
	// expiries, sweeps); nil -> the real clock.
	Clock clock.Clock
	// FleetTTL is how long a fetched server list is reused; 0 -> 5 s. Concurrent requests for
	// the list share one AWS listing.
	FleetTTL time.Duration
	// GroupTTL is how long the members of a user group are reused; 0 -> 5 min. When Slack
	// cannot be asked, the members are used for GroupGrace more at most (0 -> 5 min); after
	// that, access through the group is refused.
	GroupTTL, GroupGrace time.Duration
	// Holder names this replica as the owner of confirmations it carries out; "" -> random.
	// Two replicas must differ.
	Holder string
	// LeaseTTL is how long this replica owns a confirmation's work without renewing it: after
	// a crash, another replica takes the work over that much later; 0 -> DefaultLeaseTTL. An AWS call is
	// given at most half of it.
	LeaseTTL time.Duration
	// TakeoverWindow bounds how long after the deciding click a replica taking over a
	// confirmation whose owner died still starts the launch itself (when MGN has no job for
	// it and the pre-flight passes); older ones are closed as not launched; 0 -> 2 min.
	TakeoverWindow time.Duration
	// SweepInterval is how often Run looks for confirmations to take over, cards to redraw
	// and cards to expire; 0 -> 2 s, or a third of LeaseTTL when that is shorter.
	SweepInterval time.Duration
	// BatchInterval is how often Run looks for batches of wave and application launches to
	// start; 0 -> DefaultBatchInterval. A batch MGN had no room for is tried again after as
	// long, once fewer servers are in active jobs than when it was refused.
	BatchInterval time.Duration
	// BatchPatience is how long a batch waits for room in MGN before it is given up as not
	// launched; 0 -> 24 h.
	BatchPatience time.Duration
}

// DefaultBatchInterval is Config.BatchInterval's default.
const DefaultBatchInterval = 15 * time.Second

// DefaultLeaseTTL is Config.LeaseTTL's default, also cutoverbot's.
const DefaultLeaseTTL = 15 * time.Second

func (c Config) withDefaults() Config {
	if c.Approvals <= 0 {
		c.Approvals = 1
	}
	if c.ConfirmTTL <= 0 {
		c.ConfirmTTL = 30 * time.Minute
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.LagLimit <= 0 {
		c.LagLimit = migration.DefaultLagLimit
	}
	c.Clock = clock.Or(c.Clock)
	if c.FleetTTL <= 0 {
		c.FleetTTL = 5 * time.Second
	}
	if c.GroupTTL <= 0 {
		c.GroupTTL = 5 * time.Minute
	}
	if c.GroupGrace <= 0 {
		c.GroupGrace = 5 * time.Minute
	}
	if c.Holder == "" {
		c.Holder = "handlers-" + newID()
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.TakeoverWindow <= 0 {
		c.TakeoverWindow = 2 * time.Minute
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = min(2*time.Second, c.LeaseTTL/3)
	}
	if c.BatchInterval <= 0 {
		c.BatchInterval = DefaultBatchInterval
	}
	if c.BatchPatience <= 0 {
		c.BatchPatience = 24 * time.Hour
	}
	return c
}

// Handler answers /cutover commands and button clicks. It is safe for concurrent use. Its
// answers to the person who clicked or typed are sent at once; edits of confirmation cards,
// which wait for Slack's rate limits, are made by Run in the background, which also takes
// over the confirmations a stopped replica left unfinished and expires old cards. Besides Run,
// it starts no goroutines beyond the shared fetch of the server list, which ends with the call
// that started it.
type Handler struct {
	logger   *slog.Logger
	aws      AWS
	poster   Poster
	store    Store
	follower Follower
	groups   Groups
	cfg      Config

	fetch singleflight.Group

	mu        sync.Mutex
	fleet     []migration.Server
	fleetAt   time.Time
	fleetGen  int // bumped by invalidate, so a fetch begun before a change is not cached
	program   *migration.Program
	programAt time.Time
	names     map[string]string // server ID -> display name, from the latest listing
	members   map[string]groupMembers
	groupCall singleflight.Group

	cards cardQueue
	// batches wakes the batch loop of Run when a group launch queued batches.
	batches chan struct{}
}

type groupMembers struct {
	users []string
	at    time.Time
}

// New returns a Handler. groups may be nil when Operators and Approvers name no user groups.
func New(logger *slog.Logger, aws AWS, poster Poster, st Store, follower Follower, groups Groups, cfg Config) *Handler {
	return &Handler{
		logger:   logger.With("component", "handlers"),
		aws:      aws,
		poster:   poster,
		store:    st,
		follower: follower,
		groups:   groups,
		cfg:      cfg.withDefaults(),
		members:  map[string]groupMembers{},
		names:    map[string]string{},
		cards:    newCardQueue(),
		batches:  make(chan struct{}, 1),
	}
}

// origin is where a request came from and how to answer its sender privately.
type origin struct {
	user, channel, responseURL string
}

// SlashCommand answers one /cutover command. It never returns an error: every outcome,
// including a panic, is answered to the user.
func (h *Handler) SlashCommand(ctx context.Context, cmd slack.SlashCommand) {
	o := origin{user: cmd.UserID, channel: cmd.ChannelID, responseURL: cmd.ResponseURL}
	start := time.Now()
	defer h.recoverPanic(ctx, o, "command")
	c := parse(cmd.Text)
	h.runCommand(ctx, o, c)
	h.logger.InfoContext(ctx, "command handled", "cmd", c.name, "user", o.user, "channel", o.channel, "dur", time.Since(start))
}

// Interaction answers one interaction (button click). Clicks are checked again here: Slack's
// confirm dialog is drawn by the client only.
func (h *Handler) Interaction(ctx context.Context, cb slack.InteractionCallback) {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	o := origin{user: cb.User.ID, channel: channel, responseURL: cb.ResponseURL}
	defer h.recoverPanic(ctx, o, "interaction")
	if cb.Type != slack.InteractionTypeBlockActions {
		h.logger.InfoContext(ctx, "interaction ignored", "type", cb.Type, "user", o.user)
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		h.click(ctx, o, cb, a)
	}
}

// recoverPanic turns a panic into an answer with a reference, and logs the panic and stack
// under the same reference.
func (h *Handler) recoverPanic(ctx context.Context, o origin, what string) {
	r := recover()
	if r == nil {
		return
	}
	ref := newRef()
	h.logger.ErrorContext(ctx, what+" panicked", "ref", ref, "user", o.user, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	h.reply(ctx, o, plain(fmt.Sprintf("Sorry, something went wrong (ref %s). The details are logged under that reference.", ref)))
}

// reply answers the sender privately: through the response URL, else as an ephemeral message.
func (h *Handler) reply(ctx context.Context, o origin, m bot.Message) {
	if o.responseURL != "" {
		err := h.poster.Respond(ctx, o.responseURL, m, bot.RespondOptions{})
		if err == nil {
			return
		}
		h.logger.WarnContext(ctx, "response url failed, answering ephemerally", "user", o.user, "channel", o.channel, "err", err)
	}
	if err := h.poster.Ephemeral(ctx, o.channel, o.user, m); err != nil {
		h.logger.ErrorContext(ctx, "answer lost", "user", o.user, "channel", o.channel, "err", err)
	}
}

// replyText answers the sender privately with mrkdwn text.
func (h *Handler) replyText(ctx context.Context, o origin, text string) {
	h.reply(ctx, o, plain(text))
}

// plain is a message of one mrkdwn section (text already escaped).
func plain(text string) bot.Message {
	return bot.Message{Text: fallback(text), Blocks: []slack.Block{section(text)}}
}

// newRef returns a short random reference that ties an answer to its log line.
func newRef() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newID returns a random identifier for confirmations and requests.
func newID() string { return strings.ToLower(rand.Text()) }

// serverIDs lists the servers' IDs.
func serverIDs(servers []migration.Server) []string {
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = s.ID
	}
	return ids
}
