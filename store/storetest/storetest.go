// Package storetest gives tests databases for the store: an SQLite file in
// the test's temporary directory, and, when CUTOVER_TEST_POSTGRES_DSN names a
// PostgreSQL database (e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), a fresh schema
// in it that is dropped when the test ends, so tests run in parallel and
// repeatedly without seeing each other's rows.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// PostgresEnv names the variable holding the PostgreSQL test DSN.
const PostgresEnv = "CUTOVER_TEST_POSTGRES_DSN"

// skipReason is why the PostgreSQL cases are skipped.
const skipReason = "set " + PostgresEnv + " to run the PostgreSQL suite"

// Run runs f in one subtest per backend, "sqlite" and "postgres", each with
// the DSN of a fresh, empty database. The postgres subtest is skipped with a
// reason when CUTOVER_TEST_POSTGRES_DSN is not set.
func Run(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}

// DSNs returns the DSN of a fresh, empty database per available backend:
// "sqlite" always, "postgres" only when CUTOVER_TEST_POSTGRES_DSN is set.
// Prefer Run, which reports the skipped backend.
func DSNs(t testing.TB) map[string]string {
	t.Helper()
	dsns := map[string]string{"sqlite": SQLite(t)}
	if os.Getenv(PostgresEnv) != "" {
		dsns["postgres"] = Postgres(t)
	}
	return dsns
}

// SQLite returns the path of a not yet existing SQLite file in the test's
// temporary directory.
func SQLite(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "cutoverbot.db")
}

// Postgres returns a DSN for a new, empty schema in the database named by
// CUTOVER_TEST_POSTGRES_DSN (its search_path is that schema), and drops the
// schema when the test ends. It skips the test when the variable is not set.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(skipReason)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got %q", PostgresEnv, redact(base))
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", redact(base), err)
	}
	t.Cleanup(func() { db.Close() })

	var b [8]byte
	rand.Read(b[:])
	schema := "cutover_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema on %s: %v", redact(base), err)
	}
	t.Cleanup(func() {
		// The test's context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// redact hides the password in a DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}
