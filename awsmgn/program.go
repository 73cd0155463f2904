package awsmgn

import (
	"context"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/mgn"
	mgntypes "github.com/aws/aws-sdk-go-v2/service/mgn/types"

	"github.com/cutoverbot/cutoverbot/migration"
)

// Program lists the non-archived waves and applications (ListWaves, ListApplications),
// following MGN's pages: usually one call of each.
func (c *Client) Program(ctx context.Context) (migration.Program, error) {
	var prog migration.Program
	wp := mgn.NewListWavesPaginator(c.mgn, &mgn.ListWavesInput{
		Filters: &mgntypes.ListWavesRequestFilters{IsArchived: aws.Bool(false)}, MaxResults: aws.Int32(c.pageSize),
	}, func(o *mgn.ListWavesPaginatorOptions) { o.StopOnDuplicateToken = true })
	for wp.HasMorePages() {
		page, err := wp.NextPage(ctx)
		if err != nil {
			return migration.Program{}, mapError("list waves", err)
		}
		for _, w := range page.Items {
			prog.Waves = append(prog.Waves, waveFromSDK(w))
		}
	}
	ap := mgn.NewListApplicationsPaginator(c.mgn, &mgn.ListApplicationsInput{
		Filters: &mgntypes.ListApplicationsRequestFilters{IsArchived: aws.Bool(false)}, MaxResults: aws.Int32(c.pageSize),
	}, func(o *mgn.ListApplicationsPaginatorOptions) { o.StopOnDuplicateToken = true })
	for ap.HasMorePages() {
		page, err := ap.NextPage(ctx)
		if err != nil {
			return migration.Program{}, mapError("list applications", err)
		}
		for _, a := range page.Items {
			prog.Applications = append(prog.Applications, applicationFromSDK(a))
		}
	}
	return prog, nil
}

// ServerActions lists the post-launch actions of a source server (ListSourceServerActions),
// in run order. It returns an error wrapping migration.ErrNotFound when MGN does not know the
// server.
func (c *Client) ServerActions(ctx context.Context, serverID string) ([]migration.ServerAction, error) {
	p := mgn.NewListSourceServerActionsPaginator(c.mgn, &mgn.ListSourceServerActionsInput{
		SourceServerID: aws.String(serverID), MaxResults: aws.Int32(min(c.pageSize, 100)),
	}, func(o *mgn.ListSourceServerActionsPaginatorOptions) { o.StopOnDuplicateToken = true })
	var out []migration.ServerAction
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapError("list post-launch actions of "+serverID, err)
		}
		for _, a := range page.Items {
			out = append(out, migration.ServerAction{
				ID: aws.ToString(a.ActionID), Name: aws.ToString(a.ActionName), Document: aws.ToString(a.DocumentIdentifier),
				Active: aws.ToBool(a.Active), MustSucceed: aws.ToBool(a.MustSucceedForCutover), Order: int(aws.ToInt32(a.Order)),
			})
		}
	}
	return out, nil
}

func waveFromSDK(w mgntypes.Wave) migration.Wave {
	out := migration.Wave{
		ID: aws.ToString(w.WaveID), ARN: aws.ToString(w.Arn), Name: aws.ToString(w.Name), Description: aws.ToString(w.Description),
		Archived: aws.ToBool(w.IsArchived), Tags: maps.Clone(w.Tags),
	}
	if st := w.WaveAggregatedStatus; st != nil {
		out.Health, out.Progress = migration.Health(st.HealthStatus), migration.Progress(st.ProgressStatus)
		out.Applications = int(st.TotalApplications)
	}
	return out
}

func applicationFromSDK(a mgntypes.Application) migration.Application {
	out := migration.Application{
		ID: aws.ToString(a.ApplicationID), ARN: aws.ToString(a.Arn), Name: aws.ToString(a.Name), Description: aws.ToString(a.Description),
		Archived: aws.ToBool(a.IsArchived), Tags: maps.Clone(a.Tags), WaveID: aws.ToString(a.WaveID),
	}
	if st := a.ApplicationAggregatedStatus; st != nil {
		out.Health, out.Progress = migration.Health(st.HealthStatus), migration.Progress(st.ProgressStatus)
		out.Servers = int(st.TotalSourceServers)
	}
	return out
}

// postLaunchFromSDK is a participant's post-launch report; nil when MGN gives none.
func postLaunchFromSDK(st *mgntypes.PostLaunchActionsStatus) *migration.PostLaunch {
	if st == nil {
		return nil
	}
	out := &migration.PostLaunch{AgentSeen: parseTimeOrZero(st.SsmAgentDiscoveryDatetime)}
	for _, a := range st.PostLaunchActionsLaunchStatusList {
		run := migration.ActionRun{
			DocumentType: string(a.SsmDocumentType), ExecutionID: aws.ToString(a.ExecutionID),
			State: migration.ActionState(a.ExecutionStatus), FailureReason: aws.ToString(a.FailureReason),
		}
		if d := a.SsmDocument; d != nil {
			run.Name, run.Document, run.MustSucceed = aws.ToString(d.ActionName), aws.ToString(d.SsmDocumentName), aws.ToBool(d.MustSucceedForCutover)
		}
		out.Actions = append(out.Actions, run)
	}
	return out
}
