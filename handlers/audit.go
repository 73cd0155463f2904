package handlers

import (
	"context"

	"github.com/cutoverbot/cutoverbot/store"
)

// Audit actions: what an audit entry records. AWS calls are named by their API operation.
const (
	actCommand         = "command" // a command that was not understood
	actClick           = "click"   // a button the bot does not know
	actStatus          = "status"
	actJobs            = "jobs"
	actAudit           = "audit"
	actLaunchTest      = "launch test"
	actRequestCutover  = "launch cutover" // a request for a cutover (the card)
	actRequestFinalize = "request finalize"
	actApprove         = "approve" // an approval that did not yet decide
	actConfirm         = "confirm" // the deciding approval
	actCancel          = "cancel"
	actExpire          = "expire"
	actTakeOver        = "take over" // a replica took over a confirmation another left unfinished
	actMarkReady       = "mark ready for cutover"
	actRevert          = "revert"
	actStartTest       = "StartTest"
	actStartCutover    = "StartCutover"
	actFinalizeCutover = "FinalizeCutover"
)

// Audit outcomes shared by several actions; others are written out where they happen.
const (
	outRefusedAccess = "refused: not allowed"
	outNotResolved   = "refused: server not resolved"
	outPreflight     = "refused: pre-flight failed"
	outStarted       = "started"
	outFailed        = "failed"
	outUnknown       = "outcome unknown"
)

// audit appends e (its At set to now) to the audit log and writes it as a log line too; a
// failure to store it is logged, never shown.
func (h *Handler) audit(ctx context.Context, e store.AuditEntry) {
	e.At = h.cfg.Clock.Now()
	h.logger.InfoContext(ctx, "audit", "user", e.User, "action", e.Action, "server_ids", e.ServerIDs,
		"outcome", e.Outcome, "job_id", e.JobID, "detail", e.Detail)
	if err := h.store.Audit(context.WithoutCancel(ctx), e); err != nil {
		h.logger.WarnContext(ctx, "audit failed", "user", e.User, "action", e.Action, "err", err)
	}
}

// actionOf is the audit action of a step of a confirmation: "confirm cutover", "cancel finalize".
func actionOf(step, action string) string { return step + " " + action }
