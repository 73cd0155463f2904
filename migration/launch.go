package migration

import (
	"fmt"
	"strings"
	"time"
)

// LaunchRequest is a launch the bot asks MGN for. Its key (the confirmation for a cutover, the
// request ID for a test) goes on the job as a tag, so that MGN can be asked afterwards whether
// the launch started: MGN's StartTest and StartCutover have no idempotency token.
type LaunchRequest struct {
	Mode        Mode
	ServerIDs   []string
	RequestedBy string   // Slack user ID of the person who asked
	ApprovedBy  []string // Slack user IDs of the approvers who confirmed (cutovers)
	// Confirmation is the confirmation card's ID (cutovers); Request the bot's request ID
	// (tests). One of them is required; Confirmation wins when both are set.
	Confirmation, Request string
	// Batch is the key of the batch this launch starts (Batch.Key), when it is one of the
	// jobs of a wave's or application's launch; it wins over the other keys, since the jobs
	// of one launch share its confirmation or request.
	Batch string
	// Since is when the request was made: a job created before it (less a minute of clock
	// skew) cannot be this request's.
	Since time.Time
}

// Key is the tag (name and value) that identifies the request's job.
func (r LaunchRequest) Key() (string, string) {
	if r.Batch != "" {
		return TagBatch, r.Batch
	}
	if r.Confirmation != "" {
		return TagConfirmation, r.Confirmation
	}
	return TagRequest, r.Request
}

// Tags are the tags put on the job: who asked, who approved, and the key.
func (r LaunchRequest) Tags() map[string]string {
	tags := map[string]string{}
	if r.RequestedBy != "" {
		tags[TagRequestedBy] = r.RequestedBy
	}
	if len(r.ApprovedBy) > 0 {
		tags[TagApprovedBy] = strings.Join(r.ApprovedBy, ",")
	}
	if r.Request != "" {
		tags[TagRequest] = r.Request
	}
	if r.Confirmation != "" {
		tags[TagConfirmation] = r.Confirmation
	}
	if r.Batch != "" {
		tags[TagBatch] = r.Batch
	}
	return tags
}

// Validate reports what makes r unusable: no mode, no servers, or nothing to find its job by.
func (r LaunchRequest) Validate() error {
	switch {
	case r.Mode != ModeTest && r.Mode != ModeCutover:
		return fmt.Errorf("launch: %w: mode %q", ErrInvalid, r.Mode)
	case len(r.ServerIDs) == 0:
		return fmt.Errorf("launch: %w: no servers", ErrInvalid)
	case len(r.ServerIDs) > MaxServersPerJob:
		return fmt.Errorf("launch: %w: %d servers, MGN takes at most %d in one job", ErrInvalid, len(r.ServerIDs), MaxServersPerJob)
	case r.Confirmation == "" && r.Request == "" && r.Batch == "":
		return fmt.Errorf("launch: %w: no confirmation or request ID to find the job by", ErrInvalid)
	}
	return nil
}

// Launch is a launch job as cutoverbot records it: who asked for it and who approved it, and
// where and how far its progress is reported. The store keeps it; the handlers and the
// notifier share it.
type Launch struct {
	JobID     string // mgnjob-…
	Kind      Mode   // ModeTest or ModeCutover; "" for a job that launches neither
	ServerIDs []string
	// GroupID is the wave's or application's launch (GroupLaunch) this job is a batch of; its
	// progress goes into that launch's thread. "" for a job of its own.
	GroupID  string
	Channel  string // the progress thread's channel; "" until posted
	ParentTS string // the thread's first message; "" until posted
	// RequestedBy is the Slack user who asked for the launch through the bot; "" for a job
	// the bot did not start (or does not know it started).
	RequestedBy string
	// ApprovedBy are the Slack users who confirmed the launch on its card, in order; nil
	// for a test launch or a job the bot did not start.
	ApprovedBy []string
	// TaggedBy is, for a job the bot did not start, the requester its MGN tag names: anyone
	// who can tag a job can set it, so it is not verified. "" when untagged.
	TaggedBy string
	// StartedBy is kept from records written before RequestedBy existed: whoever the bot then
	// said started the job. New records leave it "".
	StartedBy string
	StartedAt time.Time
	Cursor    string // where the job's log was read to, as Cursor.String
	Posted    int    // log items already posted
	Done      bool
	Outcome   string    // set when Done
	UpdatedAt time.Time // last change; set by the store
}
