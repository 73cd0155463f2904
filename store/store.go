// Package store keeps cutoverbot's durable state: confirmations waiting for an
// approver's click, MGN launch jobs whose progress is followed in a Slack
// thread (with who requested and approved them), leases that decide which
// replica does a piece of singleton work, one-shot markers, the weekly
// reminder's firings (claimed, then done), the launches of waves and
// applications with their batches (queued until MGN has room, then started
// once), the last replication state seen per source server, and an audit log.
//
// One concrete [Store] runs over database/sql with two backends chosen by the
// DSN given to [Open] (see [ParseDSN]): SQLite (pure Go, the default, for a single replica) and
// PostgreSQL (for several replicas sharing one database). Every operation that
// replicas may race on is a single conditional statement, so exactly one
// caller wins without read-then-write windows. The schema is migrated at
// Open.
//
// The store holds plain strings and times: it knows nothing of Slack or MGN
// types. Old rows are deleted only by [Store.Prune] (retention). Times are stored as UTC
// unix microseconds, so values read back are in UTC and truncated to the
// microsecond.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound means the confirmation or job does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyDecided means a confirmation was no longer pending (another
	// click, or another replica, decided it first).
	ErrAlreadyDecided = errors.New("already decided")
	// ErrExpired means a confirmation was decided after its expiry.
	ErrExpired = errors.New("expired")
	// ErrStale means a job's progress was older than what is stored.
	ErrStale = errors.New("stale progress")
	// ErrLeaseLost means the caller no longer owns a confirmation's work: its lease ran out
	// or another replica took the work over.
	ErrLeaseLost = errors.New("lease lost")
	// ErrAlreadyRequested means a confirmation of the same action is already pending for one
	// of the servers; see AlreadyRequestedError.
	ErrAlreadyRequested = errors.New("already requested")
)

// DefaultSQLitePath is the database file used when Open gets an empty DSN.
const DefaultSQLitePath = "cutoverbot.db"

// sqliteBusyTimeout is how long an SQLite connection waits for another
// writer before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// Store is cutoverbot's durable state. It is safe for concurrent use, and
// several Stores (in one process or in several replicas) may share one
// PostgreSQL database.
type Store struct {
	db     *sql.DB
	d      dialect
	logger *slog.Logger
	// now stamps the rows the store times itself (updated_at); callers pass the time of
	// everything they decide on.
	now func() time.Time
}

// Option tunes a Store.
type Option func(*Store)

// WithClock makes the store stamp the rows it times itself by now instead of the real clock,
// so that tests that step a clock see consistent rows.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// dialect holds what differs between the backends. Both accept $N
// placeholders, ON CONFLICT upserts and RETURNING, so queries are shared.
type dialect struct {
	name string // "sqlite" or "postgres"
	// autoID is the column definition of a generated int64 primary key.
	autoID string
	// migrateLock runs first in every migration transaction so that replicas
	// starting together apply each migration once; "" when the transaction
	// itself already excludes other writers.
	migrateLock string
}

var (
	sqliteDialect = dialect{
		name:   "sqlite",
		autoID: "INTEGER PRIMARY KEY AUTOINCREMENT",
	}
	postgresDialect = dialect{
		name:        "postgres",
		autoID:      "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		migrateLock: "SELECT pg_advisory_xact_lock(7236155934166519041)",
	}
)

// Open opens the store named by dsn and applies any pending migrations.
// [ParseDSN] says which backend dsn names: an empty dsn means the SQLite file
// cutoverbot.db; a postgres:// or postgresql:// URL (any letter case) or a
// key=value string means PostgreSQL (a search_path parameter selects the
// schema); "sqlite:PATH" or a file path means SQLite, ":memory:" a private
// in-memory database that lives as long as the Store. It returns an error if
// dsn is refused, or if the database cannot be reached or migrated; no error
// quotes dsn.
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	parsed, conn, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	var (
		s      = &Store{logger: logger.With("component", "store"), now: time.Now}
		db     *sql.DB
		target = parsed.Target // what is logged: never the password
	)
	for _, o := range opts {
		o(s)
	}
	switch parsed.Backend {
	case postgresDialect.name:
		s.d = postgresDialect
		db, err = sql.Open("pgx", conn)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", target, err)
		}
		// As many idle connections as open ones: PostgreSQL starts a process for every new
		// connection, so a pool that closes connections after a burst and opens them again at
		// the next one spends the burst connecting. Idle ones are closed after 5 minutes.
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
	default:
		s.d = sqliteDialect
		db, err = openSQLite(conn)
		if err != nil {
			return nil, err
		}
	}
	s.db = db
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", target, err)
	}
	applied, err := s.migrate(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", target, err)
	}
	s.logger.InfoContext(ctx, "store opened", "backend", s.d.name, "db", target, "migrations_applied", applied)
	return s, nil
}

// openSQLite opens the SQLite file path, which parseDSN has checked.
func openSQLite(path string) (*sql.DB, error) {
	memory := path == ":memory:"
	// _busy_timeout is applied before the pragmas, so that switching to WAL
	// also waits for other connections. _txlock=immediate takes the write
	// lock at BEGIN: a deferred transaction that reads and then writes fails
	// at once with SQLITE_BUSY when another writer got in between.
	params := fmt.Sprintf("_busy_timeout=%d&_pragma=foreign_keys(1)&_txlock=immediate", sqliteBusyTimeout.Milliseconds())
	if !memory {
		params += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", path+"?"+params)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if memory {
		// Every connection to ":memory:" is a database of its own: keep
		// exactly one, forever.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	}
	return db, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.d.name, err)
	}
	return nil
}

// Backend returns "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs f in a transaction, committing if f returns nil.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

// collect runs query and returns its rows, each read by scan. The rows are closed when it
// returns, so the caller may query again (an in-memory SQLite store has one connection).
func collect[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// micros is how a time is stored: UTC unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros stores the zero time as NULL.
// micros0 is micros, with the zero time as 0.
func micros0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// placeholders returns "$from, $from+1, …" with n entries.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

// serverChunk bounds the rows or parameters of one statement over a server
// list, well below SQLite's and PostgreSQL's parameter limits.
const serverChunk = 300

// insertServers stores ids, in order, as rows (owner, pos, server_id) of
// table, whose columns are named by cols.
func insertServers(ctx context.Context, q querier, table, cols string, owner any, ids []string) error {
	for start := 0; start < len(ids); start += serverChunk {
		end := min(start+serverChunk, len(ids))
		var (
			b    strings.Builder
			args []any
		)
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, cols)
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "(%s)", placeholders(len(args)+1, 3))
			args = append(args, owner, i, ids[i])
		}
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// loadServers returns the server lists of owners, in stored order. query
// selects (owner, server_id) for the owners in its %s placeholder list,
// ordered by owner and position.
func loadServers[K comparable](ctx context.Context, q querier, query string, owners []K) (map[K][]string, error) {
	out := make(map[K][]string, len(owners))
	for start := 0; start < len(owners); start += serverChunk {
		end := min(start+serverChunk, len(owners))
		args := make([]any, 0, end-start)
		for _, o := range owners[start:end] {
			args = append(args, o)
		}
		rows, err := q.QueryContext(ctx, fmt.Sprintf(query, placeholders(1, len(args))), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				owner K
				id    string
			)
			if err := rows.Scan(&owner, &id); err != nil {
				rows.Close()
				return nil, err
			}
			out[owner] = append(out[owner], id)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// limitClause returns " LIMIT n", or "" for no limit when n <= 0.
func limitClause(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", n)
}
