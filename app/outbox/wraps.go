package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The receipt listener's durable state. Gift wraps are backdated up to two days, so the
// listener asks for wraps since cursor − 2 days and must remember which it already
// processed (PROTOCOL.md section 1, step 4).

// SeenWrap reports whether a wrap id was already processed.
func (o *Outbox) SeenWrap(ctx context.Context, id string) (bool, error) {
	var one int
	err := o.db.QueryRowContext(ctx, `SELECT 1 FROM wraps WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("outbox: seen wrap: %w", err)
	}
	return true, nil
}

// MarkWrap records a processed wrap (idempotent). createdAt is the wrap's own created_at,
// which PruneWraps uses.
func (o *Outbox) MarkWrap(ctx context.Context, id string, createdAt time.Time) error {
	_, err := o.db.ExecContext(ctx, `INSERT INTO wraps (id, created_at, seen_ns) VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		id, createdAt.Unix(), o.now().UnixNano())
	if err != nil {
		return fmt.Errorf("outbox: mark wrap: %w", err)
	}
	return nil
}

// PruneWraps forgets processed wraps created before `before`: the listener never asks
// for them again once its cursor has moved past them plus the backdating window.
func (o *Outbox) PruneWraps(ctx context.Context, before time.Time) (int64, error) {
	res, err := o.db.ExecContext(ctx, `DELETE FROM wraps WHERE created_at < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("outbox: prune wraps: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Cursor is the time up to which the listener has seen everything a relay stored
// (zero when it never finished a pass).
func (o *Outbox) Cursor(ctx context.Context, relay string) (time.Time, error) {
	var unix int64
	err := o.db.QueryRowContext(ctx, `SELECT unix FROM cursors WHERE relay = ?`, relay).Scan(&unix)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("outbox: cursor of %s: %w", relay, err)
	}
	return time.Unix(unix, 0).UTC(), nil
}

// SetCursor moves a relay's cursor forward (never back).
func (o *Outbox) SetCursor(ctx context.Context, relay string, t time.Time) error {
	_, err := o.db.ExecContext(ctx, `INSERT INTO cursors (relay, unix) VALUES (?, ?)
		ON CONFLICT(relay) DO UPDATE SET unix = MAX(unix, excluded.unix)`, relay, t.Unix())
	if err != nil {
		return fmt.Errorf("outbox: set cursor of %s: %w", relay, err)
	}
	return nil
}
