package awsmgn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/mgn"
	mgntypes "github.com/aws/aws-sdk-go-v2/service/mgn/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/cutoverbot/cutoverbot/migration"
)

// Options configures the adapter.
type Options struct {
	// MGNEndpoint and EC2Endpoint point the clients at another endpoint (an emulator); ""
	// keeps AWS's own.
	MGNEndpoint, EC2Endpoint string
	// RetryMaxAttempts bounds the SDK's standard retryer for reads; 0 keeps the SDK default (3).
	// Calls that change something are never retried (see Launch).
	RetryMaxAttempts int
	// PageSize is maxResults for paginated reads; 0 means 1000, MGN's maximum.
	PageSize int32
	// OutcomeDelay is how long Launch waits before asking MGN a second time whether a launch
	// whose answer was lost started (the third time after twice as long); 0 means 1s.
	OutcomeDelay time.Duration
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Client talks to MGN and EC2 and answers in domain types.
type Client struct {
	mgn      *mgn.Client
	ec2      *ec2.Client
	pageSize int32
	logger   *slog.Logger
	// outcomeDelay: see Options.OutcomeDelay.
	outcomeDelay time.Duration

	mu    sync.Mutex
	calls map[string]*atomic.Int64
}

// New builds a Client from an AWS configuration (the SDK's standard chain: region,
// credentials, profile).
func New(cfg aws.Config, opts Options) *Client {
	c := &Client{pageSize: opts.PageSize, logger: opts.Logger, outcomeDelay: opts.OutcomeDelay, calls: map[string]*atomic.Int64{}}
	if c.outcomeDelay <= 0 {
		c.outcomeDelay = time.Second
	}
	if c.pageSize <= 0 || c.pageSize > 1000 {
		c.pageSize = 1000
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	count := func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("cutoverbotCallCount",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.counter(awsmiddleware.GetOperationName(ctx)).Add(1)
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
	retryer := func() aws.Retryer {
		r := retry.NewStandard()
		if opts.RetryMaxAttempts > 0 {
			return retry.AddWithMaxAttempts(r, opts.RetryMaxAttempts)
		}
		return r
	}
	c.mgn = mgn.NewFromConfig(cfg, func(o *mgn.Options) {
		if opts.MGNEndpoint != "" {
			o.BaseEndpoint = aws.String(opts.MGNEndpoint)
		}
		o.Retryer = retryer()
		o.APIOptions = append(o.APIOptions, count)
		o.HTTPClient = plainBodies{o.HTTPClient}
	})
	c.ec2 = ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if opts.EC2Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.EC2Endpoint)
		}
		o.Retryer = retryer()
		o.APIOptions = append(o.APIOptions, count)
		o.HTTPClient = plainBodies{o.HTTPClient}
	})
	return c
}

func (c *Client) counter(op string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.calls[op]
	if !ok {
		n = new(atomic.Int64)
		c.calls[op] = n
	}
	return n
}

// Calls returns how many times each AWS operation was called (retries not counted).
func (c *Client) Calls() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.calls))
	for op, n := range c.calls {
		out[op] = n.Load()
	}
	return out
}

// Servers lists every non-archived source server, following MGN's pages.
func (c *Client) Servers(ctx context.Context) ([]migration.Server, error) {
	in := &mgn.DescribeSourceServersInput{
		Filters:    &mgntypes.DescribeSourceServersRequestFilters{IsArchived: aws.Bool(false)},
		MaxResults: aws.Int32(c.pageSize),
	}
	var out []migration.Server
	p := mgn.NewDescribeSourceServersPaginator(c.mgn, in, func(o *mgn.DescribeSourceServersPaginatorOptions) { o.StopOnDuplicateToken = true })
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapError("describe source servers", err)
		}
		for _, s := range page.Items {
			out = append(out, serverFromSDK(s))
		}
	}
	return out, nil
}

// Server describes one source server. It returns an error wrapping migration.ErrNotFound
// when MGN does not know it.
func (c *Client) Server(ctx context.Context, id string) (migration.Server, error) {
	out, err := c.describe(ctx, []string{id}, false)
	if err != nil {
		return migration.Server{}, err
	}
	return out[0], nil
}

// plainBodies hands net/http each request body without its WriteTo method. smithy-go's request
// body answers WriteTo with io.EOF once the SDK has closed it, which the SDK does as soon as the
// answer's headers arrive. net/http, still checking the body for bytes beyond its
// Content-Length, then takes that io.EOF for a failed write and closes the connection under
// the answer being read: "use of closed network connection" on a 200 (aws-sdk-go-v2#2737).
// For a launch, which is sent once, that is an answer lost for nothing. Read answers io.EOF
// there, as net/http expects.
type plainBodies struct {
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
}

func (c plainBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return c.next.Do(r)
}

// ServersByID describes the non-archived source servers ids, in that order, asking MGN for
// them alone (at most 200 IDs a call, as its filter allows) rather than listing the fleet.
// When MGN does not have some of them (unknown, or archived), it returns the others and an
// error wrapping migration.ErrNotFound that names those it lacks.
func (c *Client) ServersByID(ctx context.Context, ids []string) ([]migration.Server, error) {
	return c.describe(ctx, ids, true)
}

// maxServerFilter is how many IDs DescribeSourceServers takes in filters.sourceServerIDs.
const maxServerFilter = 200

func (c *Client) describe(ctx context.Context, ids []string, liveOnly bool) ([]migration.Server, error) {
	byID := make(map[string]migration.Server, len(ids))
	for chunk := range slices.Chunk(ids, maxServerFilter) {
		f := &mgntypes.DescribeSourceServersRequestFilters{SourceServerIDs: chunk}
		if liveOnly {
			f.IsArchived = aws.Bool(false)
		}
		p := mgn.NewDescribeSourceServersPaginator(c.mgn, &mgn.DescribeSourceServersInput{Filters: f, MaxResults: aws.Int32(c.pageSize)},
			func(o *mgn.DescribeSourceServersPaginatorOptions) { o.StopOnDuplicateToken = true })
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, mapError("describe source servers", err)
			}
			for _, s := range page.Items {
				byID[aws.ToString(s.SourceServerID)] = serverFromSDK(s)
			}
		}
	}
	out := make([]migration.Server, 0, len(ids))
	var missing []string
	for _, id := range ids {
		s, ok := byID[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		out = append(out, s)
	}
	if len(missing) > 0 {
		return out, &migration.Error{Op: "describe source servers", Kind: migration.ErrNotFound, Message: "no source server " + strings.Join(missing, ", ")}
	}
	return out, nil
}

// Launch asks MGN for the launch req describes (StartTest or StartCutover), exactly once: the
// call is never retried, because MGN has no idempotency key and a retry after a lost answer
// would either start a second launch or be refused while the first one runs. When the call
// fails in a way that does not prove MGN refused it (a lost or 5xx answer, a timeout, a broken
// connection, or a conflict that may be the request's own job), Launch asks MGN for the job
// carrying req's key tag and returns that job, with no error, when there is one. Otherwise the
// error says that nothing was launched; it wraps migration.ErrOutcomeUnknown when MGN could not be asked.
func (c *Client) Launch(ctx context.Context, req migration.LaunchRequest) (migration.Job, error) {
	if err := req.Validate(); err != nil {
		return migration.Job{}, err
	}
	op := fmt.Sprintf("start %s %s", req.Mode, strings.Join(req.ServerIDs, ","))
	var (
		out *mgntypes.Job
		err error
	)
	tags := req.Tags()
	switch req.Mode {
	case migration.ModeTest:
		var r *mgn.StartTestOutput
		if r, err = c.mgn.StartTest(ctx, &mgn.StartTestInput{SourceServerIDs: req.ServerIDs, Tags: tags}, once); err == nil {
			out = r.Job
		}
	case migration.ModeCutover:
		var r *mgn.StartCutoverOutput
		if r, err = c.mgn.StartCutover(ctx, &mgn.StartCutoverInput{SourceServerIDs: req.ServerIDs, Tags: tags}, once); err == nil {
			out = r.Job
		}
	}
	if err == nil {
		return jobFromSDK(out), nil
	}
	err = mapError(op, err)
	if migration.Refused(err) {
		return migration.Job{}, err
	}
	// The context may have ended with the call; asking MGN must not end with it.
	ask, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeBudget)
	defer cancel()
	key, value := req.Key()
	job, found, lerr := c.findLaunchPatiently(ask, key, value, req.Since, !errors.Is(err, migration.ErrConflict))
	switch {
	case lerr != nil:
		return migration.Job{}, fmt.Errorf("%w: %w; asking MGN whether it started the job failed too: %w", migration.ErrOutcomeUnknown, err, lerr)
	case found:
		c.logger.WarnContext(ctx, "launch answer lost, but MGN has the job", "job_id", job.ID, "err", err)
		return job, nil
	}
	return migration.Job{}, fmt.Errorf("%w (MGN has no job for this request)", err)
}

// outcomeBudget bounds the questions asked after an ambiguous failure.
const outcomeBudget = 30 * time.Second

// FindLaunch returns the launch job MGN created since since (minus a minute of clock skew)
// whose tag key has value, and whether there is one.
func (c *Client) FindLaunch(ctx context.Context, key, value string, since time.Time) (migration.Job, bool, error) {
	if key == "" || value == "" {
		return migration.Job{}, false, fmt.Errorf("find launch: %w: no key", migration.ErrInvalid)
	}
	from := time.Time{}
	if !since.IsZero() {
		from = since.Add(-time.Minute)
	}
	jobs, err := c.Jobs(ctx, from)
	if err != nil {
		return migration.Job{}, false, err
	}
	for _, j := range jobs {
		if j.Tags[key] == value {
			return j, true, nil
		}
	}
	return migration.Job{}, false, nil
}

// findLaunchPatiently is FindLaunch, asked again after OutcomeDelay and after twice that when
// MGN may still be working on a request whose answer was lost (patient), so that a job MGN
// records a moment late is found.
func (c *Client) findLaunchPatiently(ctx context.Context, key, value string, since time.Time, patient bool) (migration.Job, bool, error) {
	tries := 1
	if patient {
		tries = 3
	}
	delay := c.outcomeDelay
	for i := range tries {
		if i > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return migration.Job{}, false, ctx.Err()
			}
			delay *= 2
		}
		job, found, err := c.FindLaunch(ctx, key, value, since)
		if err != nil || found {
			return job, found, err
		}
	}
	return migration.Job{}, false, nil
}

// once is the option of calls that change something in MGN: they are sent once and never
// retried by the SDK (see Launch).
func once(o *mgn.Options) { o.Retryer = aws.NopRetryer{} }

// Jobs lists the jobs created since from (all when from is zero), newest first.
func (c *Client) Jobs(ctx context.Context, from time.Time) ([]migration.Job, error) {
	in := &mgn.DescribeJobsInput{MaxResults: aws.Int32(c.pageSize)}
	if !from.IsZero() {
		in.Filters = &mgntypes.DescribeJobsRequestFilters{FromDate: aws.String(from.UTC().Format(time.RFC3339))}
	}
	var out []migration.Job
	p := mgn.NewDescribeJobsPaginator(c.mgn, in, func(o *mgn.DescribeJobsPaginatorOptions) { o.StopOnDuplicateToken = true })
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapError("describe jobs", err)
		}
		for _, j := range page.Items {
			out = append(out, jobFromSDK(&j))
		}
	}
	return out, nil
}

// migration.Job describes one job. It returns an error wrapping migration.ErrNotFound when MGN does not know it.
func (c *Client) Job(ctx context.Context, id string) (migration.Job, error) {
	out, err := c.mgn.DescribeJobs(ctx, &mgn.DescribeJobsInput{Filters: &mgntypes.DescribeJobsRequestFilters{JobIDs: []string{id}}})
	if err != nil {
		return migration.Job{}, mapError("describe job "+id, err)
	}
	if len(out.Items) == 0 {
		return migration.Job{}, fmt.Errorf("job %s: %w", id, migration.ErrNotFound)
	}
	return jobFromSDK(&out.Items[0]), nil
}

// JobLog reads the items of a job's log after cur, in log order, and returns the cursor to read
// from next time. In steady state that is one DescribeJobLogItems call: the page the cursor
// points into is read again and only its new items are returned. Should MGN refuse a page
// token, the log is read from its start once and the items already seen are skipped; a token
// refused again after that fails the call. On failure it returns no events and cur unchanged, so that the caller reads the same items
// again next time.
func (c *Client) JobLog(ctx context.Context, jobID string, cur migration.Cursor) ([]migration.Event, migration.Cursor, error) {
	start := cur
	token, skip := cur.PageToken, cur.PageOffset
	var events []migration.Event
	reread := false
	for {
		in := &mgn.DescribeJobLogItemsInput{JobID: aws.String(jobID), MaxResults: aws.Int32(c.pageSize)}
		if token != "" {
			in.NextToken = aws.String(token)
		}
		out, err := c.mgn.DescribeJobLogItems(ctx, in)
		if err != nil {
			if token != "" && !reread && errors.Is(mapError("", err), migration.ErrInvalid) {
				reread = true
				c.logger.WarnContext(ctx, "job log token refused, rereading from the start", "job_id", jobID)
				token, skip, cur, events = "", start.Seen, start, events[:0]
				continue
			}
			return nil, start, mapError("describe job log "+jobID, err)
		}
		n := len(out.Items)
		from := min(skip, n)
		for _, it := range out.Items[from:] {
			events = append(events, eventFromSDK(it))
		}
		cur.Seen += n - from
		skip -= from
		next := aws.ToString(out.NextToken)
		if next == "" || next == token {
			cur.PageToken, cur.PageOffset = token, n
			return events, cur, nil
		}
		token = next
	}
}

// MarkReadyForCutover moves a tested server to READY_FOR_CUTOVER.
func (c *Client) MarkReadyForCutover(ctx context.Context, id string) (migration.Server, error) {
	return c.changeLifecycle(ctx, id, mgntypes.ChangeServerLifeCycleStateSourceServerLifecycleStateReadyForCutover)
}

// RevertToReadyForTest backs a server out of testing (to READY_FOR_TEST).
func (c *Client) RevertToReadyForTest(ctx context.Context, id string) (migration.Server, error) {
	return c.changeLifecycle(ctx, id, mgntypes.ChangeServerLifeCycleStateSourceServerLifecycleStateReadyForTest)
}

// RevertToReadyForCutover backs a server out of a cutover in progress (to READY_FOR_CUTOVER).
func (c *Client) RevertToReadyForCutover(ctx context.Context, id string) (migration.Server, error) {
	return c.changeLifecycle(ctx, id, mgntypes.ChangeServerLifeCycleStateSourceServerLifecycleStateReadyForCutover)
}

func (c *Client) changeLifecycle(ctx context.Context, id string, to mgntypes.ChangeServerLifeCycleStateSourceServerLifecycleState) (migration.Server, error) {
	op := fmt.Sprintf("change lifecycle of %s to %s", id, to)
	out, err := c.mgn.ChangeServerLifeCycleState(ctx, &mgn.ChangeServerLifeCycleStateInput{
		SourceServerID: aws.String(id),
		LifeCycle:      &mgntypes.ChangeServerLifeCycleStateSourceServerLifecycle{State: to},
	}, once)
	if err != nil {
		return c.verifyChange(ctx, id, mapError(op, err), func(s migration.Server) bool { return s.Lifecycle.State == migration.LifecycleState(to) })
	}
	return serverFromSDK(mgntypes.SourceServer{
		SourceServerID: out.SourceServerID, Arn: out.Arn, IsArchived: out.IsArchived, Tags: out.Tags, ApplicationID: out.ApplicationID,
		LifeCycle: out.LifeCycle, DataReplicationInfo: out.DataReplicationInfo,
		SourceProperties: out.SourceProperties, LaunchedInstance: out.LaunchedInstance,
	}), nil
}

// FinalizeCutover ends a server's migration: MGN stops replication and removes its resources.
// The cutover instance is kept. Like every change it is sent once; after a failure that does
// not prove MGN refused it, the server is read to see whether MGN finalized it.
func (c *Client) FinalizeCutover(ctx context.Context, id string) (migration.Server, error) {
	out, err := c.mgn.FinalizeCutover(ctx, &mgn.FinalizeCutoverInput{SourceServerID: aws.String(id)}, once)
	if err != nil {
		return c.verifyChange(ctx, id, mapError("finalize cutover "+id, err), migration.Server.CutOver)
	}
	return serverFromSDK(mgntypes.SourceServer{
		SourceServerID: out.SourceServerID, Arn: out.Arn, IsArchived: out.IsArchived, Tags: out.Tags, ApplicationID: out.ApplicationID,
		LifeCycle: out.LifeCycle, DataReplicationInfo: out.DataReplicationInfo,
		SourceProperties: out.SourceProperties, LaunchedInstance: out.LaunchedInstance,
	}), nil
}

// verifyChange settles a change whose call failed with err: unless err proves MGN refused it,
// the server is read, and when done says the change happened the server is returned with no
// error. When the server cannot be read the error wraps migration.ErrOutcomeUnknown.
func (c *Client) verifyChange(ctx context.Context, id string, err error, done func(migration.Server) bool) (migration.Server, error) {
	if migration.Refused(err) {
		return migration.Server{}, err
	}
	ask, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeBudget)
	defer cancel()
	s, serr := c.Server(ask, id)
	switch {
	case serr != nil:
		return migration.Server{}, fmt.Errorf("%w: %w; reading the server afterwards failed too: %w", migration.ErrOutcomeUnknown, err, serr)
	case done(s):
		c.logger.WarnContext(ctx, "change answer lost, but MGN made the change", "server_id", id, "err", err)
		return s, nil
	}
	return migration.Server{}, err
}

// maxFilterValues is how many values EC2 takes in one filter.
const maxFilterValues = 200

// Instances describes EC2 instances by ID. IDs EC2 no longer knows (terminated a while ago)
// are left out rather than failing the call.
func (c *Client) Instances(ctx context.Context, ids []string) ([]migration.Instance, error) {
	var out []migration.Instance
	for batch := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), maxFilterValues) {
		got, err := c.describeInstances(ctx, ec2types.Filter{Name: aws.String("instance-id"), Values: batch})
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// ManagedServers lists the conversion and replication servers MGN runs, found by the Name
// tags MGN gives them.
func (c *Client) ManagedServers(ctx context.Context) ([]migration.Instance, error) {
	return c.describeInstances(ctx, ec2types.Filter{Name: aws.String("tag:Name"), Values: []string{migration.ConversionServerName, migration.ReplicationServerName}})
}

func (c *Client) describeInstances(ctx context.Context, filters ...ec2types.Filter) ([]migration.Instance, error) {
	in := &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)}
	var out []migration.Instance
	p := ec2.NewDescribeInstancesPaginator(c.ec2, in, func(o *ec2.DescribeInstancesPaginatorOptions) { o.StopOnDuplicateToken = true })
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapError("describe instances", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				out = append(out, instanceFromSDK(i))
			}
		}
	}
	return out, nil
}

var errorKinds = map[string]error{
	"ConflictException":             migration.ErrConflict,
	"ResourceNotFoundException":     migration.ErrNotFound,
	"InvalidInstanceID.NotFound":    migration.ErrNotFound,
	"ValidationException":           migration.ErrInvalid,
	"InvalidInstanceID.Malformed":   migration.ErrInvalid,
	"InvalidParameterValue":         migration.ErrInvalid,
	"InvalidNextToken":              migration.ErrInvalid,
	"ThrottlingException":           migration.ErrThrottled,
	"RequestLimitExceeded":          migration.ErrThrottled,
	"TooManyRequestsException":      migration.ErrThrottled,
	"AccessDeniedException":         migration.ErrAccessDenied,
	"UnauthorizedOperation":         migration.ErrAccessDenied,
	"AuthFailure":                   migration.ErrAccessDenied,
	"UninitializedAccountException": migration.ErrNotInitialized,
	"InternalServerException":       migration.ErrUnavailable,
	"InternalError":                 migration.ErrUnavailable,
	"ServiceUnavailable":            migration.ErrUnavailable,
	"Unavailable":                   migration.ErrUnavailable,
}

// mapError turns an SDK error into an *Error with a domain kind. Context errors pass through.
func mapError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &migration.Error{Op: op, Err: err}
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		e.Code, e.Message = ae.ErrorCode(), ae.ErrorMessage()
		e.Kind = errorKinds[e.Code]
	}
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok && e.Kind == nil && re.HTTPStatusCode() >= 500 {
		// 5xx answers with a code the table does not know, after the retryer gave up.
		e.Kind = migration.ErrUnavailable
	}
	if e.Kind == nil && e.Code == "" {
		// Connection errors and 5xx answers without a code, after the retryer gave up.
		e.Kind = migration.ErrUnavailable
	}
	if e.Message == "" && e.Code == "" {
		e.Message = err.Error()
	}
	return e
}

func serverFromSDK(s mgntypes.SourceServer) migration.Server {
	out := migration.Server{
		ID:       aws.ToString(s.SourceServerID),
		ARN:      aws.ToString(s.Arn),
		Archived: aws.ToBool(s.IsArchived),
		Name:     s.Tags["Name"],

		ApplicationID: aws.ToString(s.ApplicationID),
	}
	if sp := s.SourceProperties; sp != nil {
		if h := sp.IdentificationHints; h != nil {
			out.Hostname = aws.ToString(h.Hostname)
			out.FQDN = aws.ToString(h.Fqdn)
		}
		out.RecommendedInstanceType = aws.ToString(sp.RecommendedInstanceType)
		if sp.Os != nil {
			out.OS = aws.ToString(sp.Os.FullString)
		}
	}
	if d := s.DataReplicationInfo; d != nil {
		r := &out.Replication
		r.State = migration.ReplicationState(d.DataReplicationState)
		for _, disk := range d.ReplicatedDisks {
			r.Disks = append(r.Disks, migration.Disk{
				Device: aws.ToString(disk.DeviceName), TotalBytes: disk.TotalStorageBytes,
				ReplicatedBytes: disk.ReplicatedStorageBytes, BacklogBytes: disk.BackloggedStorageBytes,
			})
		}
		if lag := aws.ToString(d.LagDuration); lag != "" {
			if v, err := migration.ParseDuration(lag); err == nil {
				r.Lag, r.HasLag = v, true
			}
		}
		r.ETA = parseTimeOrZero(d.EtaDateTime)
		r.LastSnapshot = parseTimeOrZero(d.LastSnapshotDateTime)
		if e := d.DataReplicationError; e != nil {
			r.Error, r.RawError = string(e.Error), aws.ToString(e.RawError)
		}
		out.ReplicatorID = aws.ToString(d.ReplicatorId)
	}
	if lc := s.LifeCycle; lc != nil {
		out.Lifecycle.State = migration.LifecycleState(lc.State)
		out.Lifecycle.Added = parseTimeOrZero(lc.AddedToServiceDateTime)
		out.Lifecycle.LastSeen = parseTimeOrZero(lc.LastSeenByServiceDateTime)
		if t := lc.LastTest; t != nil {
			m := &out.Lifecycle.LastTest
			if t.Initiated != nil {
				m.Initiated, m.JobID = parseTimeOrZero(t.Initiated.ApiCallDateTime), aws.ToString(t.Initiated.JobID)
			}
			if t.Reverted != nil {
				m.Reverted = parseTimeOrZero(t.Reverted.ApiCallDateTime)
			}
			if t.Finalized != nil {
				m.Finalized = parseTimeOrZero(t.Finalized.ApiCallDateTime)
			}
		}
		if t := lc.LastCutover; t != nil {
			m := &out.Lifecycle.LastCutover
			if t.Initiated != nil {
				m.Initiated, m.JobID = parseTimeOrZero(t.Initiated.ApiCallDateTime), aws.ToString(t.Initiated.JobID)
			}
			if t.Reverted != nil {
				m.Reverted = parseTimeOrZero(t.Reverted.ApiCallDateTime)
			}
			if t.Finalized != nil {
				m.Finalized = parseTimeOrZero(t.Finalized.ApiCallDateTime)
			}
		}
	}
	if li := s.LaunchedInstance; li != nil && aws.ToString(li.Ec2InstanceID) != "" {
		out.Launched = &migration.LaunchedInstance{InstanceID: aws.ToString(li.Ec2InstanceID), JobID: aws.ToString(li.JobID), FirstBoot: string(li.FirstBoot)}
	}
	return out
}

func jobFromSDK(j *mgntypes.Job) migration.Job {
	if j == nil {
		return migration.Job{}
	}
	out := migration.Job{
		ID:          aws.ToString(j.JobID),
		Type:        string(j.Type),
		InitiatedBy: string(j.InitiatedBy),
		Status:      migration.JobStatus(j.Status),
		Created:     parseTimeOrZero(j.CreationDateTime),
		Ended:       parseTimeOrZero(j.EndDateTime),
		Tags:        maps.Clone(j.Tags),
	}
	for _, p := range j.ParticipatingServers {
		out.Participants = append(out.Participants, migration.Participant{
			ServerID:     aws.ToString(p.SourceServerID),
			LaunchStatus: string(p.LaunchStatus),
			InstanceID:   aws.ToString(p.LaunchedEc2InstanceID),
			PostLaunch:   postLaunchFromSDK(p.PostLaunchActionsStatus),
		})
	}
	return out
}

func eventFromSDK(l mgntypes.JobLog) migration.Event {
	e := migration.Event{Time: parseTimeOrZero(l.LogDateTime), Kind: migration.EventKind(l.Event)}
	if d := l.EventData; d != nil {
		e.ServerID = aws.ToString(d.SourceServerID)
		e.ConversionServerID = aws.ToString(d.ConversionServerID)
		e.TargetInstanceID = aws.ToString(d.TargetInstanceID)
		e.RawError = aws.ToString(d.RawError)
		e.Attempt = int(aws.ToInt32(d.AttemptCount))
		e.Attempts = int(aws.ToInt32(d.MaxAttemptsCount))
	}
	return e
}

func instanceFromSDK(i ec2types.Instance) migration.Instance {
	out := migration.Instance{
		ID:        aws.ToString(i.InstanceId),
		Type:      string(i.InstanceType),
		PrivateIP: aws.ToString(i.PrivateIpAddress),
		PublicIP:  aws.ToString(i.PublicIpAddress),
		Launched:  aws.ToTime(i.LaunchTime),
	}
	if i.State != nil {
		out.State = string(i.State.Name)
	}
	for _, t := range i.Tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		switch k {
		case "Name":
			out.Name = v
		case "AWSApplicationMigrationServiceSourceServerID", "mgn.amazonaws.com-source-server":
			out.ServerID = v
		case "mgn.amazonaws.com-job":
			out.JobID = v
		}
	}
	switch {
	case out.Name == migration.ConversionServerName:
		out.Role = migration.RoleConversion
	case out.Name == migration.ReplicationServerName:
		out.Role = migration.RoleReplication
	case out.ServerID != "":
		out.Role = migration.RoleTarget
	}
	return out
}

func parseTimeOrZero(s *string) time.Time {
	t, err := migration.ParseTime(aws.ToString(s))
	if err != nil {
		return time.Time{}
	}
	return t
}
