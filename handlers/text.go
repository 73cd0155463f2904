package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/bot"
	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
)

// esc makes user- or AWS-supplied text show literally in mrkdwn: no mention, link or
// formatting comes out of it.
func esc(s string) string { return bot.Escape(s) }

// escPlain makes user- or AWS-supplied text show literally in plain_text (headers, buttons,
// dialogs), and in mrkdwn code spans and <…> tokens, where formatting markers do not format.
func escPlain(s string) string { return bot.EscapePlain(s) }

// code shows s as inline code; backticks in s would end the span, so they become quotes.
func code(s string) string {
	return "`" + escPlain(strings.ReplaceAll(s, "`", "'")) + "`"
}

// serverRef names a server for people: its display name and ID.
func serverRef(s migration.Server) string {
	return "*" + esc(s.DisplayName()) + "* " + code(s.ID)
}

// A sentence names at most maxNames servers in at most maxNamesLen characters, then says how
// many more there are.
const (
	maxNames    = 20
	maxNamesLen = 800
)

// serverNames lists the servers' display names for mrkdwn, comma-separated, shortened as the
// constants above say.
func serverNames(servers []migration.Server) string { return names(servers, esc) }

// plainNames is serverNames for plain_text fields (headers, dialogs). They take EscapePlain:
// Slack decodes the three entities in every text it shows, but would show Escape's date
// tokens as they are.
func plainNames(servers []migration.Server) string { return names(servers, escPlain) }

func names(servers []migration.Server, escape func(string) string) string {
	var b strings.Builder
	n := 0
	for _, s := range servers {
		name := escape(s.DisplayName())
		if n == maxNames || (n > 0 && b.Len()+len(name) > maxNamesLen) {
			break
		}
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString(render.Truncate(name, maxNamesLen))
		n++
	}
	if n < len(servers) {
		fmt.Fprintf(&b, " and %d more", len(servers)-n)
	}
	return b.String()
}

// mention renders a Slack user or user group ID as a mention.
func mention(id string) string {
	if strings.HasPrefix(id, "S") {
		return "<!subteam^" + escPlain(id) + ">"
	}
	if id == "" {
		return "someone outside the bot"
	}
	return "<@" + escPlain(id) + ">"
}

// section is a mrkdwn section within Slack's limits.
func section(text string) slack.Block { return render.Section(text) }

// fallback is the notification text of a message: its mrkdwn, shortened.
func fallback(text string) string { return render.Truncate(text, 300) }

// clock renders a time in the configured zone: "14:02 UTC", with the date when not today.
func (h *Handler) clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	loc := h.cfg.Location
	lt, now := t.In(loc), h.cfg.Clock.Now().In(loc)
	if lt.YearDay() == now.YearDay() && lt.Year() == now.Year() {
		return lt.Format("15:04 MST")
	}
	return lt.Format("Mon 2 Jan 15:04 MST")
}

// ago renders how long ago t was.
func (h *Handler) ago(t time.Time) string { return migration.Ago(t, h.cfg.Clock.Now()) }

// threadLink is the permalink of a message, built without an API call.
func threadLink(channel, ts string) string {
	return "https://slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// follow has the follower open the progress thread of a job that was just started at
// requestedBy's request (and confirmed by approvedBy), and says where its progress is
// followed: a link to its thread, or just the channel while the thread's first message is
// still being posted. When the thread cannot be opened it says so, with a reference to the
// logged error.
func (h *Handler) follow(ctx context.Context, job migration.Job, requestedBy string, approvedBy ...string) string {
	ts, err := h.follower.Follow(ctx, job, requestedBy, approvedBy...)
	switch {
	case err != nil:
		ref := newRef()
		h.logger.ErrorContext(ctx, "follow failed", "ref", ref, "job_id", job.ID, "err", err)
		return fmt.Sprintf("its progress thread in %s could not be opened (ref %s); `/cutover jobs` shows its status", channelRef(h.cfg.Channel), ref)
	case ts == "":
		return "progress is followed in a thread in " + channelRef(h.cfg.Channel)
	}
	return fmt.Sprintf("progress is followed in <%s|its thread> in %s", threadLink(h.cfg.Channel, ts), channelRef(h.cfg.Channel))
}

// errorText turns an error met while doing something (e.g. "start the test") into words for
// Slack. The kinds the domain knows get a helpful sentence and are logged as warnings;
// anything else is logged in full under a short reference that the answer shows.
func (h *Handler) errorText(ctx context.Context, doing string, err error) string {
	awsMsg := ""
	if ae, ok := errors.AsType[*migration.Error](err); ok {
		awsMsg = ae.Message
		if awsMsg == "" {
			awsMsg = ae.Code
		}
	}
	detail := func(prefix string) string {
		if awsMsg == "" {
			return prefix
		}
		return prefix + ": " + esc(awsMsg)
	}
	var text string
	switch {
	case errors.Is(err, migration.ErrOutcomeUnknown):
		ref := newRef()
		h.logger.ErrorContext(ctx, "outcome unknown", "ref", ref, "doing", doing, "err", err)
		return fmt.Sprintf("Could not %s: AWS's answer was lost and MGN could not be asked afterwards whether it was done (ref %s). "+
			"Check `/cutover status` before you try again.", doing, ref)
	case errors.Is(err, migration.ErrConflict):
		text = fmt.Sprintf("Could not %s. %s.", doing, detail("MGN refused"))
	case errors.Is(err, migration.ErrThrottled):
		text = fmt.Sprintf("Could not %s: AWS is throttling requests right now. Try again in a minute.", doing)
	case errors.Is(err, migration.ErrAccessDenied):
		text = fmt.Sprintf("Could not %s: the bot's AWS role is not allowed to (%s). Ask an admin to check its IAM policy.", doing, detail("access denied"))
	case errors.Is(err, migration.ErrNotFound):
		text = fmt.Sprintf("Could not %s: MGN does not know it any more (%s); it may have been deleted or archived.", doing, detail("not found"))
	case errors.Is(err, migration.ErrNotInitialized):
		text = fmt.Sprintf("Could not %s: Application Migration Service is not initialized in this region. Initialize it in the MGN console first.", doing)
	case errors.Is(err, migration.ErrUnavailable):
		text = fmt.Sprintf("Could not %s: AWS is not answering right now (service unavailable). Try again in a few minutes.", doing)
	case errors.Is(err, migration.ErrInvalid):
		text = fmt.Sprintf("Could not %s. %s.", doing, detail("MGN rejected the request as invalid"))
	case errors.Is(err, context.DeadlineExceeded):
		text = fmt.Sprintf("Could not %s: AWS took too long to answer. Try again in a minute.", doing)
	default:
		ref := newRef()
		h.logger.ErrorContext(ctx, "request failed", "ref", ref, "doing", doing, "err", err)
		return fmt.Sprintf("Could not %s: something went wrong (ref %s).", doing, ref)
	}
	h.logger.WarnContext(ctx, "request failed", "doing", doing, "err", err)
	return text
}

// resolveText explains why a server name could not be resolved; ok is false for errors that
// are not about the name.
func resolveText(err error) (string, bool) {
	if e, ok := errors.AsType[*migration.UnknownServerError](err); ok {
		text := "No server matches " + code(e.Query) + "."
		if len(e.Suggestions) > 0 {
			var s []string
			for _, c := range e.Suggestions {
				s = append(s, serverRef(c))
			}
			text += " Did you mean " + strings.Join(s, ", ") + "?"
		} else {
			text += " Try `/cutover status` to see every server."
		}
		return text, true
	}
	if e, ok := errors.AsType[*migration.AmbiguousServerError](err); ok {
		lines := []string{fmt.Sprintf("%s matches %d servers; name one by its ID:", code(e.Query), len(e.Candidates))}
		for i, c := range e.Candidates {
			if i == 10 {
				lines = append(lines, fmt.Sprintf("…and %d more", len(e.Candidates)-10))
				break
			}
			host := c.FQDN
			if host == "" {
				host = c.Hostname
			}
			lines = append(lines, fmt.Sprintf("• %s (%s, %s)", serverRef(c), esc(host), esc(c.Lifecycle.State.Label())))
		}
		return strings.Join(lines, "\n"), true
	}
	if e, ok := errors.AsType[*migration.UnknownGroupError](err); ok {
		text := fmt.Sprintf("No %s matches %s.", kindWord(e.Kind), code(e.Query))
		if len(e.Suggestions) > 0 {
			var s []string
			for _, g := range e.Suggestions {
				s = append(s, code(g.String()))
			}
			text += " Did you mean " + strings.Join(s, ", ") + "?"
		} else {
			text += " `/cutover status` lists the waves."
		}
		return text, true
	}
	if e, ok := errors.AsType[*migration.AmbiguousGroupError](err); ok {
		lines := []string{fmt.Sprintf("%s matches %d %ss; name one by its ID:", code(e.Query), len(e.Candidates), kindWord(e.Kind))}
		for _, g := range e.Candidates[:min(len(e.Candidates), 10)] {
			lines = append(lines, "• "+code(g.Ref())+" ("+esc(g.Name)+")")
		}
		return strings.Join(lines, "\n"), true
	}
	if errors.Is(err, migration.ErrInvalid) {
		return "I could not use that server list: " + esc(err.Error()) + ".", true
	}
	return "", false
}

// kindWord is what a group is called in a sentence: "wave", "application".
func kindWord(k migration.GroupKind) string {
	if k == migration.KindApplication {
		return "application"
	}
	return "wave"
}

// groupRef names a wave or application in mrkdwn: "wave *Wave 1*".
func groupRef(g migration.Group) string { return kindWord(g.Kind) + " *" + esc(g.Name) + "*" }
