package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cutoverbot/cutoverbot/emulator/mgnemu"
	"github.com/cutoverbot/cutoverbot/emulator/slackemu"
)

// The sample workspace the emulators serve: a migration channel and three people.
const (
	sandboxChannel  = "C0MIGRATION"
	sandboxOperator = "U0ANN" // Ann, migration engineer: launches tests, requests cutovers
	sandboxApprover = "U0BOB" // Bob, change manager: confirms cutovers
	sandboxOther    = "U0EVE" // Eve, in the channel but not allowed to launch or confirm
	sandboxRegion   = "eu-central-1"
)

var sandboxUsers = map[string]string{sandboxOperator: "ann", sandboxApprover: "bob", sandboxOther: "eve"}

// sandbox is the MGN + EC2 and Slack emulators with the sample fleet and workspace.
type sandbox struct {
	mgn   *mgnemu.Server
	slack *slackemu.Server
}

// sandboxOptions tune the emulators.
type sandboxOptions struct {
	MGNAddr, SlackAddr string           // "127.0.0.1:0" picks free ports
	Pace               mgnemu.Pace      // zero: fast
	PostInterval       time.Duration    // Slack's per-channel posting interval; 0: Slack's 1 s
	Servers            int              // extra generated servers
	CutoverReady       int              // extra servers ready for cutover and tested: cut001, cut002, …
	MaxActiveJobs      int              // MGN's quota of jobs in progress; 0: MGN's 20
	Now                func() time.Time // MGN's clock; nil: time.Now
	BotToken, AppToken string           // the Slack tokens the emulator accepts; "": its defaults
	Logger             *slog.Logger

	// Waves are extra generated waves with their applications and servers (mgnemu.GenerateWave).
	Waves []mgnemu.GeneratedWave
	// MaxActiveServers is MGN's quota of servers across active jobs; 0: MGN's 200 (or
	// MaxActiveJobs, when that is higher).
	MaxActiveServers int
}

func startSandbox(o sandboxOptions) (*sandbox, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now()
	fleet := mgnemu.SampleFleet(now)
	if o.Servers > 0 {
		fleet = append(fleet, mgnemu.GenerateFleet(o.Servers, now)...)
	}
	for i := range o.CutoverReady {
		s := mgnemu.SampleFleet(now)[2] // db01: ready for cutover, tested two days ago
		name := fmt.Sprintf("cut%03d", i+1)
		s.SourceServerID, s.Tags, s.ApplicationID = mgnemu.StableID("s-", name), map[string]string{"Name": name}, ""
		s.SourceProperties.IdentificationHints.Hostname = name
		s.SourceProperties.IdentificationHints.FQDN = name + ".corp.example.com"
		fleet = append(fleet, s)
	}
	apps, waves := mgnemu.SampleApplications(now), mgnemu.SampleWaves(now)
	for _, w := range o.Waves {
		fleet, apps, waves = append(fleet, w.Servers...), append(apps, w.Applications...), append(waves, w.Wave)
	}
	m := mgnemu.New(mgnemu.Options{Now: o.Now, Servers: fleet, Applications: apps, Waves: waves, Pace: o.Pace, Region: sandboxRegion,
		Logger: o.Logger, MaxActiveJobs: o.MaxActiveJobs, MaxServersInActiveJobs: max(o.MaxActiveJobs, o.MaxActiveServers, 200)})
	if err := m.Start(o.MGNAddr); err != nil {
		return nil, fmt.Errorf("start MGN emulator: %w", err)
	}
	s := slackemu.New(slackemu.Options{PostInterval: o.PostInterval, Logger: o.Logger, BotToken: o.BotToken, AppToken: o.AppToken})
	if err := s.Start(o.SlackAddr); err != nil {
		m.Close()
		return nil, fmt.Errorf("start Slack emulator: %w", err)
	}
	s.AddChannel(sandboxChannel, "migration")
	for id, name := range sandboxUsers {
		s.AddUser(id, name)
	}
	return &sandbox{mgn: m, slack: s}, nil
}

func (sb *sandbox) Close() {
	sb.slack.Close()
	sb.mgn.Close()
}

// env is the environment that points cutoverbot at the sandbox.
func (sb *sandbox) env() [][2]string {
	return [][2]string{
		{"SLACK_API_URL", sb.slack.URL()},
		{"SLACK_APP_TOKEN", sb.slack.AppToken()},
		{"SLACK_BOT_TOKEN", sb.slack.BotToken()},
		{"SLACK_SIGNING_SECRET", sb.slack.SigningSecret()},
		{"CUTOVER_CHANNEL", sandboxChannel},
		{"CUTOVER_OPERATORS", sandboxOperator},
		{"CUTOVER_APPROVERS", sandboxApprover},
		{"AWS_REGION", sandboxRegion},
		{"AWS_ACCESS_KEY_ID", "emulator"},
		{"AWS_SECRET_ACCESS_KEY", "emulator"},
		{"AWS_ENDPOINT_URL_MGN", sb.mgn.URL()},
		{"AWS_ENDPOINT_URL_EC2", sb.mgn.URL()},
	}
}

func (sb *sandbox) getenv(extra map[string]string) func(string) string {
	m := map[string]string{}
	for _, kv := range sb.env() {
		m[kv[0]] = kv[1]
	}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}
