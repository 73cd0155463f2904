package mgnemu

import (
	"fmt"
	"strings"
	"time"
)

const gib = int64(1) << 30

// Sample fleet source server IDs, stable across runs.
var (
	SampleWeb01         = StableID("s-", "web01")
	SampleApp01         = StableID("s-", "app01")
	SampleDB01          = StableID("s-", "db01")
	SampleWeb02         = StableID("s-", "web02")
	SampleFile01        = StableID("s-", "file01")
	SampleLegacy01      = StableID("s-", "legacy01")
	SampleWeb01Archived = StableID("s-", "web01-archived")
	SampleAPI01         = StableID("s-", "api01")
	SampleMQ01          = StableID("s-", "mq01")
)

// spec is what varies between fixture servers.
type spec struct {
	id, name, fqdn string
	state          string // lifecycle state
	replication    string // dataReplicationState
	lag            time.Duration
	noLag          bool
	added          time.Duration // how long ago the agent was installed
	disks          []int64       // total bytes per disk
	progress       float64       // replicated fraction during initial sync
	backlog        int64         // backlogged bytes on the first disk
	eta            time.Duration // from now; 0 = none
	lastTest       time.Duration // ago; 0 = never
	testDone       bool          // test finalized (marked ready for cutover)
	cutover        time.Duration // ago; 0 = never
	err            *DataReplicationError
	lastSeen       time.Duration // ago
	archived       bool
	replicator     string
	osString       string
	instanceType   string
	app            string // applicationID; "" = none
	actions        []SourceServerAction
}

func (sp spec) build(now time.Time) SourceServer {
	at := func(ago time.Duration) string { return FormatTime(now.Add(-ago)) }
	added := now.Add(-sp.added)
	srv := SourceServer{
		SourceServerID:  sp.id,
		ApplicationID:   sp.app,
		IsArchived:      sp.archived,
		Tags:            map[string]string{"Name": sp.name},
		ReplicationType: "AGENT_BASED",
		LifeCycle: LifeCycle{
			State:                      sp.state,
			AddedToServiceDateTime:     FormatTime(added),
			FirstByteDateTime:          FormatTime(added.Add(3*time.Minute + 40*time.Second + 764*time.Millisecond)),
			LastSeenByServiceDateTime:  at(sp.lastSeen),
			ElapsedReplicationDuration: FormatDuration(sp.added - sp.lastSeen),
		},
		DataReplicationInfo: DataReplicationInfo{
			DataReplicationState: sp.replication,
			ReplicatorID:         sp.replicator,
			DataReplicationError: sp.err,
			DataReplicationInitiation: &DataReplicationInitiation{
				StartDateTime: FormatTime(added),
				Steps:         initiationSteps(),
			},
		},
		SourceProperties: SourceProperties{
			LastUpdatedDateTime:     at(sp.lastSeen + 5*time.Minute),
			RecommendedInstanceType: sp.instanceType,
			IdentificationHints:     IdentificationHints{Hostname: sp.name, FQDN: sp.fqdn},
			OS:                      &OS{FullString: sp.osString},
			RAMBytes:                8 * gib,
			CPUs:                    []CPU{{Cores: 2, ModelName: "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"}},
			NetworkInterfaces: []NetworkInterface{{
				IPs:        []string{fmt.Sprintf("192.168.%d.%d", len(sp.name)%250, int(sp.id[2])%250)},
				IsPrimary:  true,
				MacAddress: "0A-40-F1-" + sp.id[2:4] + "-" + sp.id[4:6] + "-" + sp.id[6:8],
			}},
		},
	}
	for _, a := range sp.actions {
		srv.PostLaunchActions = append(srv.PostLaunchActions, a.clone())
	}
	if !sp.noLag {
		srv.DataReplicationInfo.LagDuration = FormatDuration(sp.lag)
	}
	if sp.replication != "INITIAL_SYNC" && sp.replication != "DISCONNECTED" {
		srv.DataReplicationInfo.LastSnapshotDateTime = at(sp.lastSeen + 7*time.Minute)
	}
	if sp.eta > 0 {
		srv.DataReplicationInfo.EtaDateTime = FormatTime(now.Add(sp.eta))
	}
	devices := []string{"/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd"}
	for i, total := range sp.disks {
		dev := devices[i%len(devices)]
		srv.SourceProperties.Disks = append(srv.SourceProperties.Disks, Disk{DeviceName: dev, Bytes: total})
		d := ReplicatedDisk{DeviceName: dev, TotalStorageBytes: total, ReplicatedStorageBytes: total, RescannedStorageBytes: total}
		switch sp.replication {
		case "INITIAL_SYNC":
			d.ReplicatedStorageBytes = int64(float64(total) * sp.progress)
			d.RescannedStorageBytes = d.ReplicatedStorageBytes
		case "DISCONNECTED":
			d.TotalStorageBytes = 0
		}
		if i == 0 {
			d.BackloggedStorageBytes = sp.backlog
		}
		srv.DataReplicationInfo.ReplicatedDisks = append(srv.DataReplicationInfo.ReplicatedDisks, d)
	}
	if sp.lastTest > 0 {
		job := StableID("mgnjob-", sp.id+"/test")
		srv.LifeCycle.LastTest.Initiated = LaunchInitiated{APICallDateTime: at(sp.lastTest), JobID: job}
		if sp.testDone {
			srv.LifeCycle.LastTest.Finalized = APICall{APICallDateTime: at(sp.lastTest - 3*time.Hour)}
		}
		srv.LaunchedInstance = &LaunchedInstance{EC2InstanceID: StableID("i-", sp.id+"/test"), FirstBoot: "SUCCEEDED", JobID: job}
	}
	if sp.cutover > 0 {
		job := StableID("mgnjob-", sp.id+"/cutover")
		srv.LifeCycle.LastCutover = LastLaunch{
			Initiated: LaunchInitiated{APICallDateTime: at(sp.cutover), JobID: job},
			Finalized: APICall{APICallDateTime: at(sp.cutover - 2*time.Hour)},
		}
		srv.LaunchedInstance = &LaunchedInstance{EC2InstanceID: StableID("i-", sp.id+"/cutover"), FirstBoot: "SUCCEEDED", JobID: job}
	}
	return srv
}

func initiationSteps() []DataReplicationInitiationStep {
	names := []string{"WAIT", "CREATE_SECURITY_GROUP", "LAUNCH_REPLICATION_SERVER", "BOOT_REPLICATION_SERVER",
		"AUTHENTICATE_WITH_SERVICE", "DOWNLOAD_REPLICATION_SOFTWARE", "CREATE_STAGING_DISKS", "ATTACH_STAGING_DISKS",
		"PAIR_REPLICATION_SERVER_WITH_AGENT", "CONNECT_AGENT_TO_REPLICATION_SERVER", "START_DATA_TRANSFER"}
	steps := make([]DataReplicationInitiationStep, len(names))
	for i, n := range names {
		steps[i] = DataReplicationInitiationStep{Name: n, Status: "SUCCEEDED"}
	}
	return steps
}

const (
	linuxOS   = "Linux version 5.15.0-1057-aws (buildd@lcy02-amd64-063) (gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0) #63-Ubuntu SMP"
	windowsOS = "Microsoft Windows Server 2019 Datacenter 10.0.17763 Build 17763"
)

// Sample waves and applications, stable across runs.
var (
	SampleWave1 = StableID("wave-", "Wave 1")
	SampleWave2 = StableID("wave-", "Wave 2")
	SampleWave0 = StableID("wave-", "Wave 0") // archived

	SampleAppWebShop      = StableID("app-", "web shop")
	SampleAppBilling      = StableID("app-", "billing")
	SampleAppFileServices = StableID("app-", "file services")
	SampleAppLegacy       = StableID("app-", "legacy") // archived
)

// Names of the sample fleet's post-launch actions, for FailAction.
const (
	SampleWebSmokeTest = "Smoke test web service"   // web01, must succeed for cutover
	SampleWebCWAgent   = "Install CloudWatch agent" // web01
	SampleDBVerify     = "Verify database service"  // db01, must succeed for cutover, an Automation document
	GeneratedSmokeTest = "Smoke test"               // every GenerateWave server, must succeed for cutover
)

// SampleFleet returns a small fleet covering the states a bot must handle,
// with times relative to now:
//   - web01: CONTINUOUS, READY_FOR_TEST, never tested (hostname web01, fqdn web01.corp.example.com)
//   - app01: CONTINUOUS, TESTING, last test 9 days ago, test instance running
//   - db01: CONTINUOUS, READY_FOR_CUTOVER, test 2 days ago
//   - web02: INITIAL_SYNC at ~63% with an ETA, NOT_READY
//   - file01: STALLED with AGENT_NOT_SEEN, READY_FOR_TEST
//   - legacy01: CUTOVER done, replication DISCONNECTED, lag null
//   - an archived, disconnected duplicate of web01 (same hostname and Name)
//   - api01: CONTINUOUS with 7.5 minutes of lag, READY_FOR_TEST
//   - mq01: BACKLOG with 12 minutes of lag, READY_FOR_TEST
//
// Replication servers are shared by groups of servers. The servers belong to
// the applications of SampleApplications (web shop: web01, web02, api01;
// billing: app01, db01, mq01; file services: file01; legacy: legacy01 and the
// archived web01), which make up the waves of SampleWaves; pass those too.
// web01 has two post-launch actions (SampleWebSmokeTest, which must succeed for
// cutover, then SampleWebCWAgent) and db01 one (SampleDBVerify, must succeed).
func SampleFleet(now time.Time) []SourceServer {
	day := 24 * time.Hour
	repA := StableID("i-", "replicator-a")
	repB := StableID("i-", "replicator-b")
	webActions := []SourceServerAction{
		{ActionID: "web-smoke-test", ActionName: SampleWebSmokeTest, Active: true, Category: "VALIDATION",
			Description: "HTTP GET / on port 443 answers 200", DocumentIdentifier: "Corp-SmokeTestHTTP",
			MustSucceedForCutover: true, Order: 1001, TimeoutSeconds: 600, DocumentType: DocumentCommand},
		{ActionID: "web-cw-agent", ActionName: SampleWebCWAgent, Active: true, Category: "OBSERVABILITY",
			DocumentIdentifier: "AWS-ConfigureAWSPackage", Order: 1002, TimeoutSeconds: 900, DocumentType: DocumentCommand},
		{ActionID: "web-legacy-cron", ActionName: "Disable legacy cron jobs", Active: false, Category: "CONFIGURATION",
			DocumentIdentifier: "Corp-DisableCron", Order: 1003, TimeoutSeconds: 300, DocumentType: DocumentCommand},
	}
	dbActions := []SourceServerAction{
		{ActionID: "db-verify", ActionName: SampleDBVerify, Active: true, Category: "VALIDATION",
			Description: "PostgreSQL accepts connections and replicas are in sync", DocumentIdentifier: "Corp-VerifyPostgres",
			MustSucceedForCutover: true, Order: 1001, TimeoutSeconds: 1200, DocumentType: DocumentAutomation},
	}
	specs := []spec{
		{id: SampleWeb01, name: "web01", fqdn: "web01.corp.example.com", state: "READY_FOR_TEST", replication: "CONTINUOUS",
			added: 20 * day, disks: []int64{30 * gib, 100 * gib}, lastSeen: 40 * time.Second, replicator: repA,
			osString: linuxOS, instanceType: "c5.large", app: SampleAppWebShop, actions: webActions},
		{id: SampleApp01, name: "app01", fqdn: "app01.corp.example.com", state: "TESTING", replication: "CONTINUOUS",
			lag: 2 * time.Second, added: 30 * day, disks: []int64{50 * gib}, lastTest: 9 * day, lastSeen: 25 * time.Second,
			replicator: repA, osString: linuxOS, instanceType: "m5.large", app: SampleAppBilling},
		{id: SampleDB01, name: "db01", fqdn: "db01.corp.example.com", state: "READY_FOR_CUTOVER", replication: "CONTINUOUS",
			added: 35 * day, disks: []int64{80 * gib, 500 * gib, 500 * gib}, lastTest: 2 * day, testDone: true,
			lastSeen: 10 * time.Second, replicator: repB, osString: linuxOS, instanceType: "r5.xlarge",
			app: SampleAppBilling, actions: dbActions},
		{id: SampleWeb02, name: "web02", fqdn: "web02.corp.example.com", state: "NOT_READY", replication: "INITIAL_SYNC",
			noLag: true, added: 5 * time.Hour, disks: []int64{40 * gib, 200 * gib}, progress: 0.63, eta: 2*time.Hour + 20*time.Minute,
			lastSeen: 15 * time.Second, replicator: repA, osString: linuxOS, instanceType: "c5.large", app: SampleAppWebShop},
		{id: SampleFile01, name: "file01", fqdn: "file01.corp.example.com", state: "READY_FOR_TEST", replication: "STALLED",
			lag: 3*time.Hour + 12*time.Minute, added: 14 * day, disks: []int64{60 * gib, 1024 * gib},
			err: &DataReplicationError{Error: "AGENT_NOT_SEEN",
				RawError: "The AWS Replication Agent has not been seen by the service for more than 3 hours. Check that the agent is running and can reach mgn.eu-central-1.amazonaws.com on TCP 443."},
			lastSeen: 3*time.Hour + 12*time.Minute, replicator: repB, osString: windowsOS, instanceType: "m5.xlarge",
			app: SampleAppFileServices},
		{id: SampleLegacy01, name: "legacy01", fqdn: "legacy01.corp.example.com", state: "CUTOVER", replication: "DISCONNECTED",
			noLag: true, added: 60 * day, disks: []int64{20 * gib}, lastTest: 30 * day, testDone: true, cutover: 10 * day,
			lastSeen: 10 * day, osString: linuxOS, instanceType: "t3.medium", app: SampleAppLegacy},
		{id: SampleWeb01Archived, name: "web01", fqdn: "web01.corp.example.com", state: "DISCONNECTED", replication: "DISCONNECTED",
			noLag: true, added: 90 * day, disks: []int64{30 * gib, 100 * gib}, lastSeen: 45 * day, archived: true,
			osString: linuxOS, instanceType: "c5.large", app: SampleAppLegacy},
		{id: SampleAPI01, name: "api01", fqdn: "api01.corp.example.com", state: "READY_FOR_TEST", replication: "CONTINUOUS",
			lag: 7*time.Minute + 30*time.Second, added: 12 * day, disks: []int64{30 * gib}, backlog: 2 * gib,
			lastSeen: 20 * time.Second, replicator: repB, osString: linuxOS, instanceType: "c5.large", app: SampleAppWebShop},
		{id: SampleMQ01, name: "mq01", fqdn: "mq01.corp.example.com", state: "READY_FOR_TEST", replication: "BACKLOG",
			lag: 12 * time.Minute, added: 8 * day, disks: []int64{30 * gib, 60 * gib}, backlog: 6 * gib,
			lastSeen: 30 * time.Second, replicator: repB, osString: linuxOS, instanceType: "m5.large", app: SampleAppBilling},
	}
	out := make([]SourceServer, len(specs))
	for i, sp := range specs {
		out[i] = sp.build(now)
	}
	return out
}

// SampleWaves returns the sample fleet's waves, with times relative to now:
//   - Wave 1 (web shop), tagged cutover-date two weeks after now (YYYY-MM-DD, UTC)
//   - Wave 2 (billing, file services), no cutover-date tag
//   - Wave 0, archived (legacy), tagged cutover-date ten days before now
func SampleWaves(now time.Time) []Wave {
	day := 24 * time.Hour
	at := func(ago time.Duration) string { return FormatTime(now.Add(-ago)) }
	date := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
	return []Wave{
		{WaveID: SampleWave1, Name: "Wave 1", Description: "Customer-facing web shop",
			Tags:             map[string]string{"cutover-date": date(now.Add(14 * day)), "owner": "web-team"},
			CreationDateTime: at(40 * day), LastModifiedDateTime: at(3 * day)},
		{WaveID: SampleWave2, Name: "Wave 2", Description: "Back office",
			Tags:             map[string]string{"owner": "finance-it"},
			CreationDateTime: at(40 * day), LastModifiedDateTime: at(5 * day)},
		{WaveID: SampleWave0, Name: "Wave 0", Description: "Pilot", IsArchived: true,
			Tags:             map[string]string{"cutover-date": date(now.Add(-10 * day))},
			CreationDateTime: at(70 * day), LastModifiedDateTime: at(9 * day)},
	}
}

// SampleApplications returns the sample fleet's applications (see SampleFleet
// and SampleWaves), with times relative to now. legacy is archived.
func SampleApplications(now time.Time) []Application {
	day := 24 * time.Hour
	at := func(ago time.Duration) string { return FormatTime(now.Add(-ago)) }
	return []Application{
		{ApplicationID: SampleAppWebShop, Name: "web shop", Description: "Storefront and its API",
			WaveID: SampleWave1, Tags: map[string]string{"team": "web"}, CreationDateTime: at(40 * day), LastModifiedDateTime: at(3 * day)},
		{ApplicationID: SampleAppBilling, Name: "billing", Description: "Invoicing, database and queue",
			WaveID: SampleWave2, Tags: map[string]string{"team": "finance-it"}, CreationDateTime: at(40 * day), LastModifiedDateTime: at(5 * day)},
		{ApplicationID: SampleAppFileServices, Name: "file services", WaveID: SampleWave2,
			CreationDateTime: at(40 * day), LastModifiedDateTime: at(5 * day)},
		{ApplicationID: SampleAppLegacy, Name: "legacy", WaveID: SampleWave0, IsArchived: true,
			CreationDateTime: at(70 * day), LastModifiedDateTime: at(9 * day)},
	}
}

// GenerateFleet returns n servers named srv-00001 ... with a deterministic mix
// of states: mostly CONTINUOUS and READY_FOR_TEST, some testing, ready for
// cutover, in initial sync, stalled, lagging, cut over and archived.
// Every 25 servers share one replication server.
func GenerateFleet(n int, now time.Time) []SourceServer {
	day := 24 * time.Hour
	out := make([]SourceServer, 0, n)
	for i := 1; i <= n; i++ {
		sp := generated("srv", i)
		switch i % 20 {
		case 3, 13:
			sp.state, sp.lastTest = "TESTING", time.Duration(1+i%12)*day
		case 5:
			sp.state, sp.lastTest, sp.testDone = "READY_FOR_CUTOVER", time.Duration(1+i%6)*day, true
		case 7:
			sp.state, sp.replication, sp.noLag = "NOT_READY", "INITIAL_SYNC", true
			sp.progress, sp.eta = float64(i%90+5)/100, time.Duration(1+i%5)*time.Hour
		case 11:
			sp.replication, sp.lag = "STALLED", 2*time.Hour
			sp.lastSeen = 2 * time.Hour
			sp.err = &DataReplicationError{Error: "AGENT_NOT_SEEN", RawError: "The AWS Replication Agent has not been seen by the service for more than 2 hours."}
		case 15:
			sp.replication, sp.lag, sp.backlog = "BACKLOG", time.Duration(5+i%20)*time.Minute, 3*gib
		case 17:
			sp.state, sp.replication, sp.noLag = "CUTOVER", "DISCONNECTED", true
			sp.lastTest, sp.testDone, sp.cutover, sp.replicator = 20*day, true, 5*day, ""
		case 19:
			if i%40 == 39 {
				sp.state, sp.replication, sp.noLag, sp.archived, sp.replicator = "DISCONNECTED", "DISCONNECTED", true, true, ""
			}
		}
		out = append(out, sp.build(now))
	}
	return out
}

// generated is the i-th server of a generated fleet whose names start with prefix:
// CONTINUOUS and READY_FOR_TEST; every 25 servers share one replication server.
func generated(prefix string, i int) spec {
	day := 24 * time.Hour
	name := fmt.Sprintf("%s-%05d", prefix, i)
	replicator := fmt.Sprintf("replicator-%d", i/25)
	if prefix != "srv" {
		replicator = prefix + "/" + replicator
	}
	return spec{
		id: StableID("s-", name), name: name, fqdn: name + ".corp.example.com",
		state: "READY_FOR_TEST", replication: "CONTINUOUS", lag: time.Duration(i%7) * time.Second,
		added: time.Duration(10+i%20) * day, disks: []int64{int64(20+i%5*10) * gib},
		lastSeen:   time.Duration(10+i%50) * time.Second,
		replicator: StableID("i-", replicator),
		osString:   linuxOS, instanceType: "c5.large",
	}
}

// GeneratedWave is a wave with its applications and their source servers, from GenerateWave.
type GeneratedWave struct {
	Wave         Wave
	Applications []Application
	Servers      []SourceServer
}

// GenerateWave returns a wave called name with n source servers spread in order
// over applications of perApplication servers (0 means 150; at most MGN's 200),
// named "<name> app 1", .... Servers are named after the wave ("Wave 9" gives
// wave9-00001, ...). Nearly all are CONTINUOUS and launchable: 1 in 50 is in
// initial sync, 1 in 50 stalled, 1 in 50 testing and 1 in 50 ready for cutover.
// Each has one active post-launch action, GeneratedSmokeTest, which must succeed
// for cutover. IDs derive from the names, so two waves need different names.
func GenerateWave(name string, n, perApplication int, now time.Time) GeneratedWave {
	day := 24 * time.Hour
	if perApplication <= 0 {
		perApplication = 150
	}
	perApplication = min(perApplication, maxServersPerApplication)
	var prefix strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			prefix.WriteRune(r)
		}
	}
	created := FormatTime(now.Add(-30 * day))
	g := GeneratedWave{Wave: Wave{WaveID: StableID("wave-", name), Name: name,
		Description: fmt.Sprintf("%d generated servers", n), CreationDateTime: created}}
	smoke := SourceServerAction{ActionID: "smoke-test", ActionName: GeneratedSmokeTest, Active: true, Category: "VALIDATION",
		DocumentIdentifier: "Corp-SmokeTest", MustSucceedForCutover: true, Order: 1001, TimeoutSeconds: 300}
	for i := 1; i <= n; i++ {
		if (i-1)%perApplication == 0 {
			appName := fmt.Sprintf("%s app %d", name, len(g.Applications)+1)
			g.Applications = append(g.Applications, Application{ApplicationID: StableID("app-", appName), Name: appName,
				WaveID: g.Wave.WaveID, CreationDateTime: created})
		}
		sp := generated(prefix.String(), i)
		sp.app = g.Applications[len(g.Applications)-1].ApplicationID
		sp.actions = []SourceServerAction{smoke}
		switch i % 50 {
		case 7:
			sp.state, sp.replication, sp.noLag = "NOT_READY", "INITIAL_SYNC", true
			sp.progress, sp.eta = float64(i%90+5)/100, time.Duration(1+i%5)*time.Hour
		case 19:
			sp.replication, sp.lag, sp.lastSeen = "STALLED", 2*time.Hour, 2*time.Hour
			sp.err = &DataReplicationError{Error: "AGENT_NOT_SEEN", RawError: "The AWS Replication Agent has not been seen by the service for more than 2 hours."}
		case 29:
			sp.state, sp.lastTest = "TESTING", time.Duration(1+i%12)*day
		case 41:
			sp.state, sp.lastTest, sp.testDone = "READY_FOR_CUTOVER", time.Duration(1+i%6)*day, true
		}
		g.Servers = append(g.Servers, sp.build(now))
	}
	return g
}
