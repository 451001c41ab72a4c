package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"pow.do/dvm/store"
)

const sessionCols = `id, worker, project, activity, memo, started_at, stopped_at, last_segment_end,
	kimai_timesheet_id, state, announced, declared_segments`

func scanSession(sc interface{ Scan(...any) error }) (store.Session, error) {
	var s store.Session
	var started int64
	var stopped, lastEnd, kimai sql.NullInt64
	var state string
	if err := sc.Scan(&s.ID, &s.Worker, &s.Project, &s.Activity, &s.Memo, &started, &stopped, &lastEnd,
		&kimai, &state, &s.Announced, &s.DeclaredSegments); err != nil {
		return s, err
	}
	s.StartedAt, s.StoppedAt, s.LastSegmentEnd = fromMS(started), fromNullMS(stopped), fromNullMS(lastEnd)
	s.KimaiTimesheetID, s.State = fromNullID(kimai), store.SessionState(state)
	return s, nil
}

func sessionTx(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (store.Session, error) {
	s, err := scanSession(q.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("session %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("session %s: %w", id, err)
	}
	return s, nil
}

// StartSession records a start message.
func (d *DB) StartSession(ctx context.Context, s store.Session) (store.Session, error) {
	if !store.IsHex(s.ID, 32) {
		return s, fmt.Errorf("start session %q: %w: id is not 32 hex", s.ID, store.ErrInvalid)
	}
	if err := checkPubkey("start session: worker", s.Worker); err != nil {
		return s, err
	}
	if s.StartedAt.IsZero() || len(s.Memo) > store.MaxMemoBytes {
		return s, fmt.Errorf("start session %s: %w: no start time or memo too long", s.ID, store.ErrInvalid)
	}
	var out store.Session
	err := d.write(ctx, "start session", func(tx *sql.Tx) error {
		cur, err := sessionTx(ctx, tx, s.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err = tx.ExecContext(ctx, `INSERT INTO sessions (id, worker, project, activity, memo, started_at, state, announced)
				VALUES (?, ?, ?, ?, ?, ?, 'open', 1)`, s.ID, s.Worker, s.Project, s.Activity, s.Memo, ms(s.StartedAt))
		case err != nil:
			return err
		case cur.Worker != s.Worker:
			return fmt.Errorf("start session %s: %w: it belongs to worker %s", s.ID, store.ErrConflict, cur.Worker)
		case cur.Announced:
			// A repeated start message changes nothing.
		default:
			// Segments arrived before the start message: the start message's details win.
			_, err = tx.ExecContext(ctx, `UPDATE sessions SET project = ?, activity = ?, memo = ?, started_at = min(started_at, ?),
				announced = 1 WHERE id = ?`, s.Project, s.Activity, s.Memo, ms(s.StartedAt), s.ID)
		}
		if err != nil {
			return fmt.Errorf("start session %s: %w", s.ID, err)
		}
		out, err = sessionTx(ctx, tx, s.ID)
		return err
	})
	return out, err
}

// StopSession records a stop message.
func (d *DB) StopSession(ctx context.Context, id, worker string, end time.Time, segments int) (store.Session, error) {
	if end.IsZero() || segments < 0 {
		return store.Session{}, fmt.Errorf("stop session %s: %w: no end time or negative segment count", id, store.ErrInvalid)
	}
	var out store.Session
	err := d.write(ctx, "stop session", func(tx *sql.Tx) error {
		cur, err := sessionTx(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("stop session: %w", err)
		}
		if cur.Worker != worker {
			return fmt.Errorf("stop session %s: %w: it belongs to worker %s", id, store.ErrConflict, cur.Worker)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET state = 'stopped', stopped_at = ?, declared_segments = ? WHERE id = ?`,
			ms(end), segments, id); err != nil {
			return fmt.Errorf("stop session %s: %w", id, err)
		}
		out, err = sessionTx(ctx, tx, id)
		return err
	})
	return out, err
}

// EndSession closes a session without a stop message.
func (d *DB) EndSession(ctx context.Context, id string, state store.SessionState, at time.Time) error {
	if state != store.SessionStopped && state != store.SessionExpired || at.IsZero() {
		return fmt.Errorf("end session %s: %w: state %q, time %s", id, store.ErrInvalid, state, at)
	}
	return d.write(ctx, "end session", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET state = ?, stopped_at = ? WHERE id = ?`, string(state), ms(at), id)
		if err != nil {
			return fmt.Errorf("end session %s: %w", id, err)
		}
		return affected(res, "end session "+id)
	})
}

// SetSessionTimesheet records the session's current Kimai timesheet.
func (d *DB) SetSessionTimesheet(ctx context.Context, id string, kimaiTimesheetID int64) error {
	return d.write(ctx, "set session timesheet", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET kimai_timesheet_id = ? WHERE id = ?`, nullID(kimaiTimesheetID), id)
		if err != nil {
			return fmt.Errorf("set session %s timesheet: %w", id, err)
		}
		return affected(res, "set session timesheet "+id)
	})
}

// Session returns one session.
func (d *DB) Session(ctx context.Context, id string) (store.Session, error) {
	return sessionTx(ctx, d.r, id)
}

// OpenSessions lists open sessions, oldest first.
func (d *DB) OpenSessions(ctx context.Context) ([]store.Session, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE state = 'open' ORDER BY started_at, id`)
	if err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("open sessions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	return out, nil
}
