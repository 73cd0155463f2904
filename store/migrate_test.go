package store

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/cutoverbot/cutoverbot/store/storetest"
)

// TestMigrationsApplyOnce opens a database twice: the first Open applies
// every migration, the second none, and each version is recorded once.
func TestMigrationsApplyOnce(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		for round, wantApplied := range []int{len(migrations), 0} {
			var logs bytes.Buffer
			s, err := Open(ctx, dsn, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("Open #%d: %v", round, err)
			}
			defer s.Close()
			want := "migrations_applied=" + strconv.Itoa(wantApplied)
			if !strings.Contains(logs.String(), want) {
				t.Errorf("Open #%d logged %q, want it to contain %s", round, logs.String(), want)
			}
			if applied, err := s.migrate(ctx); err != nil || applied != 0 {
				t.Errorf("migrate after Open #%d = %d, %v; want 0, nil", round, applied, err)
			}
			var versions, distinct int
			if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&versions, &distinct); err != nil {
				t.Fatalf("count migrations: %v", err)
			}
			if versions != len(migrations) || distinct != len(migrations) {
				t.Errorf("after Open #%d: %d recorded (%d distinct), want %d", round, versions, distinct, len(migrations))
			}
		}
	})
}
