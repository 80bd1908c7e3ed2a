package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rivetr/rivetr/apps"
)

var _ apps.GitStore = (*SQLite)(nil)

const jobColumns = `j.id, a.name, j.trigger, j.ref, j.rev, j.delivery, j.user, j.status, j.release, j.detail,
	j.created_at, j.started_at, j.finished_at`

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func scanJob(r scanner) (apps.DeployJob, error) {
	var j apps.DeployJob
	var created, started, finished int64
	err := r.Scan(&j.ID, &j.App, &j.Trigger, &j.Ref, &j.Rev, &j.Delivery, &j.User, &j.Status, &j.Release, &j.Detail,
		&created, &started, &finished)
	j.CreatedAt, j.StartedAt, j.FinishedAt = fromMillis(created), fromMillis(started), fromMillis(finished)
	return j, err
}

// KeptJobs is how many deploy jobs of an app the history keeps.
const KeptJobs = 100

// EnqueueJob stores j as queued; the app's older queued jobs are coalesced
// into it.
func (s *SQLite) EnqueueJob(ctx context.Context, j apps.DeployJob) (apps.DeployJob, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, j.App)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO deploy_jobs (app_id, trigger, ref, rev, delivery, user, status, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, j.Trigger, j.Ref, j.Rev, j.Delivery, j.User, apps.JobQueued, millis(j.CreatedAt))
		if err != nil {
			return err
		}
		if j.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE deploy_jobs SET status = ?, detail = ?, finished_at = ?
			WHERE app_id = ? AND status = ? AND id <> ?`,
			apps.JobCoalesced, fmt.Sprintf("superseded by #%d", j.ID), millis(j.CreatedAt), id, apps.JobQueued, j.ID)
		if err != nil {
			return err
		}
		// The history keeps the newest KeptJobs of the app.
		_, err = tx.ExecContext(ctx, `DELETE FROM deploy_jobs WHERE app_id = ? AND status NOT IN (?, ?)
			AND id NOT IN (SELECT id FROM deploy_jobs WHERE app_id = ? ORDER BY id DESC LIMIT ?)`,
			id, apps.JobQueued, apps.JobRunning, id, KeptJobs)
		return err
	})
	j.Status = apps.JobQueued
	return j, err
}

// NextJob returns the app's oldest queued job.
func (s *SQLite) NextJob(ctx context.Context, app string) (apps.DeployJob, bool, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM deploy_jobs j JOIN apps a ON a.id = j.app_id
		WHERE a.name = ? AND j.status = ? ORDER BY j.id LIMIT 1`, app, apps.JobQueued)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return j, false, nil
	}
	return j, err == nil, err
}

// transition moves a job from one status to another and reports whether
// it was in the first.
func (s *SQLite) transition(ctx context.Context, query string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// StartJob moves a queued job to running.
func (s *SQLite) StartJob(ctx context.Context, id int64, at time.Time) (bool, error) {
	return s.transition(ctx, "UPDATE deploy_jobs SET status = ?, started_at = ? WHERE id = ? AND status = ?",
		apps.JobRunning, millis(at), id, apps.JobQueued)
}

// FinishJob records a job's outcome.
func (s *SQLite) FinishJob(ctx context.Context, id int64, status string, release int, detail string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, "UPDATE deploy_jobs SET status = ?, release = ?, detail = ?, finished_at = ? WHERE id = ?",
		status, release, detail, millis(at), id)
	return err
}

// CancelQueuedJob cancels a job still queued.
func (s *SQLite) CancelQueuedJob(ctx context.Context, id int64, detail string, at time.Time) (bool, error) {
	return s.transition(ctx, "UPDATE deploy_jobs SET status = ?, detail = ?, finished_at = ? WHERE id = ? AND status = ?",
		apps.JobCancelled, detail, millis(at), id, apps.JobQueued)
}

// Job returns one job.
func (s *SQLite) Job(ctx context.Context, id int64) (apps.DeployJob, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM deploy_jobs j JOIN apps a ON a.id = j.app_id
		WHERE j.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, apps.Errorf(apps.ErrJobNotFound, "Deploy #%d does not exist", id)
	}
	return j, err
}

// Jobs lists the newest jobs first.
func (s *SQLite) Jobs(ctx context.Context, app string, limit int) ([]apps.DeployJob, error) {
	q := `SELECT ` + jobColumns + ` FROM deploy_jobs j JOIN apps a ON a.id = j.app_id`
	args := []any{}
	if app != "" {
		q += " WHERE a.name = ?"
		args = append(args, app)
	}
	q += " ORDER BY j.id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []apps.DeployJob
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// RequeueRunning queues again the jobs a stopped daemon left running.
func (s *SQLite) RequeueRunning(ctx context.Context) ([]string, error) {
	if _, err := s.db.ExecContext(ctx, "UPDATE deploy_jobs SET status = ?, started_at = 0 WHERE status = ?",
		apps.JobQueued, apps.JobRunning); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT a.name FROM deploy_jobs j JOIN apps a ON a.id = j.app_id
		WHERE j.status = ? ORDER BY a.name`, apps.JobQueued)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// SetGitCredential stores or (with an empty token) removes a host's login.
func (s *SQLite) SetGitCredential(ctx context.Context, c apps.GitCredential) error {
	if c.Token == "" {
		_, err := s.db.ExecContext(ctx, "DELETE FROM git_credentials WHERE host = ?", c.Host)
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO git_credentials (host, username, token, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (host) DO UPDATE SET username = excluded.username, token = excluded.token, created_at = excluded.created_at`,
		c.Host, c.User, c.Token, c.CreatedAt.Unix())
	return err
}

// GitCredential returns a host's login.
func (s *SQLite) GitCredential(ctx context.Context, host string) (apps.GitCredential, bool, error) {
	c := apps.GitCredential{Host: host}
	var created int64
	err := s.db.QueryRowContext(ctx, "SELECT username, token, created_at FROM git_credentials WHERE host = ?", host).
		Scan(&c.User, &c.Token, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	c.CreatedAt = time.Unix(created, 0).UTC()
	return c, err == nil, err
}

// GitCredentials lists the logins by host.
func (s *SQLite) GitCredentials(ctx context.Context) ([]apps.GitCredential, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT host, username, token, created_at FROM git_credentials ORDER BY host")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []apps.GitCredential
	for rows.Next() {
		var c apps.GitCredential
		var created int64
		if err := rows.Scan(&c.Host, &c.User, &c.Token, &created); err != nil {
			return nil, err
		}
		c.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// SetDeployKey stores (replacing) an app's deploy key.
func (s *SQLite) SetDeployKey(ctx context.Context, k apps.DeployKey) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, k.App)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deploy_keys (app_id, private_key, public_key, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (app_id) DO UPDATE SET private_key = excluded.private_key, public_key = excluded.public_key,
			created_at = excluded.created_at`, id, k.Private, k.Public, k.CreatedAt.Unix())
		return err
	})
}

// DeployKey returns an app's deploy key.
func (s *SQLite) DeployKey(ctx context.Context, app string) (apps.DeployKey, bool, error) {
	k := apps.DeployKey{App: app}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT k.private_key, k.public_key, k.created_at FROM deploy_keys k
		JOIN apps a ON a.id = k.app_id WHERE a.name = ?`, app).Scan(&k.Private, &k.Public, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return k, false, nil
	}
	k.CreatedAt = time.Unix(created, 0).UTC()
	return k, err == nil, err
}

// deliveryTTL is how long a webhook delivery ID is remembered.
const deliveryTTL = 31 * 24 * time.Hour

// RecordDelivery remembers a delivery; fresh is false for one seen before.
func (s *SQLite) RecordDelivery(ctx context.Context, provider, id string, at time.Time) (bool, error) {
	var fresh bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM webhook_deliveries WHERE received_at < ?", millis(at.Add(-deliveryTTL))); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO webhook_deliveries (provider, id, received_at) VALUES (?, ?, ?)",
			provider, id, millis(at))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	return fresh, err
}
