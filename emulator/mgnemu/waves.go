package mgnemu

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"time"
)

var (
	waveIDPattern        = regexp.MustCompile(`^wave-[0-9a-zA-Z]{17}$`)
	applicationIDPattern = regexp.MustCompile(`^app-[0-9a-zA-Z]{17}$`)
)

// Aggregated health and progress as on the wire.
const (
	healthHealthy = "HEALTHY"
	healthLagging = "LAGGING"
	healthError   = "ERROR"

	progressNotStarted = "NOT_STARTED"
	progressInProgress = "IN_PROGRESS"
	progressCompleted  = "COMPLETED"
)

// laggingAfter is the lag from which a replicating server makes its application
// LAGGING. MGN does not publish its threshold; this is a guess.
const laggingAfter = 5 * time.Minute

// maxServersPerApplication is MGN's quota of source servers in one application.
const maxServersPerApplication = 200

// Wave is an MGN wave as ListWaves returns it.
type Wave struct {
	WaveID               string            `json:"waveID"`
	Arn                  string            `json:"arn,omitempty"`
	Name                 string            `json:"name"`
	Description          string            `json:"description,omitempty"`
	IsArchived           bool              `json:"isArchived"`
	Tags                 map[string]string `json:"tags,omitempty"` // e.g. cutover-date = 2026-03-16
	CreationDateTime     string            `json:"creationDateTime,omitempty"`
	LastModifiedDateTime string            `json:"lastModifiedDateTime,omitempty"`
	// WaveAggregatedStatus is computed from the wave's applications on every
	// answer; a value given to AddWaves is ignored.
	WaveAggregatedStatus *WaveAggregatedStatus `json:"waveAggregatedStatus,omitempty"`
}

// WaveAggregatedStatus sums up a wave's applications (see the package doc for the rule).
type WaveAggregatedStatus struct {
	HealthStatus               string `json:"healthStatus,omitempty"`
	ProgressStatus             string `json:"progressStatus,omitempty"`
	LastUpdateDateTime         string `json:"lastUpdateDateTime,omitempty"`
	ReplicationStartedDateTime string `json:"replicationStartedDateTime,omitempty"` // "" = no member server
	TotalApplications          int64  `json:"totalApplications"`
}

// Application is an MGN application as ListApplications returns it.
type Application struct {
	ApplicationID        string            `json:"applicationID"`
	Arn                  string            `json:"arn,omitempty"`
	Name                 string            `json:"name"`
	Description          string            `json:"description,omitempty"`
	IsArchived           bool              `json:"isArchived"`
	Tags                 map[string]string `json:"tags,omitempty"`
	WaveID               string            `json:"waveID,omitempty"` // "" = in no wave
	CreationDateTime     string            `json:"creationDateTime,omitempty"`
	LastModifiedDateTime string            `json:"lastModifiedDateTime,omitempty"`
	// ApplicationAggregatedStatus is computed from the member servers on every
	// answer; a value given to AddApplications is ignored.
	ApplicationAggregatedStatus *ApplicationAggregatedStatus `json:"applicationAggregatedStatus,omitempty"`
}

// ApplicationAggregatedStatus sums up an application's source servers (see the package doc).
type ApplicationAggregatedStatus struct {
	HealthStatus       string `json:"healthStatus,omitempty"`
	ProgressStatus     string `json:"progressStatus,omitempty"`
	LastUpdateDateTime string `json:"lastUpdateDateTime,omitempty"`
	TotalSourceServers int64  `json:"totalSourceServers"`
}

// AddWaves adds or replaces waves. Missing ARNs and datetimes are filled in.
func (s *Server) AddWaves(waves ...Wave) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := FormatTime(s.now())
	for _, w := range waves {
		w.Tags = maps.Clone(w.Tags)
		w.WaveAggregatedStatus = nil
		if w.Arn == "" {
			w.Arn = fmt.Sprintf("arn:aws:mgn:%s:%s:wave/%s", s.region, s.account, w.WaveID)
		}
		w.CreationDateTime = cmp.Or(w.CreationDateTime, now)
		w.LastModifiedDateTime = cmp.Or(w.LastModifiedDateTime, w.CreationDateTime)
		if _, ok := s.waves[w.WaveID]; !ok {
			s.waveIDs = append(s.waveIDs, w.WaveID)
		}
		s.waves[w.WaveID] = &w
	}
}

// AddApplications adds or replaces applications. Missing ARNs and datetimes are
// filled in. An application's servers are those whose ApplicationID names it.
func (s *Server) AddApplications(apps ...Application) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := FormatTime(s.now())
	for _, a := range apps {
		a.Tags = maps.Clone(a.Tags)
		a.ApplicationAggregatedStatus = nil
		if a.Arn == "" {
			a.Arn = fmt.Sprintf("arn:aws:mgn:%s:%s:application/%s", s.region, s.account, a.ApplicationID)
		}
		a.CreationDateTime = cmp.Or(a.CreationDateTime, now)
		a.LastModifiedDateTime = cmp.Or(a.LastModifiedDateTime, a.CreationDateTime)
		if _, ok := s.apps[a.ApplicationID]; !ok {
			s.appIDs = append(s.appIDs, a.ApplicationID)
		}
		s.apps[a.ApplicationID] = &a
	}
}

// Waves returns copies of all waves in insertion order, with their aggregated status.
func (s *Server) Waves() []Wave {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	return s.wavesLocked(func(*Wave) bool { return true })
}

// Applications returns copies of all applications in insertion order, with their
// aggregated status.
func (s *Server) Applications() []Application {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	return s.applicationsLocked(func(*Application) bool { return true })
}

// wavesLocked returns copies of the waves keep accepts, with their aggregated status.
func (s *Server) wavesLocked(keep func(*Wave) bool) []Wave {
	members := s.membersLocked()
	var out []Wave
	for _, id := range s.waveIDs {
		w := s.waves[id]
		if !keep(w) {
			continue
		}
		c := *w
		c.Tags = maps.Clone(w.Tags)
		c.WaveAggregatedStatus = s.waveStatusLocked(w, members)
		out = append(out, c)
	}
	return out
}

// applicationsLocked returns copies of the applications keep accepts, with their aggregated status.
func (s *Server) applicationsLocked(keep func(*Application) bool) []Application {
	members := s.membersLocked()
	var out []Application
	for _, id := range s.appIDs {
		a := s.apps[id]
		if !keep(a) {
			continue
		}
		c := *a
		c.Tags = maps.Clone(a.Tags)
		st := appStatus(a, members[id])
		c.ApplicationAggregatedStatus = &st.ApplicationAggregatedStatus
		out = append(out, c)
	}
	return out
}

// membersLocked returns the non-archived source servers of each application.
// Archived servers are left out: they are superseded duplicates (a guess).
func (s *Server) membersLocked() map[string][]*SourceServer {
	out := map[string][]*SourceServer{}
	for _, id := range s.serverIDs {
		srv := s.servers[id]
		if srv.ApplicationID != "" && !srv.IsArchived {
			out[srv.ApplicationID] = append(out[srv.ApplicationID], srv)
		}
	}
	return out
}

// appAggregate is an application's status plus what its wave needs.
type appAggregate struct {
	ApplicationAggregatedStatus
	replicationStarted time.Time // earliest member's replication start; zero = none
}

// appStatus derives an application's status from its member servers:
// health is the worst member's (ERROR: a replication error or STALLED; LAGGING:
// BACKLOG, RESCAN or lag over laggingAfter; cut-over and disconnected servers are
// HEALTHY); progress is NOT_STARTED until a member was launched or left
// READY_FOR_TEST, COMPLETED once every member is CUTOVER, else IN_PROGRESS.
// lastUpdateDateTime is the latest of the application's lastModifiedDateTime and
// its members' lifecycle API calls.
func appStatus(app *Application, members []*SourceServer) appAggregate {
	agg := appAggregate{ApplicationAggregatedStatus: ApplicationAggregatedStatus{
		HealthStatus: healthHealthy, ProgressStatus: progressNotStarted, TotalSourceServers: int64(len(members)),
	}}
	last := parseTime(app.LastModifiedDateTime)
	started, cutover := false, 0
	for _, srv := range members {
		agg.HealthStatus = worseHealth(agg.HealthStatus, serverHealth(srv))
		lc := srv.LifeCycle
		for _, ts := range []string{lc.LastTest.Initiated.APICallDateTime, lc.LastTest.Reverted.APICallDateTime,
			lc.LastTest.Finalized.APICallDateTime, lc.LastCutover.Initiated.APICallDateTime,
			lc.LastCutover.Reverted.APICallDateTime, lc.LastCutover.Finalized.APICallDateTime} {
			if t := parseTime(ts); t.After(last) {
				last = t
			}
		}
		switch lc.State {
		case "TESTING", "READY_FOR_CUTOVER", "CUTTING_OVER":
			started = true
		case "CUTOVER":
			started = true
			cutover++
		}
		if lc.LastTest.Initiated.APICallDateTime != "" || lc.LastCutover.Initiated.APICallDateTime != "" {
			started = true
		}
		rs := ""
		if in := srv.DataReplicationInfo.DataReplicationInitiation; in != nil {
			rs = in.StartDateTime
		}
		if t := parseTime(cmp.Or(rs, lc.FirstByteDateTime)); !t.IsZero() && (agg.replicationStarted.IsZero() || t.Before(agg.replicationStarted)) {
			agg.replicationStarted = t
		}
	}
	switch {
	case len(members) > 0 && cutover == len(members):
		agg.ProgressStatus = progressCompleted
	case started:
		agg.ProgressStatus = progressInProgress
	}
	agg.LastUpdateDateTime = FormatTime(last)
	return agg
}

// waveStatusLocked derives a wave's status from all its applications, archived
// or not (a guess): the worst health; NOT_STARTED or COMPLETED when every
// application is, else IN_PROGRESS; the latest update; the earliest replication start.
func (s *Server) waveStatusLocked(w *Wave, members map[string][]*SourceServer) *WaveAggregatedStatus {
	st := &WaveAggregatedStatus{HealthStatus: healthHealthy, ProgressStatus: progressNotStarted}
	last := parseTime(w.LastModifiedDateTime)
	var started time.Time
	progress := map[string]int{}
	for _, id := range s.appIDs {
		app := s.apps[id]
		if app.WaveID != w.WaveID {
			continue
		}
		agg := appStatus(app, members[id])
		st.TotalApplications++
		st.HealthStatus = worseHealth(st.HealthStatus, agg.HealthStatus)
		progress[agg.ProgressStatus]++
		if t := parseTime(agg.LastUpdateDateTime); t.After(last) {
			last = t
		}
		if t := agg.replicationStarted; !t.IsZero() && (started.IsZero() || t.Before(started)) {
			started = t
		}
	}
	switch n := int(st.TotalApplications); {
	case n > 0 && progress[progressCompleted] == n:
		st.ProgressStatus = progressCompleted
	case progress[progressNotStarted] != n:
		st.ProgressStatus = progressInProgress
	}
	st.LastUpdateDateTime = FormatTime(last)
	st.ReplicationStartedDateTime = FormatTime(started)
	return st
}

// serverHealth is one server's contribution to its application's health.
func serverHealth(srv *SourceServer) string {
	dri := srv.DataReplicationInfo
	if srv.LifeCycle.State == "CUTOVER" || dri.DataReplicationState == "DISCONNECTED" {
		return healthHealthy
	}
	if dri.DataReplicationError != nil || dri.DataReplicationState == "STALLED" {
		return healthError
	}
	if dri.DataReplicationState == "BACKLOG" || dri.DataReplicationState == "RESCAN" {
		return healthLagging
	}
	if lag, ok := parseDuration(dri.LagDuration); ok && lag > laggingAfter {
		return healthLagging
	}
	return healthHealthy
}

// worseHealth returns the worse of two health statuses.
func worseHealth(a, b string) string {
	if a == healthError || b == healthHealthy {
		return a
	}
	return b
}

// parseTime parses an RFC 3339 datetime; "" or garbage is the zero time.
func parseTime(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, v)
	return t
}

func (s *Server) listWaves(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID *string `json:"accountID"`
		Filters   *struct {
			WaveIDs    []string `json:"waveIDs"`
			IsArchived *bool    `json:"isArchived"`
		} `json:"filters"`
		MaxResults *int32  `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	f := in.Filters
	if f != nil {
		if err := checkIDs(f.WaveIDs, waveIDPattern, 200, "filters.waveIDs"); err != nil {
			return 0, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	matched := s.wavesLocked(func(w *Wave) bool {
		return f == nil || (len(f.WaveIDs) == 0 || slices.Contains(f.WaveIDs, w.WaveID)) &&
			(f.IsArchived == nil || *f.IsArchived == w.IsArchived)
	})
	items, next, err := page(matched, deref(in.NextToken), in.MaxResults, "waves")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOutput[Wave]{Items: nonNil(items), NextToken: next}, nil
}

func (s *Server) listApplications(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID *string `json:"accountID"`
		Filters   *struct {
			ApplicationIDs []string `json:"applicationIDs"`
			WaveIDs        []string `json:"waveIDs"`
			IsArchived     *bool    `json:"isArchived"`
		} `json:"filters"`
		MaxResults *int32  `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	f := in.Filters
	if f != nil {
		if err := checkIDs(f.ApplicationIDs, applicationIDPattern, 200, "filters.applicationIDs"); err != nil {
			return 0, nil, err
		}
		if err := checkIDs(f.WaveIDs, waveIDPattern, 200, "filters.waveIDs"); err != nil {
			return 0, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	matched := s.applicationsLocked(func(a *Application) bool {
		return f == nil || (len(f.ApplicationIDs) == 0 || slices.Contains(f.ApplicationIDs, a.ApplicationID)) &&
			(len(f.WaveIDs) == 0 || slices.Contains(f.WaveIDs, a.WaveID)) &&
			(f.IsArchived == nil || *f.IsArchived == a.IsArchived)
	})
	items, next, err := page(matched, deref(in.NextToken), in.MaxResults, "applications")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOutput[Application]{Items: nonNil(items), NextToken: next}, nil
}

// associateApplications puts applications into a wave. An application already in
// another wave, or an archived wave or application, is a ConflictException (a guess:
// AWS documents neither).
func (s *Server) associateApplications(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID      *string  `json:"accountID"`
		WaveID         *string  `json:"waveID"`
		ApplicationIDs []string `json:"applicationIDs"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if err := checkID(in.WaveID, waveIDPattern, "waveID"); err != nil {
		return 0, nil, err
	}
	if err := checkIDList(in.ApplicationIDs, applicationIDPattern, 50, "applicationIDs"); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.waves[*in.WaveID]
	if !ok {
		return 0, nil, notFoundErrorOf("WAVE", *in.WaveID)
	}
	if w.IsArchived {
		return 0, nil, conflictErrorOf("WAVE", "Archived wave cannot be changed", w.WaveID)
	}
	for _, id := range in.ApplicationIDs {
		a, ok := s.apps[id]
		switch {
		case !ok:
			return 0, nil, notFoundErrorOf("APPLICATION", id)
		case a.IsArchived:
			return 0, nil, conflictErrorOf("APPLICATION", "Archived application cannot be associated", id)
		case a.WaveID != "" && a.WaveID != w.WaveID:
			return 0, nil, conflictErrorOf("APPLICATION", "Application is already associated with wave "+a.WaveID, id)
		}
	}
	now := FormatTime(s.now())
	for _, id := range in.ApplicationIDs {
		s.apps[id].WaveID = w.WaveID
		s.apps[id].LastModifiedDateTime = now
	}
	w.LastModifiedDateTime = now
	return http.StatusOK, struct{}{}, nil
}

// associateSourceServers puts source servers into an application. A server
// already in another application, or an archived server or application, is a
// ConflictException (a guess); more than 200 servers in the application is
// ServiceQuotaExceededException.
func (s *Server) associateSourceServers(body []byte) (int, any, *apiError) {
	var in struct {
		AccountID       *string  `json:"accountID"`
		ApplicationID   *string  `json:"applicationID"`
		SourceServerIDs []string `json:"sourceServerIDs"`
	}
	if err := decode(body, &in); err != nil {
		return 0, nil, err
	}
	if err := checkID(in.ApplicationID, applicationIDPattern, "applicationID"); err != nil {
		return 0, nil, err
	}
	if err := checkIDList(in.SourceServerIDs, serverIDPattern, 50, "sourceServerIDs"); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[*in.ApplicationID]
	if !ok {
		return 0, nil, notFoundErrorOf("APPLICATION", *in.ApplicationID)
	}
	if a.IsArchived {
		return 0, nil, conflictErrorOf("APPLICATION", "Archived application cannot be changed", a.ApplicationID)
	}
	added := 0
	for _, id := range in.SourceServerIDs {
		srv, ok := s.servers[id]
		switch {
		case !ok:
			return 0, nil, notFoundError(id)
		case srv.IsArchived:
			return 0, nil, conflictError("Archived Source Server cannot be associated", id)
		case srv.ApplicationID != "" && srv.ApplicationID != a.ApplicationID:
			return 0, nil, conflictError("Source Server is already associated with application "+srv.ApplicationID, id)
		case srv.ApplicationID == "":
			added++
		}
	}
	if n := len(s.membersLocked()[a.ApplicationID]) + added; n > maxServersPerApplication {
		return 0, nil, &apiError{status: http.StatusPaymentRequired, typ: "ServiceQuotaExceededException", body: map[string]any{
			"message":      fmt.Sprintf("An application can hold at most %d source servers", maxServersPerApplication),
			"code":         "ServiceQuotaExceededException",
			"resourceId":   a.ApplicationID,
			"resourceType": "APPLICATION",
			"serviceCode":  "mgn",
			"quotaValue":   maxServersPerApplication,
		}}
	}
	for _, id := range in.SourceServerIDs {
		s.servers[id].ApplicationID = a.ApplicationID
	}
	a.LastModifiedDateTime = FormatTime(s.now())
	return http.StatusOK, struct{}{}, nil
}
