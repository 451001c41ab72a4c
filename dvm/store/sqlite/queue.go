package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"pow.do/dvm/store"
)

const maxJobField = 200

// Enqueue adds a Kimai job, or replaces the payload of the pending job with the same Key.
func (d *DB) Enqueue(ctx context.Context, j store.Job) (int64, error) {
	if j.Op == "" || len(j.Op) > maxJobField || len(j.Group) > maxJobField || len(j.Key) > maxJobField {
		return 0, fmt.Errorf("enqueue: %w: op must be set; op, group and key at most %d bytes", store.ErrInvalid, maxJobField)
	}
	payload := string(j.Payload)
	if payload == "" {
		payload = "{}"
	}
	if !json.Valid([]byte(payload)) {
		return 0, fmt.Errorf("enqueue %s: %w: payload is not JSON", j.Op, store.ErrInvalid)
	}
	now := d.now()
	next := j.NextAttemptAt
	if next.IsZero() {
		next = now
	}
	var id int64
	err := d.write(ctx, "enqueue", func(tx *sql.Tx) error {
		if j.Key != "" {
			err := tx.QueryRowContext(ctx, `UPDATE kimai_jobs SET op = ?, payload = ?, version = version + 1
				WHERE key = ? AND state = 'pending' RETURNING id`, j.Op, payload, j.Key).Scan(&id)
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("enqueue %s: coalesce: %w", j.Op, err)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO kimai_jobs (op, grp, key, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			j.Op, j.Group, j.Key, payload, ms(next), ms(now))
		if err != nil {
			return fmt.Errorf("enqueue %s: %w", j.Op, err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

const jobCols = `id, op, grp, key, payload, state, attempts, next_attempt_at, lease, lease_until, kimai_id, last_error,
	created_at, done_at`

func scanJob(sc interface{ Scan(...any) error }) (store.Job, error) {
	var j store.Job
	var payload, state string
	var lease sql.NullString
	var next, created int64
	var leaseUntil, kimai, done sql.NullInt64
	if err := sc.Scan(&j.ID, &j.Op, &j.Group, &j.Key, &payload, &state, &j.Attempts, &next, &lease, &leaseUntil, &kimai,
		&j.LastError, &created, &done); err != nil {
		return j, err
	}
	j.Payload, j.State, j.NextAttemptAt = json.RawMessage(payload), store.JobState(state), fromMS(next)
	j.Lease, j.LeaseUntil, j.KimaiID = lease.String, fromNullMS(leaseUntil), fromNullID(kimai)
	j.CreatedAt, j.DoneAt = fromMS(created), fromNullMS(done)
	return j, nil
}

// LeaseJobs hands out up to max due jobs: pending, due, not leased (or lease expired),
// and first of their group.
func (d *DB) LeaseJobs(ctx context.Context, max int, leaseFor time.Duration) ([]store.Job, error) {
	if max <= 0 || leaseFor <= 0 {
		return nil, fmt.Errorf("lease jobs: %w: max and lease time must be positive", store.ErrInvalid)
	}
	var out []store.Job
	err := d.write(ctx, "lease jobs", func(tx *sql.Tx) error {
		now := ms(d.now())
		rows, err := tx.QueryContext(ctx, `SELECT id FROM kimai_jobs q
			WHERE state = 'pending' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
			AND (grp = '' OR NOT EXISTS (SELECT 1 FROM kimai_jobs p WHERE p.state = 'pending' AND p.grp = q.grp AND p.id < q.id))
			ORDER BY next_attempt_at, id LIMIT ?2`, now, max)
		if err != nil {
			return fmt.Errorf("lease jobs: %w", err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("lease jobs: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lease jobs: %w", err)
		}
		until := now + leaseFor.Milliseconds()
		for _, id := range ids {
			token := newLease()
			j, err := scanJob(tx.QueryRowContext(ctx, `UPDATE kimai_jobs SET lease = ?, lease_until = ?, lease_version = version,
				attempts = attempts + 1 WHERE id = ? RETURNING `+jobCols, token, until, id))
			if err != nil {
				return fmt.Errorf("lease job %d: %w", id, err)
			}
			out = append(out, j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func newLease() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// checkLease loads a pending job and makes sure the caller holds its lease. It returns
// whether the payload changed since the lease was handed out.
func checkLease(ctx context.Context, tx *sql.Tx, id int64, lease string) (changed bool, err error) {
	var state string
	var held sql.NullString
	var version int64
	var leaseVersion sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT state, lease, version, lease_version FROM kimai_jobs WHERE id = ?`, id).
		Scan(&state, &held, &version, &leaseVersion)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("job %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("job %d: %w", id, err)
	}
	// An expired lease still counts while nobody else has taken the job: the work was done.
	if state != string(store.JobPending) || lease == "" || !held.Valid || held.String != lease {
		return false, fmt.Errorf("job %d: %w", id, store.ErrLeaseLost)
	}
	return leaseVersion.Valid && leaseVersion.Int64 != version, nil
}

// CompleteJob marks a leased job done (or, if its payload was replaced meanwhile, due
// again at once).
func (d *DB) CompleteJob(ctx context.Context, id int64, lease string, kimaiID int64) error {
	return d.write(ctx, "complete job", func(tx *sql.Tx) error {
		changed, err := checkLease(ctx, tx, id, lease)
		if err != nil {
			return fmt.Errorf("complete job: %w", err)
		}
		now := ms(d.now())
		q := `UPDATE kimai_jobs SET state = 'done', done_at = ?, kimai_id = coalesce(?, kimai_id), lease = NULL, lease_until = NULL,
			last_error = '' WHERE id = ?`
		if changed {
			q = `UPDATE kimai_jobs SET next_attempt_at = ?, kimai_id = coalesce(?, kimai_id), lease = NULL, lease_until = NULL,
				attempts = 0 WHERE id = ?`
		}
		if _, err := tx.ExecContext(ctx, q, now, nullID(kimaiID), id); err != nil {
			return fmt.Errorf("complete job %d: %w", id, err)
		}
		return nil
	})
}

// FailJob releases a leased job with a backoff, or marks it dead if permanent.
func (d *DB) FailJob(ctx context.Context, id int64, lease, reason string, permanent bool) (time.Time, error) {
	if len(reason) > store.MaxReasonBytes {
		reason = reason[:store.MaxReasonBytes]
	}
	var next time.Time
	err := d.write(ctx, "fail job", func(tx *sql.Tx) error {
		if _, err := checkLease(ctx, tx, id, lease); err != nil {
			return fmt.Errorf("fail job: %w", err)
		}
		now := d.now()
		if permanent {
			_, err := tx.ExecContext(ctx, `UPDATE kimai_jobs SET state = 'dead', done_at = ?, last_error = ?, lease = NULL,
				lease_until = NULL WHERE id = ?`, ms(now), reason, id)
			if err != nil {
				return fmt.Errorf("fail job %d: %w", id, err)
			}
			return nil
		}
		var attempts int
		if err := tx.QueryRowContext(ctx, `SELECT attempts FROM kimai_jobs WHERE id = ?`, id).Scan(&attempts); err != nil {
			return fmt.Errorf("fail job %d: %w", id, err)
		}
		next = now.Add(d.backoff(max(attempts, 1)))
		_, err := tx.ExecContext(ctx, `UPDATE kimai_jobs SET next_attempt_at = ?, last_error = ?, lease = NULL, lease_until = NULL
			WHERE id = ?`, ms(next), reason, id)
		if err != nil {
			return fmt.Errorf("fail job %d: %w", id, err)
		}
		return nil
	})
	if err != nil || next.IsZero() {
		return time.Time{}, err
	}
	return fromMS(ms(next)), nil
}

// Job returns one job.
func (d *DB) Job(ctx context.Context, id int64) (store.Job, error) {
	j, err := scanJob(d.r.QueryRowContext(ctx, `SELECT `+jobCols+` FROM kimai_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("job %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return j, fmt.Errorf("job %d: %w", id, err)
	}
	return j, nil
}

// QueueDepth counts pending jobs.
func (d *DB) QueueDepth(ctx context.Context) (int, error) {
	var n int
	if err := d.r.QueryRowContext(ctx, `SELECT count(*) FROM kimai_jobs WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("queue depth: %w", err)
	}
	return n, nil
}
