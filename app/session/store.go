package session

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go

	"pow.do/app/activitywatch"
	"pow.do/shared/proto"
)

// Session states.
const (
	Running = "running"
	Paused  = "paused"
	Stopped = "stopped"
)

// Segment states in the local store. After SegSealed the outbox owns delivery.
const (
	SegOpen      = "open"      // being recorded
	SegHeld      = "held"      // closed; waits until no idle period can reach back over its end
	SegReviewing = "reviewing" // in the review window: screenshots can be deleted
	SegSealed    = "sealed"    // bundled, sealed and handed to the outbox
)

// SessionRow is one work session.
type SessionRow struct {
	ID           string
	Project      int64
	ProjectName  string
	Activity     int64
	ActivityName string
	Memo         string
	StartedAt    time.Time
	State        string
	EndedAt      time.Time // zero until stopped
	// IdleSince is the last input before an idle period longer than the threshold; zero
	// when the worker is not idle. IdleReturn is the first input after it (zero while away).
	IdleSince  time.Time
	IdleReturn time.Time
	StartSent  bool
	StopSent   bool
}

// SegmentRow is one segment of a session.
type SegmentRow struct {
	ID          int64
	SessionID   string
	Index       int
	Start       time.Time
	PlannedEnd  time.Time // the next clock-aligned boundary after Start
	End         time.Time // zero while open
	State       string
	Interrupted bool // closed by crash recovery or a suspend: ends at its last evidence
	ReviewUntil time.Time
	Policy      proto.Policy
	Planned     []time.Time // screenshot moments
	ShotsDone   int         // planned moments handled (taken or skipped)
	ShotSeq     int         // last screenshot ordinal used (001…999)
	Activity    activitywatch.Activity
	Checkpoint  time.Time // last moment the tracker was known to record this segment
	Prev, OX, X string
	SealedAt    time.Time
}

// Length is End−Start for a closed segment.
func (s SegmentRow) Length() time.Duration { return s.End.Sub(s.Start) }

// ShotRow is one screenshot. JPEG is dropped once the segment is sealed (the outbox has
// it, encrypted); the thumbnail stays for the timeline.
type ShotRow struct {
	SegmentID int64
	Name      string
	TakenAt   time.Time
	Width     int
	Height    int
	JPEG      []byte
	Thumb     []byte
	DeletedAt time.Time // zero unless the worker deleted it in review
}

// SkipRow is a planned screenshot that was not taken.
type SkipRow struct {
	SegmentID int64
	At        time.Time
	Reason    string
}

// Store keeps sessions, segments and screenshots in one SQLite file.
type Store struct {
	db     *sql.DB
	path   string
	writes atomic.Int64 // committed transactions, so the scheduler knows when to tell
}

const schema = `
CREATE TABLE IF NOT EXISTS sessions (
	id            TEXT PRIMARY KEY,
	project       INTEGER NOT NULL,
	project_name  TEXT NOT NULL,
	activity      INTEGER NOT NULL,
	activity_name TEXT NOT NULL,
	memo          TEXT NOT NULL,
	started_at    INTEGER NOT NULL,
	state         TEXT NOT NULL,
	ended_at      INTEGER NOT NULL DEFAULT 0,
	idle_since    INTEGER NOT NULL DEFAULT 0,
	idle_return   INTEGER NOT NULL DEFAULT 0,
	start_sent    INTEGER NOT NULL DEFAULT 0,
	stop_sent     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS segments (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id   TEXT NOT NULL REFERENCES sessions(id),
	idx          INTEGER NOT NULL,
	start        INTEGER NOT NULL,
	planned_end  INTEGER NOT NULL,
	end_at       INTEGER NOT NULL DEFAULT 0,
	state        TEXT NOT NULL,
	interrupted  INTEGER NOT NULL DEFAULT 0,
	review_until INTEGER NOT NULL DEFAULT 0,
	policy       TEXT NOT NULL,
	planned      TEXT NOT NULL,
	shots_done   INTEGER NOT NULL DEFAULT 0,
	shot_seq     INTEGER NOT NULL DEFAULT 0,
	activity     TEXT NOT NULL DEFAULT '',
	checkpoint   INTEGER NOT NULL DEFAULT 0,
	prev         TEXT NOT NULL DEFAULT '',
	ox           TEXT NOT NULL DEFAULT '',
	x            TEXT NOT NULL DEFAULT '',
	sealed_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS segments_session ON segments(session_id, idx);
CREATE INDEX IF NOT EXISTS segments_start ON segments(start);
CREATE TABLE IF NOT EXISTS screenshots (
	segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	taken_at   INTEGER NOT NULL,
	width      INTEGER NOT NULL,
	height     INTEGER NOT NULL,
	jpeg       BLOB,
	thumb      BLOB,
	deleted_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (segment_id, name)
);
CREATE TABLE IF NOT EXISTS skipped (
	segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
	at         INTEGER NOT NULL,
	reason     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS skipped_segment ON skipped(segment_id);
`

// OpenStore opens (creating if needed) the state database at path, readable only by
// its owner: it holds screenshots.
func OpenStore(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open session store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open session store: %w", err)
	}
	_ = f.Close()
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open session store %s: %w", path, err)
	}
	// One connection: every write goes through the scheduler's lock anyway, and SQLite
	// serialises writers; this also keeps the pragmas on the only connection there is.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open session store %s: create schema: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.path }

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx runs fn in one transaction.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.writes.Add(1)
	return nil
}

func insertSession(ctx context.Context, db execer, r SessionRow) error {
	_, err := db.ExecContext(ctx, `INSERT INTO sessions
		(id, project, project_name, activity, activity_name, memo, started_at, state, ended_at, idle_since, idle_return, start_sent, stop_sent)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.Project, r.ProjectName, r.Activity, r.ActivityName, r.Memo, ns(r.StartedAt), r.State,
		ns(r.EndedAt), ns(r.IdleSince), ns(r.IdleReturn), b2i(r.StartSent), b2i(r.StopSent))
	if err != nil {
		return fmt.Errorf("insert session %s: %w", r.ID, err)
	}
	return nil
}

func updateSession(ctx context.Context, db execer, r SessionRow) error {
	// start_sent and stop_sent belong to MarkSessionSent alone: the scheduler's copy of
	// the row does not track them.
	_, err := db.ExecContext(ctx, `UPDATE sessions SET state=?, ended_at=?, idle_since=?, idle_return=? WHERE id=?`,
		r.State, ns(r.EndedAt), ns(r.IdleSince), ns(r.IdleReturn), r.ID)
	if err != nil {
		return fmt.Errorf("update session %s: %w", r.ID, err)
	}
	return nil
}

const sessionCols = `id, project, project_name, activity, activity_name, memo, started_at, state, ended_at, idle_since, idle_return, start_sent, stop_sent`

func scanSession(sc interface{ Scan(...any) error }) (SessionRow, error) {
	var r SessionRow
	var started, ended, since, ret int64
	var startSent, stopSent int
	if err := sc.Scan(&r.ID, &r.Project, &r.ProjectName, &r.Activity, &r.ActivityName, &r.Memo, &started, &r.State, &ended, &since, &ret, &startSent, &stopSent); err != nil {
		return SessionRow{}, err
	}
	r.StartedAt, r.EndedAt, r.IdleSince, r.IdleReturn = fromNS(started), fromNS(ended), fromNS(since), fromNS(ret)
	r.StartSent, r.StopSent = startSent != 0, stopSent != 0
	return r, nil
}

// Session returns one session.
func (s *Store) Session(ctx context.Context, id string) (SessionRow, error) {
	r, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id=?`, id))
	if err != nil {
		return SessionRow{}, fmt.Errorf("read session %s: %w", id, err)
	}
	return r, nil
}

// OpenSessions returns sessions not stopped, oldest first (normally at most one).
func (s *Store) OpenSessions(ctx context.Context) ([]SessionRow, error) {
	return s.sessions(ctx, `WHERE state != ? ORDER BY started_at`, Stopped)
}

// UnsentSessionMessages returns sessions whose start, or whose stop once stopped, has
// not been delivered to the publisher yet.
func (s *Store) UnsentSessionMessages(ctx context.Context) ([]SessionRow, error) {
	return s.sessions(ctx, `WHERE start_sent = 0 OR (state = ? AND stop_sent = 0) ORDER BY started_at`, Stopped)
}

func (s *Store) sessions(ctx context.Context, where string, args ...any) ([]SessionRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []SessionRow
	for rows.Next() {
		r, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// MarkSessionSent records that the start (stop false) or stop message of a session was
// handed to the publisher.
func (s *Store) MarkSessionSent(ctx context.Context, id string, stop bool) error {
	col := "start_sent"
	if stop {
		col = "stop_sent"
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET `+col+`=1 WHERE id=?`, id); err != nil {
			return fmt.Errorf("mark session %s sent: %w", id, err)
		}
		return nil
	})
}

func insertSegment(ctx context.Context, db execer, r *SegmentRow) error {
	pol, planned, act, err := encodeSegment(*r)
	if err != nil {
		return err
	}
	res, err := db.ExecContext(ctx, `INSERT INTO segments
		(session_id, idx, start, planned_end, end_at, state, interrupted, review_until, policy, planned, shots_done, shot_seq, activity, checkpoint, prev, ox, x, sealed_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.SessionID, r.Index, ns(r.Start), ns(r.PlannedEnd), ns(r.End), r.State, b2i(r.Interrupted), ns(r.ReviewUntil),
		pol, planned, r.ShotsDone, r.ShotSeq, act, ns(r.Checkpoint), r.Prev, r.OX, r.X, ns(r.SealedAt))
	if err != nil {
		return fmt.Errorf("insert segment %s/%d: %w", r.SessionID, r.Index, err)
	}
	r.ID, err = res.LastInsertId()
	if err != nil {
		return fmt.Errorf("insert segment %s/%d: %w", r.SessionID, r.Index, err)
	}
	return nil
}

func updateSegment(ctx context.Context, db execer, r SegmentRow) error {
	pol, planned, act, err := encodeSegment(r)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `UPDATE segments SET idx=?, start=?, planned_end=?, end_at=?, state=?, interrupted=?, review_until=?,
		policy=?, planned=?, shots_done=?, shot_seq=?, activity=?, checkpoint=?, prev=?, ox=?, x=?, sealed_at=? WHERE id=?`,
		r.Index, ns(r.Start), ns(r.PlannedEnd), ns(r.End), r.State, b2i(r.Interrupted), ns(r.ReviewUntil),
		pol, planned, r.ShotsDone, r.ShotSeq, act, ns(r.Checkpoint), r.Prev, r.OX, r.X, ns(r.SealedAt), r.ID)
	if err != nil {
		return fmt.Errorf("update segment %d: %w", r.ID, err)
	}
	return nil
}

func encodeSegment(r SegmentRow) (pol, planned, act string, err error) {
	p, err := json.Marshal(r.Policy)
	if err != nil {
		return "", "", "", fmt.Errorf("encode segment policy: %w", err)
	}
	moments := make([]int64, len(r.Planned))
	for i, t := range r.Planned {
		moments[i] = t.UnixNano()
	}
	pl, err := json.Marshal(moments)
	if err != nil {
		return "", "", "", fmt.Errorf("encode segment plan: %w", err)
	}
	var a []byte
	if r.Activity.V != 0 {
		if a, err = json.Marshal(r.Activity); err != nil {
			return "", "", "", fmt.Errorf("encode segment activity: %w", err)
		}
	}
	return string(p), string(pl), string(a), nil
}

const segmentCols = `id, session_id, idx, start, planned_end, end_at, state, interrupted, review_until, policy, planned, shots_done, shot_seq, activity, checkpoint, prev, ox, x, sealed_at`

func scanSegment(sc interface{ Scan(...any) error }) (SegmentRow, error) {
	var r SegmentRow
	var start, plannedEnd, end, review, checkpoint, sealed int64
	var interrupted int
	var pol, planned, act string
	if err := sc.Scan(&r.ID, &r.SessionID, &r.Index, &start, &plannedEnd, &end, &r.State, &interrupted, &review,
		&pol, &planned, &r.ShotsDone, &r.ShotSeq, &act, &checkpoint, &r.Prev, &r.OX, &r.X, &sealed); err != nil {
		return SegmentRow{}, err
	}
	r.Start, r.PlannedEnd, r.End = fromNS(start), fromNS(plannedEnd), fromNS(end)
	r.ReviewUntil, r.Checkpoint, r.SealedAt = fromNS(review), fromNS(checkpoint), fromNS(sealed)
	r.Interrupted = interrupted != 0
	if err := json.Unmarshal([]byte(pol), &r.Policy); err != nil {
		return SegmentRow{}, fmt.Errorf("segment %d: policy: %w", r.ID, err)
	}
	var moments []int64
	if err := json.Unmarshal([]byte(planned), &moments); err != nil {
		return SegmentRow{}, fmt.Errorf("segment %d: plan: %w", r.ID, err)
	}
	for _, m := range moments {
		r.Planned = append(r.Planned, time.Unix(0, m).UTC())
	}
	if act != "" {
		if err := json.Unmarshal([]byte(act), &r.Activity); err != nil {
			return SegmentRow{}, fmt.Errorf("segment %d: activity: %w", r.ID, err)
		}
	}
	return r, nil
}

// Segment returns one segment by id.
func (s *Store) Segment(ctx context.Context, id int64) (SegmentRow, error) {
	return getSegment(ctx, s.db, id)
}

// ErrNoSegment means there is no segment with that id.
var ErrNoSegment = errors.New("no such segment")

func getSegment(ctx context.Context, db execer, id int64) (SegmentRow, error) {
	r, err := scanSegment(db.QueryRowContext(ctx, `SELECT `+segmentCols+` FROM segments WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return SegmentRow{}, fmt.Errorf("segment %d: %w", id, ErrNoSegment)
	}
	if err != nil {
		return SegmentRow{}, fmt.Errorf("read segment %d: %w", id, err)
	}
	return r, nil
}

// Segments returns a session's segments in index order.
func (s *Store) Segments(ctx context.Context, sessionID string) ([]SegmentRow, error) {
	return querySegments(ctx, s.db, `WHERE session_id=? ORDER BY idx`, sessionID)
}

// SegmentsBetween returns segments starting in [from, to), oldest first.
func (s *Store) SegmentsBetween(ctx context.Context, from, to time.Time) ([]SegmentRow, error) {
	return querySegments(ctx, s.db, `WHERE start >= ? AND start < ? ORDER BY start, idx`, ns(from), ns(to))
}

// SegmentsInState returns segments in one state, oldest first.
func (s *Store) SegmentsInState(ctx context.Context, state string) ([]SegmentRow, error) {
	return querySegments(ctx, s.db, `WHERE state=? ORDER BY start, idx`, state)
}

func querySegments(ctx context.Context, db execer, where string, args ...any) ([]SegmentRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+segmentCols+` FROM segments `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	defer rows.Close()
	var out []SegmentRow
	for rows.Next() {
		r, err := scanSegment(rows)
		if err != nil {
			return nil, fmt.Errorf("list segments: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	return out, nil
}

func deleteSegment(ctx context.Context, db execer, id int64) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM segments WHERE id=?`, id); err != nil {
		return fmt.Errorf("delete segment %d: %w", id, err)
	}
	return nil
}

func insertShot(ctx context.Context, db execer, r ShotRow) error {
	_, err := db.ExecContext(ctx, `INSERT INTO screenshots (segment_id, name, taken_at, width, height, jpeg, thumb, deleted_at) VALUES (?,?,?,?,?,?,?,?)`,
		r.SegmentID, r.Name, ns(r.TakenAt), r.Width, r.Height, r.JPEG, r.Thumb, ns(r.DeletedAt))
	if err != nil {
		return fmt.Errorf("insert screenshot %d/%s: %w", r.SegmentID, r.Name, err)
	}
	return nil
}

func insertSkip(ctx context.Context, db execer, r SkipRow) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO skipped (segment_id, at, reason) VALUES (?,?,?)`, r.SegmentID, ns(r.At), r.Reason); err != nil {
		return fmt.Errorf("insert skipped screenshot %d: %w", r.SegmentID, err)
	}
	return nil
}

// Shots returns a segment's screenshots in name order, deleted ones included. With
// withJPEG false the full images are not read.
func (s *Store) Shots(ctx context.Context, segmentID int64, withJPEG bool) ([]ShotRow, error) {
	return queryShots(ctx, s.db, segmentID, withJPEG)
}

func queryShots(ctx context.Context, db execer, segmentID int64, withJPEG bool) ([]ShotRow, error) {
	jpegCol := "NULL"
	if withJPEG {
		jpegCol = "jpeg"
	}
	rows, err := db.QueryContext(ctx, `SELECT segment_id, name, taken_at, width, height, `+jpegCol+`, thumb, deleted_at FROM screenshots WHERE segment_id=? ORDER BY name`, segmentID)
	if err != nil {
		return nil, fmt.Errorf("list screenshots of segment %d: %w", segmentID, err)
	}
	defer rows.Close()
	var out []ShotRow
	for rows.Next() {
		var r ShotRow
		var taken, deleted int64
		if err := rows.Scan(&r.SegmentID, &r.Name, &taken, &r.Width, &r.Height, &r.JPEG, &r.Thumb, &deleted); err != nil {
			return nil, fmt.Errorf("list screenshots of segment %d: %w", segmentID, err)
		}
		r.TakenAt, r.DeletedAt = fromNS(taken), fromNS(deleted)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list screenshots of segment %d: %w", segmentID, err)
	}
	return out, nil
}

// Skips returns a segment's skipped screenshots, oldest first.
func (s *Store) Skips(ctx context.Context, segmentID int64) ([]SkipRow, error) {
	return querySkips(ctx, s.db, segmentID)
}

func querySkips(ctx context.Context, db execer, segmentID int64) ([]SkipRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT segment_id, at, reason FROM skipped WHERE segment_id=? ORDER BY at, rowid`, segmentID)
	if err != nil {
		return nil, fmt.Errorf("list skipped screenshots of segment %d: %w", segmentID, err)
	}
	defer rows.Close()
	var out []SkipRow
	for rows.Next() {
		var r SkipRow
		var at int64
		if err := rows.Scan(&r.SegmentID, &at, &r.Reason); err != nil {
			return nil, fmt.Errorf("list skipped screenshots of segment %d: %w", segmentID, err)
		}
		r.At = fromNS(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list skipped screenshots of segment %d: %w", segmentID, err)
	}
	return out, nil
}
