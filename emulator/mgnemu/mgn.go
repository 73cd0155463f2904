package mgnemu

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	serverIDPattern = regexp.MustCompile(`^s-[0-9a-zA-Z]{17}$`)
	jobIDPattern    = regexp.MustCompile(`^mgnjob-[0-9a-zA-Z]{17}$`)
)

// apiError is an MGN error answer: status, X-Amzn-ErrorType and a JSON body.
type apiError struct {
	status int
	typ    string
	body   map[string]any
}

func (e *apiError) Error() string { return e.typ + ": " + fmt.Sprint(e.body["message"]) }

func validationError(reason, msg string, fields ...string) *apiError {
	body := map[string]any{"message": msg, "code": "ValidationException", "reason": reason}
	if len(fields) > 0 {
		var list []map[string]string
		for _, f := range fields {
			list = append(list, map[string]string{"name": f, "message": msg})
		}
		body["fieldList"] = list
	}
	return &apiError{status: http.StatusBadRequest, typ: "ValidationException", body: body}
}

// conflictError names the source servers that block the call in errors[].
func conflictError(msg string, ids ...string) *apiError {
	return conflictErrorOf("SOURCE_SERVER", msg, ids...)
}

// conflictErrorOf names the resources of resourceType that block the call in errors[].
func conflictErrorOf(resourceType, msg string, ids ...string) *apiError {
	body := map[string]any{"message": msg, "code": "ConflictException"}
	if len(ids) == 1 {
		body["resourceId"] = ids[0]
		body["resourceType"] = resourceType
	}
	var list []map[string]string
	for _, id := range ids {
		list = append(list, map[string]string{"code": "ConflictException", "message": msg, "resourceId": id, "resourceType": resourceType})
	}
	if len(list) > 0 {
		body["errors"] = list
	}
	return &apiError{status: http.StatusConflict, typ: "ConflictException", body: body}
}

func notFoundError(id string) *apiError {
	return notFoundErrorOf("SOURCE_SERVER", id)
}

// resourceNames are how error messages name resource types.
var resourceNames = map[string]string{"SOURCE_SERVER": "Source Server", "APPLICATION": "Application", "WAVE": "Wave"}

func notFoundErrorOf(resourceType, id string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "ResourceNotFoundException", body: map[string]any{
		"message": resourceNames[resourceType] + " not found", "code": "ResourceNotFoundException",
		"resourceId": id, "resourceType": resourceType,
	}}
}

// checkID validates a required ID.
func checkID(id *string, pattern *regexp.Regexp, field string) *apiError {
	if id == nil || !pattern.MatchString(*id) {
		return validationError("fieldValidationFailed", "Invalid "+field, field)
	}
	return nil
}

// checkIDs validates an optional list of IDs: at most limit, each matching pattern.
func checkIDs(ids []string, pattern *regexp.Regexp, limit int, field string) *apiError {
	if len(ids) > limit {
		return validationError("fieldValidationFailed", fmt.Sprintf("%s must contain at most %d items", field, limit), field)
	}
	for _, id := range ids {
		if !pattern.MatchString(id) {
			return validationError("fieldValidationFailed", "Invalid ID "+strconv.Quote(id)+" in "+field, field)
		}
	}
	return nil
}

// checkIDList validates a required list of IDs: 1 to limit, each matching pattern.
func checkIDList(ids []string, pattern *regexp.Regexp, limit int, field string) *apiError {
	if len(ids) == 0 {
		return validationError("fieldValidationFailed", fmt.Sprintf("%s must contain between 1 and %d items", field, limit), field)
	}
	return checkIDs(ids, pattern, limit, field)
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	switch e.typ {
	case "ThrottlingException", "InternalServerException", "ServiceUnavailableException":
		w.Header().Set("Retry-After", "1")
		w.Header().Set("X-Amz-Retry-After", "10")
	}
	writeJSON(w, e.status, reqID, e.body)
}

func faultError(f *fault) *apiError {
	if f.throttle {
		return &apiError{status: http.StatusTooManyRequests, typ: "ThrottlingException",
			body: map[string]any{"message": "Rate exceeded", "serviceCode": "mgn"}}
	}
	return &apiError{status: f.status, typ: f.errType, body: map[string]any{"message": "injected fault: " + f.errType}}
}

type mgnHandler func(s *Server, body []byte) (status int, out any, err *apiError)

var mgnOps = map[string]mgnHandler{
	"DescribeSourceServers":      (*Server).describeSourceServers,
	"StartTest":                  (*Server).startTest,
	"StartCutover":               (*Server).startCutover,
	"TerminateTargetInstances":   (*Server).terminateTargetInstances,
	"DescribeJobs":               (*Server).describeJobs,
	"DescribeJobLogItems":        (*Server).describeJobLogItems,
	"ChangeServerLifeCycleState": (*Server).changeServerLifeCycleState,
	"FinalizeCutover":            (*Server).finalizeCutover,
	"ListWaves":                  (*Server).listWaves,
	"ListApplications":           (*Server).listApplications,
	"AssociateApplications":      (*Server).associateApplications,
	"AssociateSourceServers":     (*Server).associateSourceServers,
	"ListSourceServerActions":    (*Server).listSourceServerActions,
}

func (s *Server) serveMGN(w http.ResponseWriter, r *http.Request, op string, body []byte, reqID string) {
	start := time.Now()
	h, ok := mgnOps[op]
	if !ok {
		s.mu.Lock()
		s.calls[op]++
		s.unmodeled = append(s.unmodeled, op)
		s.mu.Unlock()
		s.logger.Warn("unmodeled operation", "service", "mgn", "op", op)
		writeError(w, reqID, validationError("unknownOperation", "mgnemu does not model operation "+op))
		return
	}
	f, ok := s.begin(r.Context(), op)
	if !ok {
		return
	}
	if f != nil {
		writeError(w, reqID, faultError(f))
		s.logger.Info("request", "service", "mgn", "op", op, "status", faultError(f).status, "fault", true)
		return
	}
	status, out, apiErr := h(s, body)
	if apiErr != nil {
		writeError(w, reqID, apiErr)
		status = apiErr.status
	} else {
		writeJSON(w, status, reqID, out)
	}
	s.logger.Info("request", "service", "mgn", "op", op, "status", status, "dur", time.Since(start))
}

// decode parses a request body strictly: unknown members and wrong types are
// ValidationException cannotParse, as the service's own deserializer rejects them.
func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return validationError("cannotParse", "Unable to parse request body: "+err.Error())
	}
	if dec.More() {
		return validationError("cannotParse", "Unable to parse request body: trailing data")
	}
	return nil
}

// page cuts items[offset:] to at most max and returns the next token ("" = last page).
func page[T any](items []T, token string, maxResults *int32, kind string) ([]T, string, *apiError) {
	limit := 1000
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 1000 {
			return nil, "", validationError("fieldValidationFailed", "maxResults must be between 1 and 1000", "maxResults")
		}
		limit = int(*maxResults)
	}
	offset := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		rest, ok := strings.CutPrefix(string(raw), kind+":")
		n, convErr := strconv.Atoi(rest)
		if err != nil || !ok || convErr != nil || n < 0 || n > len(items) {
			return nil, "", validationError("fieldValidationFailed", "Invalid nextToken", "nextToken")
		}
		offset = n
	}
	end := min(offset+limit, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d", kind, end))
	}
	return items[offset:end], next, nil
}

type listOutput[T any] struct {
	Items     []T    `json:"items"`
	NextToken string `json:"nextToken,omitempty"`
}

func (s *Server) describeSourceServers(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID *string `json:"accountID"`
		Filters   *struct {
			SourceServerIDs  []string `json:"sourceServerIDs"`
			IsArchived       *bool    `json:"isArchived"`
			LifeCycleStates  []string `json:"lifeCycleStates"`
			ReplicationTypes []string `json:"replicationTypes"`
			ApplicationIDs   []string `json:"applicationIDs"`
		} `json:"filters"`
		MaxResults *int32  `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if in.Filters != nil {
		if err := checkIDs(in.Filters.ApplicationIDs, applicationIDPattern, 200, "filters.applicationIDs"); err != nil {
			return 0, nil, err
		}
		if err := checkIDs(in.Filters.SourceServerIDs, serverIDPattern, 200, "filters.sourceServerIDs"); err != nil {
			return 0, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*SourceServer
	for _, id := range s.serverIDs {
		srv := s.servers[id]
		if f := in.Filters; f != nil {
			if len(f.SourceServerIDs) > 0 && !slices.Contains(f.SourceServerIDs, srv.SourceServerID) ||
				f.IsArchived != nil && *f.IsArchived != srv.IsArchived ||
				len(f.LifeCycleStates) > 0 && !slices.Contains(f.LifeCycleStates, srv.LifeCycle.State) ||
				len(f.ReplicationTypes) > 0 && !slices.Contains(f.ReplicationTypes, srv.ReplicationType) ||
				len(f.ApplicationIDs) > 0 && !slices.Contains(f.ApplicationIDs, srv.ApplicationID) {
				continue
			}
		}
		matched = append(matched, srv)
	}
	items, next, err := page(matched, deref(in.NextToken), in.MaxResults, "servers")
	if err != nil {
		return 0, nil, err
	}
	// Encode under the lock: items point at live state.
	b, mErr := json.Marshal(listOutput[*SourceServer]{Items: nonNil(items), NextToken: next})
	if mErr != nil {
		return 0, nil, &apiError{status: 500, typ: "InternalServerException", body: map[string]any{"message": mErr.Error()}}
	}
	return http.StatusOK, json.RawMessage(b), nil
}

type launchInput struct {
	AccountID       *string           `json:"accountID"`
	SourceServerIDs []string          `json:"sourceServerIDs"`
	Tags            map[string]string `json:"tags"`
}

func (s *Server) startTest(body []byte) (int, any, *apiError) {
	return s.launch(body, "START_TEST")
}

func (s *Server) startCutover(body []byte) (int, any, *apiError) {
	return s.launch(body, "START_CUTOVER")
}

func (s *Server) terminateTargetInstances(body []byte) (int, any, *apiError) {
	return s.launch(body, "TERMINATE")
}

// Quotas from the AWS General Reference.
const (
	maxActiveJobs        = 20
	maxServersPerJob     = 200
	maxServersActiveJobs = 200
)

const msgBusy = "One or more of the Source Servers included in API call are currently being processed by a Job"

// launch implements StartTest, StartCutover and TerminateTargetInstances.
// Every server is checked first; any refusal fails the whole call and creates no job.
func (s *Server) launch(body []byte, initiatedBy string) (int, any, *apiError) {
	var in launchInput
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if n := len(in.SourceServerIDs); n < 1 || n > maxServersPerJob {
		return 0, nil, validationError("fieldValidationFailed",
			fmt.Sprintf("sourceServerIDs must contain between 1 and %d items", maxServersPerJob), "sourceServerIDs")
	}
	if len(in.Tags) > 50 {
		return 0, nil, validationError("fieldValidationFailed", "tags must contain at most 50 entries", "tags")
	}
	seen := map[string]bool{}
	for _, id := range in.SourceServerIDs {
		if !serverIDPattern.MatchString(id) {
			return 0, nil, validationError("fieldValidationFailed", "Invalid source server ID "+strconv.Quote(id), "sourceServerIDs")
		}
		if seen[id] {
			return 0, nil, validationError("fieldValidationFailed", "Duplicate source server ID "+id, "sourceServerIDs")
		}
		seen[id] = true
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	active := s.activeJobsLocked()
	if len(active) >= s.maxJobs {
		return 0, nil, conflictError(fmt.Sprintf("Cannot start job: the maximum of %d concurrent jobs is in progress", s.maxJobs))
	}
	busy := 0
	for _, j := range active {
		busy += len(j.ParticipatingServers)
	}
	if busy+len(in.SourceServerIDs) > s.maxActiveServers {
		return 0, nil, conflictError(fmt.Sprintf("Cannot start job: at most %d source servers may be in active jobs", s.maxActiveServers))
	}
	var notFound, archived, inJob, wrongState, notReady []string
	for _, id := range in.SourceServerIDs {
		srv, ok := s.servers[id]
		switch {
		case !ok:
			notFound = append(notFound, id)
		case srv.IsArchived:
			archived = append(archived, id)
		case s.activeJobOfLocked(id) != nil:
			inJob = append(inJob, id)
		case !stateAllows(initiatedBy, srv.LifeCycle.State):
			wrongState = append(wrongState, id)
		case initiatedBy != "TERMINATE" && !launchable(srv):
			notReady = append(notReady, id)
		}
	}
	switch {
	case len(notFound) > 0:
		return 0, nil, conflictError("Source Server not found: "+strings.Join(notFound, ", "), notFound...)
	case len(archived) > 0:
		return 0, nil, conflictError("Archived Source Servers cannot be used: "+strings.Join(archived, ", "), archived...)
	case len(inJob) > 0:
		return 0, nil, conflictError(msgBusy, inJob...)
	case len(wrongState) > 0:
		return 0, nil, conflictError(wrongStateMessage(initiatedBy)+": "+strings.Join(wrongState, ", "), wrongState...)
	case len(notReady) > 0:
		return 0, nil, conflictError("Source Servers must be in continuous data replication with a lag duration to be launched: "+
			strings.Join(notReady, ", "), notReady...)
	}

	var j *job
	if initiatedBy == "TERMINATE" {
		j = s.startTerminateLocked(in.SourceServerIDs, in.Tags, now)
	} else {
		j = s.startLaunchLocked(initiatedBy, in.SourceServerIDs, in.Tags, now)
		for _, id := range in.SourceServerIDs {
			lc := &s.servers[id].LifeCycle
			initiated := LaunchInitiated{APICallDateTime: FormatTime(now), JobID: j.JobID}
			if initiatedBy == "START_TEST" {
				lc.State = "TESTING"
				lc.LastTest = LastLaunch{Initiated: initiated}
			} else {
				lc.State = "CUTTING_OVER"
				lc.LastCutover = LastLaunch{Initiated: initiated}
			}
		}
	}
	s.advanceLocked()
	return http.StatusAccepted, map[string]any{"job": clone(j.Job)}, nil
}

func stateAllows(initiatedBy, state string) bool {
	switch initiatedBy {
	case "START_TEST":
		return state == "READY_FOR_TEST" || state == "TESTING" || state == "READY_FOR_CUTOVER"
	case "START_CUTOVER":
		return state == "READY_FOR_CUTOVER"
	default: // TERMINATE
		return state != "TESTING" && state != "CUTTING_OVER" && state != "CUTOVER"
	}
}

func wrongStateMessage(initiatedBy string) string {
	switch initiatedBy {
	case "START_TEST":
		return "Source Servers must be ready for test, testing or ready for cutover to launch a test"
	case "START_CUTOVER":
		return "Source Servers must be ready for cutover to launch a cutover"
	default:
		return "Cannot terminate target instances of Source Servers in TESTING, CUTTING_OVER or CUTOVER"
	}
}

// launchable reports whether a server's replication allows a launch.
func launchable(srv *SourceServer) bool {
	dri := srv.DataReplicationInfo
	return dri.DataReplicationState == "CONTINUOUS" && dri.LagDuration != "" && dri.DataReplicationError == nil
}

func (s *Server) describeJobs(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID *string `json:"accountID"`
		Filters   *struct {
			JobIDs   []string `json:"jobIDs"`
			FromDate *string  `json:"fromDate"`
			ToDate   *string  `json:"toDate"`
		} `json:"filters"`
		MaxResults *int32  `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	var from, to time.Time
	var jobIDs []string
	if f := in.Filters; f != nil {
		if len(f.JobIDs) > 1000 {
			return 0, nil, validationError("fieldValidationFailed", "jobIDs must contain at most 1000 items", "filters.jobIDs")
		}
		jobIDs = f.JobIDs
		var err *apiError
		if from, err = parseDate(f.FromDate, "filters.fromDate"); err != nil {
			return 0, nil, err
		}
		if to, err = parseDate(f.ToDate, "filters.toDate"); err != nil {
			return 0, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []Job
	for i := len(s.jobIDs) - 1; i >= 0; i-- {
		j := s.jobs[s.jobIDs[i]]
		if len(jobIDs) > 0 && !slices.Contains(jobIDs, j.JobID) {
			continue
		}
		created, _ := time.Parse(time.RFC3339Nano, j.CreationDateTime)
		if !from.IsZero() && created.Before(from) || !to.IsZero() && created.After(to) {
			continue
		}
		matched = append(matched, j.Job)
	}
	items, next, err := page(matched, deref(in.NextToken), in.MaxResults, "jobs")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, clone(listOutput[Job]{Items: nonNil(items), NextToken: next}), nil
}

func parseDate(v *string, field string) (time.Time, *apiError) {
	if v == nil || *v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		return time.Time{}, validationError("fieldValidationFailed", "Invalid ISO 8601 date in "+field, field)
	}
	return t, nil
}

func (s *Server) describeJobLogItems(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID  *string `json:"accountID"`
		JobID      *string `json:"jobID"`
		MaxResults *int32  `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if err := checkID(in.JobID, jobIDPattern, "jobID"); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var log []JobLog
	if j, ok := s.jobs[*in.JobID]; ok {
		log = j.log
	}
	items, next, err := page(log, deref(in.NextToken), in.MaxResults, "log")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, clone(listOutput[JobLog]{Items: nonNil(items), NextToken: next}), nil
}

func (s *Server) changeServerLifeCycleState(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID      *string `json:"accountID"`
		SourceServerID *string `json:"sourceServerID"`
		LifeCycle      *struct {
			State *string `json:"state"`
		} `json:"lifeCycle"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if err := checkID(in.SourceServerID, serverIDPattern, "sourceServerID"); err != nil {
		return 0, nil, err
	}
	if in.LifeCycle == nil || in.LifeCycle.State == nil {
		return 0, nil, validationError("fieldValidationFailed", "lifeCycle.state is required", "lifeCycle.state")
	}
	target := *in.LifeCycle.State
	if target != "READY_FOR_TEST" && target != "READY_FOR_CUTOVER" && target != "CUTOVER" {
		return 0, nil, validationError("fieldValidationFailed",
			"lifeCycle.state must be one of READY_FOR_TEST, READY_FOR_CUTOVER, CUTOVER", "lifeCycle.state")
	}
	id := *in.SourceServerID
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, ok := s.servers[id]
	if !ok {
		return 0, nil, notFoundError(id)
	}
	if srv.IsArchived {
		return 0, nil, conflictError("Archived Source Server cannot change lifecycle state", id)
	}
	if srv.DataReplicationInfo.LagDuration == "" {
		return 0, nil, conflictError("Source Server is not launchable: lag duration is unknown", id)
	}
	lc := &srv.LifeCycle
	now := FormatTime(s.now())
	from := lc.State
	switch {
	case target == "READY_FOR_TEST" && from == "TESTING":
		lc.LastTest.Reverted = APICall{APICallDateTime: now}
	case target == "READY_FOR_CUTOVER" && from == "TESTING":
		lc.LastTest.Finalized = APICall{APICallDateTime: now}
	case target == "READY_FOR_CUTOVER" && from == "READY_FOR_TEST":
	case target == "READY_FOR_CUTOVER" && from == "CUTTING_OVER":
		lc.LastCutover.Reverted = APICall{APICallDateTime: now}
	case target == "CUTOVER" && from == "CUTTING_OVER":
		lc.LastCutover.Finalized = APICall{APICallDateTime: now}
	default:
		return 0, nil, conflictError(fmt.Sprintf("Cannot change lifecycle state from %s to %s", from, target), id)
	}
	lc.State = target
	return http.StatusOK, srv.clone(), nil
}

func (s *Server) finalizeCutover(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID      *string `json:"accountID"`
		SourceServerID *string `json:"sourceServerID"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if err := checkID(in.SourceServerID, serverIDPattern, "sourceServerID"); err != nil {
		return 0, nil, err
	}
	id := *in.SourceServerID
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, ok := s.servers[id]
	if !ok {
		return 0, nil, notFoundError(id)
	}
	if s.activeJobOfLocked(id) != nil {
		return 0, nil, conflictError(msgBusy, id)
	}
	if srv.LifeCycle.State != "CUTTING_OVER" {
		return 0, nil, conflictError("Source Server must be in CUTTING_OVER state to finalize cutover, not "+srv.LifeCycle.State, id)
	}
	srv.LifeCycle.State = "CUTOVER"
	srv.LifeCycle.LastCutover.Finalized = APICall{APICallDateTime: FormatTime(s.now())}
	dri := &srv.DataReplicationInfo
	dri.DataReplicationState = "DISCONNECTED"
	dri.LagDuration = ""
	dri.EtaDateTime = ""
	dri.DataReplicationError = nil
	for i := range dri.ReplicatedDisks {
		dri.ReplicatedDisks[i].TotalStorageBytes = 0
	}
	return http.StatusOK, srv.clone(), nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// nonNil makes an empty page encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
