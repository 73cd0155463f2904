package awsmgn_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/cutoverbot/cutoverbot/awsmgn"
	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/migration"
)

func TestProgram(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	r.emu.AddWaves(mgnemu.SampleWaves(epoch)...)
	r.emu.AddApplications(mgnemu.SampleApplications(epoch)...)
	prog, err := r.client.Program(t.Context())
	if err != nil {
		t.Fatalf("Program: %v", err)
	}
	var waves, apps []string
	for _, w := range prog.Waves {
		waves = append(waves, w.Name)
	}
	for _, a := range prog.Applications {
		apps = append(apps, a.Name)
	}
	if !slices.Equal(waves, []string{"Wave 1", "Wave 2"}) || !slices.Equal(apps, []string{"web shop", "billing", "file services"}) {
		t.Errorf("Program: waves %v and applications %v, want the non-archived ones in MGN's order", waves, apps)
	}
	w1, _ := prog.Wave(mgnemu.SampleWave1)
	if d, ok := w1.CutoverDate(); !ok || d.Format("2006-01-02") != epoch.AddDate(0, 0, 14).Format("2006-01-02") {
		t.Errorf("Wave 1 cutover date: got %v %v, want two weeks after the epoch", d, ok)
	}
	if w1.Health != migration.HealthLagging || w1.Progress != migration.ProgressNotStarted || w1.Applications != 1 {
		t.Errorf("Wave 1 status: got %q %q %d applications, want LAGGING (api01 lags 7.5 min) NOT_STARTED 1", w1.Health, w1.Progress, w1.Applications)
	}
	w2, _ := prog.Wave(mgnemu.SampleWave2)
	if w2.Health != migration.HealthError || w2.Progress != migration.ProgressInProgress {
		t.Errorf("Wave 2 status: got %q %q, want ERROR (file01 stalls) and IN_PROGRESS (app01 testing)", w2.Health, w2.Progress)
	}
	billing, _ := prog.Application(mgnemu.SampleAppBilling)
	if billing.WaveID != mgnemu.SampleWave2 || billing.Servers != 3 {
		t.Errorf("billing: wave %q with %d servers, want Wave 2 with 3", billing.WaveID, billing.Servers)
	}
	fleet, err := r.client.Servers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := prog.WaveServers(fleet, mgnemu.SampleWave1)
	if want := []string{mgnemu.SampleWeb01, mgnemu.SampleWeb02, mgnemu.SampleAPI01}; !slices.Equal(ids(got), want) {
		t.Errorf("Wave 1's servers through applicationID: got %v, want %v", ids(got), want)
	}
	if n := r.client.Calls()["ListWaves"] + r.client.Calls()["ListApplications"]; n != 2 {
		t.Errorf("calls for the program: got %d, want one ListWaves and one ListApplications", n)
	}
}

func TestServerActions(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	got, err := r.client.ServerActions(t.Context(), mgnemu.SampleWeb01)
	if err != nil {
		t.Fatalf("ServerActions: %v", err)
	}
	if len(got) != 3 || got[0].Name != mgnemu.SampleWebSmokeTest || !got[0].Active || !got[0].MustSucceed || got[2].Active {
		t.Errorf("web01's actions: got %+v, want the smoke test (active, must succeed) first and an inactive one last", got)
	}
	if got, err := r.client.ServerActions(t.Context(), mgnemu.SampleApp01); err != nil || len(got) != 0 {
		t.Errorf("app01's actions: got %v, %v, want none", got, err)
	}
	if _, err := r.client.ServerActions(t.Context(), "s-00000000000000000"); !errors.Is(err, migration.ErrNotFound) {
		t.Errorf("unknown server: got %v, want ErrNotFound", err)
	}
}

// TestPostLaunchActionsInJob follows a test launch of web01 past its end: the job reports its
// post-launch actions as they run, a failure with MGN's reason.
func TestPostLaunchActionsInJob(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	r.emu.FailAction(mgnemu.SampleWeb01, mgnemu.SampleWebSmokeTest, "HTTP GET / answered 503")
	req := launchReq(migration.ModeTest, mgnemu.SampleWeb01)
	req.Batch = "g1/1"
	job, err := r.client.Launch(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if job.Tags[migration.TagBatch] != "g1/1" {
		t.Errorf("job tags %v, want the batch key", job.Tags)
	}
	if found, ok, err := r.client.FindLaunch(t.Context(), migration.TagBatch, "g1/1", epoch); err != nil || !ok || found.ID != job.ID {
		t.Errorf("FindLaunch by batch: got %v %v %v, want job %s", found.ID, ok, err, job.ID)
	}
	r.clock.Advance(mgnemu.FastPace().Total())
	j, err := r.client.Job(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Participants[0].PostLaunch != nil {
		t.Errorf("post-launch report before the SSM agent was seen: got %+v, want none", j.Participants[0].PostLaunch)
	}
	r.clock.Advance(mgnemu.FastPace().PostLaunch(2))
	if j, err = r.client.Job(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	pl := j.Participants[0].PostLaunch
	if pl == nil || pl.AgentSeen.IsZero() || !pl.Settled(2) {
		t.Fatalf("post-launch report after the actions: got %+v, want both actions ended", pl)
	}
	smoke := pl.Actions[0]
	if smoke.Name != mgnemu.SampleWebSmokeTest || smoke.State != migration.ActionFailed || !smoke.MustSucceed ||
		smoke.FailureReason != "HTTP GET / answered 503" || smoke.Document == "" || smoke.ExecutionID == "" {
		t.Errorf("smoke test: got %+v, want it failed with MGN's reason", smoke)
	}
	if pl.Actions[1].State != migration.ActionSucceeded || len(pl.Unverified()) != 1 {
		t.Errorf("second action %+v, unverified %+v: want the CloudWatch agent succeeded and one unverified action", pl.Actions[1], pl.Unverified())
	}
}

func TestLaunchRefusesMoreThanAJob(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, awsmgn.Options{})
	ids := make([]string, 201)
	for i := range ids {
		ids[i] = mgnemu.StableID("s-", string(rune(i)))
	}
	if _, err := r.client.Launch(t.Context(), launchReq(migration.ModeTest, ids...)); !errors.Is(err, migration.ErrInvalid) {
		t.Errorf("201 servers: got %v, want ErrInvalid", err)
	}
	if n := r.emu.Calls("StartTest"); n != 0 {
		t.Errorf("StartTest calls: got %d, want none", n)
	}
}
