package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"pow.do/dvm/store"
)

// MarkWrapProcessed adds a wrap id to the durable set; a second mark keeps the first.
func (d *DB) MarkWrapProcessed(ctx context.Context, w store.ProcessedWrap) error {
	if !store.IsHex(w.ID, 64) {
		return fmt.Errorf("mark wrap %q: %w: not a 64-hex event id", w.ID, store.ErrInvalid)
	}
	switch w.Outcome {
	case store.WrapAccepted, store.WrapDuplicate, store.WrapRejected, store.WrapIgnored:
	default:
		return fmt.Errorf("mark wrap %s: %w: outcome %q", w.ID, store.ErrInvalid, w.Outcome)
	}
	if len(w.Reason) > store.MaxReasonBytes {
		w.Reason = w.Reason[:store.MaxReasonBytes]
	}
	if w.SeenAt.IsZero() {
		w.SeenAt = d.now()
	}
	return d.write(ctx, "mark wrap", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO processed_wraps (wrap_id, seen_at, outcome, reason) VALUES (?, ?, ?, ?)
			ON CONFLICT (wrap_id) DO NOTHING`, w.ID, ms(w.SeenAt), string(w.Outcome), w.Reason)
		if err != nil {
			return fmt.Errorf("mark wrap %s: %w", w.ID, err)
		}
		return nil
	})
}

// WrapProcessed reports whether the wrap id is in the set.
func (d *DB) WrapProcessed(ctx context.Context, wrapID string) (bool, error) {
	var n int
	if err := d.r.QueryRowContext(ctx, `SELECT count(*) FROM processed_wraps WHERE wrap_id = ?`, wrapID).Scan(&n); err != nil {
		return false, fmt.Errorf("wrap processed %s: %w", wrapID, err)
	}
	return n > 0, nil
}

// PruneWraps forgets wraps seen before t.
func (d *DB) PruneWraps(ctx context.Context, seenBefore time.Time) (int64, error) {
	var n int64
	err := d.write(ctx, "prune wraps", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM processed_wraps WHERE seen_at < ?`, ms(seenBefore))
		if err != nil {
			return fmt.Errorf("prune wraps: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// RelayCursor returns the relay's cursor, zero if it has none.
func (d *DB) RelayCursor(ctx context.Context, relayURL string) (time.Time, error) {
	var v int64
	err := d.r.QueryRowContext(ctx, `SELECT cursor FROM relay_cursors WHERE relay_url = ?`, relayURL).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("relay cursor %s: %w", relayURL, err)
	}
	return fromMS(v), nil
}

// AdvanceRelayCursor moves the relay's cursor forward to t; never back.
func (d *DB) AdvanceRelayCursor(ctx context.Context, relayURL string, t time.Time) error {
	if relayURL == "" || t.IsZero() {
		return fmt.Errorf("advance relay cursor: %w: needs a relay URL and a time", store.ErrInvalid)
	}
	return d.write(ctx, "advance relay cursor", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO relay_cursors (relay_url, cursor, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (relay_url) DO UPDATE SET cursor = max(cursor, excluded.cursor), updated_at = excluded.updated_at`,
			relayURL, ms(t), ms(d.now()))
		if err != nil {
			return fmt.Errorf("advance relay cursor %s: %w", relayURL, err)
		}
		return nil
	})
}
