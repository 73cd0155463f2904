package store

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// DSN is what a data source name given to [Open] (CUTOVER_DB) selects. It holds no password,
// so it is safe to print and log.
type DSN struct {
	// Backend is "sqlite" or "postgres".
	Backend string
	// Target names the database in logs and messages: the SQLite file (or ":memory:"), or
	// postgres://HOST:PORT/DBNAME without user, password or parameters.
	Target string
}

// String returns the backend and target, e.g. "postgres postgres://db:5432/cutover".
func (d DSN) String() string { return d.Backend + " " + d.Target }

var (
	// urlScheme matches a URL scheme and its colon. One letter is left out, so that a
	// Windows drive (C:\data) stays a path.
	urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]+):`)
	// keyword matches the start of a key=value pair, as in "host=db dbname=cutover".
	keyword = regexp.MustCompile(`(^|\s)[A-Za-z_][A-Za-z0-9_]*\s*=`)
	// userinfo matches "user:password@" anywhere: a URL that lost its scheme, or its colon
	// ("//bot:pw@db", "postgres//bot:pw@db").
	userinfo = regexp.MustCompile(`[^/:@\s]*:[^/@\s]*@`)
)

// ParseDSN decides which backend dsn names, in one place for Open and for configuration
// checks:
//
//   - "" is the SQLite file cutoverbot.db;
//   - a postgres:// or postgresql:// URL, the scheme in any letter case, or a key=value
//     string such as "host=db user=bot password=… dbname=cutover", is PostgreSQL;
//   - "sqlite:PATH" or a plain file path is SQLite (":memory:" is a private in-memory
//     database).
//
// Anything else that looks like a URL or a DSN (another scheme, key=value pairs mixed with a
// path, user:password@host, a path naming a password or holding '?') is refused, so that a
// connection string never becomes an SQLite file name. Errors describe the form and never
// quote dsn, which may hold a password.
func ParseDSN(dsn string) (DSN, error) {
	d, _, err := parseDSN(dsn)
	return d, err
}

// parseDSN is ParseDSN that also returns what the driver is given: the PostgreSQL connection
// string with its scheme in lower case, or the SQLite path.
func parseDSN(dsn string) (DSN, string, error) {
	s := strings.TrimSpace(dsn)
	if s == "" {
		return DSN{Backend: sqliteDialect.name, Target: DefaultSQLitePath}, DefaultSQLitePath, nil
	}
	if m := urlScheme.FindStringSubmatch(s); m != nil {
		scheme, rest := strings.ToLower(m[1]), s[len(m[0]):]
		switch {
		case (scheme == "postgres" || scheme == "postgresql") && strings.HasPrefix(rest, "//"):
			return parsePostgres(scheme + ":" + rest)
		case scheme == "postgres" || scheme == "postgresql":
			return DSN{}, "", errors.New("a PostgreSQL URL starts with postgres:// (postgres://user:password@host:5432/dbname)")
		case scheme == "sqlite":
			if strings.HasPrefix(rest, "//") {
				return DSN{}, "", errors.New("sqlite: is followed by a file path (sqlite:/data/cutoverbot.db), not a URL")
			}
			return parseSQLitePath(rest)
		}
		return DSN{}, "", fmt.Errorf("a URL with scheme %q is neither PostgreSQL (postgres://…) nor SQLite (sqlite:PATH or a file path)", scheme)
	}
	if loc := keyword.FindStringIndex(s); loc != nil {
		if loc[0] != 0 {
			return DSN{}, "", errors.New("mixes a file path with key=value settings: give a file path, sqlite:PATH, or a PostgreSQL key=value string alone")
		}
		return parsePostgres(s)
	}
	if userinfo.MatchString(s) || strings.Contains(s, "//") {
		return DSN{}, "", errors.New("looks like a URL without its scheme (user:password@host, //host): a PostgreSQL URL starts with postgres://")
	}
	return parseSQLitePath(s)
}

// parsePostgres checks a PostgreSQL connection string with the driver's own parser. The
// parser's message is left out of the error: it may quote the password.
func parsePostgres(conn string) (DSN, string, error) {
	cfg, err := pgconn.ParseConfig(conn)
	if err != nil {
		return DSN{}, "", errors.New("is not a valid PostgreSQL connection string (postgres://user:password@host:5432/dbname or host=… dbname=…); the parser's message is not shown because it may quote the password")
	}
	target := "postgres://" + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
	return DSN{Backend: postgresDialect.name, Target: target}, conn, nil
}

// parseSQLitePath checks an SQLite file path.
func parseSQLitePath(path string) (DSN, string, error) {
	switch {
	case path == "":
		return DSN{}, "", errors.New("sqlite: is followed by a file path, e.g. sqlite:/data/cutoverbot.db")
	case strings.Contains(strings.ToLower(path), "password"):
		return DSN{}, "", errors.New("a file path naming a password looks like a mistaken connection string; refused so that it is not written to disk")
	case strings.Contains(path, "?"):
		// The driver would read what follows as connection parameters.
		return DSN{}, "", errors.New("an SQLite file path may not contain '?'")
	}
	return DSN{Backend: sqliteDialect.name, Target: path}, path, nil
}
