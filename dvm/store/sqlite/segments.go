package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"pow.do/dvm/store"
)

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// InsertSegment stores one verified bundle. Screenshot (and bundle) files are written
// first, outside the write lock, then every row goes in one transaction; if anything
// fails the transaction rolls back whole and the files stay unreferenced until SweepFiles.
func (d *DB) InsertSegment(ctx context.Context, rec *store.SegmentRecord) (bool, error) {
	if rec == nil {
		return false, fmt.Errorf("insert segment: %w: nil record", store.ErrInvalid)
	}
	if err := rec.Validate(); err != nil {
		return false, fmt.Errorf("insert segment: %w", err)
	}
	what := fmt.Sprintf("insert segment %s/%d", rec.Session, rec.Index)
	// A duplicate or a conflict needs no file writes: answer it from a reader.
	if dup, err := existingSegment(ctx, d.r, rec); err != nil || dup {
		return false, err
	}
	shots, err := d.putFiles(rec)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	received := rec.ReceivedAt
	if received.IsZero() {
		received = d.now()
	}
	inserted := false
	err = d.write(ctx, what, func(tx *sql.Tx) error {
		// Checked again under the write lock: another insert may have won the race.
		dup, err := existingSegment(ctx, tx, rec)
		if err != nil || dup {
			return err
		}
		if err := insertSegmentTx(ctx, tx, rec, shots, received); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		inserted = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return inserted, nil
}

// putFiles writes the screenshots and the kept bundle, content-addressed.
func (d *DB) putFiles(rec *store.SegmentRecord) ([]store.ScreenshotMeta, error) {
	shots := make([]store.ScreenshotMeta, len(rec.Screenshots))
	for i, s := range rec.Screenshots {
		sum, _, err := d.shots.Put(s.Data)
		if err != nil {
			return nil, fmt.Errorf("store screenshot %s: %w", s.Name, err)
		}
		shots[i] = store.ScreenshotMeta{Name: s.Name, SHA256: sum, Size: int64(len(s.Data)), TakenAt: s.TakenAt}
	}
	if rec.Bundle != nil {
		if _, _, err := d.bundles.Put(rec.Bundle); err != nil {
			return nil, fmt.Errorf("keep bundle %s: %w", rec.OX, err)
		}
	}
	return shots, nil
}

// existingSegment reports whether the same bundle is already stored, and gives
// ErrConflict if a different one holds its slot.
func existingSegment(ctx context.Context, q queryer, rec *store.SegmentRecord) (bool, error) {
	var worker, ox string
	err := q.QueryRowContext(ctx, `SELECT worker, ox FROM segments WHERE session = ? AND idx = ?`, rec.Session, rec.Index).Scan(&worker, &ox)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up segment %s/%d: %w", rec.Session, rec.Index, err)
	}
	if worker != rec.Worker {
		return false, fmt.Errorf("segment %s/%d: %w: session belongs to worker %s", rec.Session, rec.Index, store.ErrConflict, worker)
	}
	if ox != rec.OX {
		return false, fmt.Errorf("segment %s/%d: %w: stored ox %s, new ox %s", rec.Session, rec.Index, store.ErrConflict, ox, rec.OX)
	}
	return true, nil
}

// insertSegmentTx writes every row of a new segment. It also serves the benchmark's bulk
// fill, which passes screenshot metadata without files.
func insertSegmentTx(ctx context.Context, tx *sql.Tx, rec *store.SegmentRecord, shots []store.ScreenshotMeta, received time.Time) error {
	if err := upsertSessionForSegment(ctx, tx, rec); err != nil {
		return err
	}

	// Chain: compare prev with the previous segment's ox in this session.
	var prevOX string
	found := false
	if rec.Index > 0 {
		err := tx.QueryRowContext(ctx, `SELECT ox FROM segments WHERE session = ? AND idx = ?`, rec.Session, rec.Index-1).Scan(&prevOX)
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("read previous segment: %w", err)
		}
	}
	chain := store.ChainFor(rec.Index, rec.Prev, prevOX, found)

	policy, err := json.Marshal(rec.Policy)
	if err != nil {
		return fmt.Errorf("encode policy: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO segments (worker, session, idx, start_at, end_at, project, activity, memo,
		app_version, policy, source, rumor_id, x, ox, prev, chain_status, received_at, active_seconds, screenshot_count,
		bundle_kept) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.Worker, rec.Session, rec.Index, ms(rec.Start), ms(rec.End), rec.Project, rec.Activity, rec.Memo,
		rec.AppVersion, string(policy), rec.Source, rec.RumorID, rec.X, rec.OX, rec.Prev, string(chain), ms(received),
		rec.ActiveSeconds, len(shots), rec.Bundle != nil)
	if err != nil {
		return fmt.Errorf("insert segment row: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("segment id: %w", err)
	}

	ev := rec.Evidence
	if ev.Manifest != nil || ev.Activity != nil || ev.Rumor != nil || ev.Seal != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO segment_evidence (segment_id, manifest, activity, rumor, seal) VALUES (?, ?, ?, ?, ?)`,
			id, ev.Manifest, ev.Activity, ev.Rumor, ev.Seal); err != nil {
			return fmt.Errorf("insert evidence: %w", err)
		}
	}
	if err := insertChildren(ctx, tx, id, rec, shots); err != nil {
		return err
	}

	// A later segment that arrived first gets its chain status re-evaluated against us.
	var nextID int64
	var nextPrev string
	err = tx.QueryRowContext(ctx, `SELECT id, prev FROM segments WHERE session = ? AND idx = ?`, rec.Session, rec.Index+1).Scan(&nextID, &nextPrev)
	switch {
	case err == nil:
		st := store.ChainFor(rec.Index+1, nextPrev, rec.OX, true)
		if _, err := tx.ExecContext(ctx, `UPDATE segments SET chain_status = ? WHERE id = ?`, string(st), nextID); err != nil {
			return fmt.Errorf("re-evaluate next segment's chain: %w", err)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("read next segment: %w", err)
	}
	return nil
}

// upsertSessionForSegment creates the session if the start message has not arrived, or
// extends it; a session of another worker is a conflict.
func upsertSessionForSegment(ctx context.Context, tx *sql.Tx, rec *store.SegmentRecord) error {
	var owner string
	err := tx.QueryRowContext(ctx, `SELECT worker FROM sessions WHERE id = ?`, rec.Session).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO sessions (id, worker, project, activity, memo, started_at, last_segment_end, state, announced)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'open', 0)`,
			rec.Session, rec.Worker, rec.Project, rec.Activity, rec.Memo, ms(rec.Start), ms(rec.End))
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read session: %w", err)
	case owner != rec.Worker:
		return fmt.Errorf("%w: session %s belongs to worker %s", store.ErrConflict, rec.Session, owner)
	}
	_, err = tx.ExecContext(ctx, `UPDATE sessions SET last_segment_end = max(coalesce(last_segment_end, 0), ?),
		started_at = CASE WHEN announced = 1 THEN started_at ELSE min(started_at, ?) END WHERE id = ?`,
		ms(rec.End), ms(rec.Start), rec.Session)
	if err != nil {
		return fmt.Errorf("extend session: %w", err)
	}
	return nil
}

func insertChildren(ctx context.Context, tx *sql.Tx, id int64, rec *store.SegmentRecord, shots []store.ScreenshotMeta) error {
	err := insertRows(ctx, tx, `INSERT INTO events (segment_id, bucket, seq, ts, duration, data)`, 6, len(rec.Events),
		func(i int) []any {
			e := rec.Events[i]
			data := string(e.Data)
			if data == "" {
				data = "{}"
			}
			return []any{id, string(e.Bucket), i, ms(e.Timestamp), e.Duration, data}
		})
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	err = insertRows(ctx, tx, `INSERT INTO minutes (segment_id, t, keys, clicks, moves, active)`, 6, len(rec.Minutes),
		func(i int) []any {
			m := rec.Minutes[i]
			return []any{id, ms(m.T), m.Keys, m.Clicks, m.Moves, m.Active}
		})
	if err != nil {
		return fmt.Errorf("insert minutes: %w", err)
	}
	type top struct {
		kind string
		rank int
		u    store.Usage
	}
	var tops []top
	apps, titles, urls := store.Tops(rec.Events, store.TopN)
	for _, k := range []struct {
		kind string
		us   []store.Usage
	}{{"app", apps}, {"title", titles}, {"url", urls}} {
		for rank, u := range k.us {
			tops = append(tops, top{k.kind, rank, u})
		}
	}
	err = insertRows(ctx, tx, `INSERT INTO segment_tops (segment_id, kind, rank, name, seconds)`, 5, len(tops),
		func(i int) []any { return []any{id, tops[i].kind, tops[i].rank, tops[i].u.Name, tops[i].u.Seconds} })
	if err != nil {
		return fmt.Errorf("insert top apps, titles and URLs: %w", err)
	}
	err = insertRows(ctx, tx, `INSERT INTO screenshots (segment_id, name, sha256, size, taken_at)`, 5, len(shots),
		func(i int) []any {
			s := shots[i]
			return []any{id, s.Name, s.SHA256, s.Size, nullMS(s.TakenAt)}
		})
	if err != nil {
		return fmt.Errorf("insert screenshots: %w", err)
	}
	err = insertRows(ctx, tx, `INSERT INTO deleted_screenshots (segment_id, name, taken_at, deleted_at)`, 4, len(rec.Deleted),
		func(i int) []any {
			d := rec.Deleted[i]
			return []any{id, d.Name, nullMS(d.TakenAt), nullMS(d.DeletedAt)}
		})
	if err != nil {
		return fmt.Errorf("insert deleted screenshots: %w", err)
	}
	err = insertRows(ctx, tx, `INSERT INTO skipped_captures (segment_id, seq, at, reason)`, 4, len(rec.Skipped),
		func(i int) []any { return []any{id, i, ms(rec.Skipped[i].At), rec.Skipped[i].Reason} })
	if err != nil {
		return fmt.Errorf("insert skipped captures: %w", err)
	}
	return nil
}

// rowsPerInsert bounds multi-row INSERTs (SQLite allows 32766 parameters per statement).
const rowsPerInsert = 256

// insertRows inserts n rows with multi-row INSERT statements: one statement per
// rowsPerInsert rows instead of one per row, which matters with ~100 events per segment.
func insertRows(ctx context.Context, tx *sql.Tx, head string, cols, n int, row func(i int) []any) error {
	one := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for lo := 0; lo < n; lo += rowsPerInsert {
		hi := min(lo+rowsPerInsert, n)
		var q strings.Builder
		q.WriteString(head)
		q.WriteString(" VALUES ")
		args := make([]any, 0, (hi-lo)*cols)
		for i := lo; i < hi; i++ {
			if i > lo {
				q.WriteString(", ")
			}
			q.WriteString(one)
			args = append(args, row(i)...)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("rows %d..%d: %w", lo, hi-1, err)
		}
	}
	return nil
}

const segmentCols = `s.id, s.worker, s.session, s.idx, s.start_at, s.end_at, s.project, s.activity, s.memo, s.app_version,
	s.policy, s.source, s.rumor_id, s.x, s.ox, s.prev, s.active_seconds, s.received_at, s.chain_status, s.kimai_state,
	s.kimai_timesheet_id, s.screenshot_count, s.bundle_kept`

func scanSegment(sc interface{ Scan(...any) error }) (store.Segment, error) {
	var s store.Segment
	var start, end, received int64
	var policy, chain, kimaiState string
	var kimai sql.NullInt64
	if err := sc.Scan(&s.ID, &s.Worker, &s.Session, &s.Index, &start, &end, &s.Project, &s.Activity, &s.Memo,
		&s.AppVersion, &policy, &s.Source, &s.RumorID, &s.X, &s.OX, &s.Prev, &s.ActiveSeconds, &received, &chain,
		&kimaiState, &kimai, &s.ScreenshotCount, &s.BundleKept); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(policy), &s.Policy); err != nil {
		return s, fmt.Errorf("segment %d policy: %w", s.ID, err)
	}
	s.Start, s.End, s.ReceivedAt = fromMS(start), fromMS(end), fromMS(received)
	s.ChainStatus, s.KimaiState, s.KimaiTimesheetID = store.ChainStatus(chain), store.KimaiState(kimaiState), fromNullID(kimai)
	return s, nil
}

// loadDetails reads the segments matching where (over alias s) with all their details,
// ordered by start. Each kind of detail is one query over the same where clause.
func loadDetails(ctx context.Context, q queryer, where string, args ...any) ([]store.SegmentDetail, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+segmentCols+` FROM segments s WHERE `+where+` ORDER BY s.start_at, s.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read segments: %w", err)
	}
	var out []store.SegmentDetail
	pos := map[int64]int{}
	for rows.Next() {
		s, err := scanSegment(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("read segments: %w", err)
		}
		pos[s.ID] = len(out)
		out = append(out, store.SegmentDetail{Segment: s})
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("read segments: %w", err)
	}
	rows.Close()
	if len(out) == 0 {
		return nil, nil
	}
	in := ` IN (SELECT s.id FROM segments s WHERE ` + where + `)`

	// each runs one detail query; its first column is segment_id, the rest go to scan.
	each := func(what, query string, scan func(rows *sql.Rows) error) error {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("read %s: %w", what, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		return nil
	}
	find := func(id int64) (*store.SegmentDetail, error) {
		i, ok := pos[id]
		if !ok {
			return nil, fmt.Errorf("detail for unknown segment %d", id)
		}
		return &out[i], nil
	}

	err = each("minutes", `SELECT segment_id, t, keys, clicks, moves, active FROM minutes WHERE segment_id`+in+` ORDER BY segment_id, t`,
		func(rows *sql.Rows) error {
			var id, t int64
			var m store.Minute
			if err := rows.Scan(&id, &t, &m.Keys, &m.Clicks, &m.Moves, &m.Active); err != nil {
				return err
			}
			d, err := find(id)
			if err != nil {
				return err
			}
			m.T = fromMS(t)
			d.Minutes = append(d.Minutes, m)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("tops", `SELECT segment_id, kind, name, seconds FROM segment_tops WHERE segment_id`+in+` ORDER BY segment_id, kind, rank`,
		func(rows *sql.Rows) error {
			var id int64
			var kind string
			var u store.Usage
			if err := rows.Scan(&id, &kind, &u.Name, &u.Seconds); err != nil {
				return err
			}
			d, err := find(id)
			if err != nil {
				return err
			}
			switch kind {
			case "app":
				d.TopApps = append(d.TopApps, u)
			case "title":
				d.TopTitles = append(d.TopTitles, u)
			case "url":
				d.TopURLs = append(d.TopURLs, u)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("screenshots", `SELECT segment_id, name, sha256, size, taken_at FROM screenshots WHERE segment_id`+in+` ORDER BY segment_id, name`,
		func(rows *sql.Rows) error {
			var id int64
			var m store.ScreenshotMeta
			var taken sql.NullInt64
			if err := rows.Scan(&id, &m.Name, &m.SHA256, &m.Size, &taken); err != nil {
				return err
			}
			d, err := find(id)
			if err != nil {
				return err
			}
			m.TakenAt = fromNullMS(taken)
			d.Screenshots = append(d.Screenshots, m)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("deleted screenshots", `SELECT segment_id, name, taken_at, deleted_at FROM deleted_screenshots WHERE segment_id`+in+` ORDER BY segment_id, name`,
		func(rows *sql.Rows) error {
			var id int64
			var del store.DeletedScreenshot
			var taken, deleted sql.NullInt64
			if err := rows.Scan(&id, &del.Name, &taken, &deleted); err != nil {
				return err
			}
			d, err := find(id)
			if err != nil {
				return err
			}
			del.TakenAt, del.DeletedAt = fromNullMS(taken), fromNullMS(deleted)
			d.Deleted = append(d.Deleted, del)
			return nil
		})
	if err != nil {
		return nil, err
	}
	err = each("skipped captures", `SELECT segment_id, at, reason FROM skipped_captures WHERE segment_id`+in+` ORDER BY segment_id, seq`,
		func(rows *sql.Rows) error {
			var id, at int64
			var sk store.SkippedCapture
			if err := rows.Scan(&id, &at, &sk.Reason); err != nil {
				return err
			}
			d, err := find(id)
			if err != nil {
				return err
			}
			sk.At = fromMS(at)
			d.Skipped = append(d.Skipped, sk)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (d *DB) detailsOne(ctx context.Context, what, where string, args ...any) (store.SegmentDetail, error) {
	var out []store.SegmentDetail
	err := d.read(ctx, what, func(tx *sql.Tx) error {
		var err error
		out, err = loadDetails(ctx, tx, where, args...)
		return err
	})
	if err != nil {
		return store.SegmentDetail{}, fmt.Errorf("%s: %w", what, err)
	}
	if len(out) == 0 {
		return store.SegmentDetail{}, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return out[0], nil
}

// Segment returns one segment with its details.
func (d *DB) Segment(ctx context.Context, id int64) (store.SegmentDetail, error) {
	return d.detailsOne(ctx, fmt.Sprintf("segment %d", id), `s.id = ?`, id)
}

// SegmentAt returns the segment at index in session.
func (d *DB) SegmentAt(ctx context.Context, session string, index int) (store.SegmentDetail, error) {
	return d.detailsOne(ctx, fmt.Sprintf("segment %s/%d", session, index), `s.session = ? AND s.idx = ?`, session, index)
}

// SessionSegments lists a session's segments by index.
func (d *DB) SessionSegments(ctx context.Context, session string) ([]store.Segment, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+segmentCols+` FROM segments s WHERE s.session = ? ORDER BY s.idx`, session)
	if err != nil {
		return nil, fmt.Errorf("session %s segments: %w", session, err)
	}
	defer rows.Close()
	var out []store.Segment
	for rows.Next() {
		s, err := scanSegment(rows)
		if err != nil {
			return nil, fmt.Errorf("session %s segments: %w", session, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("session %s segments: %w", session, err)
	}
	return out, nil
}

func (d *DB) segmentExists(ctx context.Context, q queryer, id int64) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM segments WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("segment %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("segment %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// SegmentEvents returns the segment's events by bucket, then time.
func (d *DB) SegmentEvents(ctx context.Context, segmentID int64) ([]store.Event, error) {
	var out []store.Event
	err := d.read(ctx, "segment events", func(tx *sql.Tx) error {
		if err := d.segmentExists(ctx, tx, segmentID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT bucket, ts, duration, data FROM events WHERE segment_id = ? ORDER BY bucket, ts, seq`, segmentID)
		if err != nil {
			return fmt.Errorf("segment %d events: %w", segmentID, err)
		}
		defer rows.Close()
		for rows.Next() {
			var e store.Event
			var bucket, data string
			var ts int64
			if err := rows.Scan(&bucket, &ts, &e.Duration, &data); err != nil {
				return fmt.Errorf("segment %d events: %w", segmentID, err)
			}
			e.Bucket, e.Timestamp, e.Data = store.Bucket(bucket), fromMS(ts), json.RawMessage(data)
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// SegmentEvidence returns the raw bytes kept for export (empty if none were given).
func (d *DB) SegmentEvidence(ctx context.Context, segmentID int64) (store.Evidence, error) {
	var ev store.Evidence
	err := d.read(ctx, "segment evidence", func(tx *sql.Tx) error {
		if err := d.segmentExists(ctx, tx, segmentID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT manifest, activity, rumor, seal FROM segment_evidence WHERE segment_id = ?`, segmentID).
			Scan(&ev.Manifest, &ev.Activity, &ev.Rumor, &ev.Seal)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("segment %d evidence: %w", segmentID, err)
		}
		return nil
	})
	return ev, err
}

// SetSegmentsKimai sets the Kimai state and timesheet of the given segments, all or none.
func (d *DB) SetSegmentsKimai(ctx context.Context, segmentIDs []int64, state store.KimaiState, timesheetID int64) error {
	if !state.Valid() || timesheetID < 0 {
		return fmt.Errorf("set segments kimai: %w: state %q, timesheet %d", store.ErrInvalid, state, timesheetID)
	}
	uniq := map[int64]bool{}
	for _, id := range segmentIDs {
		uniq[id] = true
	}
	ids, err := json.Marshal(segmentIDs)
	if err != nil {
		return fmt.Errorf("set segments kimai: %w", err)
	}
	return d.write(ctx, "set segments kimai", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE segments SET kimai_state = ?, kimai_timesheet_id = ?
			WHERE id IN (SELECT value FROM json_each(?))`, string(state), nullID(timesheetID), string(ids))
		if err != nil {
			return fmt.Errorf("set segments kimai: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("set segments kimai: %w", err)
		}
		if int(n) != len(uniq) {
			return fmt.Errorf("set segments kimai: %w: %d of %d segments exist", store.ErrNotFound, n, len(uniq))
		}
		return nil
	})
}

// OpenScreenshot opens a stored screenshot file.
func (d *DB) OpenScreenshot(sum string) (*os.File, error) {
	return openCAS("screenshot", d.shots.Open, sum)
}

// OpenBundle opens a kept plaintext bundle.
func (d *DB) OpenBundle(ox string) (*os.File, error) {
	return openCAS("bundle", d.bundles.Open, ox)
}

func openCAS(what string, open func(string) (*os.File, error), sum string) (*os.File, error) {
	f, err := open(sum)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: %w (%w)", what, sum, store.ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return f, nil
}

// SweepFiles removes unreferenced files older than olderThan.
func (d *DB) SweepFiles(ctx context.Context, olderThan time.Time) (int, error) {
	refd := func(query string) func(string) (bool, error) {
		return func(sum string) (bool, error) {
			var n int
			if err := d.r.QueryRowContext(ctx, query, sum).Scan(&n); err != nil {
				return false, err
			}
			return n > 0, nil
		}
	}
	a, err := d.shots.Sweep(olderThan, refd(`SELECT count(*) FROM (SELECT 1 FROM screenshots WHERE sha256 = ? LIMIT 1)`))
	if err != nil {
		return a, fmt.Errorf("sweep screenshots: %w", err)
	}
	b, err := d.bundles.Sweep(olderThan, refd(`SELECT count(*) FROM (SELECT 1 FROM segments WHERE ox = ? AND bundle_kept = 1 LIMIT 1)`))
	if err != nil {
		return a + b, fmt.Errorf("sweep bundles: %w", err)
	}
	return a + b, nil
}
