package migration

import (
	"fmt"
	"strings"
	"time"
)

// ActionState is MGN's executionStatus of a post-launch action.
type ActionState string

// Post-launch action execution statuses, as MGN names them.
const (
	ActionInProgress ActionState = "IN_PROGRESS"
	ActionSucceeded  ActionState = "SUCCESS"
	ActionFailed     ActionState = "FAILED"
)

// Ended reports whether the action finished, well or not.
func (s ActionState) Ended() bool { return s == ActionSucceeded || s == ActionFailed }

// ServerAction is a post-launch action configured on a source server: an SSM document MGN
// runs on every instance launched for it.
type ServerAction struct {
	ID          string
	Name        string
	Document    string // the SSM document's name or ARN
	Active      bool   // inactive actions are not run
	MustSucceed bool   // mustSucceedForCutover
	Order       int
}

// PostLaunch is MGN's report of the post-launch actions on one launched instance: when the
// SSM agent was seen, and each action started so far, in run order.
type PostLaunch struct {
	AgentSeen time.Time // zero when MGN gives none
	Actions   []ActionRun
}

// ActionRun is one post-launch action's run on a launched instance.
type ActionRun struct {
	Name          string // actionName
	Document      string // ssmDocumentName
	DocumentType  string // COMMAND or AUTOMATION
	MustSucceed   bool   // mustSucceedForCutover
	ExecutionID   string
	State         ActionState
	FailureReason string
}

// Ended reports whether every action reported so far has finished. It says nothing of actions
// MGN has not started yet: see Settled.
func (p *PostLaunch) Ended() bool {
	if p == nil {
		return false
	}
	for _, a := range p.Actions {
		if !a.State.Ended() {
			return false
		}
	}
	return true
}

// Settled reports whether every one of want active actions has run to its end.
func (p *PostLaunch) Settled(want int) bool {
	return p.Ended() && len(p.Actions) >= want
}

// Unverified returns the actions that must succeed for cutover and failed: a server with
// any is launched but not verified.
func (p *PostLaunch) Unverified() []ActionRun {
	if p == nil {
		return nil
	}
	var out []ActionRun
	for _, a := range p.Actions {
		if a.MustSucceed && a.State == ActionFailed {
			out = append(out, a)
		}
	}
	return out
}

// Describe says how one action ran, in words: "Smoke test succeeded", "Smoke test failed:
// HTTP 503 (must succeed for cutover)", "Smoke test running".
func (a ActionRun) Describe() string {
	var s string
	switch a.State {
	case ActionSucceeded:
		s = a.Name + " succeeded"
	case ActionFailed:
		s = a.Name + " failed"
		if a.FailureReason != "" {
			s += ": " + a.FailureReason
		}
	case ActionInProgress:
		s = a.Name + " running"
	default:
		s = fmt.Sprintf("%s %s", a.Name, label(map[ActionState]string{}, a.State))
	}
	if a.MustSucceed && a.State == ActionFailed {
		s += " (must succeed for cutover)"
	}
	return s
}

// Summary says in one line how a server's post-launch actions ran: each action, failures
// first; "" when none ran.
func (p *PostLaunch) Summary() string {
	if p == nil || len(p.Actions) == 0 {
		return ""
	}
	var failed, rest []string
	for _, a := range p.Actions {
		if a.State == ActionFailed {
			failed = append(failed, a.Describe())
		} else {
			rest = append(rest, a.Describe())
		}
	}
	return strings.Join(append(failed, rest...), "; ")
}
