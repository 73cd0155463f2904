package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/clock"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// commandNames are the names parse gives a command.
var commandNames = []string{"help", "status", "launch", "jobs", "ready", "revert", "finalize", "audit"}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "  ", "help", "?", "status", "status web01", "STATUS  web01 , app01 ",
		"launch web01 test", "launch web01,app01 CUTOVER", "launch web01", "launch test", "launch web01 prod",
		"ready", "revert  db01 ", "finalize wave \"Wave 1\"", "jobs", "audit s-0123456789abcdef0",
		"frobnicate <!channel>", "launch x `y`", "launch web01 <@U1>", "\u00a0status\u2003web01", "status\n\tweb01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c := parse(text)
		if c.text != text || !slices.Contains(commandNames, c.name) {
			t.Fatalf("parse(%q) = %+v: want the text kept and one of %v", text, c, commandNames)
		}
		if strings.Contains(c.problem, "<") || strings.Count(c.problem, "`")%2 != 0 {
			t.Fatalf("parse(%q): problem %q lets the input through as mrkdwn or leaves a code span open", text, c.problem)
		}
		words := strings.Fields(text)
		switch {
		case len(words) == 0:
			if c.name != "help" || c.problem != "" {
				t.Fatalf("parse(%q) = %+v, want plain help", text, c)
			}
			return
		case c.problem != "":
			if c.name != "help" {
				t.Fatalf("parse(%q) = %+v: a problem must come with help", text, c)
			}
			return
		case c.name == "help":
			if !slices.Contains([]string{"help", "-h", "--help", "?"}, strings.ToLower(words[0])) {
				t.Fatalf("parse(%q) = %+v: help without a problem for %q", text, c, words[0])
			}
			return
		}
		if c.name != strings.ToLower(words[0]) {
			t.Fatalf("parse(%q) = %+v: want the command %q", text, c, strings.ToLower(words[0]))
		}
		args := words[1:]
		if c.name == "launch" {
			if len(args) < 2 || string(c.mode) != strings.ToLower(args[len(args)-1]) || (c.mode != migration.ModeTest && c.mode != migration.ModeCutover) {
				t.Fatalf("parse(%q) = %+v: want a SERVER and the mode test or cutover", text, c)
			}
			args = args[:len(args)-1]
		}
		if c.servers != strings.Join(args, " ") {
			t.Fatalf("parse(%q): servers %q, want %q", text, c.servers, strings.Join(args, " "))
		}
		if c.servers == "" && (c.name == "launch" || c.name == "ready" || c.name == "revert" || c.name == "finalize") {
			t.Fatalf("parse(%q) = %+v: %s needs a SERVER", text, c, c.name)
		}
		// What was understood reads the same when typed again.
		typed := strings.TrimSpace(c.name + " " + c.servers + " " + string(c.mode))
		if again := parse(typed); again.name != c.name || again.servers != c.servers || again.mode != c.mode || again.problem != "" {
			t.Fatalf("parse(%q) = %+v, but parse(%q) = %+v", text, c, typed, again)
		}
	})
}

// FuzzInteraction decodes arbitrary interaction payloads as the bot does (slack-go's
// InteractionCallback) and hands them to the click path as someone without a role, so that
// every click ends at the decision what to do with it: a refusal, an unknown request, a status
// page. It checks that nothing panics and that every click, an unknown button's included, is
// answered. The Handler runs against the emulators and SQLite, shared by all inputs.
func FuzzInteraction(f *testing.F) {
	f.Add(`{"type":"block_actions","user":{"id":"U0EVE"},"channel":{"id":"C0MIGRATE"},"container":{"type":"message","message_ts":"1712.000100","channel_id":"C0MIGRATE"},"response_url":"","actions":[{"type":"button","action_id":"confirm","block_id":"confirmation","value":"c1","action_ts":"1712.9"}]}`)
	f.Add(`{"type":"block_actions","actions":[{"action_id":"cutover_confirm","block_id":"job-42","value":"job-42"}]}`)
	f.Add(`{"type":"block_actions","actions":[{"action_id":"launch_test:3","block_id":"reminder","value":"s-0123456789abcdef0"},{"action_id":"mark_ready","block_id":"b","value":"s-1,s-2"}]}`)
	f.Add(`{"type":"block_actions","actions":[{"action_id":"status_page","block_id":"status_pages","value":"-7"},{"action_id":"job_thread_link","block_id":"x"}]}`)
	f.Add(`{"type":"block_actions","actions":[{"action_id":"finalize","block_id":"job-1","value":" "},{"action_id":"cancel","block_id":"c","value":""},{"action_id":"revert_test","block_id":"c","value":","}]}`)
	f.Add(`{"type":"block_actions","actions":[{"action_id":"","block_id":""},{"action_id":":2","block_id":"z"},null]}`)
	f.Add(`{"type":"view_submission","view":{"id":"V1"}}`)
	f.Add(`{"type":"block_actions","actions":[{"action_id":"<!channel>","block_id":"b","value":"<@U1>"}]}`)

	const user = "U0NOBODY"
	logs := &testrig.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	quiet := slog.New(slog.DiscardHandler)
	mgn := mgnemu.New(mgnemu.Options{Servers: mgnemu.SampleFleet(start), Now: func() time.Time { return start }})
	if err := mgn.Start("127.0.0.1:0"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(mgn.Close)
	awsClient := awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}},
		awsmgn.Options{MGNEndpoint: mgn.URL(), EC2Endpoint: mgn.URL(), Logger: quiet})
	sl := slackemu.New(slackemu.Options{PostInterval: -1})
	if err := sl.Start("127.0.0.1:0"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(sl.Close)
	sl.AddChannel(migrationChannel, "migration")
	sl.AddUser(user, "nobody")
	api := slack.New(sl.BotToken(), slack.OptionAPIURL(sl.URL()))
	poster := bot.NewPoster(quiet, api, bot.PosterConfig{ChannelInterval: time.Nanosecond, Burst: 1000,
		UpdateInterval: time.Nanosecond, EphemeralInterval: time.Nanosecond})
	st, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "cutoverbot.db"), quiet)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	h := New(logger, awsClient, poster, st, nil, nil, Config{
		Channel: migrationChannel, Operators: []string{operator}, Approvers: []string{alice},
		Clock: clock.NewManual(start), FleetTTL: time.Hour,
	})

	f.Fuzz(func(t *testing.T, payload string) {
		var cb slack.InteractionCallback
		if json.Unmarshal([]byte(payload), &cb) != nil {
			return // the bot does not get this far: slack-go refuses the envelope
		}
		actions := cb.ActionCallback.BlockActions
		if len(actions) > 4 {
			return // each click costs a few calls; four show every combination
		}
		// Who clicked, and where the answer goes, are the emulator's: answers to anyone else
		// would be lost to the check below.
		cb.User.ID, cb.Channel.ID, cb.Container.ChannelID, cb.ResponseURL = user, migrationChannel, migrationChannel, ""
		before := len(sl.Ephemerals(user))
		h.Interaction(t.Context(), cb)
		if l := logs.Take(); strings.Contains(l, "panicked") {
			t.Fatalf("payload %s: the handler panicked:\n%s", payload, l)
		}
		answers := sl.Ephemerals(user)[before:]
		if cb.Type != slack.InteractionTypeBlockActions {
			if len(answers) != 0 {
				t.Fatalf("payload %s: a %q interaction got %d answers, want none: the bot posts no views", payload, cb.Type, len(answers))
			}
			return
		}
		want := 0
		for _, a := range actions {
			if render.BaseActionID(a.ActionID) != render.ActionJobThreadLink {
				want++
			}
		}
		if len(answers) != want {
			t.Fatalf("payload %s: got %d answers, want one per click, %d", payload, len(answers), want)
		}
		known := []string{render.ActionConfirm, render.ActionCancel, render.ActionMarkReady, render.ActionRevertTest,
			render.ActionFinalize, render.ActionLaunchTest, render.ActionStatusPage, render.ActionJobThreadLink}
		i := 0
		for _, a := range actions {
			base := render.BaseActionID(a.ActionID)
			if base == render.ActionJobThreadLink {
				continue
			}
			if text := answers[i].PlainText(); !slices.Contains(known, base) && !strings.Contains(text, "I do not know the button") {
				t.Fatalf("payload %s: unknown button %q answered %q, want that it is not known", payload, a.ActionID, text)
			}
			i++
		}
	})
}
