package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
)

const emulateUsage = `Usage: cutoverbot emulate [flags]

Serves the MGN + EC2 emulator (the AWS SDK's wire protocols on one listener) and the Slack
emulator (Web API and Socket Mode), with a sample fleet and workspace, until interrupted. It
prints the environment that points "cutoverbot run" (or any AWS SDK or slack-go client) at them.
With -request-url the Slack emulator posts slash commands and clicks to that URL, signed, as
Slack does for an app in HTTP mode. A launch job runs through all its events in about 10
seconds; -realistic takes about 12 minutes.

The Slack emulator also serves a web view of the workspace at its address (printed): the
channel as the Slack client shows it, with threads, buttons, confirm dialogs and ephemeral
messages. Pick who you act as (ann, bob or eve) and type /cutover commands in its composer.

Flags:
`

func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4566", "address of the MGN + EC2 emulator (port 0 picks a free one)")
	slackListen := fs.String("slack-listen", "127.0.0.1:4567", "address of the Slack emulator")
	realistic := fs.Bool("realistic", false, "run launch jobs at a real-world pace (minutes instead of seconds)")
	servers := fs.Int("servers", 0, "generate this many extra source servers (MGN allows up to 4,000)")
	verbose := fs.Bool("v", false, "log every request to stderr")
	requestURL := fs.String("request-url", "", "post Slack's requests to this URL (HTTP mode, e.g. http://127.0.0.1:8080/slack/events) instead of Socket Mode")
	fs.Usage = func() { fmt.Fprint(stderr, emulateUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	var httpAddr string
	if *requestURL != "" {
		u, err := url.Parse(*requestURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-request-url %q is not an http(s) URL", *requestURL)
		}
		httpAddr = u.Host
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	pace := mgnemu.FastPace()
	if *realistic {
		pace = mgnemu.RealisticPace()
	}
	sb, err := startSandbox(sandboxOptions{MGNAddr: *listen, SlackAddr: *slackListen, Pace: pace, Servers: *servers, Logger: logger})
	if err != nil {
		return err
	}
	defer sb.Close()
	fmt.Fprintln(stdout, "# MGN + EC2 and Slack emulators are running; press Ctrl-C to stop.")
	fmt.Fprintf(stdout, "# Web view of the Slack workspace (act as ann, bob or eve): %s\n", sb.slack.WebURL())
	fmt.Fprintln(stdout, "# Point cutoverbot (or an AWS SDK / slack-go client) at them with:")
	for _, kv := range sb.env() {
		fmt.Fprintf(stdout, "export %s=%q\n", kv[0], kv[1])
	}
	if httpAddr != "" {
		sb.slack.SetRequestURL(*requestURL)
		fmt.Fprintf(stdout, "export CUTOVER_SLACK_MODE=http CUTOVER_HTTP_ADDR=%q   # Slack posts to %s\n", httpAddr, *requestURL)
	}
	console := strings.TrimSuffix(sb.slack.URL(), "/api/") + "/console"
	fmt.Fprintf(stdout, `#
# Then, in another terminal: cutoverbot run
# and act as the people in #migration (%s) in the web view, or with curl: ann (%s, operator),
# bob (%s, approver), eve (%s):
#   curl -d user=%s -d channel=%s -d text='status' %s/command
#   curl -d user=%s -d channel=%s -d text='launch db01 cutover' %s/command
#   curl -d user=%s -d channel=%s -d action=confirm %s/click
#   curl %s/channel/%s
`, sandboxChannel, sandboxOperator, sandboxApprover, sandboxOther,
		sandboxOperator, sandboxChannel, console,
		sandboxOperator, sandboxChannel, console,
		sandboxApprover, sandboxChannel, console,
		console, sandboxChannel)
	<-ctx.Done()
	return nil
}
