package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ConfirmationState is where a confirmation is in its life:
// pending -> confirmed | cancelled | expired, then confirmed -> launched | failed.
type ConfirmationState string

// Confirmation states.
const (
	Pending   ConfirmationState = "pending"
	Confirmed ConfirmationState = "confirmed"
	Cancelled ConfirmationState = "cancelled"
	Expired   ConfirmationState = "expired"
	Launched  ConfirmationState = "launched"
	Failed    ConfirmationState = "failed"
)

// Confirmation is a cutover or finalize request waiting for an approver's
// click.
type Confirmation struct {
	ID          string // random token, carried in the button value
	Action      string // "cutover" or "finalize"
	ServerIDs   []string
	RequestedBy string // Slack user ID
	Channel     string // "" until the message is posted
	MessageTS   string // "" until the message is posted
	CreatedAt   time.Time
	ExpiresAt   time.Time
	State       ConfirmationState // "" means Pending when created
	DecidedBy   string            // Slack user ID; "" while pending or expired
	DecidedAt   time.Time         // zero while pending or expired
	JobID       string            // the launch job, once launched
	Error       string            // why the launch failed
}

const confirmationColumns = `id, action, requested_by, channel, message_ts, created_at, expires_at,
	state, decided_by, decided_at, job_id, error`

const confirmationServersQuery = `SELECT confirmation_id, server_id FROM confirmation_servers
	WHERE confirmation_id IN (%s) ORDER BY confirmation_id, pos`

func scanConfirmation(row scanner) (Confirmation, error) {
	var (
		c                Confirmation
		created, expires int64
		decided          sql.NullInt64
		state            string
	)
	err := row.Scan(&c.ID, &c.Action, &c.RequestedBy, &c.Channel, &c.MessageTS, &created, &expires,
		&state, &c.DecidedBy, &decided, &c.JobID, &c.Error)
	c.CreatedAt, c.ExpiresAt, c.DecidedAt = fromMicros(created), fromMicros(expires), fromNullMicros(decided)
	c.State = ConfirmationState(state)
	return c, err
}

// CreateConfirmation stores c with its server list. It returns an error if
// c.ID or c.Action is empty or a confirmation with c.ID exists.
func (s *Store) CreateConfirmation(ctx context.Context, c Confirmation) error {
	if c.ID == "" || c.Action == "" {
		return fmt.Errorf("create confirmation: id and action are required")
	}
	if c.State == "" {
		c.State = Pending
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO confirmations (`+confirmationColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			c.ID, c.Action, c.RequestedBy, c.Channel, c.MessageTS, micros(c.CreatedAt), micros(c.ExpiresAt),
			string(c.State), c.DecidedBy, nullMicros(c.DecidedAt), c.JobID, c.Error); err != nil {
			return err
		}
		return insertServers(ctx, tx, "confirmation_servers", "confirmation_id, pos, server_id", c.ID, c.ServerIDs)
	})
	if err != nil {
		return fmt.Errorf("create confirmation %s: %w", c.ID, err)
	}
	return nil
}

// SetConfirmationMessage records where the confirmation card was posted.
// It returns ErrNotFound if there is no such confirmation.
func (s *Store) SetConfirmationMessage(ctx context.Context, id, channel, ts string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE confirmations SET channel = $2, message_ts = $3 WHERE id = $1`, id, channel, ts)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("set confirmation message %s: %w", id, err)
	}
	return nil
}

// Confirmation returns the confirmation with id, or ErrNotFound.
func (s *Store) Confirmation(ctx context.Context, id string) (Confirmation, error) {
	c, err := s.confirmation(ctx, id)
	if err != nil {
		return Confirmation{}, fmt.Errorf("confirmation %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) confirmation(ctx context.Context, id string) (Confirmation, error) {
	c, err := scanConfirmation(s.db.QueryRowContext(ctx, `SELECT `+confirmationColumns+` FROM confirmations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Confirmation{}, ErrNotFound
	}
	if err != nil {
		return Confirmation{}, err
	}
	return c, s.fillConfirmationServers(ctx, []*Confirmation{&c})
}

func (s *Store) fillConfirmationServers(ctx context.Context, cs []*Confirmation) error {
	if len(cs) == 0 {
		return nil
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	servers, err := loadServers(ctx, s.db, confirmationServersQuery, ids)
	if err != nil {
		return err
	}
	for _, c := range cs {
		c.ServerIDs = servers[c.ID]
	}
	return nil
}

// DecideConfirmation moves a pending confirmation that has not expired at
// now to state to (Confirmed or Cancelled), recording by and now, and returns
// it. Of several concurrent callers, in this or other replicas, exactly one
// wins: the move is one conditional UPDATE. A loser gets the current
// confirmation and ErrAlreadyDecided. Past its expiry a pending confirmation
// becomes Expired, and it is returned with ErrExpired. It returns ErrNotFound
// if there is no such confirmation.
func (s *Store) DecideConfirmation(ctx context.Context, id string, to ConfirmationState, by string, now time.Time) (Confirmation, error) {
	if to != Confirmed && to != Cancelled {
		return Confirmation{}, fmt.Errorf("decide confirmation %s: cannot decide to %q", id, to)
	}
	c, err := s.decide(ctx, id, to, by, now)
	if err != nil {
		return c, fmt.Errorf("decide confirmation %s: %w", id, err)
	}
	return c, nil
}

func (s *Store) decide(ctx context.Context, id string, to ConfirmationState, by string, now time.Time) (Confirmation, error) {
	c, err := scanConfirmation(s.db.QueryRowContext(ctx, `UPDATE confirmations
		SET state = $2, decided_by = $3, decided_at = $4
		WHERE id = $1 AND state = 'pending' AND expires_at > $4
		RETURNING `+confirmationColumns, id, string(to), by, micros(now)))
	if err == nil {
		return c, s.fillConfirmationServers(ctx, []*Confirmation{&c})
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Confirmation{}, err
	}
	// Lost, expired or missing. Expire it if it is due; this too is
	// conditional, so it is harmless when someone else just decided it.
	if _, err := s.db.ExecContext(ctx, `UPDATE confirmations SET state = 'expired'
		WHERE id = $1 AND state = 'pending' AND expires_at <= $2`, id, micros(now)); err != nil {
		return Confirmation{}, err
	}
	c, err = s.confirmation(ctx, id)
	if err != nil {
		return Confirmation{}, err
	}
	if c.State == Expired {
		return c, ErrExpired
	}
	return c, ErrAlreadyDecided
}

// ExpireConfirmations moves every pending confirmation whose expiry is at or
// before now to Expired and returns those it moved, so that their cards can
// be updated; a confirmation is returned to one caller only.
func (s *Store) ExpireConfirmations(ctx context.Context, now time.Time) ([]Confirmation, error) {
	cs, err := s.queryConfirmations(ctx, `UPDATE confirmations SET state = 'expired'
		WHERE state = 'pending' AND expires_at <= $1 RETURNING `+confirmationColumns, micros(now))
	if err != nil {
		return nil, fmt.Errorf("expire confirmations: %w", err)
	}
	return cs, nil
}

// CompleteConfirmation records the outcome of launching a Confirmed
// confirmation: state is Launched (with the launch's jobID) or Failed (with
// errText). It returns ErrNotFound if there is no such confirmation and
// ErrAlreadyDecided if it is not Confirmed (already completed, say).
func (s *Store) CompleteConfirmation(ctx context.Context, id string, state ConfirmationState, jobID, errText string) error {
	if state != Launched && state != Failed {
		return fmt.Errorf("complete confirmation %s: cannot complete as %q", id, state)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE confirmations SET state = $2, job_id = $3, error = $4
		WHERE id = $1 AND state = 'confirmed'`, id, string(state), jobID, errText)
	err = affectedOne(res, err)
	if errors.Is(err, ErrNotFound) {
		if _, err2 := s.confirmation(ctx, id); err2 == nil {
			err = ErrAlreadyDecided
		} else if !errors.Is(err2, ErrNotFound) {
			err = err2
		}
	}
	if err != nil {
		return fmt.Errorf("complete confirmation %s: %w", id, err)
	}
	return nil
}

// Confirmations returns the confirmations in state, oldest first: after a
// restart, Confirmed ones were approved but maybe never launched.
func (s *Store) Confirmations(ctx context.Context, state ConfirmationState) ([]Confirmation, error) {
	cs, err := s.queryConfirmations(ctx, `SELECT `+confirmationColumns+` FROM confirmations
		WHERE state = $1 ORDER BY created_at, id`, string(state))
	if err != nil {
		return nil, fmt.Errorf("confirmations %s: %w", state, err)
	}
	return cs, nil
}

func (s *Store) queryConfirmations(ctx context.Context, query string, args ...any) ([]Confirmation, error) {
	cs, err := collect(ctx, s.db, scanConfirmation, query, args...)
	if err != nil {
		return nil, err
	}
	ptrs := make([]*Confirmation, len(cs))
	for i := range cs {
		ptrs[i] = &cs[i]
	}
	return cs, s.fillConfirmationServers(ctx, ptrs)
}

// affectedOne turns an UPDATE that matched no row into ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
