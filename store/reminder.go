package store

import (
	"context"
	"fmt"
	"time"
)

// ClaimReminder claims the reminder firing (its scheduled time) for holder until now+ttl and
// reports whether holder has it: when nobody claimed the firing yet, when holder already
// holds it, or when another holder's claim expired at now; never once the firing is done.
// Of several concurrent callers for a free claim exactly one succeeds.
func (s *Store) ClaimReminder(ctx context.Context, firing time.Time, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("claim reminder %s: ttl %v is not positive", firing.UTC().Format(time.RFC3339), ttl)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO reminders (firing, holder, claimed_until, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (firing) DO UPDATE SET holder = excluded.holder, claimed_until = excluded.claimed_until, updated_at = excluded.updated_at
		WHERE NOT reminders.done AND (reminders.holder = excluded.holder OR reminders.claimed_until <= $4)`,
		micros(firing), holder, micros(now.Add(ttl)), micros(now))
	if err != nil {
		return false, fmt.Errorf("claim reminder %s: %w", firing.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim reminder %s: %w", firing.UTC().Format(time.RFC3339), err)
	}
	return n > 0, nil
}

// FinishReminder marks the claimed firing done, with the ts of the message that shows it
// ("" when nothing was posted, e.g. no server was due any more). It returns ErrNotFound if
// the firing was never claimed.
func (s *Store) FinishReminder(ctx context.Context, firing time.Time, ts string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE reminders SET done = $2, message_ts = $3, updated_at = $4 WHERE firing = $1`,
		micros(firing), true, ts, micros(now))
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("finish reminder %s: %w", firing.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// UnfinishedReminders returns the firings claimed and not done, oldest first.
func (s *Store) UnfinishedReminders(ctx context.Context) ([]time.Time, error) {
	out, err := collect(ctx, s.db, func(row scanner) (time.Time, error) {
		var us int64
		err := row.Scan(&us)
		return fromMicros(us), err
	}, `SELECT firing FROM reminders WHERE NOT done ORDER BY firing`)
	if err != nil {
		return nil, fmt.Errorf("unfinished reminders: %w", err)
	}
	return out, nil
}
