package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// schemaChange is one schema change. Statements may use {{autoid}} for the
// dialect's generated int64 primary key.
type schemaChange struct {
	version    int
	name       string
	statements []string
}

// migrations are applied in order, each once, each in its own transaction.
// Never edit one that has shipped: append a new one.
var migrations = []schemaChange{
	{1, "initial schema", []string{
		`CREATE TABLE confirmations (
			id           TEXT PRIMARY KEY,
			action       TEXT NOT NULL,
			requested_by TEXT NOT NULL,
			channel      TEXT NOT NULL DEFAULT '',
			message_ts   TEXT NOT NULL DEFAULT '',
			created_at   BIGINT NOT NULL,
			expires_at   BIGINT NOT NULL,
			state        TEXT NOT NULL,
			decided_by   TEXT NOT NULL DEFAULT '',
			decided_at   BIGINT,
			job_id       TEXT NOT NULL DEFAULT '',
			error        TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX confirmations_state ON confirmations (state, created_at)`,
		`CREATE TABLE confirmation_servers (
			confirmation_id TEXT NOT NULL REFERENCES confirmations (id) ON DELETE CASCADE,
			pos             INTEGER NOT NULL,
			server_id       TEXT NOT NULL,
			PRIMARY KEY (confirmation_id, pos)
		)`,
		`CREATE TABLE jobs (
			job_id     TEXT PRIMARY KEY,
			kind       TEXT NOT NULL,
			channel    TEXT NOT NULL DEFAULT '',
			parent_ts  TEXT NOT NULL DEFAULT '',
			started_by TEXT NOT NULL DEFAULT '',
			started_at BIGINT NOT NULL,
			log_cursor TEXT NOT NULL DEFAULT '',
			posted     INTEGER NOT NULL DEFAULT 0,
			done       BOOLEAN NOT NULL DEFAULT FALSE,
			outcome    TEXT NOT NULL DEFAULT '',
			updated_at BIGINT NOT NULL
		)`,
		`CREATE INDEX jobs_done_started ON jobs (done, started_at)`,
		`CREATE INDEX jobs_started ON jobs (started_at)`,
		`CREATE TABLE job_servers (
			job_id    TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
			pos       INTEGER NOT NULL,
			server_id TEXT NOT NULL,
			PRIMARY KEY (job_id, pos)
		)`,
		`CREATE INDEX job_servers_server ON job_servers (server_id)`,
		`CREATE TABLE leases (
			name       TEXT PRIMARY KEY,
			holder     TEXT NOT NULL,
			expires_at BIGINT NOT NULL
		)`,
		`CREATE TABLE once_keys (
			key TEXT PRIMARY KEY,
			at  BIGINT NOT NULL
		)`,
		`CREATE TABLE server_states (
			server_id  TEXT PRIMARY KEY,
			state      TEXT NOT NULL,
			updated_at BIGINT NOT NULL
		)`,
		`CREATE TABLE audit_log (
			id      {{autoid}},
			at      BIGINT NOT NULL,
			user_id TEXT NOT NULL DEFAULT '',
			action  TEXT NOT NULL,
			outcome TEXT NOT NULL DEFAULT '',
			job_id  TEXT NOT NULL DEFAULT '',
			detail  TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX audit_log_at ON audit_log (at)`,
		`CREATE TABLE audit_servers (
			audit_id  BIGINT NOT NULL REFERENCES audit_log (id) ON DELETE CASCADE,
			pos       INTEGER NOT NULL,
			server_id TEXT NOT NULL,
			PRIMARY KEY (audit_id, pos)
		)`,
		`CREATE INDEX audit_servers_server ON audit_servers (server_id)`,
	}},
	{2, "confirmations: approvals, owner lease and fence, card version", []string{
		`ALTER TABLE confirmations ADD COLUMN approvals_needed INTEGER NOT NULL DEFAULT 1`,
		`ALTER TABLE confirmations ADD COLUMN title TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE confirmations ADD COLUMN body TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE confirmations ADD COLUMN detail TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE confirmations ADD COLUMN owner TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE confirmations ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE confirmations ADD COLUMN fence BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE confirmations ADD COLUMN version BIGINT NOT NULL DEFAULT 1`,
		`ALTER TABLE confirmations ADD COLUMN card_version BIGINT NOT NULL DEFAULT 1`,
		`ALTER TABLE confirmations ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0`,
		`UPDATE confirmations SET updated_at = COALESCE(decided_at, created_at)`,
		`CREATE INDEX confirmations_card ON confirmations (updated_at) WHERE card_version < version`,
		`CREATE TABLE confirmation_approvals (
			confirmation_id TEXT NOT NULL REFERENCES confirmations (id) ON DELETE CASCADE,
			user_id         TEXT NOT NULL,
			at              BIGINT NOT NULL,
			pos             INTEGER NOT NULL,
			PRIMARY KEY (confirmation_id, user_id)
		)`,
		// Decided confirmations of the first schema had their one approval recorded as the
		// decider.
		`INSERT INTO confirmation_approvals (confirmation_id, user_id, at, pos)
			SELECT id, decided_by, decided_at, 0 FROM confirmations
			WHERE decided_by <> '' AND state IN ('confirmed', 'launched', 'failed')`,
	}},
	{3, "index once-keys by age, for retention", []string{
		`CREATE INDEX once_keys_at ON once_keys (at)`,
	}},
	// Who asked for a job and who approved it are kept apart from MGN's requested-by tag,
	// which anyone can set. Rows written before this keep their started_by. (Versions 2 and
	// 3 are the confirmation state machine and retention.)
	{4, "job requester, approvers and tag; reminder firings", []string{
		`ALTER TABLE jobs ADD COLUMN requested_by TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE jobs ADD COLUMN approved_by TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE jobs ADD COLUMN tagged_by TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE reminders (
			firing        BIGINT PRIMARY KEY,
			holder        TEXT NOT NULL,
			claimed_until BIGINT NOT NULL,
			done          BOOLEAN NOT NULL DEFAULT FALSE,
			message_ts    TEXT NOT NULL DEFAULT '',
			updated_at    BIGINT NOT NULL
		)`,
		`CREATE INDEX reminders_done ON reminders (done, firing)`,
	}},
	{5, "one pending request per action and server; rechecking launches that MGN may start late", []string{
		`CREATE TABLE pending_servers (
			action          TEXT NOT NULL,
			server_id       TEXT NOT NULL,
			confirmation_id TEXT NOT NULL REFERENCES confirmations (id) ON DELETE CASCADE,
			PRIMARY KEY (action, server_id)
		)`,
		`CREATE INDEX pending_servers_confirmation ON pending_servers (confirmation_id)`,
		`ALTER TABLE confirmations ADD COLUMN recheck_until BIGINT NOT NULL DEFAULT 0`,
	}},
	// A launch of a wave or an application: its servers split into batches of at most 200,
	// each one MGN job, started as MGN has capacity, and followed in one thread.
	{6, "group launches and their batches; a job's group; a confirmation's wave or application", []string{
		`CREATE TABLE group_launches (
			id           TEXT PRIMARY KEY,
			mode         TEXT NOT NULL,
			target_kind  TEXT NOT NULL,
			target_id    TEXT NOT NULL,
			target_name  TEXT NOT NULL,
			requested_by TEXT NOT NULL DEFAULT '',
			approved_by  TEXT NOT NULL DEFAULT '',
			server_ids   TEXT NOT NULL,
			left_out     TEXT NOT NULL DEFAULT '',
			channel      TEXT NOT NULL DEFAULT '',
			parent_ts    TEXT NOT NULL DEFAULT '',
			created_at   BIGINT NOT NULL,
			done         BOOLEAN NOT NULL DEFAULT FALSE,
			outcome      TEXT NOT NULL DEFAULT '',
			updated_at   BIGINT NOT NULL
		)`,
		`CREATE INDEX group_launches_done ON group_launches (done, created_at)`,
		`CREATE TABLE launch_batches (
			batch_key   TEXT PRIMARY KEY,
			group_id    TEXT NOT NULL REFERENCES group_launches (id) ON DELETE CASCADE,
			seq         INTEGER NOT NULL,
			created_at  BIGINT NOT NULL,
			server_ids  TEXT NOT NULL,
			left_out    TEXT NOT NULL DEFAULT '',
			state       TEXT NOT NULL,
			job_id      TEXT NOT NULL DEFAULT '',
			error       TEXT NOT NULL DEFAULT '',
			next_try    BIGINT NOT NULL DEFAULT 0,
			busy        INTEGER NOT NULL DEFAULT -1,
			owner       TEXT NOT NULL DEFAULT '',
			lease_until BIGINT NOT NULL DEFAULT 0,
			fence       BIGINT NOT NULL DEFAULT 0,
			taken_over  BOOLEAN NOT NULL DEFAULT FALSE,
			updated_at  BIGINT NOT NULL,
			UNIQUE (group_id, seq)
		)`,
		`CREATE INDEX launch_batches_state ON launch_batches (state, created_at)`,
		`ALTER TABLE jobs ADD COLUMN group_id TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX jobs_group ON jobs (group_id)`,
		`ALTER TABLE confirmations ADD COLUMN target_kind TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE confirmations ADD COLUMN target_id TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE confirmations ADD COLUMN target_name TEXT NOT NULL DEFAULT ''`,
	}},
}

// migrate applies the migrations the database lacks and returns how many
// it applied.
func (s *Store) migrate(ctx context.Context) (int, error) {
	applied := 0
	for _, m := range migrations {
		did, err := s.apply(ctx, m)
		if err != nil {
			return applied, fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
		}
		if did {
			applied++
		}
	}
	var newest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return applied, fmt.Errorf("read schema version: %w", err)
	}
	if known := migrations[len(migrations)-1].version; newest.Int64 > int64(known) {
		// A newer release migrated this database; migrations only add, so
		// this one keeps working, but say so.
		s.logger.WarnContext(ctx, "database schema is newer than this binary", "schema_version", newest.Int64, "known_version", known)
	}
	return applied, nil
}

// apply applies m in one transaction unless it is already recorded, and
// reports whether it did.
func (s *Store) apply(ctx context.Context, m schemaChange) (bool, error) {
	did := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.migrateLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.migrateLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		// Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can
		// still collide on PostgreSQL.
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at BIGINT NOT NULL
		)`); err != nil {
			return err
		}
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_migrations WHERE version = $1`, m.version).Scan(&v)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		r := strings.NewReplacer("{{autoid}}", s.d.autoID)
		for _, stmt := range m.statements {
			if _, err := tx.ExecContext(ctx, r.Replace(stmt)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, micros(s.now())); err != nil {
			return err
		}
		did = true
		return nil
	})
	return did, err
}
