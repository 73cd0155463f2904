package mgnemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/mgn"
	"github.com/aws/aws-sdk-go-v2/service/mgn/types"
	"github.com/aws/smithy-go"
)

func TestDescribeSourceServersPagination(t *testing.T) {
	r := newRig(t, GenerateFleet(2500, epoch))
	p := mgn.NewDescribeSourceServersPaginator(r.mgn, &mgn.DescribeSourceServersInput{MaxResults: aws.Int32(1000)})
	seen := map[string]bool{}
	var sizes []int
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(out.Items))
		for _, s := range out.Items {
			seen[aws.ToString(s.SourceServerID)] = true
		}
	}
	if want := []int{1000, 1000, 500}; !slices.Equal(sizes, want) {
		t.Errorf("page sizes: got %v, want %v", sizes, want)
	}
	if len(seen) != 2500 {
		t.Errorf("distinct servers: got %d, want 2500", len(seen))
	}
	if got := r.emu.Calls("DescribeSourceServers"); got != 3 {
		t.Errorf("calls: got %d, want 3", got)
	}
}

func TestDescribeSourceServersFilters(t *testing.T) {
	r := newRig(t, nil)
	tests := []struct {
		name    string
		filters *types.DescribeSourceServersRequestFilters
		want    int
	}{
		{"none", nil, 9},
		{"not archived", &types.DescribeSourceServersRequestFilters{IsArchived: aws.Bool(false)}, 8},
		{"archived", &types.DescribeSourceServersRequestFilters{IsArchived: aws.Bool(true)}, 1},
		{"ids", &types.DescribeSourceServersRequestFilters{SourceServerIDs: []string{SampleWeb01, SampleDB01}}, 2},
		{"states", &types.DescribeSourceServersRequestFilters{LifeCycleStates: []types.LifeCycleState{
			types.LifeCycleStateTesting, types.LifeCycleStateReadyForCutover}}, 2},
		{"replication type", &types.DescribeSourceServersRequestFilters{ReplicationTypes: []types.ReplicationType{
			types.ReplicationTypeSnapshotShipping}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := r.mgn.DescribeSourceServers(t.Context(), &mgn.DescribeSourceServersInput{Filters: tt.filters})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Items) != tt.want {
				t.Errorf("got %d servers, want %d", len(out.Items), tt.want)
			}
			if out.NextToken != nil {
				t.Errorf("nextToken: got %q, want none", *out.NextToken)
			}
		})
	}
}

// TestSampleFleetOnTheWire checks that the SDK reads the fixture's fields.
func TestSampleFleetOnTheWire(t *testing.T) {
	r := newRig(t, nil)
	web02 := r.server(t, SampleWeb02)
	var total, done int64
	for _, d := range web02.DataReplicationInfo.ReplicatedDisks {
		total += d.TotalStorageBytes
		done += d.ReplicatedStorageBytes
	}
	if pct := done * 100 / total; pct != 62 && pct != 63 {
		t.Errorf("web02 progress: got %d%%, want ~63%%", pct)
	}
	if web02.DataReplicationInfo.EtaDateTime == nil || web02.DataReplicationInfo.LagDuration != nil {
		t.Errorf("web02: got eta %v lag %v, want eta set and lag null", web02.DataReplicationInfo.EtaDateTime, web02.DataReplicationInfo.LagDuration)
	}
	file01 := r.server(t, SampleFile01)
	if e := file01.DataReplicationInfo.DataReplicationError; e == nil || e.Error != types.DataReplicationErrorStringAgentNotSeen || aws.ToString(e.RawError) == "" {
		t.Errorf("file01 error: got %+v, want AGENT_NOT_SEEN with rawError", e)
	}
	web01 := r.server(t, SampleWeb01)
	if got := web01.SourceProperties.IdentificationHints; aws.ToString(got.Hostname) != "web01" || aws.ToString(got.Fqdn) != "web01.corp.example.com" {
		t.Errorf("web01 hints: got %s/%s", aws.ToString(got.Hostname), aws.ToString(got.Fqdn))
	}
	if ts := aws.ToString(web01.LifeCycle.AddedToServiceDateTime); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`).MatchString(ts) {
		t.Errorf("datetime format: got %q", ts)
	}
	idPattern := regexp.MustCompile(`^s-[0-9a-f]{17}$`)
	for _, s := range r.emu.Servers() {
		if !idPattern.MatchString(s.SourceServerID) {
			t.Errorf("server id %q does not match %s", s.SourceServerID, idPattern)
		}
	}
	// Replication servers exist in EC2 and are shared.
	out, err := r.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:Name"), Values: []string{"*Replication Server"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 2 {
		t.Errorf("replication servers: got %d, want 2", len(out.Reservations))
	}
}

func TestStartTestEventByEvent(t *testing.T) {
	r := newRig(t, nil)
	before := r.server(t, SampleApp01)
	oldInstance := aws.ToString(before.LaunchedInstance.Ec2InstanceID)
	if got := r.instance(t, oldInstance).State.Name; got != ec2types.InstanceStateNameRunning {
		t.Fatalf("previous test instance: got %s, want running", got)
	}

	j, err := startTest(t.Context(), r, SampleApp01)
	if err != nil {
		t.Fatal(err)
	}
	jobID := aws.ToString(j.JobID)
	if j.Status != types.JobStatusPending || j.ParticipatingServers[0].LaunchStatus != types.LaunchStatusPending || j.EndDateTime != nil {
		t.Errorf("new job: got status %s launch %s end %v, want PENDING/PENDING/nil", j.Status, j.ParticipatingServers[0].LaunchStatus, j.EndDateTime)
	}
	srv := r.server(t, SampleApp01)
	if srv.LifeCycle.State != types.LifeCycleStateTesting || aws.ToString(srv.LifeCycle.LastTest.Initiated.JobID) != jobID {
		t.Errorf("after StartTest: got state %s lastTest job %s, want TESTING/%s", srv.LifeCycle.State, aws.ToString(srv.LifeCycle.LastTest.Initiated.JobID), jobID)
	}

	// Step the clock and watch each event arrive.
	var seen []string
	var convID, targetID string
	convRunning := false
	for step := 0; step < 200 && !slices.Contains(seen, "JOB_END"); step++ {
		log := r.log(t, jobID)
		for _, l := range log[len(seen):] {
			seen = append(seen, string(l.Event))
			if l.Event != types.JobLogEventJobStart && l.Event != types.JobLogEventJobEnd &&
				aws.ToString(l.EventData.SourceServerID) != SampleApp01 {
				t.Errorf("%s: sourceServerID %q, want %s", l.Event, aws.ToString(l.EventData.SourceServerID), SampleApp01)
			}
			switch l.Event {
			case types.JobLogEventCleanupEnd:
				if got := r.instance(t, oldInstance).State.Name; got != ec2types.InstanceStateNameTerminated {
					t.Errorf("old test instance after CLEANUP_END: got %s, want terminated", got)
				}
			case types.JobLogEventConversionStart:
				convID = aws.ToString(l.EventData.ConversionServerID)
				in := r.instance(t, convID)
				if tag(in.Tags, "Name") != ConversionServerName {
					t.Errorf("conversion server Name: got %q", tag(in.Tags, "Name"))
				}
			case types.JobLogEventConversionEnd:
				if got := r.instance(t, convID).State.Name; got != ec2types.InstanceStateNameShuttingDown {
					t.Errorf("conversion server at CONVERSION_END: got %s, want shutting-down", got)
				}
			case types.JobLogEventLaunchStart:
				targetID = aws.ToString(l.EventData.TargetInstanceID)
				if got := r.job(t, jobID).ParticipatingServers[0].LaunchStatus; got != types.LaunchStatusInProgress {
					t.Errorf("launch status at LAUNCH_START: got %s, want IN_PROGRESS", got)
				}
			}
		}
		if convID != "" && seen[len(seen)-1] == "CONVERSION_START" &&
			r.instance(t, convID).State.Name == ec2types.InstanceStateNameRunning {
			convRunning = true
		}
		r.clock.Advance(250 * time.Millisecond)
	}
	if !convRunning {
		t.Error("conversion server never seen running during conversion")
	}
	want := []string{"JOB_START", "CLEANUP_START", "CLEANUP_END", "SNAPSHOT_START", "SNAPSHOT_END",
		"CONVERSION_START", "CONVERSION_END", "LAUNCH_START", "JOB_END"}
	if !slices.Equal(seen, want) {
		t.Fatalf("events: got %v, want %v", seen, want)
	}

	target := r.instance(t, targetID)
	if target.State.Name != ec2types.InstanceStateNameRunning || aws.ToString(target.PrivateIpAddress) == "" || aws.ToString(target.PublicIpAddress) == "" {
		t.Errorf("target: got state %s private %q public %q, want running with both IPs",
			target.State.Name, aws.ToString(target.PrivateIpAddress), aws.ToString(target.PublicIpAddress))
	}
	for k, v := range map[string]string{"Name": "app01", "AWSApplicationMigrationServiceManaged": "mgn.amazonaws.com",
		"AWSApplicationMigrationServiceSourceServerID": SampleApp01, "mgn.amazonaws.com-job": jobID} {
		if got := tag(target.Tags, k); got != v {
			t.Errorf("target tag %s: got %q, want %q", k, got, v)
		}
	}
	if got := r.instance(t, convID).State.Name; got != ec2types.InstanceStateNameTerminated {
		t.Errorf("conversion server after job: got %s, want terminated", got)
	}
	j = r.job(t, jobID)
	if j.Status != types.JobStatusCompleted || j.EndDateTime == nil ||
		j.ParticipatingServers[0].LaunchStatus != types.LaunchStatusLaunched ||
		aws.ToString(j.ParticipatingServers[0].LaunchedEc2InstanceID) != targetID {
		t.Errorf("final job: got %s end %v launch %s instance %s", j.Status, j.EndDateTime,
			j.ParticipatingServers[0].LaunchStatus, aws.ToString(j.ParticipatingServers[0].LaunchedEc2InstanceID))
	}
	li := r.server(t, SampleApp01).LaunchedInstance
	if aws.ToString(li.Ec2InstanceID) != targetID || aws.ToString(li.JobID) != jobID || li.FirstBoot != types.FirstBootSucceeded {
		t.Errorf("launchedInstance: got %s/%s/%s, want %s/%s/SUCCEEDED", aws.ToString(li.Ec2InstanceID), aws.ToString(li.JobID), li.FirstBoot, targetID, jobID)
	}
	// The fast pace runs a single-server job in about 10 s of clock time.
	end, _ := time.Parse(time.RFC3339Nano, aws.ToString(j.EndDateTime))
	if d := end.Sub(epoch); d > 11*time.Second {
		t.Errorf("job took %v of clock time, want <= 11s", d)
	}
}

func TestMultiServerJobInterleaves(t *testing.T) {
	r := newRig(t, nil)
	j, err := startTest(t.Context(), r, SampleWeb01, SampleAPI01)
	if err != nil {
		t.Fatal(err)
	}
	jobID := aws.ToString(j.JobID)
	r.runJob(t, jobID)
	log := r.log(t, jobID)
	perServer := map[string][]string{}
	for _, l := range log {
		if l.EventData != nil {
			id := aws.ToString(l.EventData.SourceServerID)
			perServer[id] = append(perServer[id], string(l.Event))
		}
	}
	want := []string{"CLEANUP_START", "CLEANUP_END", "SNAPSHOT_START", "SNAPSHOT_END", "CONVERSION_START", "CONVERSION_END", "LAUNCH_START"}
	for _, id := range []string{SampleWeb01, SampleAPI01} {
		if !slices.Equal(perServer[id], want) {
			t.Errorf("%s events: got %v, want %v", id, perServer[id], want)
		}
	}
	if got := events(log); got[1] != "CLEANUP_START" || got[2] != "CLEANUP_START" {
		t.Errorf("both servers should start before either finishes cleanup; got %v", got)
	}
	for i := 1; i < len(log); i++ {
		if aws.ToString(log[i].LogDateTime) < aws.ToString(log[i-1].LogDateTime) {
			t.Errorf("log not in time order at %d: %s after %s", i, aws.ToString(log[i].LogDateTime), aws.ToString(log[i-1].LogDateTime))
		}
	}
}

func TestLaunchRefusals(t *testing.T) {
	type call func(r *rig) error
	start := func(ids ...string) call {
		return func(r *rig) error {
			_, err := r.mgn.StartTest(t.Context(), &mgn.StartTestInput{SourceServerIDs: ids})
			return err
		}
	}
	cutover := func(ids ...string) call {
		return func(r *rig) error {
			_, err := r.mgn.StartCutover(t.Context(), &mgn.StartCutoverInput{SourceServerIDs: ids})
			return err
		}
	}
	terminate := func(ids ...string) call {
		return func(r *rig) error {
			_, err := r.mgn.TerminateTargetInstances(t.Context(), &mgn.TerminateTargetInstancesInput{SourceServerIDs: ids})
			return err
		}
	}
	tests := []struct {
		name     string
		call     call
		conflict bool // else ValidationException
	}{
		{"cutover from READY_FOR_TEST", cutover(SampleWeb01), true},
		{"cutover from TESTING", cutover(SampleApp01), true},
		{"test during initial sync", start(SampleWeb02), true},
		{"test while stalled", start(SampleFile01), true},
		{"test after cutover", start(SampleLegacy01), true},
		{"test archived", start(SampleWeb01Archived), true},
		{"test unknown server", start("s-00000000000000000"), true},
		{"one bad server fails the whole call", start(SampleWeb01, SampleWeb02), true},
		{"terminate while TESTING", terminate(SampleApp01), true},
		{"malformed id", start("web01"), false},
		{"empty list", start([]string{}...), false},
		{"duplicate id", start(SampleWeb01, SampleWeb01), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			err := tt.call(r)
			var ce *types.ConflictException
			var ve *types.ValidationException
			switch {
			case tt.conflict && !errors.As(err, &ce):
				t.Fatalf("got %v, want ConflictException", err)
			case !tt.conflict && !errors.As(err, &ve):
				t.Fatalf("got %v, want ValidationException", err)
			}
			if n := len(r.emu.Jobs()); n != 0 {
				t.Errorf("jobs created: got %d, want 0", n)
			}
			if got := r.server(t, SampleWeb01).LifeCycle.State; got != types.LifeCycleStateReadyForTest {
				t.Errorf("web01 state: got %s, want unchanged READY_FOR_TEST", got)
			}
		})
	}
}

func TestSecondLaunchWhileActive(t *testing.T) {
	r := newRig(t, nil)
	if _, err := startTest(t.Context(), r, SampleWeb01); err != nil {
		t.Fatal(err)
	}
	_, err := startTest(t.Context(), r, SampleWeb01)
	var ce *types.ConflictException
	if !errors.As(err, &ce) {
		t.Fatalf("second launch: got %v, want ConflictException", err)
	}
	if want := "currently being processed by a Job"; !strings.Contains(aws.ToString(ce.Message), want) {
		t.Errorf("message: got %q, want it to contain %q", aws.ToString(ce.Message), want)
	}
	if len(ce.Errors) != 1 || aws.ToString(ce.Errors[0].ResourceId) != SampleWeb01 {
		t.Errorf("errors[]: got %+v, want web01", ce.Errors)
	}
	if got := r.emu.Calls("StartTest"); got != 2 {
		t.Errorf("StartTest calls: got %d, want 2 (Conflict is not retried)", got)
	}
	r.clock.Advance(FastPace().Total())
	if _, err := startTest(t.Context(), r, SampleWeb01); err != nil {
		t.Errorf("launch after the job ended: %v", err)
	}
}

func TestFailPhase(t *testing.T) {
	const raw = "Client.UnauthorizedOperation: You are not authorized to perform this operation"
	tests := []struct {
		event     string
		notLogged string
	}{
		{"CLEANUP_FAIL", "SNAPSHOT_START"},
		{"SNAPSHOT_FAIL", "CONVERSION_START"},
		{"CONVERSION_FAIL", "LAUNCH_START"},
		{"LAUNCH_FAILED", "NONE"},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			r := newRig(t, nil)
			r.emu.FailPhase(SampleWeb01, tt.event, raw)
			j, err := startTest(t.Context(), r, SampleWeb01)
			if err != nil {
				t.Fatal(err)
			}
			jobID := aws.ToString(j.JobID)
			j = r.runJob(t, jobID)
			if j.Status != types.JobStatusCompleted || j.ParticipatingServers[0].LaunchStatus != types.LaunchStatusFailed {
				t.Errorf("job: got %s/%s, want COMPLETED/FAILED", j.Status, j.ParticipatingServers[0].LaunchStatus)
			}
			log := r.log(t, jobID)
			i := slices.IndexFunc(log, func(l types.JobLog) bool { return string(l.Event) == tt.event })
			if i < 0 {
				t.Fatalf("events %v lack %s", events(log), tt.event)
			}
			if got := aws.ToString(log[i].EventData.RawError); got != raw {
				t.Errorf("rawError: got %q, want %q", got, raw)
			}
			if slices.Contains(events(log), tt.notLogged) {
				t.Errorf("events %v contain %s after the failure", events(log), tt.notLogged)
			}
			if last := log[len(log)-1].Event; last != types.JobLogEventJobEnd {
				t.Errorf("last event: got %s, want JOB_END", last)
			}
			// The fault is used up: the next launch succeeds.
			r.clock.Advance(time.Minute)
			j2, err := startTest(t.Context(), r, SampleWeb01)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.runJob(t, aws.ToString(j2.JobID)).ParticipatingServers[0].LaunchStatus; got != types.LaunchStatusLaunched {
				t.Errorf("next launch: got %s, want LAUNCHED", got)
			}
		})
	}
}

func TestFaultsThroughRetryer(t *testing.T) {
	tests := []struct {
		name      string
		inject    func(*Server)
		wantCalls int
		wantCode  string // "" = success
	}{
		{"throttle twice", func(s *Server) { s.Throttle("DescribeJobs", 2) }, 3, ""},
		{"500 twice", func(s *Server) { s.Fail("DescribeJobs", 2, 500, "InternalServerException") }, 3, ""},
		{"503 once", func(s *Server) { s.Fail("DescribeJobs", 1, 503, "ServiceUnavailableException") }, 2, ""},
		{"throttle beyond max attempts", func(s *Server) { s.Throttle("DescribeJobs", 10) }, 4, "ThrottlingException"},
		{"access denied not retried", func(s *Server) { s.Fail("DescribeJobs", 1, 403, "AccessDeniedException") }, 1, "AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			tt.inject(r.emu)
			_, err := r.mgn.DescribeJobs(t.Context(), &mgn.DescribeJobsInput{})
			var ae smithy.APIError
			switch {
			case tt.wantCode == "" && err != nil:
				t.Errorf("got %v, want success", err)
			case tt.wantCode != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tt.wantCode):
				t.Errorf("got %v, want %s", err, tt.wantCode)
			}
			if got := r.emu.Calls("DescribeJobs"); got != tt.wantCalls {
				t.Errorf("attempts: got %d, want %d", got, tt.wantCalls)
			}
		})
	}
	t.Run("ec2 throttle", func(t *testing.T) {
		r := newRig(t, nil)
		r.emu.Throttle("DescribeInstances", 2)
		// A small answer on purpose: with the SDK's clients as they come, net/http now
		// and then closes the connection while the answer is read (the SDK's request
		// body ends WriteTo with io.EOF once closed; see awsmgn's plainBodies), and the
		// SDK's retry of that would add an attempt.
		_, err := r.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:Name"), Values: []string{ReplicationServerName}}}})
		if err != nil {
			t.Errorf("got %v, want success", err)
		}
		if got := r.emu.Calls("DescribeInstances"); got != 3 {
			t.Errorf("attempts: got %d, want 3", got)
		}
	})
}

func TestLatencyHonoursCancellation(t *testing.T) {
	r := newRig(t, nil)
	r.emu.SetLatency("", time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.mgn.DescribeSourceServers(ctx, &mgn.DescribeSourceServersInput{})
	if err == nil {
		t.Fatal("got success, want a deadline error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("call returned after %v, want about 100ms", d)
	}
}

func TestUnmodeledOperationsFailLoudly(t *testing.T) {
	r := newRig(t, nil)
	_, err := r.mgn.GetLaunchConfiguration(t.Context(), &mgn.GetLaunchConfigurationInput{SourceServerID: aws.String(SampleWeb01)})
	// GetLaunchConfiguration does not model ValidationException, so the SDK
	// returns a generic API error; TestStrictRequestBodies checks the reason.
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || !strings.Contains(ae.ErrorMessage(), "GetLaunchConfiguration") {
		t.Errorf("GetLaunchConfiguration: got %v, want ValidationException naming it", err)
	}
	_, err = r.ec2.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAction" {
		t.Errorf("DescribeVpcs: got %v, want InvalidAction", err)
	}
	if got, want := r.emu.Unmodeled(), []string{"GetLaunchConfiguration", "DescribeVpcs"}; !slices.Equal(got, want) {
		t.Errorf("Unmodeled: got %v, want %v", got, want)
	}
}

func TestDescribeInstances(t *testing.T) {
	r := newRig(t, nil)
	app01 := r.server(t, SampleApp01)
	testInstance := aws.ToString(app01.LaunchedInstance.Ec2InstanceID)

	t.Run("unknown id fails the whole call", func(t *testing.T) {
		_, err := r.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{testInstance, "i-0123456789abcdef0"}})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidInstanceID.NotFound" || !strings.Contains(ae.ErrorMessage(), "i-0123456789abcdef0") {
			t.Errorf("got %v, want InvalidInstanceID.NotFound naming the id", err)
		}
	})
	filters := []struct {
		name    string
		filters []ec2types.Filter
		want    int
	}{
		{"tag:Name exact", []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{"app01"}}}, 1},
		{"tag:Name wildcard", []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{"a?p*", "db0?"}}}, 2},
		{"instance-id", []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{testInstance}}}, 1},
		{"state", []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}, 5},
		{"state none", []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"stopped"}}}, 0},
		{"tag-key", []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{"AWSApplicationMigrationService*"}}}, 3},
		{"filters are ANDed", []ec2types.Filter{
			{Name: aws.String("tag-key"), Values: []string{"AWSApplicationMigrationServiceManaged"}},
			{Name: aws.String("tag:Name"), Values: []string{"legacy01"}}}, 1},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			out, err := r.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: tt.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(out.Reservations); got != tt.want {
				t.Errorf("got %d instances, want %d", got, tt.want)
			}
		})
	}
	t.Run("unknown filter", func(t *testing.T) {
		_, err := r.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValue" {
			t.Errorf("got %v, want InvalidParameterValue", err)
		}
	})
	t.Run("pagination", func(t *testing.T) {
		p := ec2.NewDescribeInstancesPaginator(r.ec2, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
		var sizes []int
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(out.Reservations))
		}
		if want := []int{5}; !slices.Equal(sizes, want) {
			t.Errorf("page sizes: got %v, want %v", sizes, want)
		}
	})
}

func TestLifecycleTransitions(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		target  types.ChangeServerLifeCycleStateSourceServerLifecycleState
		want    types.LifeCycleState
		wantErr string // error code, "" = success
	}{
		{"mark test ready for cutover", SampleApp01, "READY_FOR_CUTOVER", types.LifeCycleStateReadyForCutover, ""},
		{"revert test", SampleApp01, "READY_FOR_TEST", types.LifeCycleStateReadyForTest, ""},
		{"skip testing", SampleWeb01, "READY_FOR_CUTOVER", types.LifeCycleStateReadyForCutover, ""},
		{"no cutover without launch", SampleWeb01, "CUTOVER", "", "ConflictException"},
		{"no way back from ready for cutover", SampleDB01, "READY_FOR_TEST", "", "ConflictException"},
		{"not launchable without lag", SampleWeb02, "READY_FOR_CUTOVER", "", "ConflictException"},
		{"archived", SampleWeb01Archived, "READY_FOR_CUTOVER", "", "ConflictException"},
		{"unknown server", "s-00000000000000000", "READY_FOR_TEST", "", "ResourceNotFoundException"},
		{"bad target", SampleApp01, "TESTING", "", "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			out, err := r.mgn.ChangeServerLifeCycleState(t.Context(), &mgn.ChangeServerLifeCycleStateInput{
				SourceServerID: aws.String(tt.id),
				LifeCycle:      &types.ChangeServerLifeCycleStateSourceServerLifecycle{State: tt.target},
			})
			if tt.wantErr != "" {
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != tt.wantErr {
					t.Fatalf("got %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.LifeCycle.State != tt.want {
				t.Errorf("response state: got %s, want %s", out.LifeCycle.State, tt.want)
			}
			if got := r.server(t, tt.id).LifeCycle.State; got != tt.want {
				t.Errorf("stored state: got %s, want %s", got, tt.want)
			}
		})
	}

	t.Run("cutover, revert, cutover, finalize", func(t *testing.T) {
		r := newRig(t, nil)
		ctx := t.Context()
		cut, err := r.mgn.StartCutover(ctx, &mgn.StartCutoverInput{SourceServerIDs: []string{SampleDB01}})
		if err != nil {
			t.Fatal(err)
		}
		srv := r.server(t, SampleDB01)
		if srv.LifeCycle.State != types.LifeCycleStateCuttingOver || aws.ToString(srv.LifeCycle.LastCutover.Initiated.JobID) != aws.ToString(cut.Job.JobID) {
			t.Fatalf("after StartCutover: got %s job %s", srv.LifeCycle.State, aws.ToString(srv.LifeCycle.LastCutover.Initiated.JobID))
		}
		if _, err := r.mgn.FinalizeCutover(ctx, &mgn.FinalizeCutoverInput{SourceServerID: aws.String(SampleDB01)}); err == nil {
			t.Error("finalize during the cutover job: got success, want ConflictException")
		}
		r.runJob(t, aws.ToString(cut.Job.JobID))
		if _, err := r.mgn.ChangeServerLifeCycleState(ctx, &mgn.ChangeServerLifeCycleStateInput{SourceServerID: aws.String(SampleDB01),
			LifeCycle: &types.ChangeServerLifeCycleStateSourceServerLifecycle{State: "READY_FOR_CUTOVER"}}); err != nil {
			t.Fatalf("revert cutover: %v", err)
		}
		if got := r.server(t, SampleDB01).LifeCycle.LastCutover.Reverted.ApiCallDateTime; got == nil {
			t.Error("lastCutover.reverted not set")
		}
		cut, err = r.mgn.StartCutover(ctx, &mgn.StartCutoverInput{SourceServerIDs: []string{SampleDB01}})
		if err != nil {
			t.Fatal(err)
		}
		r.runJob(t, aws.ToString(cut.Job.JobID))
		out, err := r.mgn.FinalizeCutover(ctx, &mgn.FinalizeCutoverInput{SourceServerID: aws.String(SampleDB01)})
		if err != nil {
			t.Fatal(err)
		}
		dri := out.DataReplicationInfo
		if out.LifeCycle.State != types.LifeCycleStateCutover || dri.DataReplicationState != types.DataReplicationStateDisconnected || dri.LagDuration != nil {
			t.Errorf("after finalize: got %s/%s lag %v, want CUTOVER/DISCONNECTED/nil", out.LifeCycle.State, dri.DataReplicationState, dri.LagDuration)
		}
		if _, err := r.mgn.FinalizeCutover(ctx, &mgn.FinalizeCutoverInput{SourceServerID: aws.String(SampleDB01)}); err == nil {
			t.Error("second finalize: got success, want ConflictException")
		}
	})
}

func TestTerminateTargetInstances(t *testing.T) {
	r := newRig(t, nil)
	testInstance := aws.ToString(r.server(t, SampleDB01).LaunchedInstance.Ec2InstanceID)
	out, err := r.mgn.TerminateTargetInstances(t.Context(), &mgn.TerminateTargetInstancesInput{SourceServerIDs: []string{SampleDB01}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Job.Type != types.JobTypeTerminate || out.Job.InitiatedBy != types.InitiatedByTerminate {
		t.Errorf("job: got %s/%s, want TERMINATE/TERMINATE", out.Job.Type, out.Job.InitiatedBy)
	}
	// While it runs, a cutover is refused (the workshop's pain point).
	_, err = r.mgn.StartCutover(t.Context(), &mgn.StartCutoverInput{SourceServerIDs: []string{SampleDB01}})
	var ce *types.ConflictException
	if !errors.As(err, &ce) {
		t.Errorf("cutover during terminate: got %v, want ConflictException", err)
	}
	j := r.runJob(t, aws.ToString(out.Job.JobID))
	if j.ParticipatingServers[0].LaunchStatus != types.LaunchStatusTerminated {
		t.Errorf("participant: got %s, want TERMINATED", j.ParticipatingServers[0].LaunchStatus)
	}
	if got := r.instance(t, testInstance).State.Name; got != ec2types.InstanceStateNameTerminated {
		t.Errorf("test instance: got %s, want terminated", got)
	}
	r.clock.Advance(2 * time.Hour)
	if _, err := r.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{testInstance}}); err == nil {
		t.Error("terminated instance still visible after 2 h")
	}
}

func TestDescribeJobs(t *testing.T) {
	r := newRig(t, nil)
	var ids []string
	for _, sid := range []string{SampleWeb01, SampleApp01, SampleDB01} {
		j, err := startTest(t.Context(), r, sid)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(j.JobID))
		r.clock.Advance(time.Minute)
	}
	var got []string
	p := mgn.NewDescribeJobsPaginator(r.mgn, &mgn.DescribeJobsInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range out.Items {
			got = append(got, aws.ToString(j.JobID))
		}
	}
	if want := []string{ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("jobs: got %v, want newest first %v", got, want)
	}
	out, err := r.mgn.DescribeJobs(t.Context(), &mgn.DescribeJobsInput{Filters: &types.DescribeJobsRequestFilters{
		FromDate: aws.String(FormatTime(epoch.Add(30 * time.Second)))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 2 {
		t.Errorf("fromDate filter: got %d jobs, want 2", len(out.Items))
	}
	_, err = r.mgn.DescribeJobs(t.Context(), &mgn.DescribeJobsInput{MaxResults: aws.Int32(1001)})
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Errorf("maxResults 1001: got %v, want ValidationException", err)
	}
}

func TestUpdateMakesServerLaunchable(t *testing.T) {
	r := newRig(t, nil)
	if _, err := startTest(t.Context(), r, SampleFile01); err == nil {
		t.Fatal("stalled server launched")
	}
	r.emu.Update(SampleFile01, func(s *SourceServer) {
		s.DataReplicationInfo.DataReplicationState = "CONTINUOUS"
		s.DataReplicationInfo.DataReplicationError = nil
		s.DataReplicationInfo.LagDuration = FormatDuration(time.Second)
	})
	if _, err := startTest(t.Context(), r, SampleFile01); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}

func TestStrictRequestBodies(t *testing.T) {
	r := newRig(t, nil)
	tests := []struct {
		name, op, body string
		wantStatus     int
		wantType       string
		wantReason     string
	}{
		{"unknown member", "DescribeSourceServers", `{"filter":{}}`, 400, "ValidationException", "cannotParse"},
		{"wrong type", "DescribeJobs", `{"maxResults":"10"}`, 400, "ValidationException", "cannotParse"},
		{"float for int", "DescribeJobs", `{"maxResults":1.5}`, 400, "ValidationException", "cannotParse"},
		{"bad token", "DescribeSourceServers", `{"nextToken":"nope"}`, 400, "ValidationException", "fieldValidationFailed"},
		{"unknown op", "Frobnicate", `{}`, 400, "ValidationException", "unknownOperation"},
		{"ok", "DescribeJobs", `{}`, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.emu.URL()+"/"+tt.op, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d (%s)", resp.StatusCode, tt.wantStatus, b)
			}
			if got := resp.Header.Get("X-Amzn-ErrorType"); got != tt.wantType {
				t.Errorf("X-Amzn-ErrorType: got %q, want %q", got, tt.wantType)
			}
			var body struct {
				Message string `json:"message"`
				Reason  string `json:"reason"`
			}
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(&body); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			if body.Reason != tt.wantReason || tt.wantType != "" && body.Message == "" {
				t.Errorf("body: got %s, want reason %q and a message", b, tt.wantReason)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "P0D"},
		{5 * time.Second, "PT5S"},
		{16*time.Hour + 20*time.Minute + 38*time.Second + 697305*time.Microsecond, "PT16H20M38.697305S"},
		{7*time.Minute + 30*time.Second, "PT7M30S"},
		{1500 * time.Millisecond, "PT1.5S"},
		{50 * time.Hour, "P2DT2H"},
		{48 * time.Hour, "P2D"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v): got %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestGenerateFleetNamesUnique(t *testing.T) {
	fleet := GenerateFleet(3000, epoch)
	ids, names := map[string]bool{}, map[string]bool{}
	states := map[string]int{}
	for _, s := range fleet {
		ids[s.SourceServerID] = true
		names[s.Tags["Name"]] = true
		states[s.DataReplicationInfo.DataReplicationState]++
	}
	if len(ids) != 3000 || len(names) != 3000 {
		t.Errorf("unique ids %d names %d, want 3000 each", len(ids), len(names))
	}
	for _, st := range []string{"CONTINUOUS", "INITIAL_SYNC", "STALLED", "BACKLOG", "DISCONNECTED"} {
		if states[st] == 0 {
			t.Errorf("no server in %s", st)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	for _, s := range SampleFleet(epoch) {
		c := s.clone()
		a, _ := json.Marshal(s)
		b, _ := json.Marshal(c)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: clone differs:\n got %s\nwant %s", s.Tags["Name"], b, a)
		}
		c.Tags["Name"] = "changed"
		c.DataReplicationInfo.ReplicatedDisks[0].TotalStorageBytes = -1
		c.SourceProperties.NetworkInterfaces[0].IPs[0] = "changed"
		if s.Tags["Name"] == "changed" || s.DataReplicationInfo.ReplicatedDisks[0].TotalStorageBytes == -1 ||
			s.SourceProperties.NetworkInterfaces[0].IPs[0] == "changed" {
			t.Errorf("%s: clone shares memory with the original", s.SourceServerID)
		}
	}
}

func TestJobQuotas(t *testing.T) {
	fleet := GenerateFleet(400, epoch)
	var ready []string
	for _, s := range fleet {
		if s.LifeCycle.State == "READY_FOR_TEST" && s.DataReplicationInfo.DataReplicationState == "CONTINUOUS" {
			ready = append(ready, s.SourceServerID)
		}
	}
	r := newRig(t, fleet)
	_, err := startTest(t.Context(), r, ready[:201]...)
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Errorf("201 servers in one job: got %v, want ValidationException", err)
	}
	for i := range 20 {
		if _, err := startTest(t.Context(), r, ready[i]); err != nil {
			t.Fatalf("job %d: %v", i+1, err)
		}
	}
	_, err = startTest(t.Context(), r, ready[20])
	var ce *types.ConflictException
	if !errors.As(err, &ce) {
		t.Errorf("21st concurrent job: got %v, want ConflictException", err)
	}
	r.clock.Advance(FastPace().Total() + time.Second)
	if _, err := startTest(t.Context(), r, ready[20]); err != nil {
		t.Errorf("after the jobs completed: %v", err)
	}
}

func TestThrottleHeaders(t *testing.T) {
	r := newRig(t, nil)
	r.emu.Throttle("DescribeJobs", 1)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.emu.URL()+"/DescribeJobs", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{"X-Amzn-ErrorType": "ThrottlingException", "Retry-After": "1", "X-Amz-Retry-After": "10"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("status: got %d, want 429", resp.StatusCode)
	}
}
