package store

import (
	"context"
	"fmt"
	"time"
)

// FinalStates are the confirmation states a confirmation never leaves. Prune deletes old
// confirmations in these states only, never one that may still be decided or carried out: a
// state added to a confirmation's life belongs here if, and only if, it is final.
var FinalStates = []ConfirmationState{Cancelled, Expired, Launched, Failed}

// PruneOptions bound the work of one Prune.
type PruneOptions struct {
	// Batch is the most rows one statement deletes; 0 means 500.
	Batch int
	// Pause is the wait between statements, so that other writers get their turn; 0 means
	// 100 ms, negative means none.
	Pause time.Duration
}

// Pruned counts the rows one Prune deleted, by kind; server lists are not counted.
type Pruned struct {
	Audit, OnceKeys, Jobs, Confirmations, Reminders int64
	// GroupLaunches counts finished launches of waves and applications (their batches go
	// with them).
	GroupLaunches int64
}

// Prune deletes what is older than before: audit entries (by their time), once-keys (by when
// they were recorded), finished jobs (by their start), confirmations in a final state (by
// their creation), each with its server list, posted reminders (by their firing) and finished
// launches of waves and applications with their batches (by their creation). Running jobs, confirmations that are not final,
// server states (the baseline of replication notices) and leases are kept.
//
// It deletes in statements of at most o.Batch rows with o.Pause between them, so that it never
// holds a lock for long; callers make sure one replica prunes at a time (a lease). It returns
// what it deleted, also when it stops early with an error or because ctx ended.
func (s *Store) Prune(ctx context.Context, before time.Time, o PruneOptions) (Pruned, error) {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Pause == 0 {
		o.Pause = 100 * time.Millisecond
	}
	cutoff := micros(before)
	finalStates := make([]any, len(FinalStates))
	for i, st := range FinalStates {
		finalStates[i] = string(st)
	}
	var (
		p   Pruned
		err error
	)
	// Each statement deletes at most $2 rows older than $1; server lists go with their rows
	// (ON DELETE CASCADE).
	if p.Audit, err = s.pruneBatches(ctx, o, "audit entries", `DELETE FROM audit_log WHERE id IN (
		SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT $2)`, cutoff); err != nil {
		return p, err
	}
	if p.OnceKeys, err = s.pruneBatches(ctx, o, "once-keys", `DELETE FROM once_keys WHERE key IN (
		SELECT key FROM once_keys WHERE at < $1 ORDER BY at LIMIT $2)`, cutoff); err != nil {
		return p, err
	}
	if p.Jobs, err = s.pruneBatches(ctx, o, "finished jobs", `DELETE FROM jobs WHERE job_id IN (
		SELECT job_id FROM jobs WHERE done AND started_at < $1 ORDER BY started_at LIMIT $2)`, cutoff); err != nil {
		return p, err
	}
	if p.Confirmations, err = s.pruneBatches(ctx, o, "closed confirmations", `DELETE FROM confirmations WHERE id IN (
		SELECT id FROM confirmations WHERE created_at < $1
		AND state IN (`+placeholders(3, len(finalStates))+`) ORDER BY created_at LIMIT $2)`,
		append([]any{cutoff}, finalStates...)...); err != nil {
		return p, err
	}
	if p.Reminders, err = s.pruneBatches(ctx, o, "posted reminders", `DELETE FROM reminders WHERE firing IN (
		SELECT firing FROM reminders WHERE done AND firing < $1 ORDER BY firing LIMIT $2)`, cutoff); err != nil {
		return p, err
	}
	p.GroupLaunches, err = s.pruneBatches(ctx, o, "finished group launches", `DELETE FROM group_launches WHERE id IN (
		SELECT id FROM group_launches WHERE done AND created_at < $1 ORDER BY created_at LIMIT $2)`, cutoff)
	return p, err
}

// pruneBatches runs query, which deletes at most $2 rows and takes args as $1 and from $3 on,
// until it deletes fewer than o.Batch rows, pausing o.Pause between runs. It returns how many
// rows it deleted.
func (s *Store) pruneBatches(ctx context.Context, o PruneOptions, what, query string, args ...any) (int64, error) {
	args = append([]any{args[0], o.Batch}, args[1:]...)
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, query, args...)
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", what, err)
		}
		total += n
		if n < int64(o.Batch) {
			return total, nil
		}
		if err := pause(ctx, o.Pause); err != nil {
			return total, fmt.Errorf("prune %s: %w", what, err)
		}
	}
}

// pause waits d (nothing when d <= 0) or until ctx ends, and returns ctx's error then.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
