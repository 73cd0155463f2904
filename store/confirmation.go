package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ConfirmationState is where a confirmation is in its life:
//
//	pending --(enough approvals)--> confirmed --(owner begins the AWS call)--> calling
//	pending --> cancelled | expired
//	confirmed | calling --> launched (MGN has the job) | failed (MGN has nothing)
//
// A confirmed or calling confirmation is work in progress owned by one replica under a lease
// (Owner, LeaseUntil) and a fence token (Fence) that grows each time ownership changes. Only
// the owner holding the current fence can begin the AWS call or record that nothing launched;
// after its lease ends, another replica can take the work over (TakeOverConfirmations), which
// fences the old owner out. Recording a launch is allowed from either in-progress state
// whoever holds the lease, because it states what MGN did.
type ConfirmationState string

// Confirmation states.
const (
	Pending   ConfirmationState = "pending"
	Confirmed ConfirmationState = "confirmed"
	Calling   ConfirmationState = "calling"
	Cancelled ConfirmationState = "cancelled"
	Expired   ConfirmationState = "expired"
	Launched  ConfirmationState = "launched"
	Failed    ConfirmationState = "failed"
)

// Final reports whether nothing more happens to a confirmation in state s (see FinalStates).
func (s ConfirmationState) Final() bool { return slices.Contains(FinalStates, s) }

// InProgress reports whether a confirmation in state s was decided and its action is being
// carried out.
func (s ConfirmationState) InProgress() bool { return s == Confirmed || s == Calling }

// Confirmation is a cutover or finalize request: it waits for approvers' clicks, then its
// action is carried out once.
type Confirmation struct {
	ID        string // random token, carried in the button value
	Action    string // "cutover" or "finalize"
	ServerIDs []string
	// GroupKind, GroupID and GroupName name the wave ("wave") or application ("app") the
	// request is for; all "" for servers named one by one.
	GroupKind, GroupID, GroupName string
	RequestedBy                   string // Slack user ID
	Channel                       string // "" until the message is posted
	MessageTS                     string // "" until the message is posted
	CreatedAt                     time.Time
	ExpiresAt                     time.Time
	// Title and Body are what the card showed when it was requested: a plain-text title and
	// mrkdwn sections (the servers and their pre-flight checks), kept so that the card can be
	// drawn again in any state without asking AWS.
	Title string
	Body  []string
	// ApprovalsNeeded is how many distinct approvers must confirm; 0 is read as 1.
	ApprovalsNeeded int
	// Approvals are the approvers who confirmed so far, in order.
	Approvals []string
	State     ConfirmationState // "" means Pending when created
	DecidedBy string            // who decided it: the last approver, or who cancelled; "" while pending or expired
	DecidedAt time.Time         // zero while pending or expired
	JobID     string            // the launch job, once launched
	Error     string            // why nothing was launched (failed)
	Detail    string            // what was done, in words, when there is more to say than the job (finalize)

	// Owner holds the work of an in-progress confirmation until LeaseUntil; Fence grows with
	// every change of owner.
	Owner      string
	LeaseUntil time.Time
	Fence      int64

	// Version grows with every change; CardVersion is the version its Slack card shows.
	Version     int64
	CardVersion int64
	UpdatedAt   time.Time
	// RecheckUntil is, for a Failed confirmation whose AWS call had an ambiguous answer, until
	// when MGN is asked again whether it started the launch late; zero when it is not.
	RecheckUntil time.Time
}

// Token is the fence of the confirmation's current owner.
func (c Confirmation) Token() Fence { return Fence{Owner: c.Owner, Token: c.Fence} }

// Needed is how many approvals the confirmation needs (at least 1).
func (c Confirmation) Needed() int { return max(c.ApprovalsNeeded, 1) }

// Fence names an owner of a confirmation's work and the fence token it was given.
type Fence struct {
	Owner string
	Token int64
}

// Outcome is how a confirmation's action ended.
type Outcome struct {
	State  ConfirmationState // Launched or Failed
	JobID  string            // the launch job (Launched cutovers)
	Error  string            // why nothing was launched (Failed)
	Detail string            // what was done, in words
	// RecheckUntil keeps asking MGN, until then, whether it started a launch whose call had
	// an ambiguous answer (Failed); zero when MGN's refusal was clear.
	RecheckUntil time.Time
}

const confirmationColumns = `id, action, requested_by, channel, message_ts, created_at, expires_at,
	state, decided_by, decided_at, job_id, error, detail, title, body, approvals_needed,
	owner, lease_until, fence, version, card_version, updated_at, recheck_until, target_kind, target_id, target_name`

const (
	confirmationServersQuery = `SELECT confirmation_id, server_id FROM confirmation_servers
	WHERE confirmation_id IN (%s) ORDER BY confirmation_id, pos`
	confirmationApprovalsQuery = `SELECT confirmation_id, user_id FROM confirmation_approvals
	WHERE confirmation_id IN (%s) ORDER BY confirmation_id, pos`
)

func scanConfirmation(row scanner) (Confirmation, error) {
	var (
		c                                           Confirmation
		created, expires, lease, updatedAt, recheck int64
		decided                                     sql.NullInt64
		state, body                                 string
	)
	err := row.Scan(&c.ID, &c.Action, &c.RequestedBy, &c.Channel, &c.MessageTS, &created, &expires,
		&state, &c.DecidedBy, &decided, &c.JobID, &c.Error, &c.Detail, &c.Title, &body, &c.ApprovalsNeeded,
		&c.Owner, &lease, &c.Fence, &c.Version, &c.CardVersion, &updatedAt, &recheck, &c.GroupKind, &c.GroupID, &c.GroupName)
	c.CreatedAt, c.ExpiresAt, c.DecidedAt = fromMicros(created), fromMicros(expires), fromNullMicros(decided)
	c.LeaseUntil, c.UpdatedAt = fromNullMicros(sql.NullInt64{Int64: lease, Valid: lease != 0}), fromMicros(updatedAt)
	c.RecheckUntil = fromNullMicros(sql.NullInt64{Int64: recheck, Valid: recheck != 0})
	c.State = ConfirmationState(state)
	if err == nil && body != "" {
		if jerr := json.Unmarshal([]byte(body), &c.Body); jerr != nil {
			err = fmt.Errorf("confirmation %s: body: %w", c.ID, jerr)
		}
	}
	return c, err
}

// AlreadyRequestedError is CreateConfirmation's error when a confirmation of the same action
// is pending for one of the servers; it wraps ErrAlreadyRequested.
type AlreadyRequestedError struct {
	ID string // the pending confirmation
}

func (e *AlreadyRequestedError) Error() string { return "already requested by confirmation " + e.ID }

func (e *AlreadyRequestedError) Unwrap() error { return ErrAlreadyRequested }

// CreateConfirmation stores c with its server list, at version 1. A pending confirmation of
// c.Action that has not expired at c.CreatedAt may hold each server: when one already does, c
// is not stored and the error is an *AlreadyRequestedError naming it. Of concurrent callers
// for one server, in this or other replicas, one stores its confirmation. It returns an error
// if c.ID or c.Action is empty or a confirmation with c.ID exists.
func (s *Store) CreateConfirmation(ctx context.Context, c Confirmation) error {
	if c.ID == "" || c.Action == "" {
		return fmt.Errorf("create confirmation: id and action are required")
	}
	if c.State == "" {
		c.State = Pending
	}
	body := ""
	if len(c.Body) > 0 {
		b, err := json.Marshal(c.Body)
		if err != nil {
			return fmt.Errorf("create confirmation %s: %w", c.ID, err)
		}
		body = string(b)
	}
	var taken string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO confirmations (id, action, requested_by, channel, message_ts,
			created_at, expires_at, state, decided_by, decided_at, job_id, error, detail, title, body, approvals_needed,
			version, updated_at, target_kind, target_id, target_name)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1, $6, $17, $18, $19)`,
			c.ID, c.Action, c.RequestedBy, c.Channel, c.MessageTS, micros(c.CreatedAt), micros(c.ExpiresAt),
			string(c.State), c.DecidedBy, nullMicros(c.DecidedAt), c.JobID, c.Error, c.Detail, c.Title, body, c.Needed(),
			c.GroupKind, c.GroupID, c.GroupName); err != nil {
			return err
		}
		if err := insertServers(ctx, tx, "confirmation_servers", "confirmation_id, pos, server_id", c.ID, c.ServerIDs); err != nil {
			return err
		}
		if c.State != Pending {
			return nil
		}
		return s.holdServers(ctx, tx, c, &taken)
	})
	if taken != "" {
		return fmt.Errorf("create confirmation %s: %w", c.ID, &AlreadyRequestedError{ID: taken})
	}
	if err != nil {
		return fmt.Errorf("create confirmation %s: %w", c.ID, err)
	}
	return nil
}

// errTaken ends CreateConfirmation's transaction when a server is held by another request.
var errTaken = errors.New("server held")

// holdServers claims c's servers for c's action, first freeing those held by confirmations
// that are no longer pending or have expired; when one is held by a live pending
// confirmation, it names it in taken and fails the transaction. On PostgreSQL a concurrent
// claim of the same row waits for the other transaction and then finds the row taken.
func (s *Store) holdServers(ctx context.Context, tx *sql.Tx, c Confirmation, taken *string) error {
	for start := 0; start < len(c.ServerIDs); start += serverChunk {
		ids := c.ServerIDs[start:min(start+serverChunk, len(c.ServerIDs))]
		args := []any{c.Action, micros(c.CreatedAt)}
		for _, id := range ids {
			args = append(args, id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_servers WHERE action = $1
			AND server_id IN (`+placeholders(3, len(ids))+`)
			AND confirmation_id IN (SELECT id FROM confirmations WHERE state <> 'pending' OR expires_at <= $2)`, args...); err != nil {
			return err
		}
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `INSERT INTO pending_servers (action, server_id, confirmation_id) VALUES ($1, $2, $3)
				ON CONFLICT (action, server_id) DO NOTHING`, c.Action, id, c.ID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				if err := tx.QueryRowContext(ctx, `SELECT confirmation_id FROM pending_servers WHERE action = $1 AND server_id = $2`,
					c.Action, id).Scan(taken); err != nil {
					return err
				}
				return errTaken
			}
		}
	}
	return nil
}

// SetConfirmationMessage records where the confirmation card was posted; the card then shows
// the current version. It returns ErrNotFound if there is no such confirmation.
func (s *Store) SetConfirmationMessage(ctx context.Context, id, channel, ts string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE confirmations SET channel = $2, message_ts = $3, card_version = version WHERE id = $1`, id, channel, ts)
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
	return c, s.fillConfirmations(ctx, []*Confirmation{&c})
}

// fillConfirmations loads the servers and approvals of cs.
func (s *Store) fillConfirmations(ctx context.Context, cs []*Confirmation) error {
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
	approvals, err := loadServers(ctx, s.db, confirmationApprovalsQuery, ids)
	if err != nil {
		return err
	}
	for _, c := range cs {
		c.ServerIDs, c.Approvals = servers[c.ID], approvals[c.ID]
	}
	return nil
}

// Approval is what an approval did.
type Approval int

// What Approve did.
const (
	ApprovalAdded    Approval = iota // recorded; more approvals are needed
	ApprovalRepeated                 // the user had approved already; nothing changed
	ApprovalDecided                  // it was the last approval needed: the confirmation is Confirmed
	// ApprovalUnvouched: recorded, and enough approvals are there, but some that arrived
	// meanwhile were not vouched for; the caller checks them and approves again to decide.
	ApprovalUnvouched
)

// Approve records user's approval of a pending confirmation that has not expired at now. When
// the confirmation has all the approvals it needs and every approval but user's is in vouched
// (the approvers the caller has just checked are approvers still), it becomes Confirmed in the
// same transaction, decided by user, and its work is given to owner under a lease until
// now+ttl with a new fence token; approving again a confirmation that has all its approvals
// decides it the same way. Approvals of one confirmation are serialized, in this or other
// replicas, so exactly one caller gets ApprovalDecided, and only on approvals it vouched for.
// Past its expiry a pending confirmation becomes Expired and is returned with ErrExpired; one
// that is no longer pending is returned with ErrAlreadyDecided. It returns ErrNotFound if
// there is no such confirmation.
func (s *Store) Approve(ctx context.Context, id, user, owner string, now time.Time, ttl time.Duration, vouched []string) (Confirmation, Approval, error) {
	result := ApprovalRepeated
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Writing first takes the row's lock (PostgreSQL) or the database's (SQLite).
		var needed int
		err := tx.QueryRowContext(ctx, `UPDATE confirmations SET updated_at = updated_at
			WHERE id = $1 AND state = 'pending' AND expires_at > $2 RETURNING approvals_needed`, id, micros(now)).Scan(&needed)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotPending
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO confirmation_approvals (confirmation_id, user_id, at, pos)
			VALUES ($1, $2, $3, (SELECT COALESCE(MAX(pos) + 1, 0) FROM confirmation_approvals WHERE confirmation_id = $1))
			ON CONFLICT (confirmation_id, user_id) DO NOTHING`, id, user, micros(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		added := n > 0
		approvers, err := collect(ctx, tx, func(r scanner) (string, error) {
			var u string
			return u, r.Scan(&u)
		}, `SELECT user_id FROM confirmation_approvals WHERE confirmation_id = $1`, id)
		if err != nil {
			return err
		}
		bump := func() error {
			_, err := tx.ExecContext(ctx, `UPDATE confirmations SET version = version + 1, updated_at = $2 WHERE id = $1`, id, micros(now))
			return err
		}
		switch {
		case len(approvers) < max(needed, 1) && !added:
			return nil // repeated
		case len(approvers) < max(needed, 1):
			result = ApprovalAdded
			return bump()
		case slices.ContainsFunc(approvers, func(u string) bool { return u != user && !slices.Contains(vouched, u) }):
			result = ApprovalUnvouched
			if added {
				return bump()
			}
			return nil
		}
		result = ApprovalDecided
		_, err = tx.ExecContext(ctx, `UPDATE confirmations
			SET state = 'confirmed', decided_by = $2, decided_at = $3, owner = $4, lease_until = $5,
				fence = fence + 1, version = version + 1, updated_at = $3
			WHERE id = $1`, id, user, micros(now), owner, micros(now.Add(ttl)))
		return err
	})
	c, err := s.pendingChanged(ctx, "approve", id, now, err)
	return c, result, err
}

// pendingChanged finishes op, a change to the pending confirmation id that ended with err: it
// returns the confirmation as it is now or, when op found it no longer pending
// (errNotPending), why: ErrExpired or ErrAlreadyDecided.
func (s *Store) pendingChanged(ctx context.Context, op, id string, now time.Time, err error) (Confirmation, error) {
	if errors.Is(err, errNotPending) {
		var c Confirmation
		c, err = s.settlePending(ctx, id, now)
		if err == nil {
			err = errors.New("pending but unchanged") // unreachable: the update matched no pending row
		}
		return c, fmt.Errorf("%s %s: %w", op, id, err)
	}
	if err != nil {
		return Confirmation{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	c, err := s.confirmation(ctx, id)
	if err != nil {
		return Confirmation{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return c, nil
}

// WithdrawApprovals removes the approvals of users (people who are no longer approvers) from a
// pending confirmation that has not expired at now, and returns it. As Approve does, it returns
// ErrExpired or ErrAlreadyDecided when the confirmation is not pending, and ErrNotFound if there
// is no such confirmation.
func (s *Store) WithdrawApprovals(ctx context.Context, id string, users []string, now time.Time) (Confirmation, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE confirmations SET version = version + 1, updated_at = $2
			WHERE id = $1 AND state = 'pending' AND expires_at > $2`, id, micros(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, errNotPending)
		}
		for _, u := range users {
			if _, err := tx.ExecContext(ctx, `DELETE FROM confirmation_approvals WHERE confirmation_id = $1 AND user_id = $2`, id, u); err != nil {
				return err
			}
		}
		return nil
	})
	return s.pendingChanged(ctx, "withdraw approvals of", id, now, err)
}

// errNotPending ends Approve's transaction when the confirmation is not pending.
var errNotPending = errors.New("not pending")

// settlePending returns the confirmation, expiring it first if it is pending and due. It
// returns ErrExpired or ErrAlreadyDecided when it is not pending.
func (s *Store) settlePending(ctx context.Context, id string, now time.Time) (Confirmation, error) {
	// Expire it if it is due; conditional, so harmless when someone else just decided it.
	if _, err := s.db.ExecContext(ctx, `UPDATE confirmations SET state = 'expired', version = version + 1, updated_at = $2
		WHERE id = $1 AND state = 'pending' AND expires_at <= $2`, id, micros(now)); err != nil {
		return Confirmation{}, err
	}
	c, err := s.confirmation(ctx, id)
	switch {
	case err != nil:
		return Confirmation{}, err
	case c.State == Expired:
		return c, ErrExpired
	case c.State != Pending:
		return c, ErrAlreadyDecided
	}
	return c, nil
}

// CancelConfirmation moves a pending confirmation that has not expired at now to Cancelled,
// by by. Past its expiry a pending confirmation becomes Expired and is returned with
// ErrExpired; one that is no longer pending is returned with ErrAlreadyDecided. It returns
// ErrNotFound if there is no such confirmation.
func (s *Store) CancelConfirmation(ctx context.Context, id, by string, now time.Time) (Confirmation, error) {
	c, err := s.updateConfirmation(ctx, `UPDATE confirmations
		SET state = 'cancelled', decided_by = $2, decided_at = $3, version = version + 1, updated_at = $3
		WHERE id = $1 AND state = 'pending' AND expires_at > $3
		RETURNING `+confirmationColumns, id, by, micros(now))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Confirmation{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	c, err = s.settlePending(ctx, id, now)
	if err == nil {
		err = errors.New("not cancelled") // unreachable: the update matched no pending row
	}
	return c, fmt.Errorf("cancel %s: %w", id, err)
}

// updateConfirmation runs an UPDATE … RETURNING of one confirmation and loads its lists. It
// returns sql.ErrNoRows when the update matched nothing.
func (s *Store) updateConfirmation(ctx context.Context, query string, args ...any) (Confirmation, error) {
	c, err := scanConfirmation(s.db.QueryRowContext(ctx, query, args...))
	if err != nil {
		return Confirmation{}, err
	}
	return c, s.fillConfirmations(ctx, []*Confirmation{&c})
}

// BeginCall records that f's owner is about to call AWS for an in-progress confirmation (again,
// when it took the work over after a call), and extends its lease to now+ttl. It fails with ErrLeaseLost unless f is the current fence and
// its lease has not ended at now: the caller must then not call AWS.
func (s *Store) BeginCall(ctx context.Context, id string, f Fence, now time.Time, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE confirmations SET state = 'calling', lease_until = $4,
			version = version + 1, updated_at = $5
		WHERE id = $1 AND state IN ('confirmed', 'calling') AND owner = $2 AND fence = $3 AND lease_until > $5`,
		id, f.Owner, f.Token, micros(now.Add(ttl)), micros(now))
	if err := s.fenced(ctx, id, res, err); err != nil {
		return fmt.Errorf("begin call %s: %w", id, err)
	}
	return nil
}

// RenewConfirmation extends f's lease of an in-progress confirmation to now+ttl. It fails with
// ErrLeaseLost unless f is the current fence and its lease has not ended at now.
func (s *Store) RenewConfirmation(ctx context.Context, id string, f Fence, now time.Time, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE confirmations SET lease_until = $4
		WHERE id = $1 AND state IN ('confirmed', 'calling') AND owner = $2 AND fence = $3 AND lease_until > $5`,
		id, f.Owner, f.Token, micros(now.Add(ttl)), micros(now))
	if err := s.fenced(ctx, id, res, err); err != nil {
		return fmt.Errorf("renew %s: %w", id, err)
	}
	return nil
}

// ReleaseConfirmation ends f's lease at once, so that another pass (of any replica) takes the
// work over without waiting for the lease to run out. It is a no-op when f no longer holds it.
func (s *Store) ReleaseConfirmation(ctx context.Context, id string, f Fence) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE confirmations SET lease_until = 0
		WHERE id = $1 AND state IN ('confirmed', 'calling') AND owner = $2 AND fence = $3`, id, f.Owner, f.Token); err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	return nil
}

// CompleteConfirmation records how an in-progress confirmation's action ended. A launch
// (Launched) is recorded whoever holds the lease, since it states what MGN did; that nothing
// was launched (Failed) only by the current fence f whose lease has not ended at now, so that
// it is never recorded while another replica may be calling AWS. It returns ErrLeaseLost when
// f may not record a failure, ErrAlreadyDecided when the confirmation is not in progress
// (already completed, say) and ErrNotFound when there is none.
func (s *Store) CompleteConfirmation(ctx context.Context, id string, o Outcome, f Fence, now time.Time) error {
	var (
		res sql.Result
		err error
	)
	switch o.State {
	case Launched:
		// MGN's truth wins, also over a failure recorded while MGN could still act late.
		res, err = s.db.ExecContext(ctx, `UPDATE confirmations SET state = 'launched', job_id = $2, error = '', detail = $3,
				lease_until = 0, recheck_until = 0, version = version + 1, updated_at = $4
			WHERE id = $1 AND (state IN ('confirmed', 'calling') OR (state = 'failed' AND recheck_until > 0))`,
			id, o.JobID, o.Detail, micros(now))
	case Failed:
		res, err = s.db.ExecContext(ctx, `UPDATE confirmations SET state = 'failed', error = $2, detail = $3,
				lease_until = 0, recheck_until = $7, version = version + 1, updated_at = $4
			WHERE id = $1 AND state IN ('confirmed', 'calling') AND owner = $5 AND fence = $6 AND lease_until > $4`,
			id, o.Error, o.Detail, micros(now), f.Owner, f.Token, micros0(o.RecheckUntil))
	default:
		return fmt.Errorf("complete confirmation %s: cannot complete as %q", id, o.State)
	}
	if err := s.fenced(ctx, id, res, err); err != nil {
		return fmt.Errorf("complete confirmation %s: %w", id, err)
	}
	return nil
}

// fenced turns a fenced UPDATE that matched no row into the reason: ErrNotFound,
// ErrAlreadyDecided (not in progress) or ErrLeaseLost.
func (s *Store) fenced(ctx context.Context, id string, res sql.Result, err error) error {
	return whyUnmatched(res, err, func() (bool, error) {
		c, err := s.confirmation(ctx, id)
		return c.State.InProgress(), err
	})
}

// whyUnmatched turns a fenced UPDATE that matched no row into the reason: ErrNotFound (the
// row is gone), ErrAlreadyDecided (inProgress, which reads the row again, says its work is
// not in progress any more) or ErrLeaseLost.
func whyUnmatched(res sql.Result, err error, inProgress func() (bool, error)) error {
	err = affectedOne(res, err)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	busy, err := inProgress()
	switch {
	case err != nil:
		return err
	case !busy:
		return ErrAlreadyDecided
	}
	return ErrLeaseLost
}

// TakeOverConfirmations gives owner the work of at most limit in-progress confirmations whose
// lease ended at or before now (a lease more for one whose owner may be calling AWS, so that
// replicas' clocks may disagree by up to a lease), each under a lease until now+ttl and a new fence token, and
// returns them as they were taken (State says whether the old owner may have called AWS).
// Each is returned to one caller only, in this or other replicas.
func (s *Store) TakeOverConfirmations(ctx context.Context, owner string, now time.Time, ttl time.Duration, limit int) ([]Confirmation, error) {
	// A confirmation whose owner may be calling AWS is left one more lease (a released one,
	// lease_until 0, at once): an owner whose clock is behind ours may still be inside its
	// call, and a takeover now could call AWS a second time.
	const due = `(state = 'confirmed' AND lease_until <= $2) OR (state = 'calling' AND lease_until <= $4)`
	cs, err := s.queryConfirmations(ctx, `UPDATE confirmations
		SET owner = $1, lease_until = $3, fence = fence + 1, version = version + 1, updated_at = $2
		WHERE id IN (SELECT id FROM confirmations WHERE `+due+`
			ORDER BY decided_at, id`+limitClause(limit)+`)
			AND (`+due+`)
		RETURNING `+confirmationColumns, owner, micros(now), micros(now.Add(ttl)), micros(now.Add(-ttl)))
	if err != nil {
		return nil, fmt.Errorf("take over confirmations: %w", err)
	}
	return cs, nil
}

// RetryLater keeps an in-progress confirmation whose AWS call had an outcome MGN could not
// tell yet: no call is in flight any more (it is Confirmed again), f keeps it until now+wait,
// when any replica may take it over and ask MGN again before anything else, and note (words
// for its card) is recorded. It fails with ErrLeaseLost unless f holds it.
func (s *Store) RetryLater(ctx context.Context, id string, f Fence, now time.Time, wait time.Duration, note string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE confirmations SET state = 'confirmed', lease_until = $4, error = $6,
			version = version + CASE WHEN error = $6 THEN 0 ELSE 1 END, updated_at = $5
		WHERE id = $1 AND state IN ('confirmed', 'calling') AND owner = $2 AND fence = $3`,
		id, f.Owner, f.Token, micros(now.Add(wait)), micros(now), note)
	if err := s.fenced(ctx, id, res, err); err != nil {
		return fmt.Errorf("retry later %s: %w", id, err)
	}
	return nil
}

// Rechecks returns the failed confirmations whose launch MGN may still start late (their
// RecheckUntil is after now), and ends the recheck of those whose time is up, returning them
// too (their cards no longer need to say so).
func (s *Store) Rechecks(ctx context.Context, now time.Time) (open, ended []Confirmation, err error) {
	ended, err = s.queryConfirmations(ctx, `UPDATE confirmations SET recheck_until = 0, version = version + 1, updated_at = $1
		WHERE state = 'failed' AND recheck_until > 0 AND recheck_until <= $1 RETURNING `+confirmationColumns, micros(now))
	if err != nil {
		return nil, nil, fmt.Errorf("rechecks: %w", err)
	}
	open, err = s.queryConfirmations(ctx, `SELECT `+confirmationColumns+` FROM confirmations
		WHERE state = 'failed' AND recheck_until > $1 ORDER BY decided_at, id`, micros(now))
	if err != nil {
		return nil, nil, fmt.Errorf("rechecks: %w", err)
	}
	return open, ended, nil
}

// ExpireConfirmations moves every pending confirmation whose expiry is at or before now to
// Expired and returns those it moved, so that their cards can be updated; a confirmation is
// returned to one caller only.
func (s *Store) ExpireConfirmations(ctx context.Context, now time.Time) ([]Confirmation, error) {
	cs, err := s.queryConfirmations(ctx, `UPDATE confirmations SET state = 'expired', version = version + 1, updated_at = $1
		WHERE state = 'pending' AND expires_at <= $1 RETURNING `+confirmationColumns, micros(now))
	if err != nil {
		return nil, fmt.Errorf("expire confirmations: %w", err)
	}
	return cs, nil
}

// Confirmations returns the confirmations in state, oldest first.
func (s *Store) Confirmations(ctx context.Context, state ConfirmationState) ([]Confirmation, error) {
	cs, err := s.queryConfirmations(ctx, `SELECT `+confirmationColumns+` FROM confirmations
		WHERE state = $1 ORDER BY created_at, id`, string(state))
	if err != nil {
		return nil, fmt.Errorf("confirmations %s: %w", state, err)
	}
	return cs, nil
}

// StaleCards returns at most limit confirmations whose card shows an older version than the
// confirmation has, changed at or before before (so that a change another replica is still
// showing is left to it), oldest change first. Cards never posted are left out.
func (s *Store) StaleCards(ctx context.Context, before time.Time, limit int) ([]Confirmation, error) {
	cs, err := s.queryConfirmations(ctx, `SELECT `+confirmationColumns+` FROM confirmations
		WHERE card_version < version AND message_ts <> '' AND updated_at <= $1
		ORDER BY updated_at, id`+limitClause(limit), micros(before))
	if err != nil {
		return nil, fmt.Errorf("stale cards: %w", err)
	}
	return cs, nil
}

// CardShown records that the confirmation's card shows version (a card never goes back).
func (s *Store) CardShown(ctx context.Context, id string, version int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE confirmations SET card_version = $2
		WHERE id = $1 AND card_version < $2`, id, version); err != nil {
		return fmt.Errorf("card shown %s: %w", id, err)
	}
	return nil
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
	return cs, s.fillConfirmations(ctx, ptrs)
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
