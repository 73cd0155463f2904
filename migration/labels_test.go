package migration_test

import (
	"strings"
	"testing"

	mgntypes "github.com/aws/aws-sdk-go-v2/service/mgn/types"

	"github.com/cutoverbot/cutoverbot/migration"
)

func TestReplicationStateLabel(t *testing.T) {
	tests := []struct {
		state migration.ReplicationState
		want  string
	}{
		{migration.ReplicationStopped, "Stopped"},
		{migration.ReplicationInitiating, "Initiating"},
		{migration.ReplicationInitialSync, "Initial sync"},
		{migration.ReplicationBacklog, "Backlog"},
		{migration.ReplicationCreatingSnapshot, "Creating snapshot"},
		{migration.ReplicationContinuous, "Continuous Data Replication"},
		{migration.ReplicationPaused, "Paused"},
		{migration.ReplicationRescan, "Rescanning"},
		{migration.ReplicationStalled, "Stalled"},
		{migration.ReplicationDisconnected, "Disconnected"},
		{migration.ReplicationPendingSnapshotShipping, "Pending snapshot shipping"},
		{migration.ReplicationShippingSnapshot, "Shipping snapshot"},
		{"SOME_NEW_STATE", "Some new state"},
		{"", "Unknown"},
	}
	covered := map[migration.ReplicationState]bool{}
	for _, tt := range tests {
		covered[tt.state] = true
		t.Run(string(tt.state), func(t *testing.T) {
			if got := tt.state.Label(); got != tt.want {
				t.Errorf("ReplicationState(%q).Label(): got %q, want %q", tt.state, got, tt.want)
			}
		})
	}
	for _, v := range mgntypes.DataReplicationState("").Values() {
		if !covered[migration.ReplicationState(v)] {
			t.Errorf("SDK replication state %q: got no test case, want one (and a label)", v)
		}
	}
}

func TestLifecycleStateLabel(t *testing.T) {
	tests := []struct {
		state migration.LifecycleState
		want  string
	}{
		{migration.LifecycleNotReady, "Not ready"},
		{migration.LifecycleReadyForTest, "Ready for testing"},
		{migration.LifecycleTesting, "Test in progress"},
		{migration.LifecycleReadyForCutover, "Ready for cutover"},
		{migration.LifecycleCuttingOver, "Cutover in progress"},
		{migration.LifecycleCutover, "Cutover complete"},
		{migration.LifecycleDisconnected, "Disconnected"},
		{migration.LifecycleDiscovered, "Discovered"},
		{migration.LifecyclePendingInstallation, "Pending installation"},
		{migration.LifecycleStopped, "Stopped"},
		{"ARCHIVED_SOMEHOW", "Archived somehow"},
		{"", "Unknown"},
	}
	covered := map[migration.LifecycleState]bool{}
	for _, tt := range tests {
		covered[tt.state] = true
		t.Run(string(tt.state), func(t *testing.T) {
			if got := tt.state.Label(); got != tt.want {
				t.Errorf("LifecycleState(%q).Label(): got %q, want %q", tt.state, got, tt.want)
			}
		})
	}
	for _, v := range mgntypes.LifeCycleState("").Values() {
		if !covered[migration.LifecycleState(v)] {
			t.Errorf("SDK lifecycle state %q: got no test case, want one (and a label)", v)
		}
	}
}

func TestLaunchStatusLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{migration.LaunchPending, "Pending"},
		{migration.LaunchInProgress, "In progress"},
		{migration.LaunchLaunched, "Launched"},
		{migration.LaunchFailed, "Failed"},
		{migration.LaunchTerminated, "Terminated"},
		{"", "Unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := migration.LaunchStatusLabel(tt.in); got != tt.want {
				t.Errorf("LaunchStatusLabel(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReplicationErrorText(t *testing.T) {
	tests := []struct {
		code string
		want string // substring
	}{
		{"AGENT_NOT_SEEN", "TCP 443"},
		{"FAILED_TO_CONNECT_AGENT_TO_REPLICATION_SERVER", "TCP 1500"},
		{"SNAPSHOTS_FAILURE", "ec2:CreateSnapshot"},
		{"NOT_CONVERGING", "not converging"},
		{"SOMETHING_NEW", "Something new"},
		{"", "Unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := migration.ReplicationErrorText(tt.code); !strings.Contains(got, tt.want) {
				t.Errorf("ReplicationErrorText(%q): got %q, want it to contain %q", tt.code, got, tt.want)
			}
		})
	}
	// Every code the SDK knows is explained, not just sentence-cased.
	for _, code := range mgntypes.DataReplicationErrorString("").Values() {
		fallback := strings.ToUpper(string(code[0])) + strings.ToLower(strings.ReplaceAll(string(code[1:]), "_", " "))
		if got := migration.ReplicationErrorText(string(code)); got == fallback || got == "" {
			t.Errorf("ReplicationErrorText(%q): got the fallback %q, want an explanation", code, got)
		}
	}
}

func TestEventDescribe(t *testing.T) {
	const sid = "s-1234567890abcdef0"
	tests := []struct {
		name string
		ev   migration.Event
		who  string
		want string
	}{
		{name: "job start", ev: migration.Event{Kind: migration.EventJobStart}, want: "Job started"},
		{name: "job end", ev: migration.Event{Kind: migration.EventJobEnd}, want: "Job ended"},
		{name: "job cancel", ev: migration.Event{Kind: migration.EventJobCancel}, want: "Job cancelled"},
		{name: "server skipped", ev: migration.Event{Kind: migration.EventServerSkipped, ServerID: sid}, who: "web01", want: "web01: skipped"},
		{name: "cleanup start", ev: migration.Event{Kind: migration.EventCleanupStart, ServerID: sid}, who: "web01",
			want: "web01: removing instances from earlier launches"},
		{name: "cleanup end", ev: migration.Event{Kind: migration.EventCleanupEnd, ServerID: sid}, who: "web01",
			want: "web01: instances from earlier launches removed"},
		{name: "cleanup fail", ev: migration.Event{Kind: migration.EventCleanupFail, ServerID: sid}, who: "web01",
			want: "web01: removing instances from earlier launches failed"},
		{name: "snapshot start", ev: migration.Event{Kind: migration.EventSnapshotStart, ServerID: sid}, who: "web01",
			want: "web01: taking the final snapshot"},
		{name: "snapshot end", ev: migration.Event{Kind: migration.EventSnapshotEnd, ServerID: sid}, who: "web01", want: "web01: snapshot taken"},
		{name: "snapshot fail", ev: migration.Event{Kind: migration.EventSnapshotFail, ServerID: sid}, who: "web01", want: "web01: snapshot failed"},
		{name: "previous snapshot", ev: migration.Event{Kind: migration.EventUsingPreviousSnapshot, ServerID: sid}, who: "web01",
			want: "web01: using the previous snapshot"},
		{name: "conversion start", ev: migration.Event{Kind: migration.EventConversionStart, ServerID: sid, ConversionServerID: "i-0conv"}, who: "web01",
			want: "web01: converter started (conversion server i-0conv)"},
		{name: "conversion start without server", ev: migration.Event{Kind: migration.EventConversionStart, ServerID: sid}, who: "web01",
			want: "web01: converter started"},
		{name: "conversion end", ev: migration.Event{Kind: migration.EventConversionEnd, ServerID: sid}, who: "web01", want: "web01: conversion finished"},
		{name: "conversion fail", ev: migration.Event{Kind: migration.EventConversionFail, ServerID: sid}, who: "web01", want: "web01: conversion failed"},
		{name: "launch start", ev: migration.Event{Kind: migration.EventLaunchStart, ServerID: sid, TargetInstanceID: "i-0target"}, who: "web01",
			want: "web01: launching the target instance i-0target"},
		{name: "launch start without instance", ev: migration.Event{Kind: migration.EventLaunchStart, ServerID: sid}, who: "web01",
			want: "web01: launching the target instance"},
		{name: "launch failed", ev: migration.Event{Kind: migration.EventLaunchFailed, ServerID: sid}, who: "web01", want: "web01: launch failed"},
		{name: "no name falls back to ID", ev: migration.Event{Kind: migration.EventSnapshotEnd, ServerID: sid}, want: sid + ": snapshot taken"},
		{name: "raw error", ev: migration.Event{Kind: migration.EventLaunchFailed, ServerID: sid, RawError: "InsufficientInstanceCapacity"}, who: "web01",
			want: "web01: launch failed: InsufficientInstanceCapacity"},
		{name: "attempts and raw error", ev: migration.Event{Kind: migration.EventConversionFail, ServerID: sid, Attempt: 2, Attempts: 3, RawError: "boom"},
			who: "web01", want: "web01: conversion failed (attempt 2 of 3): boom"},
		{name: "unknown server event", ev: migration.Event{Kind: "POST_LAUNCH_ACTION", ServerID: sid}, who: "web01", want: "web01: Post launch action"},
		{name: "unknown job event", ev: migration.Event{Kind: "JOB_PAUSED"}, want: "Job paused"},
	}
	covered := map[migration.EventKind]bool{}
	for _, tt := range tests {
		covered[tt.ev.Kind] = true
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev.Describe(tt.who); got != tt.want {
				t.Errorf("%+v.Describe(%q): got %q, want %q", tt.ev, tt.who, got, tt.want)
			}
		})
	}
	for _, v := range mgntypes.JobLogEvent("").Values() {
		if !covered[migration.EventKind(v)] {
			t.Errorf("SDK job log event %q: got no test case, want one", v)
		}
	}
}

func TestEventKindFailure(t *testing.T) {
	failures := map[migration.EventKind]bool{
		migration.EventCleanupFail: true, migration.EventSnapshotFail: true, migration.EventConversionFail: true,
		migration.EventLaunchFailed: true, migration.EventServerSkipped: true, migration.EventJobCancel: true,
	}
	for _, v := range mgntypes.JobLogEvent("").Values() {
		k := migration.EventKind(v)
		if got, want := k.Failure(), failures[k]; got != want {
			t.Errorf("%s.Failure(): got %v, want %v", k, got, want)
		}
	}
}
