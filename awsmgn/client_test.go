package awsmgn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/internal/testrig"
	"github.com/cutoverbot/cutoverbot/migration"
)

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// rig is an MGN + EC2 emulator on a manual clock and the adapter pointed at it through the
// real SDK clients.
type rig struct {
	emu    *mgnemu.Server
	clock  *mgnemu.ManualClock
	client *awsmgn.Client
}

func newRig(tb testing.TB, servers []mgnemu.SourceServer, opts awsmgn.Options) *rig {
	tb.Helper()
	clock := mgnemu.NewManualClock(epoch)
	if servers == nil {
		servers = mgnemu.SampleFleet(epoch)
	}
	emu := mgnemu.New(mgnemu.Options{Now: clock.Now, Servers: servers})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(emu.Close)
	opts.MGNEndpoint, opts.EC2Endpoint = emu.URL(), emu.URL()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	client := awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}}, opts)
	return &rig{emu: emu, clock: clock, client: client}
}

// launchReq is a launch of the servers by U0123, with a fresh request ID.
func launchReq(mode migration.Mode, ids ...string) migration.LaunchRequest {
	return migration.LaunchRequest{Mode: mode, ServerIDs: ids, RequestedBy: "U0123", Request: fmt.Sprintf("req-%d", requests.Add(1))}
}

var requests atomic.Int64

func (r *rig) server(t *testing.T, id string) migration.Server {
	t.Helper()
	s, err := r.client.Server(t.Context(), id)
	if err != nil {
		t.Fatalf("Server(%s): %v", id, err)
	}
	return s
}

func TestServersPaginates(t *testing.T) {
	t.Parallel()
	fleet := mgnemu.GenerateFleet(2500, epoch)
	r := newRig(t, fleet, awsmgn.Options{})
	got, err := r.client.Servers(t.Context())
	if err != nil {
		t.Fatalf("Servers: %v", err)
	}
	var want []string
	for _, s := range fleet {
		if !s.IsArchived {
			want = append(want, s.SourceServerID)
		}
	}
	if len(want) <= 2000 || len(want) > 3000 {
		t.Fatalf("fixture: got %d non-archived servers, want between 2001 and 3000 (three pages)", len(want))
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("Servers: got %d servers, want the %d non-archived ones in order", len(got), len(want))
	}
	if n := r.client.Calls()["DescribeSourceServers"]; n != 3 {
		t.Errorf("DescribeSourceServers calls counted by the client: got %d, want 3", n)
	}
	// The emulator counts attempts: under -race and load the SDK now and then retries a large
	// 200 answer whose body read failed on the client side, so only a floor holds there.
	if n := r.emu.Calls("DescribeSourceServers"); n < 3 {
		t.Errorf("DescribeSourceServers requests received: got %d, want at least 3", n)
	}

	// A small page size walks more pages and returns the same servers.
	r2 := newRig(t, fleet[:95], awsmgn.Options{PageSize: 10})
	got, err = r2.client.Servers(t.Context())
	if err != nil {
		t.Fatalf("Servers with PageSize 10: %v", err)
	}
	wantN := 0
	for _, s := range fleet[:95] {
		if !s.IsArchived {
			wantN++
		}
	}
	if len(got) != wantN {
		t.Errorf("Servers with PageSize 10: got %d servers, want %d", len(got), wantN)
	}
	if n, want := r2.client.Calls()["DescribeSourceServers"], int64(wantN+9)/10; n != want {
		t.Errorf("DescribeSourceServers calls with PageSize 10: got %d, want %d", n, want)
	}
}

// TestServersByID asks MGN for the named servers alone: in the order asked, in calls of at most
// 200 IDs (MGN's filter limit), never an archived one, and ErrNotFound naming an unknown one.
func TestServersByID(t *testing.T) {
	t.Parallel()
	fleet := mgnemu.GenerateFleet(500, epoch)
	r := newRig(t, fleet, awsmgn.Options{})
	var live []string
	var archived string
	for _, s := range fleet {
		if s.IsArchived {
			archived = s.SourceServerID
		} else {
			live = append(live, s.SourceServerID)
		}
	}
	if len(live) < 401 || archived == "" {
		t.Fatalf("fixture: %d live servers and archived %q; want over 400 live and one archived", len(live), archived)
	}
	want := slices.Clone(live[:401])
	slices.Reverse(want)
	got, err := r.client.ServersByID(t.Context(), want)
	if err != nil {
		t.Fatalf("ServersByID: %v", err)
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("ServersByID: got %d servers, want the %d asked for in the order asked", len(got), len(want))
	}
	if n := r.client.Calls()["DescribeSourceServers"]; n != 3 {
		t.Errorf("DescribeSourceServers calls for 401 IDs: got %d, want 3 (200 + 200 + 1)", n)
	}
	for _, unknown := range []string{"s-00000000000000000", archived} {
		got, err := r.client.ServersByID(t.Context(), []string{live[0], unknown})
		if !errors.Is(err, migration.ErrNotFound) || !strings.Contains(err.Error(), unknown) {
			t.Errorf("ServersByID with %s: got %v, want ErrNotFound naming it", unknown, err)
		}
		if len(got) != 1 || got[0].ID != live[0] {
			t.Errorf("ServersByID with %s: got %d servers, want %s alone", unknown, len(got), live[0])
		}
	}
}

func TestServersMapsFields(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	servers, err := r.client.Servers(t.Context())
	if err != nil {
		t.Fatalf("Servers: %v", err)
	}
	byID := map[string]migration.Server{}
	for _, s := range servers {
		byID[s.ID] = s
	}
	if _, ok := byID[mgnemu.SampleWeb01Archived]; ok {
		t.Errorf("Servers: got the archived web01, want it left out")
	}
	if got, want := len(servers), len(mgnemu.SampleFleet(epoch))-1; got != want {
		t.Errorf("Servers: got %d, want %d", got, want)
	}
	get := func(id string) migration.Server {
		t.Helper()
		s, ok := byID[id]
		if !ok {
			t.Fatalf("server %s: got none, want one", id)
		}
		return s
	}
	day := 24 * time.Hour

	web01 := get(mgnemu.SampleWeb01)
	if web01.Hostname != "web01" || web01.FQDN != "web01.corp.example.com" || web01.Name != "web01" {
		t.Errorf("web01 names: got hostname %q FQDN %q Name %q, want web01, web01.corp.example.com, web01", web01.Hostname, web01.FQDN, web01.Name)
	}
	if want := "arn:aws:mgn:eu-central-1:111122223333:source-server/" + mgnemu.SampleWeb01; web01.ARN != want {
		t.Errorf("web01 ARN: got %q, want %q", web01.ARN, want)
	}
	if web01.Replication.State != migration.ReplicationContinuous || !web01.Replication.HasLag || web01.Replication.Lag != 0 {
		t.Errorf("web01 replication: got %s lag %v (has %v), want CONTINUOUS, lag 0 present", web01.Replication.State, web01.Replication.Lag, web01.Replication.HasLag)
	}
	if web01.Lifecycle.State != migration.LifecycleReadyForTest || !web01.Lifecycle.Added.Equal(epoch.Add(-20*day)) {
		t.Errorf("web01 lifecycle: got %s added %v, want READY_FOR_TEST added %v", web01.Lifecycle.State, web01.Lifecycle.Added, epoch.Add(-20*day))
	}
	if !web01.Lifecycle.LastSeen.Equal(epoch.Add(-40 * time.Second)) {
		t.Errorf("web01 last seen: got %v, want %v", web01.Lifecycle.LastSeen, epoch.Add(-40*time.Second))
	}
	if web01.Launched != nil || !web01.Lifecycle.LastTest.Initiated.IsZero() {
		t.Errorf("web01: got launched %+v, last test %+v; want never launched", web01.Launched, web01.Lifecycle.LastTest)
	}
	if len(web01.Replication.Disks) != 2 || web01.Replication.Progress() != 100 || web01.Replication.TotalBytes() != 130<<30 {
		t.Errorf("web01 disks: got %+v, want 2 disks of 130 GiB fully replicated", web01.Replication.Disks)
	}
	if web01.ReplicatorID == "" || web01.RecommendedInstanceType != "c5.large" || web01.OS == "" {
		t.Errorf("web01: got replicator %q, type %q, OS %q; want all set (type c5.large)", web01.ReplicatorID, web01.RecommendedInstanceType, web01.OS)
	}

	app01 := get(mgnemu.SampleApp01)
	raw, _ := r.emu.Server(mgnemu.SampleApp01)
	if app01.Replication.Lag != 2*time.Second || !app01.Replication.HasLag {
		t.Errorf("app01 lag: got %v (has %v), want 2s", app01.Replication.Lag, app01.Replication.HasLag)
	}
	if app01.Lifecycle.State != migration.LifecycleTesting || !app01.Lifecycle.LastTest.Initiated.Equal(epoch.Add(-9*day)) ||
		app01.Lifecycle.LastTest.JobID != raw.LifeCycle.LastTest.Initiated.JobID || app01.Lifecycle.LastTest.JobID == "" {
		t.Errorf("app01 lifecycle: got %s, last test %+v; want TESTING, initiated %v by %s", app01.Lifecycle.State, app01.Lifecycle.LastTest, epoch.Add(-9*day), raw.LifeCycle.LastTest.Initiated.JobID)
	}
	if app01.Launched == nil || app01.Launched.InstanceID != raw.LaunchedInstance.EC2InstanceID || app01.Launched.FirstBoot != "SUCCEEDED" ||
		app01.Launched.JobID != raw.LaunchedInstance.JobID {
		t.Errorf("app01 launched: got %+v, want %+v", app01.Launched, raw.LaunchedInstance)
	}

	web02 := get(mgnemu.SampleWeb02)
	if web02.Replication.State != migration.ReplicationInitialSync || web02.Replication.HasLag {
		t.Errorf("web02: got %s with lag %v, want INITIAL_SYNC without lag", web02.Replication.State, web02.Replication.HasLag)
	}
	if p := web02.Replication.Progress(); p < 62.9 || p > 63.1 {
		t.Errorf("web02 progress: got %.2f%%, want 63%%", p)
	}
	if want := epoch.Add(2*time.Hour + 20*time.Minute); !web02.Replication.ETA.Equal(want) {
		t.Errorf("web02 ETA: got %v, want %v", web02.Replication.ETA, want)
	}
	if !web02.Replication.LastSnapshot.IsZero() {
		t.Errorf("web02 last snapshot: got %v, want none", web02.Replication.LastSnapshot)
	}

	file01 := get(mgnemu.SampleFile01)
	if file01.Replication.State != migration.ReplicationStalled || file01.Replication.Error != "AGENT_NOT_SEEN" ||
		file01.Replication.RawError == "" || !file01.Replication.Problem() {
		t.Errorf("file01 replication: got %+v, want STALLED with AGENT_NOT_SEEN and a raw error", file01.Replication)
	}
	if want := 3*time.Hour + 12*time.Minute; file01.Replication.Lag != want {
		t.Errorf("file01 lag: got %v, want %v", file01.Replication.Lag, want)
	}

	legacy := get(mgnemu.SampleLegacy01)
	if legacy.Lifecycle.State != migration.LifecycleCutover || !legacy.CutOver() || legacy.Replication.HasLag {
		t.Errorf("legacy01: got %s, cut over %v, has lag %v; want CUTOVER, true, false", legacy.Lifecycle.State, legacy.CutOver(), legacy.Replication.HasLag)
	}
	if c := legacy.Lifecycle.LastCutover; !c.Initiated.Equal(epoch.Add(-10*day)) || !c.Finalized.Equal(epoch.Add(-10*day+2*time.Hour)) || c.JobID == "" {
		t.Errorf("legacy01 last cutover: got %+v, want initiated %v and finalized 2 h later", c, epoch.Add(-10*day))
	}
	if legacy.Launched == nil || legacy.Launched.JobID != legacy.Lifecycle.LastCutover.JobID {
		t.Errorf("legacy01 launched: got %+v, want the cutover instance of job %s", legacy.Launched, legacy.Lifecycle.LastCutover.JobID)
	}

	db01 := get(mgnemu.SampleDB01)
	if db01.Lifecycle.LastTest.Finalized.IsZero() || db01.Lifecycle.State != migration.LifecycleReadyForCutover {
		t.Errorf("db01: got %s, last test %+v; want READY_FOR_CUTOVER with a finalized test", db01.Lifecycle.State, db01.Lifecycle.LastTest)
	}

	// Server reads one server the same way.
	if one := r.server(t, mgnemu.SampleApp01); one.ID != app01.ID || one.Lifecycle.LastTest != app01.Lifecycle.LastTest || one.Replication.Lag != app01.Replication.Lag {
		t.Errorf("Server(app01): got %+v, want %+v", one, app01)
	}
}

// pollLog reads a job's log once, the way the notifier does: from a stored cursor string.
func pollLog(t *testing.T, r *rig, jobID, stored string) ([]migration.Event, string, int64) {
	t.Helper()
	cur, err := migration.ParseCursor(stored)
	if err != nil {
		t.Fatalf("ParseCursor(%q): %v", stored, err)
	}
	before := r.client.Calls()["DescribeJobLogItems"]
	evs, next, err := r.client.JobLog(t.Context(), jobID, cur)
	if err != nil {
		t.Fatalf("JobLog(%s, %q): %v", jobID, stored, err)
	}
	return evs, next.String(), r.client.Calls()["DescribeJobLogItems"] - before
}

func TestTestLaunchFollowedThroughJobLog(t *testing.T) {
	t.Parallel()
	for _, pageSize := range []int32{1000, 2} {
		t.Run(fmt.Sprintf("page size %d", pageSize), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, nil, awsmgn.Options{PageSize: pageSize})
			ctx := t.Context()
			req := launchReq(migration.ModeTest, mgnemu.SampleWeb01)
			tags := req.Tags()
			job, err := r.client.Launch(ctx, req)
			if err != nil {
				t.Fatalf("StartTest: %v", err)
			}
			if job.ID == "" || job.Mode() != migration.ModeTest || !job.Active() || !maps.Equal(job.Tags, tags) ||
				!slices.Equal(job.ServerIDs(), []string{mgnemu.SampleWeb01}) || !job.Created.Equal(epoch) {
				t.Fatalf("StartTest: got %+v, want an active test job for web01 created at %v with tags %v", job, epoch, tags)
			}
			if s := r.server(t, mgnemu.SampleWeb01); s.Lifecycle.State != migration.LifecycleTesting || s.Lifecycle.LastTest.JobID != job.ID {
				t.Errorf("web01 after StartTest: got %s, last test job %q; want TESTING, %s", s.Lifecycle.State, s.Lifecycle.LastTest.JobID, job.ID)
			}

			var (
				got       []migration.Event
				stored    string
				sawConv   bool
				target    string
				converter string
			)
			for step := 0; ; step++ {
				if step > 200 {
					t.Fatalf("job %s: no JOB_END after %d polls; events so far %v", job.ID, step, got)
				}
				evs, next, calls := pollLog(t, r, job.ID, stored)
				if pageSize == 1000 && calls != 1 {
					t.Errorf("poll %d: got %d DescribeJobLogItems calls, want 1", step, calls)
				}
				if len(evs) == 0 && calls != 1 {
					t.Errorf("poll %d without new events: got %d DescribeJobLogItems calls, want 1", step, calls)
				}
				stored = next
				got = append(got, evs...)
				for _, e := range evs {
					switch e.Kind {
					case migration.EventConversionStart:
						converter = e.ConversionServerID
						managed, err := r.client.ManagedServers(ctx)
						if err != nil {
							t.Fatalf("ManagedServers: %v", err)
						}
						roles := map[string]int{}
						for _, in := range managed {
							roles[in.Role]++
							if in.ID == converter {
								sawConv = in.Role == migration.RoleConversion && in.Name == migration.ConversionServerName
							}
						}
						if roles[migration.RoleReplication] == 0 || roles[migration.RoleTarget] != 0 {
							t.Errorf("ManagedServers during conversion: got roles %v, want replication servers and no targets", roles)
						}
					case migration.EventLaunchStart:
						target = e.TargetInstanceID
					}
				}
				if len(got) > 0 && got[len(got)-1].Kind == migration.EventJobEnd {
					break
				}
				r.clock.Advance(250 * time.Millisecond)
			}

			// A further poll finds nothing new, in one call.
			r.clock.Advance(time.Minute)
			if evs, _, calls := pollLog(t, r, job.ID, stored); len(evs) != 0 || calls != 1 {
				t.Errorf("poll after JOB_END: got %d events in %d calls, want 0 in 1", len(evs), calls)
			}

			wantKinds := []migration.EventKind{
				migration.EventJobStart, migration.EventCleanupStart, migration.EventCleanupEnd,
				migration.EventSnapshotStart, migration.EventSnapshotEnd, migration.EventConversionStart,
				migration.EventConversionEnd, migration.EventLaunchStart, migration.EventJobEnd,
			}
			var kinds []migration.EventKind
			for _, e := range got {
				kinds = append(kinds, e.Kind)
			}
			if !slices.Equal(kinds, wantKinds) {
				t.Errorf("events: got %v, want %v", kinds, wantKinds)
			}
			emuLog, _ := r.emu.JobLog(job.ID)
			if len(emuLog) != len(got) {
				t.Fatalf("events: got %d, the emulator logged %d", len(got), len(emuLog))
			}
			for i, e := range got {
				w := emuLog[i]
				wt, _ := migration.ParseTime(w.LogDateTime)
				wantServer := ""
				if w.EventData != nil {
					wantServer = w.EventData.SourceServerID
				}
				if string(e.Kind) != w.Event || !e.Time.Equal(wt) || e.ServerID != wantServer {
					t.Errorf("event %d: got %s at %v for %q, want %s at %v for %q", i, e.Kind, e.Time, e.ServerID, w.Event, wt, wantServer)
				}
				if i > 0 && e.Time.Before(got[i-1].Time) {
					t.Errorf("event %d: time %v before the previous %v", i, e.Time, got[i-1].Time)
				}
			}
			if converter == "" || !sawConv {
				t.Errorf("conversion server %q: not listed by ManagedServers as a conversion server while converting", converter)
			}
			if target == "" {
				t.Fatalf("LAUNCH_START: got no target instance ID")
			}

			insts, err := r.client.Instances(ctx, []string{target})
			if err != nil {
				t.Fatalf("Instances: %v", err)
			}
			if len(insts) != 1 {
				t.Fatalf("Instances(%s): got %d, want 1", target, len(insts))
			}
			in := insts[0]
			if in.ID != target || in.State != "running" || in.PrivateIP == "" || in.PublicIP == "" || in.Role != migration.RoleTarget ||
				in.ServerID != mgnemu.SampleWeb01 || in.JobID != job.ID || in.Name != "web01" || in.Type != "c5.large" || in.Launched.IsZero() {
				t.Errorf("target instance: got %+v, want running %s with private and public IPs, role target, server web01, job %s, type c5.large", in, target, job.ID)
			}

			done, err := r.client.Job(ctx, job.ID)
			if err != nil {
				t.Fatalf("Job: %v", err)
			}
			p, _ := done.Participant(mgnemu.SampleWeb01)
			if done.Active() || done.Status != migration.JobCompleted || done.Ended.IsZero() || p.LaunchStatus != migration.LaunchLaunched || p.InstanceID != target {
				t.Errorf("job at the end: got %+v, want COMPLETED with web01 LAUNCHED on %s", done, target)
			}
			s := r.server(t, mgnemu.SampleWeb01)
			if s.Launched == nil || s.Launched.InstanceID != target || s.Launched.FirstBoot != "SUCCEEDED" || s.Launched.JobID != job.ID {
				t.Errorf("web01 launched instance: got %+v, want %s booted by %s", s.Launched, target, job.ID)
			}
			jobs, err := r.client.Jobs(ctx, epoch.Add(-time.Hour))
			if err != nil {
				t.Fatalf("Jobs: %v", err)
			}
			if len(jobs) != 1 || jobs[0].ID != job.ID {
				t.Errorf("Jobs since an hour before: got %d jobs, want just %s", len(jobs), job.ID)
			}
			if all, _ := r.client.Instances(ctx, nil); len(all) != 0 {
				t.Errorf("Instances(nil): got %d instances, want none", len(all))
			}
		})
	}
}

// runJob starts a test launch of web01 and moves the clock until it ended; it returns the job
// and its whole log as the emulator has it.
func runJob(t *testing.T, r *rig) (migration.Job, []mgnemu.JobLog) {
	t.Helper()
	job, err := r.client.Launch(t.Context(), launchReq(migration.ModeTest, mgnemu.SampleWeb01))
	if err != nil {
		t.Fatalf("StartTest: %v", err)
	}
	r.clock.Advance(time.Hour)
	log, _ := r.emu.JobLog(job.ID)
	if len(log) < 5 || log[len(log)-1].Event != "JOB_END" {
		t.Fatalf("job %s log: got %d items, want a finished log", job.ID, len(log))
	}
	return job, log
}

func TestJobLogRefusedToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pageSize int32
		cur      migration.Cursor
	}{
		{name: "garbage token, one page", pageSize: 1000, cur: migration.Cursor{Seen: 4, PageToken: "bm9wZQ", PageOffset: 1}},
		{name: "garbage token, small pages", pageSize: 3, cur: migration.Cursor{Seen: 5, PageToken: "not-a-token", PageOffset: 2}},
		{name: "token past the end", pageSize: 2, cur: migration.Cursor{Seen: 7, PageToken: "bG9nOjk5OQ", PageOffset: 0}}, // "log:999"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil, awsmgn.Options{PageSize: tt.pageSize})
			job, log := runJob(t, r)
			evs, next, err := r.client.JobLog(t.Context(), job.ID, tt.cur)
			if err != nil {
				t.Fatalf("JobLog: %v", err)
			}
			var kinds, want []string
			for _, e := range evs {
				kinds = append(kinds, string(e.Kind))
			}
			for _, l := range log[tt.cur.Seen:] {
				want = append(want, l.Event)
			}
			if !slices.Equal(kinds, want) {
				t.Errorf("events after a refused token: got %v, want %v", kinds, want)
			}
			if next.Seen != len(log) {
				t.Errorf("cursor: got Seen %d, want %d", next.Seen, len(log))
			}
			// The new cursor is good: nothing more to read.
			if more, _, err := r.client.JobLog(t.Context(), job.ID, next); err != nil || len(more) != 0 {
				t.Errorf("JobLog from the new cursor %+v: got %d events, %v; want none", next, len(more), err)
			}
		})
	}
}

// TestJobLogTokenRefusedAgain: an MGN that refuses even the tokens it has just issued gets one
// reread from the start, not an endless loop of them, and a failed read hands back the cursor
// it was given with no events.
func TestJobLogTokenRefusedAgain(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	job, _ := runJob(t, r)
	var logCalls atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.URL.Path == "/DescribeJobLogItems" {
			logCalls.Add(1)
			if bytes.Contains(body, []byte(`"nextToken"`)) {
				w.Header().Set("X-Amzn-ErrorType", "ValidationException")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"message":"Invalid nextToken","reason":"fieldValidationFailed"}`)
				return
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		r.emu.Handler().ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	client := awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}},
		awsmgn.Options{MGNEndpoint: front.URL, EC2Endpoint: front.URL, PageSize: 2, RetryMaxAttempts: 1})

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	cur := migration.Cursor{Seen: 3, PageToken: "bG9nOjI", PageOffset: 1} // "log:2"
	evs, next, err := client.JobLog(ctx, job.ID, cur)
	if !errors.Is(err, migration.ErrInvalid) {
		t.Errorf("JobLog: got error %v, want ErrInvalid", err)
	}
	if len(evs) != 0 || next != cur {
		t.Errorf("JobLog after a failure: got %d events and cursor %+v, want none and %+v", len(evs), next, cur)
	}
	// The stored token, the first page from the start, its next token: then give up.
	if got := logCalls.Load(); got != 3 {
		t.Errorf("DescribeJobLogItems calls: got %d, want 3", got)
	}
}

func TestJobLogFromZeroCursor(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{PageSize: 4})
	job, log := runJob(t, r)
	evs, cur, err := r.client.JobLog(t.Context(), job.ID, migration.Cursor{})
	if err != nil {
		t.Fatalf("JobLog: %v", err)
	}
	if len(evs) != len(log) || cur.Seen != len(log) {
		t.Errorf("JobLog from the start: got %d events, cursor %+v; want %d", len(evs), cur, len(log))
	}
	if got, want := r.client.Calls()["DescribeJobLogItems"], int64(len(log)+3)/4; got != want {
		t.Errorf("DescribeJobLogItems calls: got %d, want %d", got, want)
	}
	// An unknown job has an empty log.
	evs, cur, err = r.client.JobLog(t.Context(), "mgnjob-00000000000000000", migration.Cursor{})
	if err != nil || len(evs) != 0 || cur.Seen != 0 {
		t.Errorf("JobLog of an unknown job: got %d events, %+v, %v; want none", len(evs), cur, err)
	}
}

func TestFailedPhaseInJobLog(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	r.emu.FailPhase(mgnemu.SampleWeb01, "CONVERSION_FAIL", "Failed to convert: no space left on device")
	job, _ := runJob(t, r)
	evs, _, err := r.client.JobLog(t.Context(), job.ID, migration.Cursor{})
	if err != nil {
		t.Fatalf("JobLog: %v", err)
	}
	i := slices.IndexFunc(evs, func(e migration.Event) bool { return e.Kind == migration.EventConversionFail })
	if i < 0 {
		t.Fatalf("events: got %v, want a CONVERSION_FAIL", evs)
	}
	if e := evs[i]; !e.Kind.Failure() || e.RawError != "Failed to convert: no space left on device" || e.ServerID != mgnemu.SampleWeb01 || e.ConversionServerID == "" {
		t.Errorf("CONVERSION_FAIL: got %+v, want the raw error, server and conversion server", e)
	}
	done, err := r.client.Job(t.Context(), job.ID)
	if err != nil {
		t.Fatalf("Job: %v", err)
	}
	if p, _ := done.Participant(mgnemu.SampleWeb01); done.Status != migration.JobCompleted || p.LaunchStatus != migration.LaunchFailed {
		t.Errorf("job: got %s with web01 %s, want COMPLETED with web01 FAILED", done.Status, p.LaunchStatus)
	}
}

func TestLaunchRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mode     migration.Mode
		ids      []string
		wantKind error
		wantCode string
	}{
		{name: "cutover of a server ready for test", mode: migration.ModeCutover, ids: []string{mgnemu.SampleWeb01},
			wantKind: migration.ErrConflict, wantCode: "ConflictException"},
		{name: "test of a stalled server", mode: migration.ModeTest, ids: []string{mgnemu.SampleFile01},
			wantKind: migration.ErrConflict, wantCode: "ConflictException"},
		{name: "test of a server in initial sync", mode: migration.ModeTest, ids: []string{mgnemu.SampleWeb02},
			wantKind: migration.ErrConflict, wantCode: "ConflictException"},
		{name: "test of an unknown server", mode: migration.ModeTest, ids: []string{"s-00000000000000000"},
			wantKind: migration.ErrConflict, wantCode: "ConflictException"},
		{name: "malformed ID", mode: migration.ModeTest, ids: []string{"web01"},
			wantKind: migration.ErrInvalid, wantCode: "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil, awsmgn.Options{})
			job, err := r.client.Launch(t.Context(), launchReq(tt.mode, tt.ids...))
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("got %+v, %v; want an error of kind %v", job, err, tt.wantKind)
			}
			e, ok := errors.AsType[*migration.Error](err)
			if !ok || e.Code != tt.wantCode || e.Message == "" {
				t.Errorf("error: got %#v, want a *migration.Error with code %s and a message", err, tt.wantCode)
			}
			if jobs := r.emu.Jobs(); len(jobs) != 0 {
				t.Errorf("jobs: got %d, want none created", len(jobs))
			}
		})
	}
	t.Run("second launch while the first runs", func(t *testing.T) {
		r := newRig(t, nil, awsmgn.Options{})
		if _, err := r.client.Launch(t.Context(), launchReq(migration.ModeTest, mgnemu.SampleWeb01)); err != nil {
			t.Fatalf("first StartTest: %v", err)
		}
		if _, err := r.client.Launch(t.Context(), launchReq(migration.ModeTest, mgnemu.SampleWeb01)); !errors.Is(err, migration.ErrConflict) {
			t.Errorf("second StartTest: got %v, want ErrConflict", err)
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	ctx := t.Context()
	const unknown = "s-00000000000000000"
	tests := []struct {
		name string
		call func() error
	}{
		{"Server", func() error { _, err := r.client.Server(ctx, unknown); return err }},
		{"Job", func() error { _, err := r.client.Job(ctx, "mgnjob-00000000000000000"); return err }},
		{"MarkReadyForCutover", func() error { _, err := r.client.MarkReadyForCutover(ctx, unknown); return err }},
		{"RevertToReadyForTest", func() error { _, err := r.client.RevertToReadyForTest(ctx, unknown); return err }},
		{"RevertToReadyForCutover", func() error { _, err := r.client.RevertToReadyForCutover(ctx, unknown); return err }},
		{"FinalizeCutover", func() error { _, err := r.client.FinalizeCutover(ctx, unknown); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, migration.ErrNotFound) {
				t.Errorf("%s(unknown): got %v, want ErrNotFound", tt.name, err)
			}
		})
	}
}

func TestLifecycleChanges(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	ctx := t.Context()
	r.clock.Advance(time.Minute)
	now := r.clock.Now()

	// TESTING -> READY_FOR_TEST records the revert.
	s, err := r.client.RevertToReadyForTest(ctx, mgnemu.SampleApp01)
	if err != nil {
		t.Fatalf("RevertToReadyForTest(app01): %v", err)
	}
	if s.ID != mgnemu.SampleApp01 || s.Lifecycle.State != migration.LifecycleReadyForTest || !s.Lifecycle.LastTest.Reverted.Equal(now) || s.Hostname != "app01" {
		t.Errorf("RevertToReadyForTest(app01): got %s, last test %+v, hostname %q; want READY_FOR_TEST reverted at %v", s.Lifecycle.State, s.Lifecycle.LastTest, s.Hostname, now)
	}
	// READY_FOR_TEST -> READY_FOR_CUTOVER.
	s, err = r.client.MarkReadyForCutover(ctx, mgnemu.SampleWeb01)
	if err != nil || s.Lifecycle.State != migration.LifecycleReadyForCutover {
		t.Errorf("MarkReadyForCutover(web01): got %s, %v; want READY_FOR_CUTOVER", s.Lifecycle.State, err)
	}
	// READY_FOR_CUTOVER cannot go back to READY_FOR_TEST.
	if _, err := r.client.RevertToReadyForTest(ctx, mgnemu.SampleDB01); !errors.Is(err, migration.ErrConflict) {
		t.Errorf("RevertToReadyForTest(db01): got %v, want ErrConflict", err)
	}
	// Finalizing needs a cutover in progress.
	if _, err := r.client.FinalizeCutover(ctx, mgnemu.SampleDB01); !errors.Is(err, migration.ErrConflict) {
		t.Errorf("FinalizeCutover(db01) before the cutover: got %v, want ErrConflict", err)
	}

	// Cutover, revert, cutover again, finalize.
	job, err := r.client.Launch(ctx, launchReq(migration.ModeCutover, mgnemu.SampleDB01))
	if err != nil {
		t.Fatalf("StartCutover(db01): %v", err)
	}
	if job.Mode() != migration.ModeCutover || job.InitiatedBy != migration.InitiatedByStartCutover {
		t.Errorf("StartCutover: got job %+v, want a cutover job", job)
	}
	if s := r.server(t, mgnemu.SampleDB01); s.Lifecycle.State != migration.LifecycleCuttingOver || s.Lifecycle.LastCutover.JobID != job.ID {
		t.Errorf("db01 after StartCutover: got %s, last cutover %+v; want CUTTING_OVER by %s", s.Lifecycle.State, s.Lifecycle.LastCutover, job.ID)
	}
	r.clock.Advance(time.Hour)
	s, err = r.client.RevertToReadyForCutover(ctx, mgnemu.SampleDB01)
	if err != nil || s.Lifecycle.State != migration.LifecycleReadyForCutover || !s.Lifecycle.LastCutover.Reverted.Equal(r.clock.Now()) {
		t.Errorf("RevertToReadyForCutover(db01): got %s, last cutover %+v, %v; want READY_FOR_CUTOVER reverted now", s.Lifecycle.State, s.Lifecycle.LastCutover, err)
	}
	if _, err := r.client.Launch(ctx, launchReq(migration.ModeCutover, mgnemu.SampleDB01)); err != nil {
		t.Fatalf("second StartCutover(db01): %v", err)
	}
	r.clock.Advance(time.Hour)
	s, err = r.client.FinalizeCutover(ctx, mgnemu.SampleDB01)
	if err != nil {
		t.Fatalf("FinalizeCutover(db01): %v", err)
	}
	if s.Lifecycle.State != migration.LifecycleCutover || !s.CutOver() || s.Replication.State != migration.ReplicationDisconnected ||
		s.Replication.HasLag || !s.Lifecycle.LastCutover.Finalized.Equal(r.clock.Now()) || s.Launched == nil {
		t.Errorf("FinalizeCutover(db01): got %s, replication %s (lag %v), last cutover %+v, launched %+v; want CUTOVER, DISCONNECTED, no lag, finalized now, instance kept",
			s.Lifecycle.State, s.Replication.State, s.Replication.HasLag, s.Lifecycle.LastCutover, s.Launched)
	}
}

func TestInstances(t *testing.T) {
	t.Parallel()
	r := newRig(t, mgnemu.GenerateFleet(200, epoch), awsmgn.Options{})
	ctx := t.Context()
	var real []string
	for _, in := range r.emu.Instances() {
		real = append(real, in.InstanceID)
	}
	if len(real) < 5 {
		t.Fatalf("fixture: got %d instances, want at least 5", len(real))
	}
	// 250 distinct IDs (most unknown to EC2) and a duplicate: two batches of at most 200.
	query := slices.Clone(real)
	for i := 0; len(query) < 250; i++ {
		query = append(query, fmt.Sprintf("i-0%016x", i))
	}
	query = append(query, real[0])
	got, err := r.client.Instances(ctx, query)
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	gotIDs := make([]string, 0, len(got))
	for _, in := range got {
		gotIDs = append(gotIDs, in.ID)
	}
	slices.Sort(gotIDs)
	slices.Sort(real)
	if !slices.Equal(gotIDs, real) {
		t.Errorf("Instances: got %d (%v), want the %d known ones once each", len(gotIDs), gotIDs, len(real))
	}
	if n := r.client.Calls()["DescribeInstances"]; n != 2 {
		t.Errorf("DescribeInstances calls: got %d, want 2 (batches of 200)", n)
	}

	managed, err := r.client.ManagedServers(ctx)
	if err != nil {
		t.Fatalf("ManagedServers: %v", err)
	}
	if len(managed) == 0 {
		t.Fatalf("ManagedServers: got none, want the replication servers")
	}
	for _, in := range managed {
		if in.Role != migration.RoleReplication || in.Name != migration.ReplicationServerName || in.State != "running" {
			t.Errorf("managed instance %s: got role %q name %q state %q, want a running replication server", in.ID, in.Role, in.Name, in.State)
		}
	}
}

func TestThrottlingRetried(t *testing.T) {
	t.Parallel()
	t.Run("MGN", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, nil, awsmgn.Options{})
		job, err := r.client.Launch(t.Context(), launchReq(migration.ModeTest, mgnemu.SampleWeb01))
		if err != nil {
			t.Fatalf("StartTest: %v", err)
		}
		r.emu.Throttle("DescribeJobs", 2)
		got, err := r.client.Jobs(t.Context(), time.Time{})
		if err != nil {
			t.Fatalf("Jobs after 2 throttles: %v", err)
		}
		if len(got) != 1 || got[0].ID != job.ID {
			t.Errorf("Jobs after 2 throttles: got %d jobs, want just %s", len(got), job.ID)
		}
		if n := r.emu.Calls("DescribeJobs"); n != 3 {
			t.Errorf("attempts: got %d, want 3", n)
		}
		if n := r.client.Calls()["DescribeJobs"]; n != 1 {
			t.Errorf("calls counted by the client: got %d, want 1 (retries not counted)", n)
		}
	})
	t.Run("EC2", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, nil, awsmgn.Options{})
		r.emu.Throttle("DescribeInstances", 1)
		if _, err := r.client.ManagedServers(t.Context()); err != nil {
			t.Fatalf("ManagedServers after a throttle: %v", err)
		}
		if n := r.emu.Calls("DescribeInstances"); n != 2 {
			t.Errorf("attempts: got %d, want 2", n)
		}
	})
	t.Run("no retries left", func(t *testing.T) {
		r := newRig(t, nil, awsmgn.Options{RetryMaxAttempts: 1})
		r.emu.Throttle("DescribeJobs", 1)
		_, err := r.client.Jobs(t.Context(), time.Time{})
		if !errors.Is(err, migration.ErrThrottled) {
			t.Errorf("Jobs: got %v, want ErrThrottled", err)
		}
	})
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		status       int
		errType      string
		wantKind     error
		wantAttempts int
	}{
		{name: "internal error retried then given up", status: 500, errType: "InternalServerException", wantKind: migration.ErrUnavailable, wantAttempts: 3},
		{name: "unknown 503", status: 503, errType: "ServiceUnavailableException", wantKind: migration.ErrUnavailable, wantAttempts: 3},
		{name: "access denied", status: 403, errType: "AccessDeniedException", wantKind: migration.ErrAccessDenied, wantAttempts: 1},
		{name: "uninitialized account", status: 400, errType: "UninitializedAccountException", wantKind: migration.ErrNotInitialized, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil, awsmgn.Options{})
			r.emu.Fail("DescribeJobs", 5, tt.status, tt.errType)
			_, err := r.client.Jobs(t.Context(), time.Time{})
			if !errors.Is(err, tt.wantKind) {
				t.Errorf("Jobs: got %v, want %v", err, tt.wantKind)
			}
			if n := r.emu.Calls("DescribeJobs"); n != tt.wantAttempts {
				t.Errorf("attempts: got %d, want %d", n, tt.wantAttempts)
			}
		})
	}
	t.Run("latency beyond the deadline", func(t *testing.T) {
		r := newRig(t, nil, awsmgn.Options{})
		r.emu.SetLatency("DescribeSourceServers", time.Minute)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := r.client.Servers(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Servers: got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Servers returned after %v, want soon after the 200ms deadline", d)
		}
	})
}

func BenchmarkServers3000(b *testing.B) {
	r := newRig(b, mgnemu.GenerateFleet(3000, epoch), awsmgn.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := b.Context()
	want := 0
	for _, s := range r.emu.Servers() {
		if !s.IsArchived {
			want++
		}
	}
	before := r.client.Calls()["DescribeSourceServers"]
	for b.Loop() {
		got, err := r.client.Servers(ctx)
		if err != nil {
			b.Fatalf("Servers: %v", err)
		}
		if len(got) != want {
			b.Fatalf("Servers: got %d, want %d", len(got), want)
		}
	}
	pages := float64(r.client.Calls()["DescribeSourceServers"]-before) / float64(b.N)
	if pages != 3 {
		b.Fatalf("pages/op: got %v, want 3", pages)
	}
	b.ReportMetric(pages, "pages/op")
}

// newLossyRig is a rig whose MGN answers to the operations in lose are lost after MGN acted.
func newLossyRig(t *testing.T, lose ...string) *rig {
	t.Helper()
	r := newRig(t, nil, awsmgn.Options{OutcomeDelay: time.Millisecond})
	proxy, _ := testrig.LossyProxy(t, r.emu.URL(), func(path string) bool { return slices.Contains(lose, path) })
	r.client = awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}},
		awsmgn.Options{MGNEndpoint: proxy, EC2Endpoint: r.emu.URL(), OutcomeDelay: time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	return r
}

func TestLaunchAnswerLost(t *testing.T) {
	t.Parallel()
	for _, mode := range []migration.Mode{migration.ModeTest, migration.ModeCutover} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			op := "StartTest"
			if mode == migration.ModeCutover {
				op = "StartCutover"
			}
			r := newLossyRig(t, "/"+op)
			req := launchReq(mode, mgnemu.SampleDB01)
			req.Since = epoch
			job, err := r.client.Launch(t.Context(), req)
			if err != nil {
				t.Fatalf("Launch with its answer lost: %v; want the job MGN started", err)
			}
			jobs := r.emu.Jobs()
			if len(jobs) != 1 || jobs[0].JobID != job.ID {
				t.Fatalf("MGN jobs: got %d, want exactly the one returned (%s)", len(jobs), job.ID)
			}
			if n := r.emu.Calls(op); n != 1 {
				t.Errorf("%s calls: got %d, want 1 (never retried)", op, n)
			}
		})
	}
}

func TestLaunchNotRetried(t *testing.T) {
	t.Parallel()
	t.Run("5xx before MGN acted", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, nil, awsmgn.Options{OutcomeDelay: time.Millisecond})
		r.emu.Fail("StartCutover", 1, 503, "ServiceUnavailableException")
		_, err := r.client.Launch(t.Context(), launchReq(migration.ModeCutover, mgnemu.SampleDB01))
		if !errors.Is(err, migration.ErrUnavailable) || errors.Is(err, migration.ErrOutcomeUnknown) {
			t.Fatalf("Launch: got %v, want ErrUnavailable saying nothing was launched", err)
		}
		if n := r.emu.Calls("StartCutover"); n != 1 {
			t.Errorf("StartCutover calls: got %d, want 1", n)
		}
		if n := r.emu.Calls("DescribeJobs"); n != 3 {
			t.Errorf("DescribeJobs calls: got %d, want 3 (asked three times before saying nothing launched)", n)
		}
		if jobs := r.emu.Jobs(); len(jobs) != 0 {
			t.Errorf("jobs: got %d, want none", len(jobs))
		}
	})
	t.Run("throttled", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, nil, awsmgn.Options{OutcomeDelay: time.Millisecond})
		r.emu.Throttle("StartTest", 1)
		_, err := r.client.Launch(t.Context(), launchReq(migration.ModeTest, mgnemu.SampleWeb01))
		if !errors.Is(err, migration.ErrThrottled) {
			t.Fatalf("Launch: got %v, want ErrThrottled", err)
		}
		if n, m := r.emu.Calls("StartTest"), r.emu.Calls("DescribeJobs"); n != 1 || m != 0 {
			t.Errorf("calls: got %d StartTest and %d DescribeJobs, want 1 and 0 (a throttled call did nothing)", n, m)
		}
	})
	t.Run("answer lost and MGN unreachable afterwards", func(t *testing.T) {
		t.Parallel()
		r := newLossyRig(t, "/StartCutover", "/DescribeJobs")
		_, err := r.client.Launch(t.Context(), launchReq(migration.ModeCutover, mgnemu.SampleDB01))
		if !errors.Is(err, migration.ErrOutcomeUnknown) {
			t.Fatalf("Launch: got %v, want ErrOutcomeUnknown", err)
		}
		if jobs := r.emu.Jobs(); len(jobs) != 1 {
			t.Errorf("jobs: got %d, want the 1 MGN started", len(jobs))
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, nil, awsmgn.Options{OutcomeDelay: time.Millisecond})
		r.emu.SetLatency("StartTest", time.Minute)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := r.client.Launch(ctx, launchReq(migration.ModeTest, mgnemu.SampleWeb01))
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, migration.ErrOutcomeUnknown) {
			t.Fatalf("Launch: got %v, want the deadline, with MGN asked (no job)", err)
		}
		if n := r.emu.Calls("DescribeJobs"); n != 3 {
			t.Errorf("DescribeJobs calls after the deadline: got %d, want 3", n)
		}
	})
}

func TestChangeAnswerLost(t *testing.T) {
	t.Parallel()
	r := newLossyRig(t, "/ChangeServerLifeCycleState", "/FinalizeCutover", "/StartCutover")
	ctx := t.Context()
	s, err := r.client.RevertToReadyForTest(ctx, mgnemu.SampleApp01)
	if err != nil || s.Lifecycle.State != migration.LifecycleReadyForTest {
		t.Fatalf("RevertToReadyForTest with its answer lost: got %s, %v; want READY_FOR_TEST, no error", s.Lifecycle.State, err)
	}
	if _, err := r.client.Launch(ctx, launchReq(migration.ModeCutover, mgnemu.SampleDB01)); err != nil {
		t.Fatalf("Launch cutover: %v", err)
	}
	r.clock.Advance(time.Hour) // the cutover job ends
	s, err = r.client.FinalizeCutover(ctx, mgnemu.SampleDB01)
	if err != nil || !s.CutOver() {
		t.Fatalf("FinalizeCutover with its answer lost: got %s, %v; want cut over, no error", s.Lifecycle.State, err)
	}
	if n := r.emu.Calls("FinalizeCutover"); n != 1 {
		t.Errorf("FinalizeCutover calls: got %d, want 1", n)
	}
	// A refusal stays a refusal: web02 is still in initial sync.
	if _, err := r.client.MarkReadyForCutover(ctx, mgnemu.SampleWeb02); !errors.Is(err, migration.ErrUnavailable) {
		t.Errorf("MarkReadyForCutover(web02) through the lossy proxy: got %v, want the lost answer's error", err)
	}
}

func ids(servers []migration.Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.ID
	}
	return out
}

// bodyProbe is the SDK's HTTP client as net/http's transport sees it: it sends each request
// on with a copy of its body, and keeps the body the SDK handed over.
type bodyProbe struct {
	mu     sync.Mutex
	bodies []io.ReadCloser
}

func (p *bodyProbe) Do(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.bodies = append(p.bodies, r.Body)
	p.mu.Unlock()
	out := r.Clone(r.Context())
	out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	return http.DefaultTransport.RoundTrip(out)
}

// The SDK closes a request's body as soon as the answer arrives, while net/http may still be
// reading it to check that nothing follows its Content-Length. That read must end cleanly
// (io.EOF, not an error): otherwise net/http closes the connection under the answer, and a
// launch, which is sent once, loses an answer for nothing ("use of closed network connection").
func TestRequestBodyReadAfterTheSDKClosedIt(t *testing.T) {
	emu := mgnemu.New(mgnemu.Options{Now: func() time.Time { return epoch }, Servers: mgnemu.SampleFleet(epoch)})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	probe := &bodyProbe{}
	client := awsmgn.New(aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}, HTTPClient: probe},
		awsmgn.Options{MGNEndpoint: emu.URL(), EC2Endpoint: emu.URL()})
	if _, err := client.Servers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Launch(t.Context(), launchReq(migration.ModeTest, mgnemu.SampleWeb01)); err != nil {
		t.Fatal(err)
	}
	probe.mu.Lock()
	defer probe.mu.Unlock()
	if len(probe.bodies) < 2 {
		t.Fatalf("request bodies seen: %d, want one per call", len(probe.bodies))
	}
	for i, b := range probe.bodies {
		// What net/http does to check for bytes beyond Content-Length.
		if n, err := io.Copy(io.Discard, b); err != nil || n != 0 {
			t.Errorf("request %d: reading its body after the SDK closed it: %d bytes, %v; want 0 and a clean end", i+1, n, err)
		}
	}
}
