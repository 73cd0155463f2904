package store_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverbot/cutoverbot/store"
)

// password is the secret the DSN tests hide in connection strings; it must never come back in
// a parsed DSN, its printed forms or an error.
const password = "s3cr3t-Pw"

func TestParseDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn, backend, target string
	}{
		{"", "sqlite", store.DefaultSQLitePath},
		{"cutoverbot.db", "sqlite", "cutoverbot.db"},
		{"/data/cutoverbot.db", "sqlite", "/data/cutoverbot.db"},
		{"./state/bot.db", "sqlite", "./state/bot.db"},
		{"/my data/bot.db", "sqlite", "/my data/bot.db"},
		{"/data/a=b.db", "sqlite", "/data/a=b.db"},
		{":memory:", "sqlite", ":memory:"},
		{"sqlite:/data/cutoverbot.db", "sqlite", "/data/cutoverbot.db"},
		{"SQLite:bot.db", "sqlite", "bot.db"},
		{"postgres://bot:" + password + "@db.example:5433/cutover?sslmode=require", "postgres", "postgres://db.example:5433/cutover"},
		{"postgresql://bot:" + password + "@db.example/cutover", "postgres", "postgres://db.example:5432/cutover"},
		{"POSTGRES://bot:" + password + "@db.example/cutover", "postgres", "postgres://db.example:5432/cutover"},
		{"PostgreSQL://db.example/cutover?password=" + password, "postgres", "postgres://db.example:5432/cutover"},
		{"host=db.example user=bot password=" + password + " dbname=cutover", "postgres", "postgres://db.example:5432/cutover"},
		{"  host=db.example port=6432 password='" + password + " x' dbname=cutover sslmode=disable", "postgres", "postgres://db.example:6432/cutover"},
		{"dbname = cutover host = db.example password = " + password, "postgres", "postgres://db.example:5432/cutover"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.dsn, password, "PW"), func(t *testing.T) {
			d, err := store.ParseDSN(tt.dsn)
			if err != nil {
				t.Fatalf("ParseDSN: %v, want %s %s", err, tt.backend, tt.target)
			}
			if d.Backend != tt.backend || d.Target != tt.target {
				t.Errorf("ParseDSN = %s %q, want %s %q", d.Backend, d.Target, tt.backend, tt.target)
			}
			if out := fmt.Sprintf("%v %+v %#v %s", d, d, d, d); strings.Contains(out, password) {
				t.Errorf("printed DSN shows the password: %s", out)
			}
		})
	}
}

// TestParseDSNRefuses: what looks like a DSN or URL but is neither PostgreSQL nor SQLite is
// refused, and the error never quotes the password, even where PostgreSQL's own parser would.
func TestParseDSNRefuses(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"mysql://bot:" + password + "@db/cutover",
		"http://db.example/cutover",
		"file:cutoverbot.db",
		"postgres:db.example/cutover",
		"bot:" + password + "@db.example/cutover",
		"/data/bot.db password=" + password,
		"/data/bot.db host=db",
		"host=db password=" + password + " /data/bot.db",
		"host=db password='" + password,
		"postgres://bot:" + password + "@db.example:port/cutover",
		"postgres://bot:pass/" + password + "@db.example/cutover",
		"host=db port=" + password,
		"/tmp/password=" + password,
		"sqlite:",
		"sqlite://db.example/cutover",
		"cutoverbot.db?_pragma=journal_mode(DELETE)",
	} {
		t.Run(strings.ReplaceAll(dsn, password, "PW"), func(t *testing.T) {
			d, err := store.ParseDSN(dsn)
			if err == nil {
				t.Fatalf("ParseDSN = %s %q, want an error", d.Backend, d.Target)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestOpenRefusesWithoutEcho: Open refuses the same strings, before touching the disk, and its
// error does not quote the password either.
func TestOpenRefusesWithoutEcho(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, dsn := range []string{
		"host=db password=" + password + " /data/bot.db",
		"mysql://bot:" + password + "@db/cutover",
		"postgres://bot:" + password + "@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=bot password=" + password + " dbname=none connect_timeout=2 sslmode=disable",
	} {
		s, err := store.Open(t.Context(), dsn, nil)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", strings.ReplaceAll(dsn, password, "PW"))
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
	entries, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(entries) != 0 {
		t.Errorf("files written by refused Opens: %v (%v), want none", entries, err)
	}
}
