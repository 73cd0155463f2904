package migration

import (
	"slices"
	"strings"
	"time"
)

// Health is MGN's aggregated health of a wave or an application.
type Health string

// Aggregated health statuses, as MGN names them.
const (
	HealthHealthy Health = "HEALTHY"
	HealthLagging Health = "LAGGING"
	HealthError   Health = "ERROR"
)

// Progress is MGN's aggregated progress of a wave or an application.
type Progress string

// Aggregated progress statuses, as MGN names them.
const (
	ProgressNotStarted Progress = "NOT_STARTED"
	ProgressInProgress Progress = "IN_PROGRESS"
	ProgressCompleted  Progress = "COMPLETED"
)

// TagCutoverDate is the tag of a wave that plans its cutover, as YYYY-MM-DD.
const TagCutoverDate = "cutover-date"

// Wave is an MGN wave: applications migrated together. Its status is as MGN aggregates it.
type Wave struct {
	ID          string // wave- followed by 17 characters
	ARN         string
	Name        string
	Description string
	Archived    bool
	Tags        map[string]string
	Health      Health   // "" when MGN gives none
	Progress    Progress // "" when MGN gives none
	// Applications is how many applications MGN counts in the wave.
	Applications int
}

// CutoverDate is the wave's planned cutover date from its cutover-date tag (a date at
// midnight UTC), and whether the tag holds one.
func (w Wave) CutoverDate() (time.Time, bool) {
	v, ok := w.Tags[TagCutoverDate]
	if !ok {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(v))
	return d, err == nil
}

// Application is an MGN application: source servers that belong together.
type Application struct {
	ID          string // app- followed by 17 characters
	ARN         string
	Name        string
	Description string
	Archived    bool
	Tags        map[string]string
	WaveID      string // "" when the application is in no wave
	Health      Health
	Progress    Progress
	// Servers is how many source servers MGN counts in the application.
	Servers int
}

// Program is a migration program as MGN plans it: its waves and applications (non-archived).
type Program struct {
	Waves        []Wave
	Applications []Application
}

// Wave returns the wave with id, and whether there is one.
func (p Program) Wave(id string) (Wave, bool) {
	i := slices.IndexFunc(p.Waves, func(w Wave) bool { return w.ID == id })
	if i < 0 {
		return Wave{}, false
	}
	return p.Waves[i], true
}

// Application returns the application with id, and whether there is one.
func (p Program) Application(id string) (Application, bool) {
	i := slices.IndexFunc(p.Applications, func(a Application) bool { return a.ID == id })
	if i < 0 {
		return Application{}, false
	}
	return p.Applications[i], true
}

// WaveOf returns the wave server s belongs to (through its application), and whether it
// belongs to one.
func (p Program) WaveOf(s Server) (Wave, bool) {
	a, ok := p.Application(s.ApplicationID)
	if !ok || a.WaveID == "" {
		return Wave{}, false
	}
	return p.Wave(a.WaveID)
}

// WaveServers returns the non-archived servers of fleet in the wave with id, in fleet order.
func (p Program) WaveServers(fleet []Server, id string) []Server {
	apps := map[string]bool{}
	for _, a := range p.Applications {
		if a.WaveID == id {
			apps[a.ID] = true
		}
	}
	var out []Server
	for _, s := range fleet {
		if !s.Archived && s.ApplicationID != "" && apps[s.ApplicationID] {
			out = append(out, s)
		}
	}
	return out
}

// ApplicationServers returns the non-archived servers of fleet in the application with id,
// in fleet order.
func ApplicationServers(fleet []Server, id string) []Server {
	var out []Server
	for _, s := range fleet {
		if !s.Archived && s.ApplicationID == id {
			out = append(out, s)
		}
	}
	return out
}
