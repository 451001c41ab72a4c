package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"pow.do/dvm/store"
)

var _ store.KimaiQueueAdmin = (*DB)(nil)

// DeadJobs lists dead jobs, oldest first.
func (d *DB) DeadJobs(ctx context.Context, limit int) ([]store.Job, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := d.r.QueryContext(ctx, `SELECT `+jobCols+` FROM kimai_jobs WHERE state = 'dead' ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("dead jobs: %w", err)
	}
	defer rows.Close()
	var out []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("dead jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead jobs: %w", err)
	}
	return out, nil
}

// RequeueDead makes dead jobs pending again, all or none.
func (d *DB) RequeueDead(ctx context.Context, ids []int64) (int, error) {
	n := 0
	err := d.write(ctx, "requeue dead jobs", func(tx *sql.Tx) error {
		n = 0
		now := ms(d.now())
		for _, id := range ids {
			var key, state string
			err := tx.QueryRowContext(ctx, `SELECT key, state FROM kimai_jobs WHERE id = ?`, id).Scan(&key, &state)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && state != string(store.JobDead)) {
				return fmt.Errorf("requeue job %d: %w: no dead job with that id", id, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("requeue job %d: %w", id, err)
			}
			if key != "" {
				var pending int64
				err := tx.QueryRowContext(ctx, `SELECT id FROM kimai_jobs WHERE key = ? AND state = 'pending'`, key).Scan(&pending)
				if err == nil {
					// The pending job syncs the same thing; a second one would break the key's uniqueness.
					if _, err := tx.ExecContext(ctx, `UPDATE kimai_jobs SET state = 'done', done_at = ?,
						last_error = ? WHERE id = ?`, now, fmt.Sprintf("superseded by pending job %d", pending), id); err != nil {
						return fmt.Errorf("requeue job %d: %w", id, err)
					}
					continue
				}
				if !errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("requeue job %d: %w", id, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE kimai_jobs SET state = 'pending', attempts = 0, next_attempt_at = ?,
				done_at = NULL, lease = NULL, lease_until = NULL WHERE id = ?`, now, id); err != nil {
				return fmt.Errorf("requeue job %d: %w", id, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// UnsyncedSessions lists sessions with segments still pending for Kimai.
func (d *DB) UnsyncedSessions(ctx context.Context) ([]store.Session, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions s
		WHERE EXISTS (SELECT 1 FROM segments g WHERE g.session = s.id AND g.kimai_state = 'pending')
		ORDER BY started_at, id`)
	if err != nil {
		return nil, fmt.Errorf("unsynced sessions: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("unsynced sessions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unsynced sessions: %w", err)
	}
	return out, nil
}
