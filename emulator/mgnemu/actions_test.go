package mgnemu

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/mgn"
	"github.com/aws/aws-sdk-go-v2/service/mgn/types"
)

// actionStates renders a participant's post-launch status as
// "-" (none yet), "agent" (SSM agent seen, nothing run) or "name=STATUS, ...".
func actionStates(p types.ParticipatingServer) string {
	st := p.PostLaunchActionsStatus
	if st == nil {
		return "-"
	}
	if len(st.PostLaunchActionsLaunchStatusList) == 0 {
		return "agent"
	}
	var parts []string
	for _, a := range st.PostLaunchActionsLaunchStatusList {
		parts = append(parts, aws.ToString(a.SsmDocument.ActionName)+"="+string(a.ExecutionStatus))
	}
	return strings.Join(parts, ", ")
}

// followActions steps the clock in quarter seconds until the participant's
// actions have all ended and returns each distinct state seen, the job as last
// seen and the job's status when the first action was seen.
func followActions(t *testing.T, r *rig, jobID string) (states []string, last types.Job, statusAtFirstAction types.JobStatus) {
	t.Helper()
	for range 240 {
		last = r.job(t, jobID)
		s := actionStates(last.ParticipatingServers[0])
		if len(states) == 0 || states[len(states)-1] != s {
			states = append(states, s)
			if statusAtFirstAction == "" && s != "-" {
				statusAtFirstAction = last.Status
			}
		}
		if s != "-" && s != "agent" && !strings.Contains(s, "IN_PROGRESS") {
			return states, last, statusAtFirstAction
		}
		r.clock.Advance(250 * time.Millisecond)
	}
	t.Fatalf("post-launch actions of job %s did not end; states %v", jobID, states)
	return nil, types.Job{}, ""
}

func TestPostLaunchActionsProgress(t *testing.T) {
	r := newRig(t, nil)
	j, err := startTest(t.Context(), r, SampleWeb01)
	if err != nil {
		t.Fatal(err)
	}
	jobID := aws.ToString(j.JobID)
	states, last, statusAtFirstAction := followActions(t, r, jobID)
	want := []string{"-",
		SampleWebSmokeTest + "=IN_PROGRESS",
		SampleWebSmokeTest + "=SUCCESS, " + SampleWebCWAgent + "=IN_PROGRESS",
		SampleWebSmokeTest + "=SUCCESS, " + SampleWebCWAgent + "=SUCCESS"}
	if !slices.Equal(states, want) {
		t.Fatalf("states:\n got %q\nwant %q", states, want)
	}
	if statusAtFirstAction != types.JobStatusCompleted {
		t.Errorf("job status when the first action ran: got %s, want COMPLETED (actions run after the job)", statusAtFirstAction)
	}

	st := last.ParticipatingServers[0].PostLaunchActionsStatus
	end := parseTime(aws.ToString(last.EndDateTime))
	if got, want := aws.ToString(st.SsmAgentDiscoveryDatetime), FormatTime(end.Add(FastPace().SSMAgent)); got != want {
		t.Errorf("ssmAgentDiscoveryDatetime: got %s, want %s (job end + SSMAgent)", got, want)
	}
	smoke := st.PostLaunchActionsLaunchStatusList[0]
	doc := smoke.SsmDocument
	if aws.ToString(doc.SsmDocumentName) != "Corp-SmokeTestHTTP" || !aws.ToBool(doc.MustSucceedForCutover) ||
		aws.ToInt32(doc.TimeoutSeconds) != 600 || smoke.SsmDocumentType != types.SsmDocumentTypeCommand || smoke.FailureReason != nil {
		t.Errorf("smoke test: got document %s must %v timeout %d type %s failure %v", aws.ToString(doc.SsmDocumentName),
			aws.ToBool(doc.MustSucceedForCutover), aws.ToInt32(doc.TimeoutSeconds), smoke.SsmDocumentType, smoke.FailureReason)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	ids := map[string]bool{}
	for _, a := range st.PostLaunchActionsLaunchStatusList {
		id := aws.ToString(a.ExecutionID)
		if !uuid.MatchString(id) || ids[id] {
			t.Errorf("executionID %q: want a distinct UUID", id)
		}
		ids[id] = true
	}
	if cw := st.PostLaunchActionsLaunchStatusList[1].SsmDocument; aws.ToBool(cw.MustSucceedForCutover) {
		t.Errorf("%s: mustSucceedForCutover true, want false", aws.ToString(cw.ActionName))
	}
	// Nothing changes afterwards; the inactive action never runs.
	r.clock.Advance(time.Hour)
	if got := actionStates(r.job(t, jobID).ParticipatingServers[0]); got != states[len(states)-1] {
		t.Errorf("an hour later: got %s, want %s", got, states[len(states)-1])
	}
}

func TestPostLaunchActionsAutomationOnCutover(t *testing.T) {
	r := newRig(t, nil)
	out, err := r.mgn.StartCutover(t.Context(), &mgn.StartCutoverInput{SourceServerIDs: []string{SampleDB01}})
	if err != nil {
		t.Fatal(err)
	}
	states, last, _ := followActions(t, r, aws.ToString(out.Job.JobID))
	if got, want := states[len(states)-1], SampleDBVerify+"=SUCCESS"; got != want {
		t.Fatalf("final state: got %s, want %s", got, want)
	}
	a := last.ParticipatingServers[0].PostLaunchActionsStatus.PostLaunchActionsLaunchStatusList[0]
	if a.SsmDocumentType != types.SsmDocumentTypeAutomation || !aws.ToBool(a.SsmDocument.MustSucceedForCutover) {
		t.Errorf("db01 action: got type %s must %v, want AUTOMATION and true", a.SsmDocumentType, aws.ToBool(a.SsmDocument.MustSucceedForCutover))
	}
}

func TestPostLaunchActionsOnlyForServersWithActions(t *testing.T) {
	r := newRig(t, nil)
	j, err := startTest(t.Context(), r, SampleApp01)
	if err != nil {
		t.Fatal(err)
	}
	r.runJob(t, aws.ToString(j.JobID))
	r.clock.Advance(time.Hour)
	if st := r.job(t, aws.ToString(j.JobID)).ParticipatingServers[0].PostLaunchActionsStatus; st != nil {
		t.Errorf("app01 has no actions: got postLaunchActionsStatus %+v, want none", st)
	}
}

func TestFailAction(t *testing.T) {
	const reason = "Command exited with code 7: curl: (7) Failed to connect to localhost port 443"
	r := newRig(t, nil)
	r.emu.FailAction(SampleWeb01, SampleWebSmokeTest, reason)
	j, err := startTest(t.Context(), r, SampleWeb01)
	if err != nil {
		t.Fatal(err)
	}
	states, last, _ := followActions(t, r, aws.ToString(j.JobID))
	if got, want := states[len(states)-1], SampleWebSmokeTest+"=FAILED, "+SampleWebCWAgent+"=SUCCESS"; got != want {
		t.Fatalf("final state: got %s, want %s (a failed action does not stop the next)", got, want)
	}
	list := last.ParticipatingServers[0].PostLaunchActionsStatus.PostLaunchActionsLaunchStatusList
	if got := aws.ToString(list[0].FailureReason); got != reason {
		t.Errorf("failureReason: got %q, want %q", got, reason)
	}
	if last.ParticipatingServers[0].LaunchStatus != types.LaunchStatusLaunched {
		t.Errorf("launch status: got %s, want LAUNCHED (actions do not change it)", last.ParticipatingServers[0].LaunchStatus)
	}

	// The fault was used up by that launch.
	j, err = startTest(t.Context(), r, SampleWeb01)
	if err != nil {
		t.Fatal(err)
	}
	states, _, _ = followActions(t, r, aws.ToString(j.JobID))
	if got, want := states[len(states)-1], SampleWebSmokeTest+"=SUCCESS, "+SampleWebCWAgent+"=SUCCESS"; got != want {
		t.Errorf("next launch: got %s, want %s", got, want)
	}
}

// TestPostLaunchActionOnRemovedInstance relaunches a server while its actions
// still run: the new job's cleanup removes the instance, and the running
// action fails.
func TestPostLaunchActionOnRemovedInstance(t *testing.T) {
	r := newRig(t, nil)
	first, err := startTest(t.Context(), r, SampleWeb01)
	if err != nil {
		t.Fatal(err)
	}
	firstID := aws.ToString(first.JobID)
	for actionStates(r.job(t, firstID).ParticipatingServers[0]) == "-" {
		r.clock.Advance(250 * time.Millisecond)
	}
	if _, err := startTest(t.Context(), r, SampleWeb01); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(FastPace().Action + time.Second)
	list := r.job(t, firstID).ParticipatingServers[0].PostLaunchActionsStatus.PostLaunchActionsLaunchStatusList
	if len(list) != 1 || list[0].ExecutionStatus != types.PostLaunchActionExecutionStatusFailed ||
		!strings.Contains(aws.ToString(list[0].FailureReason), "no longer running") {
		t.Errorf("first job's actions: got %q (reason %q), want the smoke test FAILED and nothing after it",
			actionStates(r.job(t, firstID).ParticipatingServers[0]), aws.ToString(list[0].FailureReason))
	}
}

func TestListSourceServerActions(t *testing.T) {
	r := newRig(t, nil)
	var got []types.SourceServerActionDocument
	p := mgn.NewListSourceServerActionsPaginator(r.mgn, &mgn.ListSourceServerActionsInput{
		SourceServerID: aws.String(SampleWeb01), MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Items...)
	}
	var names []string
	for _, a := range got {
		names = append(names, aws.ToString(a.ActionName))
	}
	if want := []string{SampleWebSmokeTest, SampleWebCWAgent, "Disable legacy cron jobs"}; !slices.Equal(names, want) {
		t.Fatalf("actions in order: got %v, want %v", names, want)
	}
	smoke := got[0]
	if aws.ToString(smoke.ActionID) != "web-smoke-test" || aws.ToString(smoke.DocumentIdentifier) != "Corp-SmokeTestHTTP" ||
		!aws.ToBool(smoke.Active) || !aws.ToBool(smoke.MustSucceedForCutover) || aws.ToInt32(smoke.Order) != 1001 ||
		aws.ToInt32(smoke.TimeoutSeconds) != 600 || smoke.Category != types.ActionCategoryValidation {
		t.Errorf("smoke test: got %+v", smoke)
	}
	if aws.ToBool(got[2].Active) {
		t.Errorf("%s: active, want inactive", names[2])
	}

	out, err := r.mgn.ListSourceServerActions(t.Context(), &mgn.ListSourceServerActionsInput{SourceServerID: aws.String(SampleWeb01),
		Filters: &types.SourceServerActionsRequestFilters{ActionIDs: []string{"web-cw-agent"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 || aws.ToString(out.Items[0].ActionName) != SampleWebCWAgent {
		t.Errorf("actionIDs filter: got %d items, want the CloudWatch agent", len(out.Items))
	}
	out, err = r.mgn.ListSourceServerActions(t.Context(), &mgn.ListSourceServerActionsInput{SourceServerID: aws.String(SampleApp01)})
	if err != nil || len(out.Items) != 0 {
		t.Errorf("app01: got %v items, err %v; want none", len(out.Items), err)
	}
	_, err = r.mgn.ListSourceServerActions(t.Context(), &mgn.ListSourceServerActionsInput{SourceServerID: aws.String("s-00000000000000000")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("unknown server: got %v, want ResourceNotFoundException", err)
	}
}

func TestGenerateWave(t *testing.T) {
	g := GenerateWave("Wave 9", 600, 0, epoch)
	if len(g.Servers) != 600 || len(g.Applications) != 4 {
		t.Fatalf("got %d servers in %d applications, want 600 in 4", len(g.Servers), len(g.Applications))
	}
	var eligible []string
	perApp := map[string]int{}
	for _, s := range g.Servers {
		perApp[s.ApplicationID]++
		if s.LifeCycle.State == "READY_FOR_TEST" && s.DataReplicationInfo.DataReplicationState == "CONTINUOUS" {
			eligible = append(eligible, s.SourceServerID)
		}
		if !strings.HasPrefix(s.Tags["Name"], "wave9-") || len(s.PostLaunchActions) != 1 {
			t.Fatalf("%s: got %d actions, want a wave9- name and one action", s.Tags["Name"], len(s.PostLaunchActions))
		}
	}
	for _, a := range g.Applications {
		if perApp[a.ApplicationID] != 150 || a.WaveID != g.Wave.WaveID {
			t.Errorf("%s: got %d servers in wave %s, want 150 in %s", a.Name, perApp[a.ApplicationID], a.WaveID, g.Wave.WaveID)
		}
	}
	if len(eligible) < 540 {
		t.Errorf("launchable from READY_FOR_TEST: got %d, want at least 540", len(eligible))
	}

	r := newRig(t, g.Servers)
	r.emu.AddWaves(g.Wave)
	r.emu.AddApplications(g.Applications...)
	w := r.wave(t, g.Wave.WaveID)
	if w.WaveAggregatedStatus.TotalApplications != 4 || w.WaveAggregatedStatus.HealthStatus != types.WaveHealthStatusError {
		t.Errorf("wave: got %d applications, health %s; want 4 and ERROR (stalled servers)",
			w.WaveAggregatedStatus.TotalApplications, w.WaveAggregatedStatus.HealthStatus)
	}
	var total int64
	for _, a := range r.applications(t, &mgn.ListApplicationsInput{Filters: &types.ListApplicationsRequestFilters{WaveIDs: []string{g.Wave.WaveID}}}) {
		total += a.ApplicationAggregatedStatus.TotalSourceServers
	}
	if total != 600 {
		t.Errorf("servers over the wave's applications: got %d, want 600", total)
	}

	// MGN's quotas hold for a wave: at most 200 per job and across active jobs.
	_, err := startTest(t.Context(), r, eligible[:201]...)
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Errorf("201 servers in one job: got %v, want ValidationException", err)
	}
	if _, err := startTest(t.Context(), r, eligible[:200]...); err != nil {
		t.Fatalf("first 200: %v", err)
	}
	_, err = startTest(t.Context(), r, eligible[200:201]...)
	var ce *types.ConflictException
	if !errors.As(err, &ce) {
		t.Errorf("a 201st server in active jobs: got %v, want ConflictException", err)
	}
}

// TestGeneratedWaveLaunch runs a 600-server wave in three jobs with the quota
// raised, as MGN allows on request, and checks every post-launch action ran.
func TestGeneratedWaveLaunch(t *testing.T) {
	g := GenerateWave("Wave 9", 600, 0, epoch)
	r := newRigWith(t, Options{Servers: g.Servers, Applications: g.Applications, Waves: []Wave{g.Wave}, MaxServersInActiveJobs: 600})
	var eligible []string
	for _, s := range g.Servers {
		if s.LifeCycle.State == "READY_FOR_TEST" && s.DataReplicationInfo.DataReplicationState == "CONTINUOUS" {
			eligible = append(eligible, s.SourceServerID)
		}
	}
	eligible = eligible[:540]
	var jobs []string
	for batch := range slices.Chunk(eligible, 200) {
		j, err := startTest(t.Context(), r, batch...)
		if err != nil {
			t.Fatalf("batch of %d: %v", len(batch), err)
		}
		jobs = append(jobs, aws.ToString(j.JobID))
	}
	p := FastPace()
	r.clock.Advance(p.Total() + 200*p.Stagger + p.PostLaunch(1) + time.Second)
	counts := map[string]int{}
	for _, id := range jobs {
		j := r.job(t, id)
		if j.Status != types.JobStatusCompleted {
			t.Errorf("job %s: got %s, want COMPLETED", id, j.Status)
		}
		for _, ps := range j.ParticipatingServers {
			counts[actionStates(ps)]++
		}
	}
	if want := map[string]int{GeneratedSmokeTest + "=SUCCESS": 540}; !maps.Equal(counts, want) {
		t.Errorf("post-launch states: got %v, want %v", counts, want)
	}
	if got := len(jobs); got != 3 {
		t.Errorf("jobs: got %d, want 3", got)
	}
}
