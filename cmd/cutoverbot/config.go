package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/handlers"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/notifier"
	"github.com/cutoverbot/cutoverbot/store"
)

// secret is the type of every secret in Config: bot.Token, which never shows in logs, printed
// configuration or encoded JSON.
type secret = bot.Token

// Config is everything cutoverbot reads from its environment.
type Config struct {
	AppToken, BotToken secret
	SlackAPIURL        string // Slack Web API base URL, ending in "/"
	SlackMode          string // "socket" (Socket Mode) or "http" (Slack posts to /slack/events)
	SigningSecret      secret // HTTP mode: the app's signing secret

	Channel      string
	Operators    []string // user (U…/W…) or user-group (S…) IDs
	Approvers    []string
	SelfApproval bool // whether a cutover's requester may also confirm it
	Approvals    int  // distinct approvers a cutover or finalize needs
	// LeaseTTL is how long the replica that took a confirming click owns carrying it out
	// without renewing; when it dies, another replica takes the work over after this.
	LeaseTTL time.Duration

	ReminderCron string
	Location     *time.Location
	CutoverDate  time.Time // zero when no date is planned

	DB            secret // CUTOVER_DB as given, which may hold a password; see store.ParseDSN
	PollInterval  time.Duration
	WatchInterval time.Duration
	LagThreshold  time.Duration
	HTTPAddr      string // "" when disabled

	// AWS: the SDK's standard chain, with these read explicitly so they can be passed on.
	Region                   string
	MGNEndpoint, EC2Endpoint string
	AccessKeyID, SecretKey   secret
	SessionToken             secret
	Profile                  string

	CommandTimeout time.Duration
	// PostInterval is Slack's per-channel posting pace (1 s); the demo's emulator allows faster.
	PostInterval time.Duration
	LogFormat    string // "json" or "text"
	LogLevel     string

	// Retention is how long audit rows, once-keys, finished jobs and closed confirmations are
	// kept (CUTOVER_RETENTION, at least a day).
	Retention time.Duration
	// BoundsLifted means the bounds on intervals and the reminder schedule were not applied
	// (run's -lift-bounds flag), which is allowed only against loopback endpoints.
	BoundsLifted bool
}

var (
	channelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	memberID  = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
)

// LoadConfig reads the configuration through getenv and checks it, bounds included (see
// checkBounds). It reports every missing, malformed or out-of-bounds variable at once, each by
// name.
func LoadConfig(getenv func(string) string) (Config, error) { return loadConfig(getenv, false) }

// loadConfig is LoadConfig; with liftBounds it skips the bounds and requires the Slack and AWS
// endpoints to be loopback addresses instead (tests and the demo, against the emulators).
func loadConfig(getenv func(string) string, liftBounds bool) (Config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name, def string) time.Duration {
		v := get(name, def)
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(name, "%q is not a positive Go duration such as 15s or 1m", v)
		}
		return d
	}
	ids := func(name string) []string {
		v := get(name, "")
		if v == "" {
			bad(name, "is required: comma-separated Slack user IDs (U…) or user-group IDs (S…)")
			return nil
		}
		var (
			out       []string
			malformed bool
		)
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if !memberID.MatchString(f) {
				bad(name, "%q is not a Slack user ID (U…) or user-group ID (S…)", f)
				malformed = true
				continue
			}
			out = append(out, f)
		}
		if len(out) == 0 && !malformed {
			bad(name, "%q names nobody: comma-separated Slack user IDs (U…) or user-group IDs (S…)", v)
		}
		return out
	}

	c := Config{
		AppToken:     secret(get("SLACK_APP_TOKEN", "")),
		BotToken:     secret(get("SLACK_BOT_TOKEN", "")),
		SlackAPIURL:  get("SLACK_API_URL", "https://slack.com/api/"),
		Channel:      get("CUTOVER_CHANNEL", ""),
		DB:           secret(get("CUTOVER_DB", store.DefaultSQLitePath)),
		Region:       get("AWS_REGION", getenv("AWS_DEFAULT_REGION")),
		MGNEndpoint:  get("AWS_ENDPOINT_URL_MGN", getenv("AWS_ENDPOINT_URL")),
		EC2Endpoint:  get("AWS_ENDPOINT_URL_EC2", getenv("AWS_ENDPOINT_URL")),
		AccessKeyID:  secret(get("AWS_ACCESS_KEY_ID", "")),
		SecretKey:    secret(get("AWS_SECRET_ACCESS_KEY", "")),
		SessionToken: secret(get("AWS_SESSION_TOKEN", "")),
		Profile:      get("AWS_PROFILE", ""),
		LogFormat:    get("CUTOVER_LOG_FORMAT", "json"),
		LogLevel:     get("CUTOVER_LOG_LEVEL", "info"),
	}
	c.SlackMode = get("CUTOVER_SLACK_MODE", "socket")
	c.SigningSecret = secret(get("SLACK_SIGNING_SECRET", ""))
	switch c.SlackMode {
	case "socket":
	case "http":
		if c.SigningSecret == "" {
			bad("SLACK_SIGNING_SECRET", "is required in HTTP mode: the app's signing secret (Basic Information, App Credentials)")
		}
	default:
		bad("CUTOVER_SLACK_MODE", "%q is not socket or http", c.SlackMode)
	}
	switch {
	case c.SlackMode == "http": // Slack posts to the request URL: no socket, no app token
	case c.AppToken == "":
		bad("SLACK_APP_TOKEN", "is required: the app-level token (xapp-…) with connections:write, for Socket Mode")
	case !strings.HasPrefix(string(c.AppToken), "xapp-"):
		bad("SLACK_APP_TOKEN", "must be an app-level token starting with xapp-")
	}
	switch {
	case c.BotToken == "":
		bad("SLACK_BOT_TOKEN", "is required: the bot token (xoxb-…)")
	case !strings.HasPrefix(string(c.BotToken), "xoxb-"):
		bad("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-")
	}
	if u, err := url.Parse(c.SlackAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("SLACK_API_URL", "%q is not an http(s) URL", c.SlackAPIURL)
	} else if !strings.HasSuffix(c.SlackAPIURL, "/") {
		c.SlackAPIURL += "/"
	}
	switch {
	case c.Channel == "":
		bad("CUTOVER_CHANNEL", "is required: the ID of the migration channel (C…), not its name")
	case !channelID.MatchString(c.Channel):
		bad("CUTOVER_CHANNEL", "%q is not a channel ID (C… or G…); copy it from the channel's details", c.Channel)
	}
	c.Operators = ids("CUTOVER_OPERATORS")
	c.Approvers = ids("CUTOVER_APPROVERS")
	selfApproval := get("CUTOVER_SELF_APPROVAL", "false")
	if b, err := strconv.ParseBool(selfApproval); err != nil {
		bad("CUTOVER_SELF_APPROVAL", "%q is not true or false", selfApproval)
	} else {
		c.SelfApproval = b
	}

	approvals := get("CUTOVER_APPROVALS", "1")
	if n, err := strconv.Atoi(approvals); err != nil || n < 1 || n > 10 {
		bad("CUTOVER_APPROVALS", "%q is not a number of approvers from 1 to 10", approvals)
	} else {
		c.Approvals = n
		groups := slices.ContainsFunc(c.Approvers, func(id string) bool { return strings.HasPrefix(id, "S") })
		if !groups && len(c.Approvers) > 0 && n > len(c.Approvers) {
			bad("CUTOVER_APPROVALS", "%d approvals are needed but CUTOVER_APPROVERS names only %d people and no user group: every card would expire", n, len(c.Approvers))
		}
	}

	c.ReminderCron = get("CUTOVER_REMINDER_CRON", notifier.DefaultReminderSpec)
	if _, err := cron.ParseStandard(c.ReminderCron); err != nil {
		bad("CUTOVER_REMINDER_CRON", "%q is not a cron spec (minute hour day-of-month month day-of-week, e.g. \"0 9 * * MON\"): %v", c.ReminderCron, err)
	}
	tz := get("CUTOVER_TZ", "UTC")
	loc, err := time.LoadLocation(tz)
	if err != nil {
		bad("CUTOVER_TZ", "%q is not an IANA time zone such as Europe/Berlin", tz)
		loc = time.UTC
	}
	c.Location = loc
	if v := get("CUTOVER_DATE", ""); v != "" {
		d, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			bad("CUTOVER_DATE", "%q is not a date in the form YYYY-MM-DD", v)
		}
		c.CutoverDate = d
	}
	c.PollInterval = dur("CUTOVER_POLL_INTERVAL", notifier.DefaultPollInterval.String())
	c.WatchInterval = dur("CUTOVER_WATCH_INTERVAL", notifier.DefaultWatchInterval.String())
	c.LagThreshold = dur("CUTOVER_LAG_THRESHOLD", migration.DefaultLagLimit.String())
	c.CommandTimeout = dur("CUTOVER_COMMAND_TIMEOUT", "60s")
	c.LeaseTTL = dur("CUTOVER_LEASE_TTL", handlers.DefaultLeaseTTL.String())
	if addr := get("CUTOVER_HTTP_ADDR", ":8080"); addr != "off" {
		if _, port, err := net.SplitHostPort(addr); err != nil || !validPort(port) {
			bad("CUTOVER_HTTP_ADDR", "%q is not host:port (\":8080\", \"127.0.0.1:0\") or off", addr)
		}
		c.HTTPAddr = addr
	} else if c.SlackMode == "http" {
		bad("CUTOVER_HTTP_ADDR", "cannot be off in HTTP mode: Slack posts its requests to /slack/events on it")
	}
	for _, e := range []struct{ name, url string }{{"AWS_ENDPOINT_URL_MGN", c.MGNEndpoint}, {"AWS_ENDPOINT_URL_EC2", c.EC2Endpoint}} {
		if e.url == "" {
			continue
		}
		if p, err := url.Parse(e.url); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(e.name, "%q is not an http(s) URL", e.url)
		}
	}
	if c.Region == "" && c.Profile == "" {
		bad("AWS_REGION", "is required (or AWS_PROFILE with a region): the Region where MGN runs, e.g. eu-central-1")
	}
	if (c.AccessKeyID == "") != (c.SecretKey == "") {
		bad("AWS_ACCESS_KEY_ID", "and AWS_SECRET_ACCESS_KEY go together; set both or neither")
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("CUTOVER_LOG_FORMAT", "%q is not json or text", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("CUTOVER_LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if _, err := store.ParseDSN(string(c.DB)); err != nil {
		bad("CUTOVER_DB", "%v", err)
	}
	retention := get("CUTOVER_RETENTION", "400d")
	if d, err := parseRetention(retention); err != nil {
		bad("CUTOVER_RETENTION", "%v", err)
	} else {
		c.Retention = d
	}
	if liftBounds {
		errs = append(errs, loopbackOnly(c)...)
		c.BoundsLifted = true
	} else {
		errs = append(errs, checkBounds(c, time.Now())...)
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration:\n  %w", joinLines(errs))
	}
	return c, nil
}

// validPort reports whether p is a port number, 0 (any free port) to 65535.
func validPort(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n <= 65535
}

// joinLines joins errors one per line, indented under the heading.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}
