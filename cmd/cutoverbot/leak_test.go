package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// randomSecret returns prefix and 16 random hex digits: a value that appears in the bot's
// output only if the bot printed it.
func randomSecret(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// leakScan collects the secrets a test gives the bot and finds any of them in its output.
type leakScan struct {
	secrets map[string]string // what -> value
}

func (l *leakScan) add(what, value string) { l.secrets[what] = value }

// addResponseURL records a response URL Slack issued: its path is the secret, wherever it
// shows, with or without the host.
func (l *leakScan) addResponseURL(t *testing.T, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || len(u.Path) < 2 {
		t.Fatalf("response URL %q has no path", raw)
	}
	l.secrets["response URL "+raw] = u.Path
}

// check fails the test for every secret that shows in out.
func (l *leakScan) check(t *testing.T, out string) {
	t.Helper()
	for what, v := range l.secrets {
		if i := strings.Index(out, v); i >= 0 {
			line := out[strings.LastIndex(out[:i], "\n")+1:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			t.Errorf("%s leaked into the output:\n%s", what, line)
		}
	}
}

// TestNoSecretInOutput runs the real bot (`cutoverbot run` in its own process, debug logs)
// against the emulators through faults (MGN throttling and 5xx, response URLs whose
// connections drop, Slack rate limits and refused requests) and scans everything the process
// wrote, stdout and stderr, for every secret it was given: the Slack tokens, the AWS
// credentials, the database password (when a PostgreSQL test database is available; the
// refused DSNs are TestRefusedDSNsShowNoPassword's) and every response URL Slack issued.
func TestNoSecretInOutput(t *testing.T) {
	scan := &leakScan{secrets: map[string]string{}}
	botToken, appToken := randomSecret("xoxb-"), randomSecret("xapp-")
	scan.add("SLACK_BOT_TOKEN", botToken)
	scan.add("SLACK_APP_TOKEN", appToken)
	aws := map[string]string{
		"AWS_ACCESS_KEY_ID":     randomSecret("AKIA"),
		"AWS_SECRET_ACCESS_KEY": randomSecret("aws-secret-"),
		"AWS_SESSION_TOKEN":     randomSecret("aws-session-"),
	}
	for k, v := range aws {
		scan.add(k, v)
	}

	clock := mgnemu.NewManualClock(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	sb, err := startSandbox(sandboxOptions{MGNAddr: "127.0.0.1:0", SlackAddr: "127.0.0.1:0", PostInterval: -1,
		Now: clock.Now, BotToken: botToken, AppToken: appToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	e := &e2e{t: t, sb: sb, clock: clock, logs: &testrig.SyncBuffer{}}
	e.dumpOnFail()

	env := e.procEnv(aws)
	env["CUTOVER_LOG_LEVEL"] = "debug"
	env["CUTOVER_DB"] = filepath.Join(t.TempDir(), "cutoverbot.db")
	if os.Getenv(storetest.PostgresEnv) != "" {
		dsn, password := withPassword(t, storetest.Postgres(t))
		env["CUTOVER_DB"] = dsn
		scan.add("the database password", password)
	} else {
		t.Logf("no PostgreSQL test database (%s): the bot runs on SQLite, without a database password", storetest.PostgresEnv)
	}
	p := e.startProcConnected("bot", env, 1)

	// command sends /cutover text as user, records its response URL and waits for an answer.
	command := func(user, text string) {
		t.Helper()
		before := len(sb.slack.Ephemerals(user))
		d, err := sb.slack.SlashCommand(t.Context(), user, sandboxChannel, text)
		if err != nil {
			t.Fatal(err)
		}
		scan.addResponseURL(t, d.ResponseURL)
		e.acked(d)
		e.wait(func(s *slackemu.Server) bool { return len(s.Ephemerals(user)) > before }, "an answer to /cutover "+text)
	}
	click := func(user, ts, actionID string) {
		t.Helper()
		d, err := sb.slack.Click(t.Context(), user, sandboxChannel, ts, actionID)
		if err != nil {
			t.Fatal(err)
		}
		scan.addResponseURL(t, d.ResponseURL)
		e.acked(d)
	}

	// MGN throttles, then fails with 5xx past the SDK's retries.
	sb.mgn.Throttle("DescribeSourceServers", 2)
	command(sandboxOperator, "status")
	sb.mgn.Fail("DescribeSourceServers", 1000, 500, "InternalServerException")
	command(sandboxOperator, "status web01")
	p.waitLog("the 5xx from MGN", "InternalServerException")
	sb.mgn.Fail("DescribeSourceServers", 0, 500, "")

	// A response URL whose connections drop: the bot retries, then answers ephemerally.
	sb.slack.DropResponses(1000)
	command(sandboxOperator, "help")

	// Slack rate-limits posts and updates while a test launch is followed, and reading the
	// job's log fails once with a 5xx.
	sb.slack.DropResponses(0)
	sb.mgn.Fail("DescribeJobLogItems", 1, 503, "ServiceUnavailableException")
	sb.slack.RateLimit("chat.postMessage", 2, time.Second)
	sb.slack.RateLimit("chat.update", 1, time.Second)
	command(sandboxOperator, "launch web01 test")
	e.finishJobs(1)

	// A cutover: refused to eve, whose answer is sent again after a dropped connection, and
	// confirmed by bob.
	command(sandboxOperator, "launch db01 cutover")
	card, ok := e.findChannel(func(m slackemu.Message) bool { return hasButton(m, render.ActionConfirm) })
	if !ok {
		t.Fatal("no confirmation card in the channel")
	}
	sb.slack.DropResponses(1)
	before := len(sb.slack.Ephemerals(sandboxOther))
	click(sandboxOther, card.TS, render.ActionConfirm)
	e.wait(func(s *slackemu.Server) bool { return len(s.Ephemerals(sandboxOther)) > before }, "eve's refusal")
	click(sandboxApprover, card.TS, render.ActionConfirm)
	e.wait(func(s *slackemu.Server) bool {
		for _, m := range s.Messages(sandboxChannel) {
			if m.TS != card.TS && m.ThreadTS == "" && strings.Contains(m.PlainText(), "db01") && strings.Contains(m.PlainText(), "mgnjob-") {
				return true
			}
		}
		return false
	}, "the cutover's thread")
	e.finishJobs(2)

	p.stop()
	out := p.logs.String()
	// The faults were met: otherwise the scan below proves nothing.
	for _, want := range []string{"level=DEBUG", "response url failed", "slack call failed, will retry", "rate limited", "InternalServerException"} {
		if !strings.Contains(out, want) {
			t.Errorf("the bot's output lacks %q: the run did not meet that fault", want)
		}
	}
	scan.check(t, out)
}

// withPassword returns dsn with a password: the one it has, or a random one (which a trust-auth
// test database ignores), and the password.
func withPassword(t *testing.T, dsn string) (string, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a URL", storetest.PostgresEnv)
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return dsn, pw
	}
	pw := randomSecret("db-password-")
	user := "postgres"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, pw)
	return u.String(), pw
}

// TestRefusedDSNsShowNoPassword: a CUTOVER_DB that is refused, or names a database that cannot
// be reached, stops start-up with an error that never shows its password, and nothing is
// written to disk under its name.
func TestRefusedDSNsShowNoPassword(t *testing.T) {
	e := newE2E(t, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	t.Chdir(dir)
	password := randomSecret("pw-")
	for _, dsn := range []string{
		"mysql://bot:" + password + "@db.example/cutover",
		"host=db.example password=" + password + " cutoverbot.db",
		"bot:" + password + "@db.example/cutover",
		"POSTGRES://bot:" + password + "@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=bot password=" + password + " dbname=none sslmode=disable connect_timeout=2",
	} {
		var out testrig.SyncBuffer
		env := botEnv(t, map[string]string{"CUTOVER_DB": dsn})
		err := run(t.Context(), runEmulated, e.sb.getenv(env), strings.NewReader(""), &out, &out)
		if err == nil {
			t.Errorf("CUTOVER_DB %q: run started, want a refusal", strings.ReplaceAll(dsn, password, "PW"))
			continue
		}
		if all := out.String() + err.Error(); strings.Contains(all, password) {
			t.Errorf("the password shows in the output of a refused start:\n%s", all)
		}
		if !strings.Contains(err.Error(), "CUTOVER_DB") && !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("refusal %q names neither CUTOVER_DB nor the database", err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused starts wrote %d files, want none", len(entries))
	}
}
