package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AuditEntry is one line of the audit log: a command, a click, a refusal or
// an AWS action.
type AuditEntry struct {
	ID        int64 // assigned by Audit; ignored when writing
	At        time.Time
	User      string // Slack user ID; "" for the bot itself
	Action    string
	ServerIDs []string
	Outcome   string
	JobID     string
	Detail    string
}

const auditServersQuery = `SELECT audit_id, server_id FROM audit_servers WHERE audit_id IN (%s) ORDER BY audit_id, pos`

// Audit appends e to the audit log. It returns an error if e.Action is
// empty.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if e.Action == "" {
		return fmt.Errorf("audit: action is required")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO audit_log (at, user_id, action, outcome, job_id, detail)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			micros(e.At), e.User, e.Action, e.Outcome, e.JobID, e.Detail).Scan(&id); err != nil {
			return err
		}
		return insertServers(ctx, tx, "audit_servers", "audit_id, pos, server_id", id, e.ServerIDs)
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns at most limit entries (all when limit <= 0) newest
// first, only those naming serverID unless it is "".
func (s *Store) AuditLog(ctx context.Context, serverID string, limit int) ([]AuditEntry, error) {
	es, err := s.auditLog(ctx, serverID, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return es, nil
}

func scanAudit(row scanner) (AuditEntry, error) {
	var (
		e  AuditEntry
		at int64
	)
	err := row.Scan(&e.ID, &at, &e.User, &e.Action, &e.Outcome, &e.JobID, &e.Detail)
	e.At = fromMicros(at)
	return e, err
}

func (s *Store) auditLog(ctx context.Context, serverID string, limit int) ([]AuditEntry, error) {
	const columns = `SELECT id, at, user_id, action, outcome, job_id, detail FROM audit_log`
	const order = ` ORDER BY at DESC, id DESC`
	var (
		es  []AuditEntry
		err error
	)
	if serverID == "" {
		es, err = collect(ctx, s.db, scanAudit, columns+order+limitClause(limit))
	} else {
		es, err = collect(ctx, s.db, scanAudit, columns+` WHERE id IN (SELECT audit_id FROM audit_servers WHERE server_id = $1)`+
			order+limitClause(limit), serverID)
	}
	if err != nil || len(es) == 0 {
		return es, err
	}
	ids := make([]int64, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	servers, err := loadServers(ctx, s.db, auditServersQuery, ids)
	if err != nil {
		return nil, err
	}
	for i := range es {
		es[i].ServerIDs = servers[es[i].ID]
	}
	return es, nil
}
