package mgnemu

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/mgn"
	"github.com/aws/aws-sdk-go-v2/service/mgn/types"
	"github.com/aws/smithy-go"
)

// newProgramRig is newRig with the sample waves and applications.
func newProgramRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t, nil)
	r.emu.AddWaves(SampleWaves(epoch)...)
	r.emu.AddApplications(SampleApplications(epoch)...)
	return r
}

func (r *rig) waves(t *testing.T, in *mgn.ListWavesInput) []types.Wave {
	t.Helper()
	var all []types.Wave
	p := mgn.NewListWavesPaginator(r.mgn, in)
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("ListWaves: %v", err)
		}
		all = append(all, out.Items...)
	}
	return all
}

func (r *rig) applications(t *testing.T, in *mgn.ListApplicationsInput) []types.Application {
	t.Helper()
	var all []types.Application
	p := mgn.NewListApplicationsPaginator(r.mgn, in)
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("ListApplications: %v", err)
		}
		all = append(all, out.Items...)
	}
	return all
}

func (r *rig) application(t *testing.T, id string) types.Application {
	t.Helper()
	apps := r.applications(t, &mgn.ListApplicationsInput{Filters: &types.ListApplicationsRequestFilters{ApplicationIDs: []string{id}}})
	if len(apps) != 1 {
		t.Fatalf("ListApplications %s: got %d items, want 1", id, len(apps))
	}
	return apps[0]
}

func (r *rig) wave(t *testing.T, id string) types.Wave {
	t.Helper()
	waves := r.waves(t, &mgn.ListWavesInput{Filters: &types.ListWavesRequestFilters{WaveIDs: []string{id}}})
	if len(waves) != 1 {
		t.Fatalf("ListWaves %s: got %d items, want 1", id, len(waves))
	}
	return waves[0]
}

func waveNames(ws []types.Wave) []string {
	var out []string
	for _, w := range ws {
		out = append(out, aws.ToString(w.Name))
	}
	return out
}

func appNames(as []types.Application) []string {
	var out []string
	for _, a := range as {
		out = append(out, aws.ToString(a.Name))
	}
	return out
}

func TestListWaves(t *testing.T) {
	r := newProgramRig(t)
	all := r.waves(t, &mgn.ListWavesInput{MaxResults: aws.Int32(1)})
	if got, want := waveNames(all), []string{"Wave 1", "Wave 2", "Wave 0"}; !slices.Equal(got, want) {
		t.Fatalf("waves over pages of 1: got %v, want %v", got, want)
	}
	if got := r.emu.Calls("ListWaves"); got != 3 {
		t.Errorf("ListWaves calls: got %d, want 3 (one per page)", got)
	}
	w1 := all[0]
	if got, want := w1.Tags["cutover-date"], epoch.Add(14*24*time.Hour).Format(time.DateOnly); got != want {
		t.Errorf("Wave 1 cutover-date: got %q, want %q", got, want)
	}
	if aws.ToString(w1.WaveID) != SampleWave1 || aws.ToString(w1.Arn) != "arn:aws:mgn:eu-central-1:111122223333:wave/"+SampleWave1 ||
		aws.ToString(w1.CreationDateTime) == "" || aws.ToString(w1.LastModifiedDateTime) == "" || aws.ToBool(w1.IsArchived) {
		t.Errorf("Wave 1: got id %s arn %s created %q modified %q archived %v", aws.ToString(w1.WaveID), aws.ToString(w1.Arn),
			aws.ToString(w1.CreationDateTime), aws.ToString(w1.LastModifiedDateTime), aws.ToBool(w1.IsArchived))
	}
	if _, ok := all[1].Tags["cutover-date"]; ok {
		t.Errorf("Wave 2: got a cutover-date tag, want none")
	}
	if got := aws.ToString(all[1].Description); got != "Back office" {
		t.Errorf("Wave 2 description: got %q", got)
	}
	// The Go-side view matches the wire.
	for i, w := range r.emu.Waves() {
		st, wire := w.WaveAggregatedStatus, all[i].WaveAggregatedStatus
		if w.Name != aws.ToString(all[i].Name) || st == nil || st.HealthStatus != string(wire.HealthStatus) ||
			st.ProgressStatus != string(wire.ProgressStatus) || st.TotalApplications != wire.TotalApplications {
			t.Errorf("Waves()[%d]: got %s %+v, want %s %+v", i, w.Name, st, aws.ToString(all[i].Name), wire)
		}
	}

	tests := []struct {
		name    string
		filters *types.ListWavesRequestFilters
		want    []string
	}{
		{"not archived", &types.ListWavesRequestFilters{IsArchived: aws.Bool(false)}, []string{"Wave 1", "Wave 2"}},
		{"archived", &types.ListWavesRequestFilters{IsArchived: aws.Bool(true)}, []string{"Wave 0"}},
		{"ids", &types.ListWavesRequestFilters{WaveIDs: []string{SampleWave2, SampleWave0}}, []string{"Wave 2", "Wave 0"}},
		{"ids and not archived", &types.ListWavesRequestFilters{WaveIDs: []string{SampleWave2, SampleWave0}, IsArchived: aws.Bool(false)}, []string{"Wave 2"}},
		{"unknown id", &types.ListWavesRequestFilters{WaveIDs: []string{StableID("wave-", "nope")}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := waveNames(r.waves(t, &mgn.ListWavesInput{Filters: tt.filters})); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestListApplications(t *testing.T) {
	r := newProgramRig(t)
	all := r.applications(t, &mgn.ListApplicationsInput{MaxResults: aws.Int32(3)})
	if got, want := appNames(all), []string{"web shop", "billing", "file services", "legacy"}; !slices.Equal(got, want) {
		t.Fatalf("applications over pages of 3: got %v, want %v", got, want)
	}
	if a := all[0]; aws.ToString(a.ApplicationID) != SampleAppWebShop || aws.ToString(a.Description) != "Storefront and its API" ||
		aws.ToString(a.WaveID) != SampleWave1 || a.Tags["team"] != "web" ||
		aws.ToString(a.Arn) != "arn:aws:mgn:eu-central-1:111122223333:application/"+SampleAppWebShop {
		t.Errorf("web shop: got wave %s tags %v arn %s", aws.ToString(a.WaveID), a.Tags, aws.ToString(a.Arn))
	}
	if got := r.emu.Applications(); len(got) != 4 || got[3].Name != "legacy" || !got[3].IsArchived ||
		got[3].ApplicationAggregatedStatus == nil || got[3].ApplicationAggregatedStatus.ProgressStatus != "COMPLETED" {
		t.Errorf("Applications(): got %+v, want four ending with the archived, completed legacy", got)
	}
	tests := []struct {
		name    string
		filters *types.ListApplicationsRequestFilters
		want    []string
	}{
		{"wave 2", &types.ListApplicationsRequestFilters{WaveIDs: []string{SampleWave2}}, []string{"billing", "file services"}},
		{"not archived", &types.ListApplicationsRequestFilters{IsArchived: aws.Bool(false)}, []string{"web shop", "billing", "file services"}},
		{"archived", &types.ListApplicationsRequestFilters{IsArchived: aws.Bool(true)}, []string{"legacy"}},
		{"ids", &types.ListApplicationsRequestFilters{ApplicationIDs: []string{SampleAppLegacy, SampleAppWebShop}}, []string{"web shop", "legacy"}},
		{"ids and wave", &types.ListApplicationsRequestFilters{ApplicationIDs: []string{SampleAppLegacy, SampleAppBilling},
			WaveIDs: []string{SampleWave2}}, []string{"billing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := appNames(r.applications(t, &mgn.ListApplicationsInput{Filters: tt.filters})); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDescribeSourceServersByApplication(t *testing.T) {
	r := newProgramRig(t)
	members := func(filters *types.DescribeSourceServersRequestFilters) []string {
		out, err := r.mgn.DescribeSourceServers(t.Context(), &mgn.DescribeSourceServersInput{Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range out.Items {
			names = append(names, s.Tags["Name"])
			if id := aws.ToString(s.ApplicationID); !slices.Contains(filters.ApplicationIDs, id) {
				t.Errorf("%s: applicationID %q not among %v", s.Tags["Name"], id, filters.ApplicationIDs)
			}
		}
		return names
	}
	if got, want := members(&types.DescribeSourceServersRequestFilters{ApplicationIDs: []string{SampleAppWebShop}}),
		[]string{"web01", "web02", "api01"}; !slices.Equal(got, want) {
		t.Errorf("web shop: got %v, want %v", got, want)
	}
	if got, want := members(&types.DescribeSourceServersRequestFilters{ApplicationIDs: []string{SampleAppLegacy}, IsArchived: aws.Bool(false)}),
		[]string{"legacy01"}; !slices.Equal(got, want) {
		t.Errorf("legacy, not archived: got %v, want %v", got, want)
	}

	// filters.applicationIDs and filters.sourceServerIDs take at most 200 well-formed IDs.
	for _, f := range []struct {
		name    string
		prefix  string
		badID   string
		filters func(ids []string) *types.DescribeSourceServersRequestFilters
	}{
		{"application ids", "app-", "web shop", func(ids []string) *types.DescribeSourceServersRequestFilters {
			return &types.DescribeSourceServersRequestFilters{ApplicationIDs: ids}
		}},
		{"server ids", "s-", "web01", func(ids []string) *types.DescribeSourceServersRequestFilters {
			return &types.DescribeSourceServersRequestFilters{SourceServerIDs: ids}
		}},
	} {
		var ids []string
		for i := range 201 {
			ids = append(ids, StableID(f.prefix, fmt.Sprint("id", i)))
		}
		for name, ids := range map[string][]string{"201 " + f.name: ids, "malformed " + f.name: {f.badID}} {
			_, err := r.mgn.DescribeSourceServers(t.Context(), &mgn.DescribeSourceServersInput{Filters: f.filters(ids)})
			var ve *types.ValidationException
			if !errors.As(err, &ve) {
				t.Errorf("%s: got %v, want ValidationException", name, err)
			}
		}
		if _, err := r.mgn.DescribeSourceServers(t.Context(), &mgn.DescribeSourceServersInput{Filters: f.filters(ids[:200])}); err != nil {
			t.Errorf("200 %s: %v", f.name, err)
		}
	}
}

func TestAggregatedStatusOfSample(t *testing.T) {
	r := newProgramRig(t)
	apps := []struct {
		id               string
		health, progress string
		total            int64
	}{
		{SampleAppWebShop, "LAGGING", "NOT_STARTED", 3},    // api01 lags 7.5 min; nothing launched yet
		{SampleAppBilling, "LAGGING", "IN_PROGRESS", 3},    // mq01 in BACKLOG; app01 testing
		{SampleAppFileServices, "ERROR", "NOT_STARTED", 1}, // file01 stalled
		{SampleAppLegacy, "HEALTHY", "COMPLETED", 1},       // legacy01 cut over; the archived web01 is not counted
	}
	for _, tt := range apps {
		st := r.application(t, tt.id).ApplicationAggregatedStatus
		if st == nil {
			t.Errorf("%s: no applicationAggregatedStatus", tt.id)
			continue
		}
		if string(st.HealthStatus) != tt.health || string(st.ProgressStatus) != tt.progress || st.TotalSourceServers != tt.total {
			t.Errorf("%s: got %s/%s/%d, want %s/%s/%d", tt.id, st.HealthStatus, st.ProgressStatus, st.TotalSourceServers,
				tt.health, tt.progress, tt.total)
		}
		if parseTime(aws.ToString(st.LastUpdateDateTime)).IsZero() {
			t.Errorf("%s: lastUpdateDateTime %q", tt.id, aws.ToString(st.LastUpdateDateTime))
		}
	}
	waves := []struct {
		id               string
		health, progress string
		total            int64
		replication      time.Duration // ago: the earliest member's replication start
	}{
		{SampleWave1, "LAGGING", "NOT_STARTED", 1, 20 * 24 * time.Hour}, // web01
		{SampleWave2, "ERROR", "IN_PROGRESS", 2, 35 * 24 * time.Hour},   // db01
		{SampleWave0, "HEALTHY", "COMPLETED", 1, 60 * 24 * time.Hour},   // legacy01
	}
	for _, tt := range waves {
		st := r.wave(t, tt.id).WaveAggregatedStatus
		if st == nil {
			t.Errorf("%s: no waveAggregatedStatus", tt.id)
			continue
		}
		if string(st.HealthStatus) != tt.health || string(st.ProgressStatus) != tt.progress || st.TotalApplications != tt.total {
			t.Errorf("%s: got %s/%s/%d, want %s/%s/%d", tt.id, st.HealthStatus, st.ProgressStatus, st.TotalApplications,
				tt.health, tt.progress, tt.total)
		}
		if got, want := aws.ToString(st.ReplicationStartedDateTime), FormatTime(epoch.Add(-tt.replication)); got != want {
			t.Errorf("%s replicationStartedDateTime: got %s, want %s", tt.id, got, want)
		}
	}
}

// TestAggregatedStatusFollowsServers moves the web shop through a test,
// a recovery and a cutover and watches its status and its wave's.
func TestAggregatedStatusFollowsServers(t *testing.T) {
	r := newProgramRig(t)
	ctx := t.Context()
	status := func() (app, wave string) {
		a := r.application(t, SampleAppWebShop).ApplicationAggregatedStatus
		w := r.wave(t, SampleWave1).WaveAggregatedStatus
		return string(a.HealthStatus) + "/" + string(a.ProgressStatus), string(w.HealthStatus) + "/" + string(w.ProgressStatus)
	}

	r.clock.Advance(time.Hour)
	j, err := startTest(ctx, r, SampleWeb01)
	if err != nil {
		t.Fatal(err)
	}
	if app, wave := status(); app != "LAGGING/IN_PROGRESS" || wave != "LAGGING/IN_PROGRESS" {
		t.Errorf("after StartTest: got app %s wave %s, want LAGGING/IN_PROGRESS for both", app, wave)
	}
	want := FormatTime(epoch.Add(time.Hour))
	if got := aws.ToString(r.application(t, SampleAppWebShop).ApplicationAggregatedStatus.LastUpdateDateTime); got != want {
		t.Errorf("app lastUpdateDateTime after StartTest: got %s, want %s", got, want)
	}
	if got := aws.ToString(r.wave(t, SampleWave1).WaveAggregatedStatus.LastUpdateDateTime); got != want {
		t.Errorf("wave lastUpdateDateTime after StartTest: got %s, want %s", got, want)
	}
	r.runJob(t, aws.ToString(j.JobID))

	// api01 catches up, web02 finishes its initial sync: the application is healthy.
	r.emu.Update(SampleAPI01, func(s *SourceServer) { s.DataReplicationInfo.LagDuration = "PT3S" })
	r.emu.Update(SampleWeb02, func(s *SourceServer) {
		s.LifeCycle.State = "READY_FOR_TEST"
		s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
		s.DataReplicationInfo.LagDuration = "P0D"
	})
	if app, _ := status(); app != "HEALTHY/IN_PROGRESS" {
		t.Errorf("after recovery: got %s, want HEALTHY/IN_PROGRESS", app)
	}

	// Every member cut over and finalized: COMPLETED.
	for _, id := range []string{SampleWeb01, SampleWeb02, SampleAPI01} {
		state := func(s types.ChangeServerLifeCycleStateSourceServerLifecycleState) {
			if _, err := r.mgn.ChangeServerLifeCycleState(ctx, &mgn.ChangeServerLifeCycleStateInput{SourceServerID: aws.String(id),
				LifeCycle: &types.ChangeServerLifeCycleStateSourceServerLifecycle{State: s}}); err != nil {
				t.Fatalf("%s to %s: %v", id, s, err)
			}
		}
		state("READY_FOR_CUTOVER")
		out, err := r.mgn.StartCutover(ctx, &mgn.StartCutoverInput{SourceServerIDs: []string{id}})
		if err != nil {
			t.Fatalf("cutover %s: %v", id, err)
		}
		r.runJob(t, aws.ToString(out.Job.JobID))
		if _, err := r.mgn.FinalizeCutover(ctx, &mgn.FinalizeCutoverInput{SourceServerID: aws.String(id)}); err != nil {
			t.Fatalf("finalize %s: %v", id, err)
		}
	}
	if app, wave := status(); app != "HEALTHY/COMPLETED" || wave != "HEALTHY/COMPLETED" {
		t.Errorf("after cutover: got app %s wave %s, want HEALTHY/COMPLETED for both", app, wave)
	}
}

func TestAssociate(t *testing.T) {
	r := newProgramRig(t)
	ctx := t.Context()
	fresh := GenerateFleet(3, epoch)
	r.emu.Add(fresh...)
	newApp := StableID("app-", "reporting")
	newWave := StableID("wave-", "Wave 3")
	r.emu.AddWaves(Wave{WaveID: newWave, Name: "Wave 3"})
	r.emu.AddApplications(Application{ApplicationID: newApp, Name: "reporting"})

	ids := []string{fresh[0].SourceServerID, fresh[1].SourceServerID}
	if _, err := r.mgn.AssociateSourceServers(ctx, &mgn.AssociateSourceServersInput{ApplicationID: aws.String(newApp), SourceServerIDs: ids}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.mgn.AssociateApplications(ctx, &mgn.AssociateApplicationsInput{WaveID: aws.String(newWave), ApplicationIDs: []string{newApp}}); err != nil {
		t.Fatal(err)
	}
	out, err := r.mgn.DescribeSourceServers(ctx, &mgn.DescribeSourceServersInput{Filters: &types.DescribeSourceServersRequestFilters{ApplicationIDs: []string{newApp}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 2 {
		t.Errorf("members of the new application: got %d, want 2", len(out.Items))
	}
	if got := r.application(t, newApp); aws.ToString(got.WaveID) != newWave || got.ApplicationAggregatedStatus.TotalSourceServers != 2 {
		t.Errorf("new application: got wave %s total %d, want %s/2", aws.ToString(got.WaveID), got.ApplicationAggregatedStatus.TotalSourceServers, newWave)
	}
	if got := r.wave(t, newWave).WaveAggregatedStatus.TotalApplications; got != 1 {
		t.Errorf("new wave: got %d applications, want 1", got)
	}
	// Associating again is idempotent.
	if _, err := r.mgn.AssociateSourceServers(ctx, &mgn.AssociateSourceServersInput{ApplicationID: aws.String(newApp), SourceServerIDs: ids}); err != nil {
		t.Errorf("associate again: %v", err)
	}

	var fifty []string
	for _, s := range GenerateFleet(51, epoch) {
		fifty = append(fifty, s.SourceServerID)
	}
	errs := []struct {
		name string
		call func() error
		want string
	}{
		{"unknown application", func() error {
			_, err := r.mgn.AssociateSourceServers(ctx, &mgn.AssociateSourceServersInput{ApplicationID: aws.String(StableID("app-", "nope")), SourceServerIDs: ids})
			return err
		}, "ResourceNotFoundException"},
		{"unknown server", func() error {
			_, err := r.mgn.AssociateSourceServers(ctx, &mgn.AssociateSourceServersInput{ApplicationID: aws.String(newApp), SourceServerIDs: []string{"s-00000000000000000"}})
			return err
		}, "ResourceNotFoundException"},
		{"server in another application", func() error {
			_, err := r.mgn.AssociateSourceServers(ctx, &mgn.AssociateSourceServersInput{ApplicationID: aws.String(newApp), SourceServerIDs: []string{SampleWeb01}})
			return err
		}, "ConflictException"},
		{"archived application", func() error {
			_, err := r.mgn.AssociateSourceServers(ctx, &mgn.AssociateSourceServersInput{ApplicationID: aws.String(SampleAppLegacy), SourceServerIDs: []string{fresh[2].SourceServerID}})
			return err
		}, "ConflictException"},
		{"51 servers", func() error {
			_, err := r.mgn.AssociateSourceServers(ctx, &mgn.AssociateSourceServersInput{ApplicationID: aws.String(newApp), SourceServerIDs: fifty})
			return err
		}, "ValidationException"},
		{"unknown wave", func() error {
			_, err := r.mgn.AssociateApplications(ctx, &mgn.AssociateApplicationsInput{WaveID: aws.String(StableID("wave-", "nope")), ApplicationIDs: []string{newApp}})
			return err
		}, "ResourceNotFoundException"},
		{"application in another wave", func() error {
			_, err := r.mgn.AssociateApplications(ctx, &mgn.AssociateApplicationsInput{WaveID: aws.String(newWave), ApplicationIDs: []string{SampleAppBilling}})
			return err
		}, "ConflictException"},
		{"archived wave", func() error {
			_, err := r.mgn.AssociateApplications(ctx, &mgn.AssociateApplicationsInput{WaveID: aws.String(SampleWave0), ApplicationIDs: []string{newApp}})
			return err
		}, "ConflictException"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			var ae smithy.APIError
			if err := tt.call(); !errors.As(err, &ae) || ae.ErrorCode() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
	if got := r.server(t, SampleWeb01).ApplicationID; aws.ToString(got) != SampleAppWebShop {
		t.Errorf("web01 after a refused move: got application %s, want %s", aws.ToString(got), SampleAppWebShop)
	}
}

func TestAssociateQuota(t *testing.T) {
	g := GenerateWave("Wave 9", 201, 200, epoch)
	r := newRig(t, g.Servers)
	r.emu.AddWaves(g.Wave)
	r.emu.AddApplications(g.Applications...)
	full, second := g.Applications[0].ApplicationID, g.Applications[1].ApplicationID
	last := g.Servers[200].SourceServerID // the second application's only server
	r.emu.Update(last, func(s *SourceServer) { s.ApplicationID = "" })
	_, err := r.mgn.AssociateSourceServers(t.Context(), &mgn.AssociateSourceServersInput{ApplicationID: aws.String(full),
		SourceServerIDs: []string{last}})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) || aws.ToInt32(qe.QuotaValue) != 200 {
		t.Fatalf("201st server in an application: got %v, want ServiceQuotaExceededException with quotaValue 200", err)
	}
	if _, err := r.mgn.AssociateSourceServers(t.Context(), &mgn.AssociateSourceServersInput{ApplicationID: aws.String(second),
		SourceServerIDs: []string{last}}); err != nil {
		t.Errorf("back into the second application: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for _, d := range []time.Duration{0, 5 * time.Second, 16*time.Hour + 20*time.Minute + 38*time.Second + 697305*time.Microsecond,
		7*time.Minute + 30*time.Second, 1500 * time.Millisecond, 50 * time.Hour, 48 * time.Hour} {
		if got, ok := parseDuration(FormatDuration(d)); !ok || got != d {
			t.Errorf("parseDuration(%q): got %v %v, want %v", FormatDuration(d), got, ok, d)
		}
	}
	for _, bad := range []string{"", "P", "PT", "P1", "PT1.5M", "P1H", "PT1D", "PT1S1S", "PT1ST1S", "P1DT1HT1M", "5 minutes"} {
		if got, ok := parseDuration(bad); ok {
			t.Errorf("parseDuration(%q): got %v, want not ok", bad, got)
		}
	}
}

// BenchmarkListWaves3000 lists the waves and applications of a 3000-server
// program (five waves of 600): each answer computes the aggregated status of
// every wave and application from all member servers.
func BenchmarkListWaves3000(b *testing.B) {
	var opts Options
	for i := range 5 {
		g := GenerateWave(fmt.Sprint("Wave ", i+1), 600, 0, epoch)
		opts.Servers = append(opts.Servers, g.Servers...)
		opts.Applications = append(opts.Applications, g.Applications...)
		opts.Waves = append(opts.Waves, g.Wave)
	}
	r := newRigWith(b, opts)
	ctx := b.Context()
	for b.Loop() {
		waves, err := r.mgn.ListWaves(ctx, &mgn.ListWavesInput{})
		if err != nil || len(waves.Items) != 5 {
			b.Fatalf("ListWaves: %d waves, %v", len(waves.Items), err)
		}
		apps, err := r.mgn.ListApplications(ctx, &mgn.ListApplicationsInput{})
		if err != nil || len(apps.Items) != 20 {
			b.Fatalf("ListApplications: %d applications, %v", len(apps.Items), err)
		}
	}
}
