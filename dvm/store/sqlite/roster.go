package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"pow.do/dvm/store"
)

func checkPubkey(what, pk string) error {
	if !store.IsHex(pk, 64) {
		return fmt.Errorf("%s %q: %w: not a 64-hex pubkey", what, pk, store.ErrInvalid)
	}
	return nil
}

// AddWorker adds a worker or re-admits a removed one.
func (d *DB) AddWorker(ctx context.Context, w store.Worker) error {
	if err := checkPubkey("add worker", w.Pubkey); err != nil {
		return err
	}
	if w.JoinedAt.IsZero() {
		w.JoinedAt = d.now()
	}
	return d.write(ctx, "add worker", func(tx *sql.Tx) error {
		return addWorkerTx(ctx, tx, w)
	})
}

func addWorkerTx(ctx context.Context, tx *sql.Tx, w store.Worker) error {
	var removed sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT removed_at FROM workers WHERE pubkey = ?`, w.Pubkey).Scan(&removed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO workers (pubkey, name, kimai_user_id, joined_at) VALUES (?, ?, ?, ?)`,
			w.Pubkey, w.Name, nullID(w.KimaiUserID), ms(w.JoinedAt))
	case err != nil:
	case !removed.Valid:
		return fmt.Errorf("add worker %s: %w", w.Pubkey, store.ErrExists)
	default:
		_, err = tx.ExecContext(ctx, `UPDATE workers SET name = ?, kimai_user_id = ?, joined_at = ?, removed_at = NULL WHERE pubkey = ?`,
			w.Name, nullID(w.KimaiUserID), ms(w.JoinedAt), w.Pubkey)
	}
	if err != nil {
		return fmt.Errorf("add worker %s: %w", w.Pubkey, err)
	}
	return nil
}

const workerCols = `pubkey, name, kimai_user_id, joined_at, removed_at`

func scanWorker(sc interface{ Scan(...any) error }) (store.Worker, error) {
	var w store.Worker
	var kimai, removed sql.NullInt64
	var joined int64
	if err := sc.Scan(&w.Pubkey, &w.Name, &kimai, &joined, &removed); err != nil {
		return w, err
	}
	w.KimaiUserID, w.JoinedAt, w.RemovedAt = fromNullID(kimai), fromMS(joined), fromNullMS(removed)
	return w, nil
}

// Worker returns one worker, removed or not.
func (d *DB) Worker(ctx context.Context, pubkey string) (store.Worker, error) {
	w, err := scanWorker(d.r.QueryRowContext(ctx, `SELECT `+workerCols+` FROM workers WHERE pubkey = ?`, pubkey))
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("worker %s: %w", pubkey, store.ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("worker %s: %w", pubkey, err)
	}
	return w, nil
}

// Workers lists workers by name.
func (d *DB) Workers(ctx context.Context, includeRemoved bool) ([]store.Worker, error) {
	q := `SELECT ` + workerCols + ` FROM workers`
	if !includeRemoved {
		q += ` WHERE removed_at IS NULL`
	}
	rows, err := d.r.QueryContext(ctx, q+` ORDER BY name, pubkey`)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	defer rows.Close()
	var out []store.Worker
	for rows.Next() {
		w, err := scanWorker(rows)
		if err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	return out, nil
}

// RemoveWorker marks an active worker removed.
func (d *DB) RemoveWorker(ctx context.Context, pubkey string) error {
	return d.write(ctx, "remove worker", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE workers SET removed_at = ? WHERE pubkey = ? AND removed_at IS NULL`, ms(d.now()), pubkey)
		if err != nil {
			return fmt.Errorf("remove worker %s: %w", pubkey, err)
		}
		return affected(res, "remove worker "+pubkey)
	})
}

// MapWorker sets the worker's Kimai user.
func (d *DB) MapWorker(ctx context.Context, pubkey string, kimaiUserID int64) error {
	if kimaiUserID < 0 {
		return fmt.Errorf("map worker %s: %w: negative Kimai user id", pubkey, store.ErrInvalid)
	}
	return d.write(ctx, "map worker", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE workers SET kimai_user_id = ? WHERE pubkey = ?`, nullID(kimaiUserID), pubkey)
		if err != nil {
			return fmt.Errorf("map worker %s: %w", pubkey, err)
		}
		return affected(res, "map worker "+pubkey)
	})
}

// AddInvite stores a new invite.
func (d *DB) AddInvite(ctx context.Context, inv store.Invite) error {
	if err := checkPubkey("add invite", inv.Pubkey); err != nil {
		return err
	}
	if inv.ExpiresAt.IsZero() || inv.Quota < 0 || inv.KimaiUserID < 0 {
		return fmt.Errorf("add invite: %w: needs an expiry and non-negative quota and Kimai user", store.ErrInvalid)
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = d.now()
	}
	return d.write(ctx, "add invite", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM invites WHERE pubkey = ?`, inv.Pubkey).Scan(&n); err != nil {
			return fmt.Errorf("add invite: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("add invite %s: %w", inv.Pubkey, store.ErrExists)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO invites (pubkey, name, kimai_user_id, quota, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			inv.Pubkey, inv.Name, nullID(inv.KimaiUserID), inv.Quota, ms(inv.CreatedAt), ms(inv.ExpiresAt))
		if err != nil {
			return fmt.Errorf("add invite %s: %w", inv.Pubkey, err)
		}
		return nil
	})
}

const inviteCols = `pubkey, name, kimai_user_id, quota, created_at, expires_at, consumed_at, consumed_by`

func scanInvite(sc interface{ Scan(...any) error }) (store.Invite, error) {
	var inv store.Invite
	var kimai, consumedAt sql.NullInt64
	var consumedBy sql.NullString
	var created, expires int64
	if err := sc.Scan(&inv.Pubkey, &inv.Name, &kimai, &inv.Quota, &created, &expires, &consumedAt, &consumedBy); err != nil {
		return inv, err
	}
	inv.KimaiUserID, inv.CreatedAt, inv.ExpiresAt = fromNullID(kimai), fromMS(created), fromMS(expires)
	inv.ConsumedAt, inv.ConsumedBy = fromNullMS(consumedAt), consumedBy.String
	return inv, nil
}

// Invite returns one invite.
func (d *DB) Invite(ctx context.Context, pubkey string) (store.Invite, error) {
	inv, err := scanInvite(d.r.QueryRowContext(ctx, `SELECT `+inviteCols+` FROM invites WHERE pubkey = ?`, pubkey))
	if errors.Is(err, sql.ErrNoRows) {
		return inv, fmt.Errorf("invite %s: %w", pubkey, store.ErrNotFound)
	}
	if err != nil {
		return inv, fmt.Errorf("invite %s: %w", pubkey, err)
	}
	return inv, nil
}

// Invites lists all invites, newest first.
func (d *DB) Invites(ctx context.Context) ([]store.Invite, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+inviteCols+` FROM invites ORDER BY created_at DESC, pubkey`)
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	defer rows.Close()
	var out []store.Invite
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, fmt.Errorf("list invites: %w", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	return out, nil
}

// ConsumeInvite uses the invite for workerPubkey and adds the worker, in one transaction.
func (d *DB) ConsumeInvite(ctx context.Context, invitePubkey, workerPubkey string) (store.Worker, error) {
	if err := checkPubkey("consume invite: worker", workerPubkey); err != nil {
		return store.Worker{}, err
	}
	var w store.Worker
	err := d.write(ctx, "consume invite", func(tx *sql.Tx) error {
		inv, err := scanInvite(tx.QueryRowContext(ctx, `SELECT `+inviteCols+` FROM invites WHERE pubkey = ?`, invitePubkey))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("consume invite %s: %w", invitePubkey, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("consume invite %s: %w", invitePubkey, err)
		}
		now := d.now()
		if !inv.ConsumedAt.IsZero() {
			return fmt.Errorf("consume invite %s: %w (by %s)", invitePubkey, store.ErrInviteConsumed, inv.ConsumedBy)
		}
		if !now.Before(inv.ExpiresAt) {
			return fmt.Errorf("consume invite %s: %w at %s", invitePubkey, store.ErrInviteExpired, inv.ExpiresAt.Format("2006-01-02T15:04:05Z"))
		}
		w = store.Worker{Pubkey: workerPubkey, Name: inv.Name, KimaiUserID: inv.KimaiUserID, JoinedAt: now}
		if err := addWorkerTx(ctx, tx, w); err != nil {
			return fmt.Errorf("consume invite %s: %w", invitePubkey, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invites SET consumed_at = ?, consumed_by = ? WHERE pubkey = ?`,
			ms(now), workerPubkey, invitePubkey); err != nil {
			return fmt.Errorf("consume invite %s: %w", invitePubkey, err)
		}
		return nil
	})
	return w, err
}
