package migration

import (
	"errors"
	"fmt"
)

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

// Refused reports whether err proves that MGN did not act on a request: it was throttled,
// invalid, denied, named something unknown, or the account is not set up. Anything else (a
// conflict, a 5xx, a timeout, a broken connection) may hide an action MGN took.
func Refused(err error) bool {
	for _, kind := range []error{ErrThrottled, ErrInvalid, ErrAccessDenied, ErrNotInitialized, ErrNotFound} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// ErrOutcomeUnknown means a change was sent to MGN, its answer was lost, and MGN could not be
// asked afterwards whether it made the change: the caller must not say either way, and must
// ask again later.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Error is an AWS error in the domain's terms: errors.Is matches its Kind (migration.ErrConflict...).
type Error struct {
	Op      string // what the bot was doing
	Code    string // AWS's error code, e.g. ConflictException
	Message string // AWS's message
	Kind    error  // one of the Err* kinds; nil when none fits
	Err     error  // the SDK error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code
	}
	if e.Kind != nil && e.Code != "" {
		msg = fmt.Sprintf("%s: %s (%s)", e.Kind, msg, e.Code)
	}
	if e.Op == "" {
		return msg
	}
	return e.Op + ": " + msg
}

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && e.Kind == target }

func (e *Error) Unwrap() error { return e.Err }
