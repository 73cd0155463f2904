// Command cutoverbot runs server cutovers with AWS Application Migration Service (MGN) from a
// Slack channel: status, weekly test launches, cutovers behind an approver's confirmation, and
// every launch's progress in a thread.
//
//	cutoverbot run       connect to Slack (Socket Mode or HTTP) and AWS, configured from the environment
//	cutoverbot demo      play the workflow against built-in emulators and print the channel
//	cutoverbot emulate   serve the MGN + EC2 and Slack emulators alone
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// The IANA time zone database, embedded so that CUTOVER_TZ works in any image.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "cutoverbot: %v\n", err)
		os.Exit(1)
	}
}

const usage = `cutoverbot runs server cutovers with AWS Application Migration Service (MGN) from Slack.

Usage:
  cutoverbot run                 connect to Slack (Socket Mode or HTTP) and AWS; configured by environment
  cutoverbot demo [-keep]        play the workflow against built-in emulators, print the channel, exit 0;
                                 -keep keeps the bot running, with a web view of the workspace
  cutoverbot emulate [-listen]   serve the MGN + EC2 and Slack emulators (and the web view) for manual use

Run "cutoverbot COMMAND -h" for a command's flags. "cutoverbot run -h" lists the environment.
`

// run is the program: it picks the subcommand from args. Only run reads the environment, through getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "run":
		return runBot(ctx, args[1:], getenv, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdin, stdout, stderr)
	case "emulate":
		return runEmulate(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

const runUsage = `Usage: cutoverbot run [-lift-bounds]

Connects to Slack and to AWS MGN + EC2, and runs until SIGINT or SIGTERM. Slack's requests
arrive over Socket Mode (the default; no public URL needed) or, with CUTOVER_SLACK_MODE=http,
as posts to POST /slack/events on CUTOVER_HTTP_ADDR (for several replicas behind a load
balancer). Configuration comes from the environment; a missing, malformed or out-of-bounds value stops
start-up with a message naming it.

  CUTOVER_SLACK_MODE       socket (default) or http
  SLACK_APP_TOKEN          app-level token (xapp-…) with connections:write (required in Socket Mode)
  SLACK_SIGNING_SECRET     the app's signing secret (required in HTTP mode): a request not signed
                           with it, or older than 5 minutes, is answered 401 and changes nothing
  SLACK_BOT_TOKEN          bot token (xoxb-…) (required)
  SLACK_API_URL            Slack Web API base URL (default https://slack.com/api/)
  CUTOVER_CHANNEL          migration channel ID, C… (required)
  CUTOVER_OPERATORS        user (U…) or user-group (S…) IDs allowed to launch tests and request cutovers (required)
  CUTOVER_APPROVERS        user or user-group IDs allowed to confirm cutovers and finalize (required)
  CUTOVER_SELF_APPROVAL    true lets the requester of a cutover or finalize approve it too (default false: two people)
  CUTOVER_APPROVALS        distinct approvers who must confirm a cutover or finalize (default 1, at most 10)
  CUTOVER_REMINDER_CRON    cron spec of the weekly test reminder (default "0 9 * * MON");
                           it must fire at most hourly and at least once a year
  CUTOVER_TZ               IANA time zone for the reminder and times shown (default UTC)
  CUTOVER_DATE             planned final cutover date, YYYY-MM-DD (optional)
  CUTOVER_DB               state store: an SQLite file path or sqlite:PATH (default cutoverbot.db),
                           or PostgreSQL for several replicas: a postgres:// or postgresql:// URL
                           (any letter case) or a key=value string (host=db user=bot password=…
                           dbname=cutover); anything else is refused; the password is never shown
  CUTOVER_RETENTION        how long audit rows, once-keys, finished jobs and closed confirmations
                           are kept: days (400d, the default) or a Go duration; at least 1 day
  CUTOVER_POLL_INTERVAL    how often running jobs' logs are read (default 15s; at least 1s)
  CUTOVER_WATCH_INTERVAL   how often source servers are read for notices (default 1m; at least 10s)
  CUTOVER_LAG_THRESHOLD    replication lag that blocks launches and raises a notice (default 15m)
  CUTOVER_COMMAND_TIMEOUT  time limit of one command or click (default 60s; at least 5s)
  CUTOVER_LEASE_TTL        when a replica dies while carrying out a confirmed cutover or finalize,
                           another takes it over this much later (default 15s; at least 5s, at most 1m)
  CUTOVER_HTTP_ADDR        /healthz, /readyz, /metrics and, in HTTP mode, /slack/events listener
                           (default :8080; port 0 picks one; off disables, not in HTTP mode)
  CUTOVER_LOG_FORMAT       json (default) or text;  CUTOVER_LOG_LEVEL debug|info|warn|error
  AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, …   the AWS SDK's standard chain
  AWS_ENDPOINT_URL_MGN, AWS_ENDPOINT_URL_EC2      point the AWS clients elsewhere (emulators)

Flags:
  -lift-bounds   for tests against the emulators (and the demo): skip the bounds above on the
                 intervals, the command timeout and the reminder schedule. Refused unless
                 SLACK_API_URL, AWS_ENDPOINT_URL_MGN and AWS_ENDPOINT_URL_EC2 are loopback
                 addresses; logged as a warning at start-up. CUTOVER_RETENTION keeps its bound.
`

func runBot(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage) }
	liftBounds := fs.Bool("lift-bounds", false, "skip the start-up bounds; only against loopback endpoints (the emulators)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(getenv, *liftBounds)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
