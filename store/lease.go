package store

import (
	"context"
	"fmt"
	"time"
)

// AcquireLease takes or renews the lease name for holder until now+ttl and
// reports whether holder has it. It succeeds if the lease is free, expired
// at now, or already held by holder; of several concurrent callers for a
// free lease exactly one succeeds.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("acquire lease %s: ttl %v is not positive", name, ttl)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder`,
		name, holder, micros(now.Add(ttl)), micros(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n > 0, nil
}

// ReleaseLease frees the lease name if holder has it; otherwise it does
// nothing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Once records key and reports whether this call recorded it first. Of
// several concurrent callers, in this or other replicas, exactly one gets
// true.
func (s *Store) Once(ctx context.Context, key string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO once_keys (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
		key, micros(now))
	if err != nil {
		return false, fmt.Errorf("once %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("once %s: %w", key, err)
	}
	return n > 0, nil
}

// ServerStates returns the stored state of each source server that has one.
func (s *Store) ServerStates(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT server_id, state FROM server_states WHERE state <> ''`)
	if err != nil {
		return nil, fmt.Errorf("server states: %w", err)
	}
	defer rows.Close()
	states := make(map[string]string)
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, fmt.Errorf("server states: %w", err)
		}
		states[id] = state
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("server states: %w", err)
	}
	return states, nil
}

// SwapServerState sets serverID's state to next if its stored state is prev
// ("" for none) and reports whether it did. Of several replicas seeing the
// same transition, exactly one gets true, and only it should announce it.
func (s *Store) SwapServerState(ctx context.Context, serverID, prev, next string, now time.Time) (bool, error) {
	var (
		query string
		args  []any
	)
	if prev == "" {
		query = `INSERT INTO server_states (server_id, state, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (server_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
			WHERE server_states.state = ''`
		args = []any{serverID, next, micros(now)}
	} else {
		query = `UPDATE server_states SET state = $3, updated_at = $4 WHERE server_id = $1 AND state = $2`
		args = []any{serverID, prev, next, micros(now)}
	}
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("swap server state %s: %w", serverID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("swap server state %s: %w", serverID, err)
	}
	return n > 0, nil
}
