package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/handlers"
	"github.com/cutoverbot/cutoverbot/notifier"
	"github.com/cutoverbot/cutoverbot/store"
)

// app is cutoverbot wired together: what `run` runs, and what `demo` runs against the emulators.
type app struct {
	cfg      Config
	holder   string // this process, in leases
	logger   *slog.Logger
	store    *store.Store
	aws      *awsmgn.Client
	poster   *bot.Poster
	bot      *bot.Bot
	notifier *notifier.Notifier
	handlers *handlers.Handler
}

// newLogger builds the process's logger.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// awsConfig loads the SDK's standard chain, with what run read from the environment passed on
// explicitly.
func awsConfig(ctx context.Context, cfg Config) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			string(cfg.AccessKeyID), string(cfg.SecretKey), string(cfg.SessionToken))))
	}
	c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return c, nil
}

// newApp builds every part from the configuration. It opens the store (applying migrations)
// and checks nothing else over the network: connections are made by Run.
func newApp(ctx context.Context, cfg Config, logger *slog.Logger) (*app, error) {
	awsCfg, err := awsConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.BoundsLifted {
		logger.WarnContext(ctx, "start-up bounds lifted: for tests against the emulators only",
			"poll_interval", cfg.PollInterval, "watch_interval", cfg.WatchInterval,
			"command_timeout", cfg.CommandTimeout, "reminder_cron", cfg.ReminderCron)
	}
	st, err := store.Open(ctx, string(cfg.DB), logger)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	a := &app{cfg: cfg, holder: holderID(), logger: logger, store: st}
	a.aws = awsmgn.New(awsCfg, awsmgn.Options{
		MGNEndpoint: cfg.MGNEndpoint,
		EC2Endpoint: cfg.EC2Endpoint,
		Logger:      logger.With("component", "migration"),
	})
	api := slack.New(string(cfg.BotToken),
		slack.OptionAppLevelToken(string(cfg.AppToken)),
		slack.OptionAPIURL(cfg.SlackAPIURL))
	a.poster = bot.NewPoster(logger, api, bot.PosterConfig{ChannelInterval: cfg.PostInterval})
	a.notifier, err = notifier.New(logger, a.aws, a.poster, st, notifier.Config{
		Channel:       cfg.Channel,
		PollInterval:  cfg.PollInterval,
		WatchInterval: cfg.WatchInterval,
		LagThreshold:  cfg.LagThreshold,
		ReminderSpec:  cfg.ReminderCron,
		Location:      cfg.Location,
		CutoverDate:   cfg.CutoverDate,
		Holder:        a.holder,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	a.handlers = handlers.New(logger, a.aws, a.poster, st, a.notifier, api, handlers.Config{
		Channel:      cfg.Channel,
		Operators:    cfg.Operators,
		Approvers:    cfg.Approvers,
		SelfApproval: cfg.SelfApproval,
		Approvals:    cfg.Approvals,
		Location:     cfg.Location,
		CutoverDate:  cfg.CutoverDate,
		LagLimit:     cfg.LagThreshold,
		Holder:       a.holder,
		LeaseTTL:     cfg.LeaseTTL,
		// Queued batches of wave launches are tried about as often as jobs are polled.
		BatchInterval: 2 * cfg.PollInterval,
	})
	botCfg := bot.Config{CommandTimeout: cfg.CommandTimeout}
	if cfg.SlackMode == "http" {
		a.bot = bot.NewHTTP(logger, api, a.handlers, botCfg, string(cfg.SigningSecret))
	} else {
		a.bot = bot.New(logger, api, a.handlers, botCfg)
	}
	return a, nil
}

// Run runs the bot, the notifier and the HTTP endpoints until ctx ends or one of them fails.
func (a *app) Run(ctx context.Context) error {
	defer a.store.Close()
	// Listen before any actor starts: a failure here returns with nothing left running.
	var ln net.Listener
	if a.cfg.HTTPAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", a.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen on CUTOVER_HTTP_ADDR %s: %w", a.cfg.HTTPAddr, err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.bot.Run(ctx) })
	g.Go(func() error { return a.notifier.Run(ctx) })
	g.Go(func() error { return a.handlers.Run(ctx) })
	g.Go(func() error { return a.housekeeping(ctx) })
	if ln != nil {
		var unused unusedConns
		// Slack's requests are small and sent at once: a slow body is not Slack's.
		srv := &http.Server{Handler: a.httpHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			ConnState: unused.track}
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			unused.close()
			return srv.Shutdown(shutdown)
		})
		a.logger.Info("http endpoints listening", "addr", ln.Addr().String(), "slack_mode", a.cfg.SlackMode)
	}
	a.logger.Info("cutoverbot started", "channel", a.cfg.Channel, "store", a.store.Backend())
	err := g.Wait()
	a.logger.Info("cutoverbot stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// unusedConns tracks a server's connections that have carried no request yet. Shutdown waits for
// such a connection until it is 5 s old, though it carries nothing: HTTP clients (Slack's, load
// balancers) open spare connections they may never use.
type unusedConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// track is the server's ConnState hook.
func (u *unusedConns) track(c net.Conn, state http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if state != http.StateNew {
		delete(u.conns, c)
		return
	}
	if u.conns == nil {
		u.conns = map[net.Conn]struct{}{}
	}
	u.conns[c] = struct{}{}
}

// close closes the connections that carried no request.
func (u *unusedConns) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.conns {
		c.Close()
	}
}

// housekeeping prunes, once an hour, what is older than the retention. (Confirmation cards are
// expired and settled by the handlers' own loop.)
func (a *app) housekeeping(ctx context.Context) error {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if err := a.prune(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.logger.WarnContext(ctx, "prune old rows", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Retention: every replica tries once an hour; the one that takes the hour's lease prunes.
const (
	pruneEvery  = time.Hour
	pruneBudget = 10 * time.Minute // what is left is pruned in the next hour
	pruneLease  = "retention"
)

// prune deletes audit rows, once-keys, finished jobs and closed confirmations older than the
// retention, if this replica takes the hour's lease; the lease is kept for the hour, so that
// no other replica prunes in it.
func (a *app) prune(ctx context.Context, now time.Time) error {
	ok, err := a.store.AcquireLease(ctx, pruneLease, a.holder, pruneEvery, now)
	if err != nil || !ok {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, pruneBudget)
	defer cancel()
	before := now.Add(-a.cfg.Retention)
	p, err := a.store.Prune(ctx, before, store.PruneOptions{})
	if p != (store.Pruned{}) {
		a.logger.InfoContext(ctx, "pruned old rows", "before", before, "audit", p.Audit, "once_keys", p.OnceKeys,
			"jobs", p.Jobs, "confirmations", p.Confirmations, "reminders", p.Reminders, "group_launches", p.GroupLaunches)
	}
	return err
}

// httpHandler serves /healthz (the process runs), /readyz (Slack's requests reach the bot and
// the store is reachable), /metrics (Prometheus) and, in HTTP mode, Slack's request URL
// POST /slack/events.
func (a *app) httpHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cutoverbot_slack_connected",
		Help: "1 when Slack's requests reach the bot: the Socket Mode connection is up, or in HTTP mode the request URL is served.",
	}, func() float64 {
		if a.bot.Ready() {
			return 1
		}
		return 0
	}))
	reg.MustRegister(&awsCallsCollector{c: a.aws}, &botCollector{b: a.bot})
	mux := http.NewServeMux()
	notReady := "slack socket not connected"
	if a.cfg.SlackMode == "http" {
		// Every replica behind the load balancer takes any request: the state they share is
		// in the store.
		mux.Handle("POST /slack/events", a.bot)
		notReady = "not serving slack requests"
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		switch {
		case !a.bot.Ready():
			http.Error(w, notReady, http.StatusServiceUnavailable)
		case a.store.Ping(ctx) != nil:
			http.Error(w, "store unreachable", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// awsCallsCollector exports how many calls the bot made per AWS operation.
type awsCallsCollector struct{ c *awsmgn.Client }

var awsCallsDesc = prometheus.NewDesc("cutoverbot_aws_calls_total", "AWS API calls by operation (retries not counted).", []string{"operation"}, nil)

func (c *awsCallsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- awsCallsDesc }

func (c *awsCallsCollector) Collect(ch chan<- prometheus.Metric) {
	for op, n := range c.c.Calls() {
		ch <- prometheus.MustNewConstMetric(awsCallsDesc, prometheus.CounterValue, float64(n), op)
	}
}

// botCollector exports the bot's counters of Slack's requests.
type botCollector struct{ b *bot.Bot }

var botDesc = prometheus.NewDesc("cutoverbot_slack_envelopes_total", "Slack's requests (Socket Mode envelopes or HTTP requests) by what became of them.", []string{"outcome"}, nil)
var botConnDesc = prometheus.NewDesc("cutoverbot_slack_connects_total", "Socket Mode connections opened.", nil, nil)

func (c *botCollector) Describe(ch chan<- *prometheus.Desc) { ch <- botDesc; ch <- botConnDesc }

func (c *botCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	for outcome, n := range map[string]uint64{
		"received": s.Received, "acked": s.Acked, "ack_error": s.AckErrors, "busy": s.Busy,
		"duplicate": s.Duplicates, "dispatched": s.Dispatched, "dropped": s.Dropped, "rejected": s.Rejected,
	} {
		ch <- prometheus.MustNewConstMetric(botDesc, prometheus.CounterValue, float64(n), outcome)
	}
	ch <- prometheus.MustNewConstMetric(botConnDesc, prometheus.CounterValue, float64(s.Connects))
}

// holderID names this process for leases: host, pid and start time.
func holderID() string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}
