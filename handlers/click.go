package handlers

import (
	"context"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/cutoverbot/cutoverbot/migration"
	"github.com/cutoverbot/cutoverbot/render"
	"github.com/cutoverbot/cutoverbot/store"
)

// click answers one button press.
func (h *Handler) click(ctx context.Context, o origin, cb slack.InteractionCallback, a *slack.BlockAction) {
	value := strings.TrimSpace(a.Value)
	h.logger.InfoContext(ctx, "click", "action_id", a.ActionID, "user", o.user, "channel", o.channel)
	switch render.BaseActionID(a.ActionID) {
	case render.ActionConfirm:
		h.confirmClick(ctx, o, value)
	case render.ActionCancel:
		h.cancelClick(ctx, o, value)
	case render.ActionFinalize:
		h.finalizeClick(ctx, o, value)
	case render.ActionMarkReady:
		h.changeClick(ctx, o, cb, value, h.markReady(), "mark servers ready for cutover")
	case render.ActionRevertTest:
		h.changeClick(ctx, o, cb, value, h.revertTest(true), "revert a test")
	case render.ActionLaunchTest:
		h.launch(ctx, o, value, migration.ModeTest, "button "+render.ActionLaunchTest)
	case render.ActionStatusPage:
		n, ref, _ := strings.Cut(value, " ")
		page, err := strconv.Atoi(n)
		if err != nil || page < 1 {
			page = 1
		}
		if ref != "" {
			h.statusGroup(ctx, o, ref, page, true)
			return
		}
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actStatus, Outcome: "answered page " + strconv.Itoa(page)})
		h.statusFleet(ctx, o, page, true)
	case render.ActionJobThreadLink:
		// A link button: Slack opens the URL; the click needs no answer.
	default:
		h.audit(ctx, store.AuditEntry{User: o.user, Action: actClick, Outcome: "unknown button", Detail: a.ActionID})
		h.replyText(ctx, o, "Sorry, I do not know the button "+code(a.ActionID)+"; it may come from an older version of the bot.")
	}
}
