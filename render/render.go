// Package render holds what the Slack-facing packages share: the action IDs of cutoverbot's
// buttons (the contract between the messages that carry them and the handlers that answer
// them), Block Kit helpers that keep every message inside Slack's limits, and wording that
// several messages use (who launched a job).
package render

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Action IDs of the buttons cutoverbot posts. The button's value is given beside each.
const (
	ActionConfirm       = "confirm"         // value: confirmation ID (cutover or finalize card)
	ActionCancel        = "cancel"          // value: confirmation ID
	ActionMarkReady     = "mark_ready"      // value: comma-separated source server IDs
	ActionRevertTest    = "revert_test"     // value: comma-separated source server IDs
	ActionFinalize      = "finalize"        // value: source server ID; approvers only
	ActionLaunchTest    = "launch_test"     // value: source server ID, or "wave wave-…" / "app app-…"; operators only
	ActionStatusPage    = "status_page"     // value: page number, from 1, then " wave wave-…" or " app app-…" for a wave's or application's status
	ActionJobThreadLink = "job_thread_link" // URL button; its click needs no answer
)

// NumberedActionID gives the n-th (from 1) of several buttons with the same action in one
// actions block a distinct action ID, as Slack requires: "launch_test", "launch_test:2", …
func NumberedActionID(actionID string, n int) string {
	if n <= 1 {
		return actionID
	}
	return actionID + ":" + strconv.Itoa(n)
}

// BaseActionID strips the number NumberedActionID added: "launch_test:2" -> "launch_test".
func BaseActionID(actionID string) string {
	base, _, _ := strings.Cut(actionID, ":")
	return base
}

// Slack's limits that messages must respect.
const (
	MaxBlocks        = 50
	MaxSectionText   = 3000
	MaxHeaderText    = 150
	MaxButtonText    = 75
	MaxButtonValue   = 2000
	MaxID            = 255 // action_id and block_id
	MaxActionsPerRow = 25
	MaxContextItems  = 10
	MaxConfirmText   = 300
	MaxMessageText   = 4000 // Slack truncates at 40,000; a fallback text never needs that much
)

// Truncate shortens s to at most n characters (runes), ending with "…" when cut; n below 1
// gives "". It cuts only between whole pieces of mrkdwn: never inside a rune, an entity such
// as &lt; or a token in angle brackets such as <@U123>, <!date^…|*> or <https://…|label>,
// which Slack would otherwise show as broken text or not at all.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	end, used := 0, 0
	for end < len(s) {
		size, count := unit(s[end:])
		if used+count > n-1 {
			break
		}
		end, used = end+size, used+count
	}
	return s[:end] + "…"
}

// unit measures the piece of mrkdwn s starts with, in bytes and runes: an entity ("&amp;",
// "&#42;"), a token from "<" to the next ">" with no "<" between, or else one rune.
func unit(s string) (size, count int) {
	switch s[0] {
	case '<':
		if end := strings.IndexAny(s[1:], "<>"); end >= 0 && s[1+end] == '>' {
			return end + 2, utf8.RuneCountInString(s[:end+2])
		}
	case '&':
		if end := strings.IndexByte(s[1:min(len(s), 12)], ';'); end > 0 && isEntityName(s[1:1+end]) {
			return end + 2, end + 2
		}
	}
	_, size = utf8.DecodeRuneInString(s)
	return size, 1
}

func isEntityName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '#') {
			return false
		}
	}
	return true
}

// Section is a mrkdwn section block, its text truncated to Slack's 3,000 characters.
func Section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, Truncate(text, MaxSectionText), false, false), nil, nil)
}

// Context is a context block of mrkdwn texts (at most Slack's 10 elements are kept).
func Context(texts ...string) *slack.ContextBlock {
	var els []slack.MixedElement
	for _, t := range texts[:min(len(texts), MaxContextItems)] {
		els = append(els, slack.NewTextBlockObject(slack.MarkdownType, Truncate(t, MaxSectionText), false, false))
	}
	return slack.NewContextBlock("", els...)
}

// Header is a header block, truncated to Slack's 150 characters.
func Header(text string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, Truncate(text, MaxHeaderText), false, false))
}

// Button is a button with an action ID and value; style is "", "primary" or "danger". Its
// text is cut to Slack's 75 characters. The action ID and value must fit Slack's 255 and 2,000
// characters; a longer one is cut, so that the message still posts, and ends with "…", so
// that a cut list of IDs never passes for a shorter valid one.
func Button(actionID, text, value string, style slack.Style) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(Truncate(actionID, MaxID), Truncate(value, MaxButtonValue),
		slack.NewTextBlockObject(slack.PlainTextType, Truncate(text, MaxButtonText), false, false))
	b.Style = style
	return b
}

// Confirm is Slack's confirmation dialog for a button. It is drawn by the client only, so the
// handler of the click must still check who clicked.
func Confirm(title, text, confirm, deny string, style slack.Style) *slack.ConfirmationBlockObject {
	c := slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, Truncate(title, 100), false, false),
		slack.NewTextBlockObject(slack.PlainTextType, Truncate(text, MaxConfirmText), false, false),
		slack.NewTextBlockObject(slack.PlainTextType, Truncate(confirm, 30), false, false),
		slack.NewTextBlockObject(slack.PlainTextType, Truncate(deny, 30), false, false),
	)
	c.WithStyle(style)
	return c
}

// Actions splits buttons into actions blocks of at most 25 elements each. Their block IDs are
// blockIDPrefix, then blockIDPrefix-1, -2…, within Slack's 255 characters.
func Actions(blockIDPrefix string, buttons ...slack.BlockElement) []slack.Block {
	var out []slack.Block
	for i := 0; i < len(buttons); i += MaxActionsPerRow {
		suffix := ""
		if i > 0 {
			suffix = "-" + strconv.Itoa(i/MaxActionsPerRow)
		}
		id := Truncate(blockIDPrefix, MaxID-len(suffix)) + suffix
		out = append(out, slack.NewActionBlock(id, buttons[i:min(i+MaxActionsPerRow, len(buttons))]...))
	}
	return out
}

// Fit keeps a message within Slack's 50 blocks: when there are more, it keeps the first 49 and
// ends with a context block saying how many were left out and where to see them.
func Fit(blocks []slack.Block, more string) []slack.Block {
	if len(blocks) <= MaxBlocks {
		return blocks
	}
	kept := blocks[: MaxBlocks-1 : MaxBlocks-1]
	note := strconv.Itoa(len(blocks)-len(kept)) + " more not shown"
	if more != "" {
		note += "; " + more
	}
	return append(kept, Context(note))
}

// Lines joins lines into mrkdwn texts of at most 3,000 characters each, never splitting a line.
func Lines(lines []string) []string {
	var out []string
	var b strings.Builder
	n := 0 // runes in b, counted as they are written: counting b again for each line is quadratic
	for _, l := range lines {
		l = Truncate(l, MaxSectionText)
		ln := utf8.RuneCountInString(l)
		if b.Len() > 0 && n+1+ln > MaxSectionText {
			out = append(out, b.String())
			b.Reset()
			n = 0
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			n++
		}
		b.WriteString(l)
		n += ln
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// DaysUntil counts the calendar days from now's date in loc to date's own date (a planned
// date, such as the final cutover): 0 on the day itself, negative once it has passed. Calendar
// days, not 24-hour spans, so that a date at midnight is "in 1 day" all through the day before,
// also across a switch to or from summer time.
func DaysUntil(date, now time.Time, loc *time.Location) int {
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	y, m, d = date.Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(today).Hours() / 24)
}

// PlannedCutover says when a planned cutover date is, seen from now in loc, in calendar days
// (see DaysUntil): "Sat 15 Mar 2025, in 12 days", "…, in 1 day", "…, today", "…, 3 days ago".
func PlannedCutover(date, now time.Time, loc *time.Location) string {
	days := DaysUntil(date, now, loc)
	when := ""
	switch {
	case days == 0:
		when = "today"
	case days == 1:
		when = "in 1 day"
	case days > 1:
		when = "in " + strconv.Itoa(days) + " days"
	case days == -1:
		when = "1 day ago"
	default:
		when = strconv.Itoa(-days) + " days ago"
	}
	return date.Format("Mon 2 Jan 2006") + ", " + when
}
