package mgnemu

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// Post-launch action execution statuses as on the wire.
const (
	executionInProgress = "IN_PROGRESS"
	executionSuccess    = "SUCCESS"
	executionFailed     = "FAILED"
)

// SSM document types, for SourceServerAction.DocumentType.
const (
	DocumentCommand    = "COMMAND"
	DocumentAutomation = "AUTOMATION"
)

// actionIDPattern is the model's ActionID pattern; it only constrains the last character.
var actionIDPattern = regexp.MustCompile(`^.{0,63}[0-9a-zA-Z]$`)

// SourceServerAction is a post-launch action of a source server (an SSM document
// MGN runs on the launched instance), as ListSourceServerActions returns it.
type SourceServerAction struct {
	ActionID   string `json:"actionID"`
	ActionName string `json:"actionName"`
	// Active actions run after every launch; inactive ones are only listed.
	Active      bool   `json:"active"`
	Category    string `json:"category,omitempty"` // VALIDATION, OBSERVABILITY, ...
	Description string `json:"description,omitempty"`
	// DocumentIdentifier is the SSM document's name or ARN; DescribeJobs reports it
	// as ssmDocument.ssmDocumentName.
	DocumentIdentifier    string                                  `json:"documentIdentifier"`
	DocumentVersion       string                                  `json:"documentVersion,omitempty"`
	ExternalParameters    map[string]SsmExternalParameter         `json:"externalParameters,omitempty"`
	MustSucceedForCutover bool                                    `json:"mustSucceedForCutover"`
	Order                 int32                                   `json:"order"` // lower runs first; 1001..10000 for custom actions
	Parameters            map[string][]SsmParameterStoreParameter `json:"parameters,omitempty"`
	TimeoutSeconds        int32                                   `json:"timeoutSeconds,omitempty"` // 0 = not set
	// DocumentType is the SSM document's type, DocumentCommand or
	// DocumentAutomation ("" = command). It belongs to the document in SSM, not
	// to the action, so ListSourceServerActions does not send it; DescribeJobs
	// reports it as ssmDocumentType.
	DocumentType string `json:"-"`
}

// SsmExternalParameter is a parameter whose value MGN resolves at launch.
type SsmExternalParameter struct {
	DynamicPath string `json:"dynamicPath,omitempty"`
}

// SsmParameterStoreParameter names a Parameter Store parameter passed to a document.
type SsmParameterStoreParameter struct {
	ParameterName string `json:"parameterName"`
	ParameterType string `json:"parameterType"` // STRING
}

func (a SourceServerAction) clone() SourceServerAction {
	a.ExternalParameters = maps.Clone(a.ExternalParameters)
	if a.Parameters != nil {
		params := make(map[string][]SsmParameterStoreParameter, len(a.Parameters))
		for k, v := range a.Parameters {
			params[k] = slices.Clone(v)
		}
		a.Parameters = params
	}
	return a
}

// PostLaunchActionsStatus is participatingServers[].postLaunchActionsStatus in DescribeJobs.
type PostLaunchActionsStatus struct {
	SsmAgentDiscoveryDatetime         string                         `json:"ssmAgentDiscoveryDatetime,omitempty"`
	PostLaunchActionsLaunchStatusList []PostLaunchActionLaunchStatus `json:"postLaunchActionsLaunchStatusList"`
}

// PostLaunchActionLaunchStatus is one action's execution on the launched instance.
type PostLaunchActionLaunchStatus struct {
	SsmDocument     *SsmDocument `json:"ssmDocument,omitempty"`
	SsmDocumentType string       `json:"ssmDocumentType,omitempty"`
	ExecutionID     string       `json:"executionID,omitempty"`
	ExecutionStatus string       `json:"executionStatus,omitempty"` // IN_PROGRESS, SUCCESS or FAILED
	FailureReason   string       `json:"failureReason,omitempty"`
}

// SsmDocument is the action as a job reports it.
type SsmDocument struct {
	ActionName            string                                  `json:"actionName"`
	SsmDocumentName       string                                  `json:"ssmDocumentName"`
	MustSucceedForCutover bool                                    `json:"mustSucceedForCutover"`
	TimeoutSeconds        int32                                   `json:"timeoutSeconds,omitempty"`
	Parameters            map[string][]SsmParameterStoreParameter `json:"parameters,omitempty"`
	ExternalParameters    map[string]SsmExternalParameter         `json:"externalParameters,omitempty"`
}

// FailAction makes the action named actionName fail with failureReason the next
// time serverID is launched (the fault is used up by that launch, even if the
// launch itself fails). The other actions still run.
func (s *Server) FailAction(serverID, actionName, failureReason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.actionFaults[serverID] == nil {
		s.actionFaults[serverID] = map[string]string{}
	}
	s.actionFaults[serverID][actionName] = failureReason
}

// activeActions returns the server's active post-launch actions in run order.
func activeActions(srv *SourceServer) []SourceServerAction {
	if srv == nil {
		return nil
	}
	var out []SourceServerAction
	for _, a := range srv.PostLaunchActions {
		if a.Active {
			out = append(out, a.clone())
		}
	}
	slices.SortStableFunc(out, func(a, b SourceServerAction) int { return cmp.Compare(a.Order, b.Order) })
	return out
}

// runPostLaunchLocked schedules the post-launch actions of server sid in job j on
// its new instance, from at, the end of the server's part of the job. The SSM
// agent is seen after Pace.SSMAgent; then the actions run one after another,
// each for Pace.Action. An action fails with the reason in faults (by action
// name), or when the instance stopped running; after the latter, nothing else runs.
func (s *Server) runPostLaunchLocked(j *job, sid string, target *instance, actions []SourceServerAction, faults map[string]string, at time.Time) {
	if len(actions) == 0 {
		return
	}
	s.scheduleLocked(at.Add(s.pace.SSMAgent), func(at time.Time) {
		if target.State != "running" {
			return // the agent is never seen
		}
		st := &PostLaunchActionsStatus{SsmAgentDiscoveryDatetime: FormatTime(at), PostLaunchActionsLaunchStatusList: []PostLaunchActionLaunchStatus{}}
		j.participant(sid).PostLaunchActionsStatus = st
		s.runActionLocked(j, sid, st, target, actions, faults, at)
	})
}

// runActionLocked starts actions[0] at at and schedules its end, which starts the next.
func (s *Server) runActionLocked(j *job, sid string, st *PostLaunchActionsStatus, target *instance, actions []SourceServerAction, faults map[string]string, at time.Time) {
	if len(actions) == 0 {
		return
	}
	a := actions[0]
	docType := a.DocumentType
	if docType == "" {
		docType = DocumentCommand
	}
	st.PostLaunchActionsLaunchStatusList = append(st.PostLaunchActionsLaunchStatusList, PostLaunchActionLaunchStatus{
		SsmDocument: &SsmDocument{
			ActionName:            a.ActionName,
			SsmDocumentName:       a.DocumentIdentifier,
			MustSucceedForCutover: a.MustSucceedForCutover,
			TimeoutSeconds:        a.TimeoutSeconds,
			Parameters:            a.Parameters,
			ExternalParameters:    a.ExternalParameters,
		},
		SsmDocumentType: docType,
		ExecutionID:     stableUUID(j.JobID + "/" + sid + "/" + a.ActionID),
		ExecutionStatus: executionInProgress,
	})
	i := len(st.PostLaunchActionsLaunchStatusList) - 1
	s.scheduleLocked(at.Add(s.pace.Action), func(at time.Time) {
		e := &st.PostLaunchActionsLaunchStatusList[i]
		if target.State != "running" {
			e.ExecutionStatus = executionFailed
			e.FailureReason = "Target instance " + target.InstanceID + " is no longer running"
			return
		}
		if reason, ok := faults[a.ActionName]; ok {
			e.ExecutionStatus = executionFailed
			e.FailureReason = reason
		} else {
			e.ExecutionStatus = executionSuccess
		}
		s.runActionLocked(j, sid, st, target, actions[1:], faults, at)
	})
}

// stableUUID returns a UUID-shaped ID derived from name. Execution IDs come from
// here rather than from the seeded generator, so that post-launch actions do not
// shift the IDs the emulator hands out afterwards.
func stableUUID(name string) string {
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *Server) listSourceServerActions(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID      *string `json:"accountID"`
		SourceServerID *string `json:"sourceServerID"`
		Filters        *struct {
			ActionIDs []string `json:"actionIDs"`
		} `json:"filters"`
		MaxResults *int32  `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if err := checkID(in.SourceServerID, serverIDPattern, "sourceServerID"); err != nil {
		return 0, nil, err
	}
	var actionIDs []string
	if in.Filters != nil {
		actionIDs = in.Filters.ActionIDs
		if err := checkIDs(actionIDs, actionIDPattern, 100, "filters.actionIDs"); err != nil {
			return 0, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, ok := s.servers[*in.SourceServerID]
	if !ok {
		return 0, nil, notFoundError(*in.SourceServerID)
	}
	var matched []SourceServerAction
	for _, a := range srv.PostLaunchActions {
		if len(actionIDs) == 0 || slices.Contains(actionIDs, a.ActionID) {
			matched = append(matched, a.clone())
		}
	}
	slices.SortStableFunc(matched, func(a, b SourceServerAction) int { return cmp.Compare(a.Order, b.Order) })
	items, next, err := page(matched, deref(in.NextToken), in.MaxResults, "actions")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOutput[SourceServerAction]{Items: nonNil(items), NextToken: next}, nil
}
