package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/render"
)

const demoUsage = `Usage: cutoverbot demo [flags]

Runs cutoverbot against its built-in MGN + EC2 and Slack emulators with a sample fleet, plays
the workflow (fleet status with its waves; a refused launch of a server still syncing; a test
launch of a wave, a server still syncing left out and the others followed in one thread to their
IPs and the results of their post-launch actions; a cutover requested by an operator, refused to someone not allowed, confirmed by an
approver and followed to its IPs; the weekly reminder) and prints the channel as a person would
read it. It needs no Slack workspace and no AWS account, and exits 0 when the workflow worked.

With -keep it keeps running afterwards: watch and use the workspace in a browser at the web
view's address it prints (pick ann, bob or eve and type /cutover commands), or type lines such
as "ann: /cutover status" in the terminal.

Flags:
`

func runDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep running afterwards, with a web view of the workspace, and read commands from standard input (\"ann: /cutover status\", \"bob: click confirm\")")
	verbose := fs.Bool("v", false, "show cutoverbot's logs on stderr")
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sb, err := startSandbox(sandboxOptions{
		MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0",
		Pace: mgnemu.FastPace(), PostInterval: 100 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	defer sb.Close()
	dir, err := os.MkdirTemp("", "cutoverbot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	getenv := sb.getenv(map[string]string{
		"CUTOVER_DB":             filepath.Join(dir, "cutoverbot.db"),
		"CUTOVER_POLL_INTERVAL":  "500ms",
		"CUTOVER_WATCH_INTERVAL": "2s",
		"CUTOVER_HTTP_ADDR":      "off",
		"CUTOVER_DATE":           time.Now().AddDate(0, 0, 24).Format(time.DateOnly),
	})
	// The demo's pace needs intervals below the start-up bounds, against its own emulators.
	cfg, err := loadConfig(getenv, true)
	if err != nil {
		return err
	}
	cfg.PostInterval = 100 * time.Millisecond
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := func() error {
		cancel()
		return <-done
	}

	d := &demo{sb: sb, a: a, out: stdout}
	if *keep {
		d.webView()
	}
	if err := d.play(ctx); err != nil {
		stop()
		return fmt.Errorf("demo: %w", err)
	}
	if *keep {
		d.interactive(ctx, stdin)
	}
	return stop()
}

// demo plays the workflow through the Slack emulator, as the people in the channel would.
type demo struct {
	sb  *sandbox
	a   *app
	out io.Writer
}

const stepTimeout = 30 * time.Second

func (d *demo) play(ctx context.Context) error {
	fmt.Fprintf(d.out, "cutoverbot demo: a sample fleet in MGN, channel #migration; ann is an operator, bob an approver, eve neither.\n")
	if err := d.waitConnected(ctx); err != nil {
		return err
	}
	d.say("1. Is everything in sync? Ann asks for the fleet status.")
	if err := d.command(ctx, sandboxOperator, "status"); err != nil {
		return err
	}
	d.say("2. Ann tries to launch a test of web02, which is still in its initial sync.")
	if err := d.command(ctx, sandboxOperator, "launch web02 test"); err != nil {
		return err
	}
	d.say(`3. Ann launches this week's test of wave "Wave 1": web02, still syncing, is left out; web01 and api01 launch,
   followed in one thread to their IPs and web01's post-launch actions (a smoke test and the CloudWatch agent).`)
	if err := d.command(ctx, sandboxOperator, `launch wave "Wave 1" test`); err != nil {
		return err
	}
	if err := d.waitJobEnd(ctx, 1); err != nil {
		return err
	}
	d.printThread(1)
	d.say("4. Ann requests the cutover of db01: a confirmation card for an approver.")
	if err := d.command(ctx, sandboxOperator, "launch db01 cutover"); err != nil {
		return err
	}
	card, err := d.newestWithButton(render.ActionConfirm)
	if err != nil {
		return err
	}
	d.say("   Eve presses Confirm cutover; she is not an approver.")
	if err := d.click(ctx, sandboxOther, card.TS, render.ActionConfirm, 1); err != nil {
		return err
	}
	d.say("   Bob, an approver, presses Confirm cutover and confirms Slack's dialog: he is told at once that his click\n" +
		"   decided it, then what MGN did.")
	if err := d.click(ctx, sandboxApprover, card.TS, render.ActionConfirm, 2); err != nil {
		return err
	}
	if err := d.waitJobEnd(ctx, 2); err != nil {
		return err
	}
	d.printThread(2)
	d.say("5. Monday 09:00: the weekly reminder lists servers whose last test is over 7 days old.")
	before := len(d.sb.slack.Messages(sandboxChannel))
	if err := d.a.notifier.Remind(ctx, time.Now()); err != nil {
		return err
	}
	for _, m := range d.sb.slack.Messages(sandboxChannel)[before:] {
		d.print("#migration", m)
	}
	d.say("The channel as the team reads it:")
	d.transcript()
	return nil
}

func (d *demo) say(s string) { fmt.Fprintf(d.out, "\n== %s\n", s) }

// webView says where the Slack emulator's web view is.
func (d *demo) webView() {
	fmt.Fprintf(d.out, "Web view of the workspace (act as ann, bob or eve): %s\n", d.sb.slack.WebURL())
}

func (d *demo) waitConnected(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := d.sb.slack.WaitFor(ctx, func(s *slackemu.Server) bool { return s.Connections() > 0 }); err != nil {
		return errors.New("cutoverbot did not connect to the Slack emulator")
	}
	return nil
}

// view is what a person sees at one moment: the ephemeral messages shown to them, and every
// channel message and thread reply with its edit count.
type view struct {
	ephemeral int
	seen      map[string]int // ts -> edits
}

func (d *demo) look(user string) view {
	v := view{ephemeral: len(d.sb.slack.Ephemerals(user)), seen: map[string]int{}}
	d.eachMessage(func(m slackemu.Message, _ bool) { v.seen[m.TS] = m.Edits })
	return v
}

// eachMessage visits the channel's messages in order, each followed by its thread's replies.
func (d *demo) eachMessage(fn func(m slackemu.Message, reply bool)) {
	for _, m := range d.sb.slack.Messages(sandboxChannel) {
		if m.ThreadTS != "" && m.ThreadTS != m.TS {
			continue // a broadcast reply; visited in its thread
		}
		fn(m, false)
		for _, r := range d.sb.slack.Replies(sandboxChannel, m.TS) {
			fn(r, true)
		}
	}
}

// changed reports whether anything the user sees differs from before.
func (d *demo) changed(user string, before view) bool {
	now := d.look(user)
	if now.ephemeral > before.ephemeral || len(now.seen) > len(before.seen) {
		return true
	}
	for ts, edits := range now.seen {
		if before.seen[ts] != edits {
			return true
		}
	}
	return false
}

// command sends "/cutover text" as user and prints what that user then sees.
func (d *demo) command(ctx context.Context, user, text string) error {
	fmt.Fprintf(d.out, "%s: /cutover %s\n", sandboxUsers[user], text)
	before := d.look(user)
	del, err := d.sb.slack.SlashCommand(ctx, user, sandboxChannel, text)
	if err != nil {
		return err
	}
	return d.answer(ctx, del, user, before, 0)
}

// click presses a button as user and prints what that user then sees, once they have at least
// answers private answers.
func (d *demo) click(ctx context.Context, user, ts, actionID string, answers int) error {
	before := d.look(user)
	del, err := d.sb.slack.Click(ctx, user, sandboxChannel, ts, actionID)
	if err != nil {
		return err
	}
	return d.answer(ctx, del, user, before, answers)
}

// answer waits for Slack's ack, the first visible change and at least answers private answers,
// then prints what changed.
func (d *demo) answer(ctx context.Context, del *slackemu.Delivery, user string, before view, answers int) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	ack, err := del.WaitAck(ctx)
	if err != nil || ack.TimedOut {
		return fmt.Errorf("cutoverbot did not acknowledge within Slack's 3 seconds")
	}
	if err := d.sb.slack.WaitFor(ctx, func(s *slackemu.Server) bool {
		return d.changed(user, before) && len(s.Ephemerals(user)) >= before.ephemeral+answers
	}); err != nil {
		return errors.New("no answer in Slack")
	}
	for _, m := range d.sb.slack.Ephemerals(user)[before.ephemeral:] {
		d.print("only visible to "+sandboxUsers[user], m)
	}
	d.eachMessage(func(m slackemu.Message, reply bool) {
		edits, ok := before.seen[m.TS]
		where := "#migration"
		if reply {
			where = "  └ thread"
		}
		switch {
		case !ok:
			d.print(where, m)
		case edits != m.Edits:
			d.print(where+" (updated)", m)
		}
	})
	return nil
}

// waitJobEnd waits until n launch threads have their final, broadcast reply.
func (d *demo) waitJobEnd(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*stepTimeout)
	defer cancel()
	err := d.sb.slack.WaitFor(ctx, func(s *slackemu.Server) bool { return len(d.finished()) >= n })
	if err != nil {
		return fmt.Errorf("launch %d did not finish in Slack", n)
	}
	return nil
}

// finished lists the thread parents whose thread has a broadcast reply (the final report).
func (d *demo) finished() []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range d.sb.slack.Messages(sandboxChannel) {
		if m.Broadcast && m.ThreadTS != "" && !seen[m.ThreadTS] {
			seen[m.ThreadTS] = true
			out = append(out, m.ThreadTS)
		}
	}
	return out
}

func (d *demo) printThread(n int) {
	f := d.finished()
	if len(f) < n {
		return
	}
	parent := f[n-1]
	for _, m := range d.sb.slack.Messages(sandboxChannel) {
		if m.TS == parent {
			d.print("#migration", m)
		}
	}
	for _, r := range d.sb.slack.Replies(sandboxChannel, parent) {
		d.print("  └ thread", r)
	}
}

func (d *demo) newestWithButton(actionID string) (slackemu.Message, error) {
	var found *slackemu.Message
	d.eachMessage(func(m slackemu.Message, _ bool) {
		for _, b := range m.Buttons() {
			if render.BaseActionID(b.ActionID) == actionID {
				found = &m
			}
		}
	})
	if found == nil {
		return slackemu.Message{}, fmt.Errorf("no message with a %q button in #migration", actionID)
	}
	return *found, nil
}

func (d *demo) print(where string, m slackemu.Message) {
	text := strings.TrimSpace(d.sb.slack.Render(m))
	if text == "" {
		text = m.Text
	}
	indent := "    "
	fmt.Fprintf(d.out, "  [%s]\n%s%s\n", where, indent, strings.ReplaceAll(text, "\n", "\n"+indent))
}

// transcript prints the channel top to bottom, each thread under its parent.
func (d *demo) transcript() {
	d.eachMessage(func(m slackemu.Message, reply bool) {
		where := "#migration "
		if reply {
			where = "  └ thread "
		}
		d.print(where+d.clock(m), m)
	})
}

func (d *demo) clock(m slackemu.Message) string { return m.Posted.Format("15:04:05") }

// interactive reads "user: /cutover …" and "user: click ACTION" lines until EOF or ctx ends.
func (d *demo) interactive(ctx context.Context, stdin io.Reader) {
	fmt.Fprintln(d.out, "\nThe bot keeps running.")
	d.webView()
	fmt.Fprintln(d.out, "Or type lines such as")
	fmt.Fprintln(d.out, "  ann: /cutover status web01")
	fmt.Fprintln(d.out, "  bob: click confirm        (presses the newest button with that action ID)")
	fmt.Fprintln(d.out, "Users: ann (operator), bob (approver), eve. End with Ctrl-D.")
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	ids := map[string]string{}
	for id, name := range sandboxUsers {
		ids[name] = id
	}
	for {
		fmt.Fprint(d.out, "> ")
		var line string
		select {
		case <-ctx.Done():
			return
		case l, ok := <-lines:
			if !ok {
				return
			}
			line = l
		}
		name, rest, ok := strings.Cut(line, ":")
		user := ids[strings.TrimSpace(name)]
		rest = strings.TrimSpace(rest)
		if !ok || user == "" {
			fmt.Fprintln(d.out, "say who: ann, bob or eve, then a colon")
			continue
		}
		var err error
		switch {
		case strings.HasPrefix(rest, "/cutover"):
			err = d.command(ctx, user, strings.TrimSpace(strings.TrimPrefix(rest, "/cutover")))
		case strings.HasPrefix(rest, "click "):
			var m slackemu.Message
			action := strings.TrimSpace(strings.TrimPrefix(rest, "click "))
			fmt.Fprintf(d.out, "%s presses the newest %q button\n", sandboxUsers[user], action)
			if m, err = d.newestWithButton(action); err == nil {
				err = d.click(ctx, user, m.TS, action, 0)
			}
		default:
			err = errors.New("type /cutover … or click ACTION")
		}
		if err != nil {
			fmt.Fprintln(d.out, err)
		}
	}
}
