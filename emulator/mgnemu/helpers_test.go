package mgnemu

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/mgn"
	"github.com/aws/aws-sdk-go-v2/service/mgn/types"
)

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type rig struct {
	emu   *Server
	clock *ManualClock
	mgn   *mgn.Client
	ec2   *ec2.Client
}

// newRig starts an emulator with the sample fleet on a manual clock and returns
// real SDK clients pointed at it. Retries back off 1 ms so fault tests stay fast.
func newRig(t *testing.T, servers []SourceServer) *rig {
	t.Helper()
	if servers == nil {
		servers = SampleFleet(epoch)
	}
	return newRigWith(t, Options{Servers: servers})
}

// newRigWith is newRig with opts; Now and Logger are set here.
func newRigWith(t testing.TB, opts Options) *rig {
	t.Helper()
	clock := NewManualClock(epoch)
	opts.Now = clock.Now
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	emu := New(opts)
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 4
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}
	creds := aws.AnonymousCredentials{}

	return &rig{
		emu:   emu,
		clock: clock,
		mgn: mgn.New(mgn.Options{BaseEndpoint: aws.String(emu.URL()), Region: "eu-central-1",
			Credentials: creds, Retryer: retryer()}),
		ec2: ec2.New(ec2.Options{BaseEndpoint: aws.String(emu.URL()), Region: "eu-central-1",
			Credentials: creds, Retryer: retryer()}),
	}
}

func (r *rig) server(t *testing.T, id string) types.SourceServer {
	t.Helper()
	out, err := r.mgn.DescribeSourceServers(t.Context(), &mgn.DescribeSourceServersInput{
		Filters: &types.DescribeSourceServersRequestFilters{SourceServerIDs: []string{id}}})
	if err != nil {
		t.Fatalf("DescribeSourceServers %s: %v", id, err)
	}
	if len(out.Items) != 1 {
		t.Fatalf("DescribeSourceServers %s: got %d items, want 1", id, len(out.Items))
	}
	return out.Items[0]
}

func (r *rig) job(t *testing.T, id string) types.Job {
	t.Helper()
	out, err := r.mgn.DescribeJobs(t.Context(), &mgn.DescribeJobsInput{Filters: &types.DescribeJobsRequestFilters{JobIDs: []string{id}}})
	if err != nil {
		t.Fatalf("DescribeJobs %s: %v", id, err)
	}
	if len(out.Items) != 1 {
		t.Fatalf("DescribeJobs %s: got %d items, want 1", id, len(out.Items))
	}
	return out.Items[0]
}

func (r *rig) log(t *testing.T, jobID string) []types.JobLog {
	t.Helper()
	var all []types.JobLog
	p := mgn.NewDescribeJobLogItemsPaginator(r.mgn, &mgn.DescribeJobLogItemsInput{JobID: aws.String(jobID)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("DescribeJobLogItems %s: %v", jobID, err)
		}
		all = append(all, out.Items...)
	}
	return all
}

func (r *rig) instance(t *testing.T, id string) ec2types.Instance {
	t.Helper()
	out, err := r.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances %s: %v", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances %s: got %d reservations, want 1 with 1 instance", id, len(out.Reservations))
	}
	return out.Reservations[0].Instances[0]
}

// runJob advances the clock in small steps until the job completes.
func (r *rig) runJob(t *testing.T, jobID string) types.Job {
	t.Helper()
	for range 1000 {
		j := r.job(t, jobID)
		if j.Status == types.JobStatusCompleted {
			return j
		}
		r.clock.Advance(time.Second)
	}
	t.Fatalf("job %s did not complete", jobID)
	return types.Job{}
}

func startTest(ctx context.Context, r *rig, ids ...string) (types.Job, error) {
	out, err := r.mgn.StartTest(ctx, &mgn.StartTestInput{SourceServerIDs: ids})
	if err != nil {
		return types.Job{}, err
	}
	return *out.Job, nil
}

func events(log []types.JobLog) []string {
	var out []string
	for _, l := range log {
		out = append(out, string(l.Event))
	}
	return out
}

func tag(tags []ec2types.Tag, key string) string {
	i := slices.IndexFunc(tags, func(t ec2types.Tag) bool { return aws.ToString(t.Key) == key })
	if i < 0 {
		return ""
	}
	return aws.ToString(tags[i].Value)
}
