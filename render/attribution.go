package render

import (
	"github.com/cutoverbot/cutoverbot/migration"
	"regexp"
	"strings"

	"github.com/cutoverbot/cutoverbot/bot"
)

// slackUserID matches a Slack user ID, which Slack shows as the person's name.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]+$`)

// LaunchedBy says who launched a job, as mrkdwn to follow "Cutover of db01": for a job the
// bot started, from its own records, "requested by @ann, approved by @bob" ("requested by
// @ann" for a test); for a job started elsewhere only what its MGN tag claims, "tagged as
// requested by …" (anyone who can tag a job can set it), or "started outside cutoverbot
// (console or API)" without one. Records from before requesters were kept say "started by".
func LaunchedBy(j migration.Launch) string {
	switch {
	case j.RequestedBy != "":
		s := "requested by " + User(j.RequestedBy)
		if len(j.ApprovedBy) > 0 {
			names := make([]string, len(j.ApprovedBy))
			for i, id := range j.ApprovedBy {
				names[i] = User(id)
			}
			s += ", approved by " + joinAnd(names)
		}
		return s
	case j.TaggedBy != "":
		return "tagged as requested by " + User(j.TaggedBy)
	case j.StartedBy != "":
		return "started by " + User(j.StartedBy)
	}
	return "started outside cutoverbot (console or API)"
}

// User shows who: a Slack user ID as a mention (Slack shows the person's name), anything
// else literally, as code, so that neither mrkdwn (*, _, ~, `) nor markup (<!channel>) in it
// takes effect.
func User(who string) string {
	if slackUserID.MatchString(who) {
		return "<@" + who + ">"
	}
	return Literal(who)
}

// Literal shows text as typed, inside a code span: Slack applies no formatting there. A
// backtick would end the span, so it becomes a quote.
func Literal(text string) string {
	return "`" + bot.EscapePlain(strings.ReplaceAll(text, "`", "'")) + "`"
}

// joinAnd joins "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
