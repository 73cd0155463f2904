package migration_test

import (
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
)

func TestServerDisplayName(t *testing.T) {
	tests := []struct {
		name string
		s    migration.Server
		want string
	}{
		{name: "name tag wins", s: migration.Server{ID: "s-1", Name: "Web front", Hostname: "web01", FQDN: "web01.corp"}, want: "Web front"},
		{name: "hostname", s: migration.Server{ID: "s-1", Hostname: "web01", FQDN: "web01.corp"}, want: "web01"},
		{name: "hostname that is an FQDN", s: migration.Server{ID: "s-1", Hostname: "web01.corp.example.com"}, want: "web01"},
		{name: "FQDN only", s: migration.Server{ID: "s-1", FQDN: "db01.corp.example.com"}, want: "db01"},
		{name: "ID only", s: migration.Server{ID: "s-1234567890abcdef0"}, want: "s-1234567890abcdef0"},
		{name: "leading dot kept", s: migration.Server{ID: "s-1", Hostname: ".odd"}, want: ".odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.DisplayName(); got != tt.want {
				t.Errorf("DisplayName of %+v: got %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

func TestReplication(t *testing.T) {
	const gib = int64(1) << 30
	tests := []struct {
		name         string
		r            migration.Replication
		wantProgress float64
		wantHealthy  bool
		wantProblem  bool
	}{
		{name: "no disks", r: migration.Replication{State: migration.ReplicationInitiating}, wantProgress: 0},
		{name: "initial sync", r: migration.Replication{State: migration.ReplicationInitialSync, Disks: []migration.Disk{
			{Device: "/dev/sda", TotalBytes: 40 * gib, ReplicatedBytes: 40 * gib},
			{Device: "/dev/sdb", TotalBytes: 60 * gib, ReplicatedBytes: 15 * gib},
		}}, wantProgress: 55},
		{name: "continuous", r: migration.Replication{State: migration.ReplicationContinuous, HasLag: true, Disks: []migration.Disk{
			{TotalBytes: 10 * gib, ReplicatedBytes: 10 * gib},
		}}, wantProgress: 100, wantHealthy: true},
		{name: "continuous with error", r: migration.Replication{State: migration.ReplicationContinuous, Error: "UNSTABLE_NETWORK"},
			wantProblem: true},
		{name: "stalled", r: migration.Replication{State: migration.ReplicationStalled}, wantProblem: true},
		{name: "stopped", r: migration.Replication{State: migration.ReplicationStopped}, wantProblem: true},
		{name: "paused", r: migration.Replication{State: migration.ReplicationPaused}, wantProblem: true},
		{name: "backlog", r: migration.Replication{State: migration.ReplicationBacklog}},
		{name: "zero-size disk", r: migration.Replication{Disks: []migration.Disk{{TotalBytes: 0, ReplicatedBytes: 5}}}, wantProgress: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Progress(); got != tt.wantProgress {
				t.Errorf("Progress: got %v, want %v", got, tt.wantProgress)
			}
			if got := tt.r.Healthy(); got != tt.wantHealthy {
				t.Errorf("Healthy: got %v, want %v", got, tt.wantHealthy)
			}
			if got := tt.r.Problem(); got != tt.wantProblem {
				t.Errorf("Problem: got %v, want %v", got, tt.wantProblem)
			}
		})
	}

	r := migration.Replication{Disks: []migration.Disk{{TotalBytes: 3, BacklogBytes: 1}, {TotalBytes: 4, BacklogBytes: 2}}}
	if got := r.TotalBytes(); got != 7 {
		t.Errorf("TotalBytes: got %d, want 7", got)
	}
	if got := r.BacklogBytes(); got != 3 {
		t.Errorf("BacklogBytes: got %d, want 3", got)
	}
}

func TestServerCutOver(t *testing.T) {
	tests := []struct {
		name string
		s    migration.Server
		want bool
	}{
		{name: "ready for test", s: migration.Server{Lifecycle: migration.Lifecycle{State: migration.LifecycleReadyForTest}}},
		{name: "cutting over", s: migration.Server{Lifecycle: migration.Lifecycle{State: migration.LifecycleCuttingOver}}},
		{name: "cutover", s: migration.Server{Lifecycle: migration.Lifecycle{State: migration.LifecycleCutover}}, want: true},
		{name: "disconnected after finalize", s: migration.Server{Lifecycle: migration.Lifecycle{State: migration.LifecycleDisconnected,
			LastCutover: migration.Milestone{Finalized: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.CutOver(); got != tt.want {
				t.Errorf("CutOver: got %v, want %v", got, tt.want)
			}
		})
	}
}
