// Package mgnemu is a local emulator of AWS Application Migration Service (MGN,
// restJson1) and EC2 DescribeInstances (ec2query) on one HTTP listener, for the
// real aws-sdk-go-v2 clients (service/mgn, service/ec2) with BaseEndpoint set to
// its URL. It imports none of the bot's packages, so it checks the adapter
// against the wire protocol rather than against itself.
//
// Routing: MGN operations are POST /<Operation> with a JSON body; EC2 is POST /
// with a form body carrying Action=DescribeInstances. Signatures are ignored.
//
// Modelled MGN operations: DescribeSourceServers (filters sourceServerIDs,
// isArchived, lifeCycleStates, replicationTypes, applicationIDs), StartTest,
// StartCutover, TerminateTargetInstances, DescribeJobs (filters jobIDs, fromDate,
// toDate; newest first), DescribeJobLogItems, ChangeServerLifeCycleState and
// FinalizeCutover. List operations take maxResults 1..1000 (default 1000) and an
// opaque nextToken. Request bodies are decoded strictly: an unknown member or a
// wrong type is ValidationException (reason cannotParse). Every error carries the
// X-Amzn-ErrorType header and a JSON body with message (and code, reason,
// fieldList, resourceId, resourceType, errors[] where the model has them).
//
// Lifecycle rules: StartTest from READY_FOR_TEST, TESTING or READY_FOR_CUTOVER
// sets TESTING and lifeCycle.lastTest.initiated at once; StartCutover from
// READY_FOR_CUTOVER sets CUTTING_OVER and lastCutover.initiated. A launch also
// needs dataReplicationState CONTINUOUS, a non-null lagDuration and no
// dataReplicationError. ChangeServerLifeCycleState allows TESTING->READY_FOR_TEST
// (lastTest.reverted), TESTING->READY_FOR_CUTOVER (lastTest.finalized),
// READY_FOR_TEST->READY_FOR_CUTOVER, CUTTING_OVER->READY_FOR_CUTOVER
// (lastCutover.reverted) and CUTTING_OVER->CUTOVER (lastCutover.finalized);
// FinalizeCutover moves CUTTING_OVER to CUTOVER, replication DISCONNECTED, lag
// null and totalStorageBytes 0. TerminateTargetInstances is refused for TESTING,
// CUTTING_OVER and CUTOVER. Quotas: one active job per server, 20 active jobs,
// 200 servers per job and across active jobs.
//
// Error choices where AWS documents none: the model lists only Conflict and
// Validation errors for StartTest, StartCutover and TerminateTargetInstances, so
// a malformed or duplicate ID (and an empty or oversized list) is
// ValidationException fieldValidationFailed, while every per-server refusal
// (unknown but well-formed ID, archived, busy, wrong state, not replicating,
// quota) is ConflictException (409) naming the servers in errors[]. The whole
// call is refused and no job is created. ChangeServerLifeCycleState and
// FinalizeCutover on an unknown ID are ResourceNotFoundException (404).
// DescribeJobLogItems for an unknown job returns an empty list.
//
// Jobs run on the injected clock (Options.Now, see ManualClock) at Options.Pace:
// their progress is a pure function of the clock, applied at the start of every
// request and inspection call, so no goroutine drives them. A launch job logs
// JOB_START, then per server CLEANUP_START/END (earlier target instances of that
// server are terminated), SNAPSHOT_START/END, CONVERSION_START/END (a conversion
// server instance lives in between), LAUNCH_START (target instance pending, then
// running with private and public IPs and MGN's tags), and finally JOB_END. Job
// status goes PENDING, STARTED, COMPLETED; participants PENDING, IN_PROGRESS,
// LAUNCHED (or FAILED); launchedInstance.firstBoot WAITING then SUCCEEDED.
// Servers in one job are staggered by Pace.Stagger, so their events interleave.
// FailPhase makes a phase fail with a rawError while the job still COMPLETES.
// A TERMINATE job logs CLEANUP_START/END per server and ends participants TERMINATED.
//
// EC2 DescribeInstances supports InstanceId.N (an unknown ID fails the call with
// InvalidInstanceID.NotFound), Filter.N for instance-id, instance-state-name,
// tag:<key> and tag-key with * and ? wildcards (other filters are
// InvalidParameterValue), MaxResults 5..1000 and NextToken. Each instance is in
// its own reservation. Terminated instances stay visible for an hour.
//
// Fault hooks: Throttle, Fail, SetLatency and FailPhase. Inspection: Calls,
// Unmodeled, Server, Servers, Update, Add, Jobs, JobLog and Instances.
//
// Not modelled: any other MGN or EC2 operation (answered with ValidationException
// reason unknownOperation, or EC2 InvalidAction, and recorded in Unmodeled);
// replication progress over time (use Update); postLaunchActionsStatus; SERVER_SKIPPED,
// USING_PREVIOUS_SNAPSHOT, JOB_CANCEL and retried-step attempt counts; launch
// templates and settings; applications, waves and connectors; accountID
// (accepted, ignored); signature checking; UninitializedAccountException and
// AccessDeniedException (use Fail to inject them). Jobs referenced by the
// fixtures' lastTest/lastCutover records are not in DescribeJobs.
package mgnemu
