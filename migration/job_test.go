package migration_test

import (
	"slices"
	"testing"

	"github.com/cutoverbot/cutoverbot/migration"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cur  migration.Cursor
	}{
		{name: "zero", cur: migration.Cursor{}},
		{name: "first page", cur: migration.Cursor{Seen: 7, PageOffset: 7}},
		{name: "later page", cur: migration.Cursor{Seen: 1234, PageToken: "bG9nOjEwMDA", PageOffset: 234}},
		{name: "token with colons", cur: migration.Cursor{Seen: 3, PageToken: "a:b::c", PageOffset: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.cur.String()
			got, err := migration.ParseCursor(s)
			if err != nil {
				t.Fatalf("ParseCursor(%q): got error %v, want %+v", s, err, tt.cur)
			}
			if got != tt.cur {
				t.Errorf("ParseCursor(%q): got %+v, want %+v", s, got, tt.cur)
			}
		})
	}
	if got, err := migration.ParseCursor(""); err != nil || got != (migration.Cursor{}) {
		t.Errorf(`ParseCursor(""): got %+v, %v; want the zero cursor, nil`, got, err)
	}
}

func TestParseCursorMalformed(t *testing.T) {
	for _, in := range []string{"x", "12", "1:2", "-1:0:", "1:-2:", "a:0:", "1:b:tok", ":0:", "1::tok"} {
		t.Run(in, func(t *testing.T) {
			if got, err := migration.ParseCursor(in); err == nil {
				t.Errorf("ParseCursor(%q): got %+v, nil; want an error", in, got)
			}
		})
	}
}

func TestJob(t *testing.T) {
	j := migration.Job{
		ID: "mgnjob-1", InitiatedBy: migration.InitiatedByStartTest, Status: migration.JobStarted,
		Participants: []migration.Participant{
			{ServerID: "s-b", LaunchStatus: migration.LaunchInProgress},
			{ServerID: "s-a", LaunchStatus: migration.LaunchLaunched, InstanceID: "i-1"},
		},
	}
	if got, want := j.Mode(), migration.ModeTest; got != want {
		t.Errorf("Mode: got %q, want %q", got, want)
	}
	if !j.Active() {
		t.Errorf("Active of a STARTED job: got false, want true")
	}
	if got, want := j.ServerIDs(), []string{"s-b", "s-a"}; !slices.Equal(got, want) {
		t.Errorf("ServerIDs: got %v, want %v", got, want)
	}
	if p, ok := j.Participant("s-a"); !ok || p.InstanceID != "i-1" {
		t.Errorf("Participant(s-a): got %+v, %v; want instance i-1, true", p, ok)
	}
	if p, ok := j.Participant("s-zzz"); ok {
		t.Errorf("Participant(s-zzz): got %+v, true; want false", p)
	}

	modes := []struct {
		initiatedBy string
		want        migration.Mode
	}{
		{migration.InitiatedByStartTest, migration.ModeTest},
		{migration.InitiatedByStartCutover, migration.ModeCutover},
		{migration.InitiatedByTerminate, ""},
		{migration.InitiatedByDiagnostic, ""},
	}
	for _, m := range modes {
		if got := (migration.Job{InitiatedBy: m.initiatedBy}).Mode(); got != m.want {
			t.Errorf("Mode of a job initiated by %s: got %q, want %q", m.initiatedBy, got, m.want)
		}
	}
	for _, st := range []migration.JobStatus{migration.JobPending, migration.JobStarted} {
		if !(migration.Job{Status: st}).Active() {
			t.Errorf("Active of a %s job: got false, want true", st)
		}
	}
	if (migration.Job{Status: migration.JobCompleted}).Active() {
		t.Errorf("Active of a COMPLETED job: got true, want false")
	}
}
