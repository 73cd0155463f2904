package notifier

import (
	"strings"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/migration"
)

// TestMarkdownNamesShowLiterally: Name tags made of mrkdwn markup show exactly as tagged in
// job threads (parent, event replies, final report and its buttons and dialogs), the weekly
// reminder and replication notices, by Slack's rules for each text as the Slack emulator
// draws them.
func TestMarkdownNamesShowLiterally(t *testing.T) {
	names := []struct{ id, name, piece string }{
		{mgnemu.SampleWeb01, "*zeta*_01_", "zeta"},
		{mgnemu.SampleDB01, "`dbx`", "dbx"},
		{mgnemu.SampleAPI01, "~kappa~", "kappa"},
		{mgnemu.SampleWeb02, "<!channel>", "!channel"},
		{mgnemu.SampleFile01, "tom&jerry", "jerry"},
	}
	r := newRig(t, rigOptions{})
	for _, n := range names {
		r.mgn.Update(n.id, func(s *mgnemu.SourceServer) { s.Tags["Name"] = n.name })
	}
	zeta, dbx, kappa, channelName, jerry := names[0].name, names[1].name, names[2].name, names[3].name, names[4].name
	n := r.notifier(t, r.store, "a", nil)
	if err := n.WatchOnce(t.Context()); err != nil { // the baseline of the notices
		t.Fatal(err)
	}

	var parents []string
	for _, start := range []func() (migration.Job, error){
		func() (migration.Job, error) {
			return r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeTest, ServerIDs: []string{names[0].id}, Request: "n1"})
		},
		func() (migration.Job, error) {
			return r.aws.Launch(t.Context(), migration.LaunchRequest{Mode: migration.ModeCutover, ServerIDs: []string{names[1].id}, Request: "n2"})
		},
	} {
		job, err := start()
		if err != nil {
			t.Fatal(err)
		}
		ts, err := n.Follow(t.Context(), job, "U1")
		if err != nil {
			t.Fatal(err)
		}
		r.drive(t, step, r.jobDone(t, job.ID), n)
		parents = append(parents, ts)
	}
	if err := n.Remind(t.Context(), r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.mgn.Update(names[3].id, func(s *mgnemu.SourceServer) {
		s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
		s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(time.Second)
		s.LifeCycle.State = "READY_FOR_TEST"
	})
	r.mgn.Update(names[4].id, func(s *mgnemu.SourceServer) {
		s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
		s.DataReplicationInfo.DataReplicationError = nil
		s.DataReplicationInfo.LagDuration = mgnemu.FormatDuration(time.Second)
	})
	if err := n.WatchOnce(t.Context()); err != nil {
		t.Fatal(err)
	}

	sent := r.slack.Messages(channel)
	for _, ts := range parents {
		sent = append(sent, r.slack.Replies(channel, ts)...)
	}
	find := func(what string, cond func(slackemu.Message) bool) string {
		t.Helper()
		for _, m := range sent {
			if cond(m) {
				return strings.Join(m.Displayed(), "\n")
			}
		}
		t.Fatalf("no %s among the messages sent", what)
		return ""
	}
	byText := func(s string) func(slackemu.Message) bool {
		return func(m slackemu.Message) bool { return strings.Contains(m.Text, s) }
	}
	final := func(m slackemu.Message) bool { return m.Broadcast }
	checks := []struct {
		what  string
		shown string
		want  []string
	}{
		{"test thread parent", find("test thread parent", byText("Test launch of")), []string{zeta}},
		{"an event reply", find("snapshot reply", byText("snapshot taken")), []string{zeta + ": snapshot taken"}},
		{"test final report", find("test final report", func(m slackemu.Message) bool { return final(m) && strings.Contains(m.Text, "Test launch") }), []string{zeta}},
		{"cutover final report", find("cutover final report", func(m slackemu.Message) bool { return final(m) && strings.Contains(m.Text, "Cutover") }),
			[]string{dbx, "Finalize cutover: " + dbx, "Finalize cutover of " + dbx + "?", "MGN stops replicating " + dbx}},
		{"reminder", find("reminder", byText("Weekly reminder")), []string{kappa, "Launch test: " + kappa, channelName, jerry}},
		{"notice", find("continuous notice", byText("reached Continuous")), []string{channelName + " reached Continuous"}},
		{"notice", find("recovery notice", byText("recovered")), []string{jerry + " replication recovered"}},
	}
	for _, c := range checks {
		for _, w := range c.want {
			if !strings.Contains(c.shown, w) {
				t.Errorf("%s: shows\n%s\nwant %q in it", c.what, c.shown, w)
			}
		}
	}
	var literals []slackemu.Literal
	for _, n := range names {
		literals = append(literals, slackemu.Literal{Text: n.name, Piece: n.piece})
	}
	for _, g := range slackemu.Garbled(sent, literals...) {
		t.Error(g)
	}
}
