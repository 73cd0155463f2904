package migration

import "errors"

// The error kinds callers branch on with errors.Is. The adapter maps AWS errors onto them.
var (
	ErrNotFound       = errors.New("not found")
	ErrConflict       = errors.New("conflict")
	ErrThrottled      = errors.New("throttled")
	ErrInvalid        = errors.New("invalid request")
	ErrAccessDenied   = errors.New("access denied")
	ErrNotInitialized = errors.New("service not initialized in this region")
	ErrUnavailable    = errors.New("service unavailable")
)

// ErrOutcomeUnknown means a change was sent to MGN, its answer was lost, and MGN could not be
// asked afterwards whether it made the change: the caller must not say either way, and must
// ask again later.
var ErrOutcomeUnknown = errors.New("outcome unknown")
