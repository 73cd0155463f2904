package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/cutoverbot/cutoverbot/migration"
)

const jobColumns = `job_id, kind, channel, parent_ts, started_by, started_at, log_cursor, posted, done, outcome, updated_at,
	requested_by, approved_by, tagged_by, group_id`

const jobServersQuery = `SELECT job_id, server_id FROM job_servers WHERE job_id IN (%s) ORDER BY job_id, pos`

func scanJob(row scanner) (migration.Launch, error) {
	var (
		j                migration.Launch
		started, updated int64
		approvers        string
	)
	err := row.Scan(&j.JobID, &j.Kind, &j.Channel, &j.ParentTS, &j.StartedBy, &started, &j.Cursor, &j.Posted,
		&j.Done, &j.Outcome, &updated, &j.RequestedBy, &approvers, &j.TaggedBy, &j.GroupID)
	j.StartedAt, j.UpdatedAt = fromMicros(started), fromMicros(updated)
	j.ApprovedBy = splitUsers(approvers)
	return j, err
}

// Approvers are stored comma-separated: Slack user IDs contain no comma.
func joinUsers(ids []string) string { return strings.Join(ids, ",") }

func splitUsers(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// FollowJob stores j unless a job with j.JobID is already stored, and
// reports whether it stored it. j.UpdatedAt is set to the current time when
// zero. It returns an error if j.JobID is empty.
func (s *Store) FollowJob(ctx context.Context, j migration.Launch) (created bool, err error) {
	if j.JobID == "" {
		return false, fmt.Errorf("follow job: job id is required")
	}
	if j.UpdatedAt.IsZero() {
		j.UpdatedAt = s.now()
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (job_id) DO NOTHING`,
			j.JobID, j.Kind, j.Channel, j.ParentTS, j.StartedBy, micros(j.StartedAt), j.Cursor, j.Posted,
			j.Done, j.Outcome, micros(j.UpdatedAt), j.RequestedBy, joinUsers(j.ApprovedBy), j.TaggedBy, j.GroupID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		created = true
		return insertServers(ctx, tx, "job_servers", "job_id, pos, server_id", j.JobID, j.ServerIDs)
	})
	if err != nil {
		return false, fmt.Errorf("follow job %s: %w", j.JobID, err)
	}
	return created, nil
}

// Job returns the job with jobID, or ErrNotFound.
func (s *Store) Job(ctx context.Context, jobID string) (migration.Launch, error) {
	js, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE job_id = $1`, jobID)
	if err == nil && len(js) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return migration.Launch{}, fmt.Errorf("job %s: %w", jobID, err)
	}
	return js[0], nil
}

// ActiveJobs returns the jobs not Done, oldest first.
func (s *Store) ActiveJobs(ctx context.Context) ([]migration.Launch, error) {
	js, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE NOT done ORDER BY started_at, job_id`)
	if err != nil {
		return nil, fmt.Errorf("active jobs: %w", err)
	}
	return js, nil
}

// GroupJobs returns the jobs of the group launch groupID, oldest first.
func (s *Store) GroupJobs(ctx context.Context, groupID string) ([]migration.Launch, error) {
	js, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE group_id = $1 ORDER BY started_at, job_id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("jobs of %s: %w", groupID, err)
	}
	return js, nil
}

// RecentJobs returns at most limit jobs (all when limit <= 0) newest first,
// only those including serverID unless it is "".
func (s *Store) RecentJobs(ctx context.Context, serverID string, limit int) ([]migration.Launch, error) {
	var (
		js  []migration.Launch
		err error
	)
	if serverID == "" {
		js, err = s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs
			ORDER BY started_at DESC, job_id DESC`+limitClause(limit))
	} else {
		js, err = s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs
			WHERE job_id IN (SELECT job_id FROM job_servers WHERE server_id = $1)
			ORDER BY started_at DESC, job_id DESC`+limitClause(limit), serverID)
	}
	if err != nil {
		return nil, fmt.Errorf("recent jobs: %w", err)
	}
	return js, nil
}

func (s *Store) queryJobs(ctx context.Context, query string, args ...any) ([]migration.Launch, error) {
	js, err := collect(ctx, s.db, scanJob, query, args...)
	if err != nil || len(js) == 0 {
		return js, err
	}
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.JobID
	}
	servers, err := loadServers(ctx, s.db, jobServersQuery, ids)
	if err != nil {
		return nil, err
	}
	for i := range js {
		js[i].ServerIDs = servers[js[i].JobID]
	}
	return js, nil
}

// SetJobRequester records who asked for the job through the bot and who approved it, for a
// job stored before they were known (the watcher found the job in MGN first); the job's
// unverified tag is dropped. It returns ErrNotFound if there is no such job.
func (s *Store) SetJobRequester(ctx context.Context, jobID, requestedBy string, approvedBy []string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET requested_by = $2, approved_by = $3, tagged_by = '', updated_at = $4
		WHERE job_id = $1`, jobID, requestedBy, joinUsers(approvedBy), micros(s.now()))
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("set job requester %s: %w", jobID, err)
	}
	return nil
}

// SetJobParent records the thread that the job's progress is posted into.
// It returns ErrNotFound if there is no such job.
func (s *Store) SetJobParent(ctx context.Context, jobID, channel, ts string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET channel = $2, parent_ts = $3, updated_at = $4 WHERE job_id = $1`,
		jobID, channel, ts, micros(s.now()))
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("set job parent %s: %w", jobID, err)
	}
	return nil
}

// SaveProgress stores the log cursor after the first posted log items were
// posted. Progress only moves forward: if posted is less than what is
// stored, nothing changes and it returns ErrStale. It returns ErrNotFound if
// there is no such job.
func (s *Store) SaveProgress(ctx context.Context, jobID, cursor string, posted int) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET log_cursor = $2, posted = $3, updated_at = $4
		WHERE job_id = $1 AND posted <= $3`, jobID, cursor, posted, micros(s.now()))
	err = affectedOne(res, err)
	if errors.Is(err, ErrNotFound) {
		var n int
		switch err2 := s.db.QueryRowContext(ctx, `SELECT posted FROM jobs WHERE job_id = $1`, jobID).Scan(&n); {
		case err2 == nil:
			err = fmt.Errorf("%w: %d items posted, %d stored", ErrStale, posted, n)
		case !errors.Is(err2, sql.ErrNoRows):
			err = err2
		}
	}
	if err != nil {
		return fmt.Errorf("save progress %s: %w", jobID, err)
	}
	return nil
}

// FinishJob marks the job Done with outcome. It returns ErrNotFound if there
// is no such job.
func (s *Store) FinishJob(ctx context.Context, jobID, outcome string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET done = $2, outcome = $3, updated_at = $4 WHERE job_id = $1`,
		jobID, true, outcome, micros(s.now()))
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("finish job %s: %w", jobID, err)
	}
	return nil
}
