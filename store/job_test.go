package store_test

import (
	"errors"
	"github.com/cutoverbot/cutoverbot/migration"
	"reflect"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

func jobIDs(js []migration.Launch) []string {
	ids := []string{}
	for _, j := range js {
		ids = append(ids, j.JobID)
	}
	return ids
}

func TestFollowJob(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		jobs := []migration.Launch{
			{JobID: "mgnjob-1", Kind: "test", ServerIDs: []string{"s-1", "s-2"}, StartedBy: "U1", StartedAt: t0},
			{JobID: "mgnjob-2", Kind: "cutover", ServerIDs: []string{"s-2"}, StartedAt: t0.Add(time.Minute)},
			{JobID: "mgnjob-3", Kind: "other", StartedAt: t0.Add(2 * time.Minute), UpdatedAt: t0},
		}
		for _, j := range jobs {
			if created, err := s.FollowJob(ctx, j); err != nil || !created {
				t.Fatalf("FollowJob(%s) = %v, %v; want true, nil", j.JobID, created, err)
			}
		}
		// Following again, from this or another replica, keeps the first.
		again := jobs[0]
		again.Kind = "cutover"
		wins := race(10, func(int) bool {
			created, err := s.FollowJob(ctx, again)
			if err != nil {
				t.Errorf("FollowJob again: %v", err)
			}
			return created
		})
		if wins != 0 {
			t.Errorf("FollowJob of a followed job: %d calls created it, want 0", wins)
		}
		got, err := s.Job(ctx, "mgnjob-3")
		if want := jobs[2]; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Job(mgnjob-3):\ngot  %+v, %v\nwant %+v, nil", got, err, want)
		}
		got, err = s.Job(ctx, "mgnjob-1")
		if err != nil || got.Kind != "test" || !reflect.DeepEqual(got.ServerIDs, []string{"s-1", "s-2"}) || got.UpdatedAt.IsZero() {
			t.Errorf("Job(mgnjob-1) = %+v, %v; want the first version, servers s-1 s-2, UpdatedAt set", got, err)
		}

		if err := s.SetJobParent(ctx, "mgnjob-1", "C9", "1700000000.000200"); err != nil {
			t.Fatalf("SetJobParent: %v", err)
		}
		if got, _ := s.Job(ctx, "mgnjob-1"); got.Channel != "C9" || got.ParentTS != "1700000000.000200" {
			t.Errorf("after SetJobParent: channel %q ts %q, want C9 1700000000.000200", got.Channel, got.ParentTS)
		}
		if err := s.FinishJob(ctx, "mgnjob-2", "COMPLETED"); err != nil {
			t.Fatalf("FinishJob: %v", err)
		}
		if got, _ := s.Job(ctx, "mgnjob-2"); !got.Done || got.Outcome != "COMPLETED" {
			t.Errorf("after FinishJob: done %v outcome %q, want true COMPLETED", got.Done, got.Outcome)
		}
		active, err := s.ActiveJobs(ctx)
		if want := []string{"mgnjob-1", "mgnjob-3"}; err != nil || !reflect.DeepEqual(jobIDs(active), want) {
			t.Errorf("ActiveJobs = %v, %v; want %v", jobIDs(active), err, want)
		}

		recent := []struct {
			server string
			limit  int
			want   []string
		}{
			{"", 0, []string{"mgnjob-3", "mgnjob-2", "mgnjob-1"}},
			{"", 2, []string{"mgnjob-3", "mgnjob-2"}},
			{"s-2", 0, []string{"mgnjob-2", "mgnjob-1"}},
			{"s-1", 5, []string{"mgnjob-1"}},
			{"s-9", 5, []string{}},
		}
		for _, tt := range recent {
			got, err := s.RecentJobs(ctx, tt.server, tt.limit)
			if err != nil || !reflect.DeepEqual(jobIDs(got), tt.want) {
				t.Errorf("RecentJobs(%q, %d) = %v, %v; want %v", tt.server, tt.limit, jobIDs(got), err, tt.want)
			}
		}
	})
}

func TestSaveProgress(t *testing.T) {
	t.Parallel()
	steps := []struct {
		cursor     string
		posted     int
		wantErr    error
		wantCursor string
		wantPosted int
	}{
		{"c3", 3, nil, "c3", 3},
		{"c5", 5, nil, "c5", 5},
		{"c5b", 5, nil, "c5b", 5}, // same count, cursor moved on
		{"c4", 4, store.ErrStale, "c5b", 5},
		{"c0", 0, store.ErrStale, "c5b", 5},
		{"c9", 9, nil, "c9", 9},
	}
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		if _, err := s.FollowJob(ctx, migration.Launch{JobID: "mgnjob-1", Kind: "test", StartedAt: t0}); err != nil {
			t.Fatalf("FollowJob: %v", err)
		}
		for _, st := range steps {
			err := s.SaveProgress(ctx, "mgnjob-1", st.cursor, st.posted)
			if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
				t.Errorf("SaveProgress(%q, %d): got %v, want %v", st.cursor, st.posted, err, st.wantErr)
			}
			j, err := s.Job(ctx, "mgnjob-1")
			if err != nil || j.Cursor != st.wantCursor || j.Posted != st.wantPosted {
				t.Errorf("after SaveProgress(%q, %d): cursor %q posted %d (%v), want %q %d",
					st.cursor, st.posted, j.Cursor, j.Posted, err, st.wantCursor, st.wantPosted)
			}
		}
	})
}

// TestJobRequester keeps who asked for a job and who approved it apart from an MGN tag, and
// records them for a job first stored from its tag.
func TestJobRequester(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		ours := migration.Launch{JobID: "mgnjob-1", Kind: "cutover", RequestedBy: "U1", ApprovedBy: []string{"U2", "U3"}, StartedAt: t0}
		outside := migration.Launch{JobID: "mgnjob-2", Kind: "test", TaggedBy: "*ann*", StartedAt: t0}
		for _, j := range []migration.Launch{ours, outside} {
			if _, err := s.FollowJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Job(ctx, "mgnjob-1")
		if err != nil || got.RequestedBy != "U1" || !reflect.DeepEqual(got.ApprovedBy, []string{"U2", "U3"}) || got.TaggedBy != "" || got.StartedBy != "" {
			t.Errorf("Job(mgnjob-1) = %+v, %v; want requested by U1, approved by U2 and U3, no tag", got, err)
		}
		got, err = s.Job(ctx, "mgnjob-2")
		if err != nil || got.RequestedBy != "" || got.ApprovedBy != nil || got.TaggedBy != "*ann*" {
			t.Errorf("Job(mgnjob-2) = %+v, %v; want only the tag *ann*", got, err)
		}
		if err := s.SetJobRequester(ctx, "mgnjob-2", "U4", nil); err != nil {
			t.Fatal(err)
		}
		got, err = s.Job(ctx, "mgnjob-2")
		if err != nil || got.RequestedBy != "U4" || got.ApprovedBy != nil || got.TaggedBy != "" {
			t.Errorf("after SetJobRequester: %+v, %v; want requested by U4 and the tag dropped", got, err)
		}
		if err := s.SetJobRequester(ctx, "mgnjob-9", "U4", nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetJobRequester of an unknown job: got %v, want ErrNotFound", err)
		}
	})
}
