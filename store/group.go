package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cutoverbot/cutoverbot/migration"
)

// A group launch's server lists and left-out servers are stored as JSON text: they are read
// and written whole, never queried by server.

const groupColumns = `id, mode, target_kind, target_id, target_name, requested_by, approved_by, server_ids, left_out,
	channel, parent_ts, created_at, done, outcome, updated_at`

func scanGroup(row scanner) (migration.GroupLaunch, error) {
	var (
		g                         migration.GroupLaunch
		kind, approvers, ids, out string
		created, updated          int64
	)
	err := row.Scan(&g.ID, &g.Mode, &kind, &g.Target.ID, &g.Target.Name, &g.RequestedBy, &approvers, &ids, &out,
		&g.Channel, &g.ParentTS, &created, &g.Done, &g.Outcome, &updated)
	if err != nil {
		return g, err
	}
	g.Target.Kind = migration.GroupKind(kind)
	g.ApprovedBy = splitUsers(approvers)
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := unmarshalText(ids, &g.ServerIDs); err != nil {
		return g, fmt.Errorf("group launch %s: servers: %w", g.ID, err)
	}
	if err := unmarshalText(out, &g.LeftOut); err != nil {
		return g, fmt.Errorf("group launch %s: left out: %w", g.ID, err)
	}
	return g, nil
}

const batchColumns = `batch_key, group_id, seq, server_ids, left_out, state, job_id, error, next_try, busy,
	owner, lease_until, fence, taken_over, updated_at`

// BatchClaim is a batch claimed for starting: the claimer owns it under Fence until its lease
// ends. TakenOver says that an earlier claimer's lease ran out, so it may have asked MGN for
// the job already: the claimer asks MGN (the job tagged with the batch's key) before it does.
type BatchClaim struct {
	migration.Batch
	Fence      Fence
	LeaseUntil time.Time
	TakenOver  bool
}

func scanBatch(row scanner) (BatchClaim, error) {
	var (
		b                             BatchClaim
		key, state, ids, out          string
		nextTry, lease, updated, busy int64
	)
	err := row.Scan(&key, &b.GroupID, &b.Seq, &ids, &out, &state, &b.JobID, &b.Error, &nextTry, &busy,
		&b.Fence.Owner, &lease, &b.Fence.Token, &b.TakenOver, &updated)
	if err != nil {
		return b, err
	}
	b.State, b.Busy = migration.BatchState(state), int(busy)
	b.NextTry, b.LeaseUntil, b.UpdatedAt = fromMicros(nextTry), fromMicros(lease), fromMicros(updated)
	if err := unmarshalText(ids, &b.ServerIDs); err != nil {
		return b, fmt.Errorf("batch %s: servers: %w", key, err)
	}
	if err := unmarshalText(out, &b.LeftOut); err != nil {
		return b, fmt.Errorf("batch %s: left out: %w", key, err)
	}
	return b, nil
}

func marshalText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// unmarshalText reads JSON text into v; "" leaves v as it is.
func unmarshalText(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// CreateGroupLaunch stores g with its batches unless a group launch with g.ID is stored
// already (a replica that took a confirmation over creates it again), and reports whether it
// stored it. The batches are queued, but for the first one when owner is not "": it is
// claimed by owner under a lease until now+ttl, as ClaimBatch would, and returned, so that
// the caller starts it without another replica's claim getting in between. g.UpdatedAt is set
// to g.CreatedAt. It returns an error if g.ID is empty or a batch names another group.
func (s *Store) CreateGroupLaunch(ctx context.Context, g migration.GroupLaunch, batches []migration.Batch, owner string, now time.Time, ttl time.Duration) (first BatchClaim, created bool, err error) {
	if g.ID == "" {
		return BatchClaim{}, false, errors.New("create group launch: id is required")
	}
	ids, err := marshalText(g.ServerIDs)
	if err != nil {
		return BatchClaim{}, false, fmt.Errorf("create group launch %s: %w", g.ID, err)
	}
	out, err := marshalText(g.LeftOut)
	if err != nil {
		return BatchClaim{}, false, fmt.Errorf("create group launch %s: %w", g.ID, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO group_launches (`+groupColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $12)
			ON CONFLICT (id) DO NOTHING`,
			g.ID, string(g.Mode), string(g.Target.Kind), g.Target.ID, g.Target.Name, g.RequestedBy, joinUsers(g.ApprovedBy),
			ids, out, g.Channel, g.ParentTS, micros(g.CreatedAt), g.Done, g.Outcome)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		created = true
		for i, b := range batches {
			if b.GroupID != g.ID {
				return fmt.Errorf("batch %s is not of this group", b.Key())
			}
			bids, err := marshalText(b.ServerIDs)
			if err != nil {
				return err
			}
			state, holder, lease, fence := migration.BatchQueued, "", int64(0), int64(0)
			if i == 0 && owner != "" {
				state, holder, lease, fence = migration.BatchStarting, owner, micros(now.Add(ttl)), 1
			}
			c, err := scanBatch(tx.QueryRowContext(ctx, `INSERT INTO launch_batches (batch_key, group_id, seq, created_at, server_ids, state,
					owner, lease_until, fence, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $4) RETURNING `+batchColumns,
				b.Key(), g.ID, b.Seq, micros(g.CreatedAt), bids, string(state), holder, lease, fence))
			if err != nil {
				return err
			}
			if i == 0 {
				first = c
			}
		}
		return nil
	})
	if err != nil {
		return BatchClaim{}, false, fmt.Errorf("create group launch %s: %w", g.ID, err)
	}
	return first, created, nil
}

// GroupLaunch returns the group launch with id, or ErrNotFound.
func (s *Store) GroupLaunch(ctx context.Context, id string) (migration.GroupLaunch, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM group_launches WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return migration.GroupLaunch{}, fmt.Errorf("group launch %s: %w", id, err)
	}
	return g, nil
}

// ActiveGroupLaunches returns the group launches not Done, oldest first.
func (s *Store) ActiveGroupLaunches(ctx context.Context) ([]migration.GroupLaunch, error) {
	gs, err := collect(ctx, s.db, scanGroup, `SELECT `+groupColumns+` FROM group_launches WHERE NOT done ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("active group launches: %w", err)
	}
	return gs, nil
}

// SetGroupParent records the thread that the group launch's progress is posted into. It
// returns ErrNotFound if there is no such group launch.
func (s *Store) SetGroupParent(ctx context.Context, id, channel, ts string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE group_launches SET channel = $2, parent_ts = $3, updated_at = $4 WHERE id = $1`,
		id, channel, ts, micros(s.now()))
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("set group parent %s: %w", id, err)
	}
	return nil
}

// FinishGroupLaunch marks the group launch Done with outcome. It returns ErrNotFound if there
// is no such group launch.
func (s *Store) FinishGroupLaunch(ctx context.Context, id, outcome string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE group_launches SET done = $2, outcome = $3, updated_at = $4 WHERE id = $1`,
		id, true, outcome, micros(s.now()))
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("finish group launch %s: %w", id, err)
	}
	return nil
}

// Batches returns the batches of the group launch id, in order.
func (s *Store) Batches(ctx context.Context, id string) ([]migration.Batch, error) {
	cs, err := collect(ctx, s.db, scanBatch, `SELECT `+batchColumns+` FROM launch_batches WHERE group_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("batches of %s: %w", id, err)
	}
	out := make([]migration.Batch, len(cs))
	for i, c := range cs {
		out[i] = c.Batch
	}
	return out, nil
}

// Batch returns the batch with key (migration.Batch.Key), or ErrNotFound.
func (s *Store) Batch(ctx context.Context, key string) (migration.Batch, error) {
	c, err := s.batch(ctx, key)
	if err != nil {
		return migration.Batch{}, fmt.Errorf("batch %s: %w", key, err)
	}
	return c.Batch, nil
}

func (s *Store) batch(ctx context.Context, key string) (BatchClaim, error) {
	c, err := scanBatch(s.db.QueryRowContext(ctx, `SELECT `+batchColumns+` FROM launch_batches WHERE batch_key = $1`, key))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return c, err
}

// claimable is the condition of a batch that may be claimed at $2: queued and due, or
// starting under a lease that ended.
const claimable = `((state = 'queued' AND next_try <= $2) OR (state = 'starting' AND lease_until <= $2))`

// ClaimBatch gives owner, under a lease until now+ttl and a new fence token, the next batch
// to start: of the group launch groupID, or of any when groupID is "". A batch is next when
// it is queued and due (NextTry at or before now) or starting under a lease that ended (its
// claimer stopped), and every earlier batch of its group started or failed; the oldest group
// goes first. It reports false when there is none. Each batch is returned to one caller only,
// in this or other replicas.
func (s *Store) ClaimBatch(ctx context.Context, groupID, owner string, now time.Time, ttl time.Duration) (BatchClaim, bool, error) {
	c, err := scanBatch(s.db.QueryRowContext(ctx, `UPDATE launch_batches
		SET taken_over = (state = 'starting'), state = 'starting', owner = $1, lease_until = $3, fence = fence + 1, updated_at = $2
		WHERE batch_key = (SELECT b.batch_key FROM launch_batches b
			WHERE `+claimableAs("b")+` AND ($4 = '' OR b.group_id = $4)
			AND NOT EXISTS (SELECT 1 FROM launch_batches e WHERE e.group_id = b.group_id AND e.seq < b.seq
				AND e.state IN ('queued', 'starting'))
			ORDER BY b.created_at, b.group_id, b.seq LIMIT 1)
		AND `+claimable+`
		RETURNING `+batchColumns, owner, micros(now), micros(now.Add(ttl)), groupID))
	if errors.Is(err, sql.ErrNoRows) {
		return BatchClaim{}, false, nil
	}
	if err != nil {
		return BatchClaim{}, false, fmt.Errorf("claim batch: %w", err)
	}
	return c, true, nil
}

// claimableAs is claimable for the table alias a.
func claimableAs(a string) string {
	return `((` + a + `.state = 'queued' AND ` + a + `.next_try <= $2) OR (` + a + `.state = 'starting' AND ` + a + `.lease_until <= $2))`
}

// RenewBatch extends f's lease of a starting batch to now+ttl. It fails with ErrLeaseLost
// unless f is the current fence and its lease has not ended at now.
func (s *Store) RenewBatch(ctx context.Context, key string, f Fence, now time.Time, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE launch_batches SET lease_until = $4
		WHERE batch_key = $1 AND state = 'starting' AND owner = $2 AND fence = $3 AND lease_until > $5`,
		key, f.Owner, f.Token, micros(now.Add(ttl)), micros(now))
	if err := s.batchFenced(ctx, key, res, err); err != nil {
		return fmt.Errorf("renew batch %s: %w", key, err)
	}
	return nil
}

// BatchOutcome is what became of a claimed batch.
type BatchOutcome struct {
	// State is BatchStarted (MGN has the job), BatchFailed (nothing will be launched) or
	// BatchQueued (try again at NextTry).
	State migration.BatchState
	JobID string // BatchStarted
	Error string // BatchFailed
	// ServerIDs, when not nil, replace the batch's servers (some were left out); LeftOut are
	// added to the batch's left-out servers.
	ServerIDs []string
	LeftOut   []migration.LeftOut
	NextTry   time.Time // BatchQueued
	Busy      int       // BatchQueued: servers in active jobs when MGN had no room
}

// CompleteBatch records what became of a starting batch. That it started (BatchStarted) is
// recorded whoever holds the lease, since it states what MGN did; that it failed or goes back
// to the queue only by the current fence f whose lease has not ended at now, so that it is
// never recorded while another replica may be asking MGN. It returns ErrLeaseLost when f may
// not record it, ErrAlreadyDecided when the batch is not starting and ErrNotFound when there
// is none.
func (s *Store) CompleteBatch(ctx context.Context, key string, o BatchOutcome, f Fence, now time.Time) error {
	err := s.completeBatch(ctx, key, o, f, now)
	if err != nil {
		return fmt.Errorf("complete batch %s: %w", key, err)
	}
	return nil
}

func (s *Store) completeBatch(ctx context.Context, key string, o BatchOutcome, f Fence, now time.Time) error {
	cur, err := s.batch(ctx, key)
	if err != nil {
		return err
	}
	ids := cur.ServerIDs
	if o.ServerIDs != nil {
		ids = o.ServerIDs
	}
	idsText, err := marshalText(ids)
	if err != nil {
		return err
	}
	outText, err := marshalText(append(cur.LeftOut, o.LeftOut...))
	if err != nil {
		return err
	}
	var res sql.Result
	switch o.State {
	case migration.BatchStarted:
		res, err = s.db.ExecContext(ctx, `UPDATE launch_batches SET state = 'started', job_id = $2, server_ids = $3, left_out = $4,
				lease_until = 0, updated_at = $5
			WHERE batch_key = $1 AND state = 'starting'`, key, o.JobID, idsText, outText, micros(now))
	case migration.BatchFailed, migration.BatchQueued:
		res, err = s.db.ExecContext(ctx, `UPDATE launch_batches SET state = $2, error = $3, server_ids = $4, left_out = $5,
				next_try = $6, busy = $7, lease_until = 0, updated_at = $8
			WHERE batch_key = $1 AND state = 'starting' AND owner = $9 AND fence = $10 AND lease_until > $8`,
			key, string(o.State), o.Error, idsText, outText, micros(o.NextTry), o.Busy, micros(now), f.Owner, f.Token)
	default:
		return fmt.Errorf("cannot complete as %q", o.State)
	}
	return s.batchFenced(ctx, key, res, err)
}

// ReleaseBatch ends f's lease of a starting batch at once, so that the next claim (of any
// replica) takes it over and asks MGN what happened. It is a no-op when f no longer holds it.
func (s *Store) ReleaseBatch(ctx context.Context, key string, f Fence) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE launch_batches SET lease_until = 0
		WHERE batch_key = $1 AND state = 'starting' AND owner = $2 AND fence = $3`, key, f.Owner, f.Token); err != nil {
		return fmt.Errorf("release batch %s: %w", key, err)
	}
	return nil
}

// batchFenced turns a fenced UPDATE that matched no row into the reason: ErrNotFound,
// ErrAlreadyDecided (not starting) or ErrLeaseLost.
func (s *Store) batchFenced(ctx context.Context, key string, res sql.Result, err error) error {
	return whyUnmatched(res, err, func() (bool, error) {
		c, err := s.batch(ctx, key)
		return c.State == migration.BatchStarting, err
	})
}
