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
