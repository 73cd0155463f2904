package handlers

import (
	"strings"
	"testing"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
	"github.com/cutoverbot/cutoverbot/render"
)

// markdownName is a Name tag made of Slack's markup, and a piece of it found nowhere else.
type markdownName struct{ id, name, piece string }

// markdownNames renames five sample servers to names that Slack would format, mention or
// decode if they were not escaped, or show mangled if escaped twice or for the other kind of
// text.
var markdownNames = []markdownName{
	{mgnemu.SampleWeb01, "*zeta*_01_", "zeta"},
	{mgnemu.SampleDB01, "`dbx`", "dbx"},
	{mgnemu.SampleApp01, "~kappa~", "kappa"},
	{mgnemu.SampleWeb02, "<!channel>", "!channel"},
	{mgnemu.SampleFile01, "tom&jerry", "jerry"},
}

// TestMarkdownNamesShowLiterally: names made of mrkdwn markup show exactly as tagged in every
// answer and card that names servers, by Slack's rules for each text (mrkdwn or plain_text),
// as the Slack emulator draws them.
func TestMarkdownNamesShowLiterally(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	for _, n := range markdownNames {
		r.mgn.Update(n.id, func(s *mgnemu.SourceServer) { s.Tags["Name"] = n.name })
	}
	zeta, dbx, kappa, channel, jerry := markdownNames[0], markdownNames[1], markdownNames[2], markdownNames[3], markdownNames[4]
	ephemeral := func(user string) slackemu.Message {
		eph := r.slack.Ephemerals(user)
		return eph[len(eph)-1]
	}
	steps := []struct {
		what  string
		do    func() slackemu.Message
		names []markdownName
	}{
		{"fleet status", func() slackemu.Message { r.run(operator, "status"); return ephemeral(operator) }, markdownNames},
		{"server status", func() slackemu.Message {
			r.run(operator, "status "+zeta.id+","+dbx.id+","+kappa.id+","+channel.id+","+jerry.id)
			return ephemeral(operator)
		}, markdownNames},
		{"unknown server with suggestions", func() slackemu.Message { r.run(operator, "status zet"); return ephemeral(operator) }, []markdownName{zeta}},
		{"refused launch of two", func() slackemu.Message {
			r.run(operator, "launch "+channel.id+","+jerry.id+" test")
			return ephemeral(operator)
		}, []markdownName{channel, jerry}},
		{"refused revert", func() slackemu.Message { r.run(operator, "revert "+kappa.id); return ephemeral(operator) }, []markdownName{kappa}},
		{"no jobs yet", func() slackemu.Message { r.run(operator, "jobs "+zeta.id); return ephemeral(operator) }, []markdownName{zeta}},
		{"cutover request", func() slackemu.Message { r.run(operator, "launch "+dbx.id+" cutover"); return ephemeral(operator) }, []markdownName{dbx}},
		{"cutover card", func() slackemu.Message { return r.lastCard() }, []markdownName{dbx}},
		{"decided card", func() slackemu.Message {
			card := r.lastCard()
			r.click(bob, card.TS, render.ActionConfirm)
			return r.message(card.TS)
		}, []markdownName{dbx}},
		{"audit log", func() slackemu.Message { r.run(operator, "audit "+dbx.id); return ephemeral(operator) }, []markdownName{dbx}},
	}
	for _, step := range steps {
		m := step.do()
		shown := strings.Join(m.Displayed(), "\n")
		for _, n := range step.names {
			if !strings.Contains(shown, n.name) {
				t.Errorf("%s: shows\n%s\nwant %q in it", step.what, shown, n.name)
			}
		}
	}

	// Nothing the bot sent shows a name other than literally, a mention of everyone, a date
	// token or an entity.
	var sent []slackemu.Message
	for _, u := range []string{operator, bob} {
		sent = append(sent, r.slack.Ephemerals(u)...)
	}
	sent = append(sent, r.channelMessages()...)
	var literals []slackemu.Literal
	for _, n := range markdownNames {
		literals = append(literals, slackemu.Literal{Text: n.name, Piece: n.piece})
	}
	for _, g := range slackemu.Garbled(sent, literals...) {
		t.Error(g)
	}
}
