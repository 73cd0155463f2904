package slackemu

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/slack-go/slack"
)

func TestDisplay(t *testing.T) {
	const lit = "<!date^00000000^{_}|"
	tests := []struct{ text, want string }{
		{"*bold* _italic_ ~strike~ `code`", "bold italic strike code"},
		{"*Replication:* continuous", "Replication: continuous"},
		{"_*both*_", "both"},
		{"• *web01* `s-0123`", "• web01 s-0123"},
		// Markers inside a word do not format (Slack renders this as typed).
		{"Super_cali_fragilistic*expiali*docious", "Super_cali_fragilistic*expiali*docious"},
		{"web_01_db", "web_01_db"},
		{"* not bold*", "* not bold*"},
		{"*not bold *", "*not bold *"},
		{"*a\nb*", "*a\nb*"},
		{"**", "**"},
		{"`*in code*`", "*in code*"},
		{"*web*_01_", "web01"},
		// Dates with a format Slack cannot use show their fallback, verbatim.
		{lit + "*>web" + lit + "*>" + lit + "_>01" + lit + "_>", "*web*_01_"},
		{"*" + lit + "*>web" + lit + "*>*", "*web*"},
		{lit + "&amp;>", "&amp;"},
		{"hey <!channel>", "hey @channel"},
		{"&lt;!channel&gt; &amp; &lt;@U1&gt;", "<!channel> & <@U1>"},
		{"asked by <@U0ANN>, see <https://x.example/p1|its thread> in <#C1|migration>", "asked by @U0ANN, see its thread in #migration"},
		{"&gt; quoted\nnot &gt; quoted", "quoted\nnot > quoted"},
		{"&amp;lt;", "&lt;"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Display(tt.text); got != tt.want {
			t.Errorf("Display(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	if got, want := DisplayPlain("*a* &lt;!here&gt; &amp;amp;"), "*a* <!here> &amp;"; got != want {
		t.Errorf("DisplayPlain: got %q, want %q", got, want)
	}
}

func TestDisplayed(t *testing.T) {
	btn := slack.NewButtonBlockElement("confirm", "c1", slack.NewTextBlockObject(slack.PlainTextType, "Go: *a* &amp; b", false, false))
	btn.Confirm = slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, "Sure?", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Cut over *a*?", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Yes", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "No", false, false))
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Cutover: *a*", false, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*bold*", false, false),
			[]*slack.TextBlockObject{slack.NewTextBlockObject(slack.MarkdownType, "_field_", false, false)}, nil),
		slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "~ctx~", false, false)),
		slack.NewActionBlock("confirmation", btn),
	}
	bs, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(bs, &raws); err != nil {
		t.Fatal(err)
	}
	got := Message{Text: "*fallback*", Blocks: raws}.Displayed()
	want := []string{"fallback", "Cutover: *a*", "bold", "field", "ctx", "Go: *a* & b", "Sure?", "Cut over *a*?", "Yes", "No"}
	if !slices.Equal(got, want) {
		t.Errorf("Displayed:\n got %q\nwant %q", got, want)
	}
}

func TestGarbled(t *testing.T) {
	zeta := Literal{Text: "*zeta*", Piece: "zeta"}
	tests := []struct {
		text string
		bad  bool
	}{
		{"<!date^00000000^{_}|*>zeta<!date^00000000^{_}|*> and *bold*", false},
		{"*zeta*", true},                     // taken for bold
		{"x &amp;lt; y", true},               // an entity shown
		{"hey <!here>", true},                // everyone notified
		{"_*zeta*_", true},                   // taken for italic and bold
		{"<!date^00000000^{_}|*>zeta", true}, // cut short
		{"nothing to see", false},
	}
	for _, tt := range tests {
		if got := Garbled([]Message{{Text: tt.text}}, zeta); (len(got) > 0) != tt.bad {
			t.Errorf("Garbled(%q) = %q, want garbled %v", tt.text, got, tt.bad)
		}
	}
}
