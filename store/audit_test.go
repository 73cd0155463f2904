package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/cutoverbot/cutoverbot/store"
	"github.com/cutoverbot/cutoverbot/store/storetest"
)

func TestAuditLog(t *testing.T) {
	t.Parallel()
	entries := []store.AuditEntry{
		{At: t0, User: "U1", Action: "status", Outcome: "ok"},
		{At: t0.Add(time.Minute), User: "U1", Action: "test", ServerIDs: []string{"s-1", "s-2"}, Outcome: "launched", JobID: "mgnjob-1"},
		{At: t0.Add(2 * time.Minute), User: "U2", Action: "cutover", ServerIDs: []string{"s-2"}, Outcome: "refused", Detail: "not CONTINUOUS"},
		{At: t0.Add(3 * time.Minute), Action: "terminate", ServerIDs: []string{"s-3", "s-1"}, Outcome: "ok"},
	}
	tests := []struct {
		server string
		limit  int
		want   []int // indexes into entries
	}{
		{"", 0, []int{3, 2, 1, 0}},
		{"", 2, []int{3, 2}},
		{"s-1", 0, []int{3, 1}},
		{"s-2", 1, []int{2}},
		{"s-9", 0, nil},
	}
	storetest.Run(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := t.Context()
		for _, e := range entries {
			if err := s.Audit(ctx, e); err != nil {
				t.Fatalf("Audit(%s): %v", e.Action, err)
			}
		}
		if err := s.Audit(ctx, store.AuditEntry{At: t0}); err == nil {
			t.Errorf("Audit without an action succeeded, want an error")
		}
		for _, tt := range tests {
			got, err := s.AuditLog(ctx, tt.server, tt.limit)
			if err != nil {
				t.Fatalf("AuditLog(%q, %d): %v", tt.server, tt.limit, err)
			}
			var want []store.AuditEntry
			for _, i := range tt.want {
				want = append(want, entries[i])
			}
			for i := range got {
				if got[i].ID == 0 {
					t.Errorf("AuditLog(%q, %d)[%d] has no ID", tt.server, tt.limit, i)
				}
				got[i].ID = 0
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("AuditLog(%q, %d):\ngot  %+v\nwant %+v", tt.server, tt.limit, got, want)
			}
		}
	})
}
