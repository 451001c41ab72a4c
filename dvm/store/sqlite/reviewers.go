package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"pow.do/dvm/store"
)

// AddReviewer creates a work-diary account.
func (d *DB) AddReviewer(ctx context.Context, r store.Reviewer) error {
	if r.Username == "" || len(r.Username) > store.MaxNameBytes || r.PasswordHash == "" {
		return fmt.Errorf("add reviewer: %w: needs a username (at most %d bytes) and a password hash", store.ErrInvalid, store.MaxNameBytes)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = d.now()
	}
	return d.write(ctx, "add reviewer", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO reviewers (username, password_hash, created_at) VALUES (?, ?, ?)
			ON CONFLICT (username) DO NOTHING`, r.Username, r.PasswordHash, ms(r.CreatedAt))
		if err != nil {
			return fmt.Errorf("add reviewer %q: %w", r.Username, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(fmt.Errorf("add reviewer %q: %w", r.Username, store.ErrExists), err)
		}
		return nil
	})
}

// RemoveReviewer deletes the account; its web sessions go with it (ON DELETE CASCADE).
func (d *DB) RemoveReviewer(ctx context.Context, username string) error {
	return d.write(ctx, "remove reviewer", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM reviewers WHERE username = ?`, username)
		if err != nil {
			return fmt.Errorf("remove reviewer %q: %w", username, err)
		}
		return affected(res, fmt.Sprintf("remove reviewer %q", username))
	})
}

// Reviewer returns one account.
func (d *DB) Reviewer(ctx context.Context, username string) (store.Reviewer, error) {
	var r store.Reviewer
	var created int64
	err := d.r.QueryRowContext(ctx, `SELECT username, password_hash, created_at FROM reviewers WHERE username = ?`, username).
		Scan(&r.Username, &r.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("reviewer %q: %w", username, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("reviewer %q: %w", username, err)
	}
	r.CreatedAt = fromMS(created)
	return r, nil
}

// Reviewers lists accounts by username.
func (d *DB) Reviewers(ctx context.Context) ([]store.Reviewer, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT username, password_hash, created_at FROM reviewers ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list reviewers: %w", err)
	}
	defer rows.Close()
	var out []store.Reviewer
	for rows.Next() {
		var r store.Reviewer
		var created int64
		if err := rows.Scan(&r.Username, &r.PasswordHash, &created); err != nil {
			return nil, fmt.Errorf("list reviewers: %w", err)
		}
		r.CreatedAt = fromMS(created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list reviewers: %w", err)
	}
	return out, nil
}

// CreateWebSession stores a login session by its token hash.
func (d *DB) CreateWebSession(ctx context.Context, s store.WebSession) error {
	if s.TokenHash == "" || s.Reviewer == "" || s.ExpiresAt.IsZero() {
		return fmt.Errorf("create web session: %w: needs a token hash, a reviewer and an expiry", store.ErrInvalid)
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = d.now()
	}
	return d.write(ctx, "create web session", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM reviewers WHERE username = ?`, s.Reviewer).Scan(&n); err != nil {
			return fmt.Errorf("create web session: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("create web session: reviewer %q: %w", s.Reviewer, store.ErrNotFound)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (token_hash, reviewer, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			s.TokenHash, s.Reviewer, s.CSRF, ms(s.CreatedAt), ms(s.ExpiresAt))
		if err != nil {
			// The token hash is not logged or returned: it identifies a live session.
			return fmt.Errorf("create web session for %q: %w", s.Reviewer, err)
		}
		return nil
	})
}

// WebSession returns an unexpired session.
func (d *DB) WebSession(ctx context.Context, tokenHash string) (store.WebSession, error) {
	var s store.WebSession
	var created, expires int64
	err := d.r.QueryRowContext(ctx, `SELECT token_hash, reviewer, csrf, created_at, expires_at FROM web_sessions
		WHERE token_hash = ? AND expires_at > ?`, tokenHash, ms(d.now())).Scan(&s.TokenHash, &s.Reviewer, &s.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("web session: %w", store.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("web session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	return s, nil
}

// DeleteWebSession logs a session out; deleting a missing one is not an error.
func (d *DB) DeleteWebSession(ctx context.Context, tokenHash string) error {
	return d.write(ctx, "delete web session", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_hash = ?`, tokenHash); err != nil {
			return fmt.Errorf("delete web session: %w", err)
		}
		return nil
	})
}

// PruneWebSessions deletes expired sessions.
func (d *DB) PruneWebSessions(ctx context.Context) (int64, error) {
	var n int64
	err := d.write(ctx, "prune web sessions", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at <= ?`, ms(d.now()))
		if err != nil {
			return fmt.Errorf("prune web sessions: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
