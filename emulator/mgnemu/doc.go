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
// isArchived, lifeCycleStates, replicationTypes, applicationIDs of at most 200),
// StartTest, StartCutover, TerminateTargetInstances, DescribeJobs (filters jobIDs,
// fromDate, toDate; newest first), DescribeJobLogItems, ChangeServerLifeCycleState,
// FinalizeCutover, ListWaves (filters waveIDs, isArchived), ListApplications
// (filters applicationIDs, waveIDs, isArchived), AssociateApplications,
// AssociateSourceServers and ListSourceServerActions (filter actionIDs; sorted by
// order). List operations take maxResults 1..1000 (default 1000) and an opaque
// nextToken; waves and applications come in insertion order, and ID filters
// take at most 200 well-formed IDs (actionIDs 100). Request bodies are decoded
// strictly: an unknown member or a wrong type is ValidationException (reason
// cannotParse). Every error carries the
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
// Waves and applications: a source server belongs to the application its
// applicationID names, an application to the wave its waveID names. Both carry
// tags (the sample's Wave 1 has cutover-date = YYYY-MM-DD) and isArchived, and
// their aggregated status is computed from the member servers on every answer.
// AWS does not publish the rule, so this one is a guess: an application counts
// its non-archived servers (totalSourceServers). Its healthStatus is the worst
// of theirs: ERROR for a dataReplicationError or STALLED, LAGGING for BACKLOG,
// RESCAN or a lag over five minutes, else HEALTHY (cut-over and disconnected
// servers are HEALTHY). Its progressStatus is COMPLETED when every member is
// CUTOVER, IN_PROGRESS once any member was launched or is TESTING,
// READY_FOR_CUTOVER, CUTTING_OVER or CUTOVER, else NOT_STARTED (also when empty).
// Its lastUpdateDateTime is the latest of its lastModifiedDateTime and its
// members' lifecycle API calls (lastTest/lastCutover initiated, reverted,
// finalized). A wave counts all its applications, archived or not
// (totalApplications): the worst health, NOT_STARTED or COMPLETED when all
// applications are (NOT_STARTED when it has none), else IN_PROGRESS, the latest
// lastUpdateDateTime, and replicationStartedDateTime the earliest
// dataReplicationInitiation.startDateTime (else firstByteDateTime) of its
// applications' servers. AssociateSourceServers allows 50 servers per call and
// 200 per application (ServiceQuotaExceededException, 402); AssociateApplications
// 50 applications per call. Moving a server or application that already belongs
// elsewhere, or associating with or into an archived one, is ConflictException
// (a guess; AWS may move it instead). Unknown IDs are ResourceNotFoundException
// with resourceType SOURCE_SERVER, APPLICATION or WAVE.
//
// Post-launch actions: a server's SSM documents are SourceServer.PostLaunchActions
// (not on the wire; ListSourceServerActions lists them). After a launch job has
// finished with a server (firstBoot SUCCEEDED), and while its new instance runs,
// the SSM agent is seen after Pace.SSMAgent (ssmAgentDiscoveryDatetime); then
// the active actions run one after another by order, each for Pace.Action,
// listed in DescribeJobs under participatingServers[].postLaunchActionsStatus as
// they start (IN_PROGRESS, with a UUID executionID) and end (SUCCESS or FAILED
// with failureReason). The job is COMPLETED before the actions end, as on AWS;
// the status keeps changing after it. A failed action does not stop the next; an
// instance terminated meanwhile (by a later launch's cleanup) fails the running
// action and ends the list. Servers without active actions get no
// postLaunchActionsStatus. ssmDocumentType comes from
// SourceServerAction.DocumentType (COMMAND unless set). All actions run on test
// and cutover launches alike, and mustSucceedForCutover is reported but gates
// nothing: AWS's wording ("Cutover will not be enabled if the document has
// failed") leaves open which call it blocks.
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
// Fault hooks: Throttle, Fail, SetLatency, FailPhase and FailAction. Inspection
// and set-up: Calls, Unmodeled, Server, Servers, Update, Add, AddWaves,
// AddApplications, Waves, Applications, Jobs, JobLog and Instances. Fixtures:
// SampleFleet with SampleApplications and SampleWaves (two live waves and an
// archived one, three live applications and an archived one, three active
// post-launch actions and an inactive one), GenerateFleet, and GenerateWave for
// large waves (e.g. 600 servers over several applications, for benchmarks; the
// job quotas stay MGN's unless raised by Options.MaxServersInActiveJobs).
//
// Not modelled: any other MGN or EC2 operation (answered with ValidationException
// reason unknownOperation, or EC2 InvalidAction, and recorded in Unmodeled);
// replication progress over time (use Update); SERVER_SKIPPED,
// USING_PREVIOUS_SNAPSHOT, JOB_CANCEL and retried-step attempt counts; launch
// templates and settings (post-launch deployment TEST_ONLY/CUTOVER_ONLY,
// template actions, action timeouts and parameters' effect); creating, updating,
// archiving, disassociating and deleting waves and applications (build them with
// Options, AddWaves, AddApplications or the Associate calls); PutSourceServerAction
// and RemoveSourceServerAction (use Update); connectors; accountID
// (accepted, ignored); signature checking; UninitializedAccountException and
// AccessDeniedException (use Fail to inject them). Jobs referenced by the
// fixtures' lastTest/lastCutover records are not in DescribeJobs.
package mgnemu
