// Package outbox is the tracker's durable queue of what must reach the DVM: sealed
// segments (ciphertext files under <datadir>/outbox/ plus a row in SQLite) and small
// messages (session start/stop, catalogue request). Everything is written and synced
// before any network call, and every state survives a crash or reboot.
//
// A segment goes queued → uploaded (to every Blossom server, rumor built) → sent (wrap
// published) → accepted | duplicate (done: the ciphertext file is deleted) or rejected
// (the DVM's reason is kept; a permanent rejection stops retries and deletes the file,
// a temporary one is retried). A message goes queued → sent, which is final.
//
// Items of one session go out in the order they were added (Ready). The outbox has a
// disk quota: Usage reports it with a warning threshold, and AddSegment refuses with
// ErrQuotaExceeded when full rather than dropping anything.
//
// The same database keeps the receipt listener's durable set of processed gift wraps and
// its per-relay cursors.
package outbox

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"pow.do/shared/proto"
	"pow.do/shared/seal"
)

// File and directory names inside the data directory.
const (
	DBName  = "outbox.db"
	DirName = "outbox"
)

// Defaults for Options.
const (
	DefaultQuotaBytes   = 2 << 30 // 2 GiB of ciphertext: days of segments
	DefaultWarnFraction = 0.8
)

var (
	// ErrQuotaExceeded: the segment would take the outbox over its quota. Nothing was
	// written; the caller must tell the worker (the segment is still theirs to keep).
	ErrQuotaExceeded = errors.New("outbox full: disk quota reached")
	// ErrNotFound: no such item.
	ErrNotFound = errors.New("outbox item not found")
	// ErrConflict: a different segment with the same session and index is already queued.
	ErrConflict = errors.New("another segment with this session and index is already in the outbox")
	// ErrUnknownRumor: a receipt names a rumor this outbox never sent.
	ErrUnknownRumor = errors.New("receipt for a rumor this tracker did not send")
	// ErrState: the transition does not fit the item's current state.
	ErrState = errors.New("outbox item is not in a state that allows this")
)

// Kind tells segments from messages.
type Kind string

const (
	KindSegment Kind = "segment" // a sealed bundle announced by a kind-15 rumor
	KindMessage Kind = "message" // a small rumor (session start/stop, catalogue request)
)

// State is where an item is on its way to the DVM.
type State string

const (
	StateQueued    State = "queued"    // durable, nothing (or not everything) uploaded yet
	StateUploaded  State = "uploaded"  // on every Blossom server it could reach; rumor built
	StateSent      State = "sent"      // wrap published; for a message this is final
	StateAccepted  State = "accepted"  // the DVM stored it
	StateDuplicate State = "duplicate" // the DVM already had it
	StateRejected  State = "rejected"  // the DVM refused it; Reason says why
)

// Item is one row of the outbox.
type Item struct {
	ID        int64
	Kind      Kind
	Session   string // 32 hex chars
	Index     int    // segment index; -1 for messages
	RumorKind int    // 15 for segments; 7700, 7701, 7704 … for messages
	Start     time.Time
	End       time.Time

	// Segment only.
	Path  string // ciphertext file; removed once done
	Key   [seal.KeySize]byte
	Nonce [seal.NonceSize]byte
	X     string // sha256 of the ciphertext
	OX    string // sha256 of the plaintext ZIP
	Size  int64  // ciphertext bytes

	// Uploads maps a Blossom server base URL to the blob URL it answered.
	Uploads map[string]string

	State     State
	Rumor     *nostr.Event // the unsigned rumor once built; resends reuse it (same id)
	RumorID   string
	WrapID    string // last wrap published
	SentAt    time.Time
	Sends     int // how many wraps of this rumor were published
	Attempts  int // failed attempts since the last progress
	NextTry   time.Time
	LastError string
	Reason    string // from a rejecting receipt
	Permanent bool
	CreatedAt time.Time
	DoneAt    time.Time
}

// Done reports whether nothing more will happen to the item.
func (it Item) Done() bool {
	switch it.State {
	case StateAccepted, StateDuplicate:
		return true
	case StateRejected:
		return it.Permanent
	case StateSent:
		return it.Kind == KindMessage
	}
	return false
}

// String describes the item for logs and test failures without its key, nonce or rumor
// (the rumor carries the key too).
func (it Item) String() string {
	return fmt.Sprintf("outbox item %d (%s %s/%d, kind %d, state %s, sends %d, attempts %d, last error %q, reason %q)",
		it.ID, it.Kind, shortID(it.Session), it.Index, it.RumorKind, it.State, it.Sends, it.Attempts, it.LastError, it.Reason)
}

// LogValue keeps the bundle key out of slog output.
func (it Item) LogValue() slog.Value { return slog.StringValue(it.String()) }

// Delivered reports whether the DVM has the segment (accepted or duplicate).
func (it Item) Delivered() bool { return it.State == StateAccepted || it.State == StateDuplicate }

// Segment is a sealed bundle to enqueue.
type Segment struct {
	Session string
	Index   int
	Start   time.Time
	End     time.Time
	Sealed  seal.Sealed
}

// Usage is the outbox's disk use against its quota.
type Usage struct {
	Bytes        int64   // ciphertext bytes still on disk
	QuotaBytes   int64   // the quota
	WarnFraction float64 // the warning threshold as a fraction of the quota
	Pending      int     // segments not yet done
	Warn         bool    // Bytes ≥ WarnFraction × QuotaBytes: tell the worker now
	Full         bool    // no room for another byte
}

// Options configure an Outbox.
type Options struct {
	QuotaBytes   int64   // 0 means DefaultQuotaBytes
	WarnFraction float64 // 0 means DefaultWarnFraction
	// OnChange is called after every committed change of an item, in order, from the
	// goroutine that made it. It must return quickly and must not call back into the
	// outbox's mutating methods.
	OnChange func(Item)
	Now      func() time.Time
	Logger   *slog.Logger
}

// Outbox is the durable queue. It is safe for concurrent use within one process; one
// process at a time may open a data directory.
type Outbox struct {
	db       *sql.DB
	dir      string // <datadir>/outbox
	quota    int64
	warn     float64
	onChange func(Item)
	now      func() time.Time
	log      *slog.Logger

	mu sync.Mutex // serialises quota checks with inserts
}

// Open opens (creating if needed) the outbox in dataDir: <dataDir>/outbox.db (mode 0600,
// WAL, synchronous=FULL) and <dataDir>/outbox/ (mode 0700). Leftovers of a crash —
// temp files, ciphertext files no row names — are removed.
func Open(dataDir string, opts Options) (*Outbox, error) {
	if opts.QuotaBytes <= 0 {
		opts.QuotaBytes = DefaultQuotaBytes
	}
	if opts.WarnFraction <= 0 || opts.WarnFraction > 1 {
		opts.WarnFraction = DefaultWarnFraction
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	o := &Outbox{
		dir: filepath.Join(dataDir, DirName), quota: opts.QuotaBytes, warn: opts.WarnFraction,
		onChange: opts.OnChange, now: opts.Now, log: opts.Logger,
	}
	for _, d := range []string{dataDir, o.dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("outbox: create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("outbox: chmod %s: %w", d, err)
		}
	}
	path, err := filepath.Abs(filepath.Join(dataDir, DBName))
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	// Create the file ourselves so it is 0600 from the first byte; SQLite gives its WAL
	// and shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("outbox: create %s: %w", path, err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("outbox: chmod %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	o.db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	// One connection: writes queue in Go, never fail with SQLITE_BUSY.
	o.db.SetMaxOpenConns(1)
	o.db.SetConnMaxLifetime(0)
	o.db.SetConnMaxIdleTime(0)
	var mode string
	if err := o.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		o.db.Close()
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		o.db.Close()
		return nil, fmt.Errorf("outbox: open %s: journal mode is %q, want wal", path, mode)
	}
	if err := o.migrate(); err != nil {
		o.db.Close()
		return nil, err
	}
	if err := o.sweepOrphans(); err != nil {
		o.db.Close()
		return nil, err
	}
	return o, nil
}

// Close closes the database.
func (o *Outbox) Close() error { return o.db.Close() }

// Dir is the directory holding ciphertext files.
func (o *Outbox) Dir() string { return o.dir }

const schema = `
CREATE TABLE IF NOT EXISTS items (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	kind       TEXT    NOT NULL,
	session    TEXT    NOT NULL,
	seg_index  INTEGER NOT NULL,
	rumor_kind INTEGER NOT NULL,
	start_ns   INTEGER NOT NULL DEFAULT 0,
	end_ns     INTEGER NOT NULL DEFAULT 0,
	path       TEXT    NOT NULL DEFAULT '',
	key_hex    TEXT    NOT NULL DEFAULT '',
	nonce_hex  TEXT    NOT NULL DEFAULT '',
	x          TEXT    NOT NULL DEFAULT '',
	ox         TEXT    NOT NULL DEFAULT '',
	size       INTEGER NOT NULL DEFAULT 0,
	on_disk    INTEGER NOT NULL DEFAULT 0,
	state      TEXT    NOT NULL,
	rumor      TEXT    NOT NULL DEFAULT '',
	rumor_id   TEXT    NOT NULL DEFAULT '',
	wrap_id    TEXT    NOT NULL DEFAULT '',
	sent_ns    INTEGER NOT NULL DEFAULT 0,
	sends      INTEGER NOT NULL DEFAULT 0,
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_ns    INTEGER NOT NULL DEFAULT 0,
	last_error TEXT    NOT NULL DEFAULT '',
	reason     TEXT    NOT NULL DEFAULT '',
	permanent  INTEGER NOT NULL DEFAULT 0,
	created_ns INTEGER NOT NULL,
	done_ns    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS items_segment ON items(session, seg_index) WHERE kind = 'segment';
CREATE INDEX IF NOT EXISTS items_rumor ON items(rumor_id) WHERE rumor_id != '';
CREATE INDEX IF NOT EXISTS items_state ON items(state);
CREATE TABLE IF NOT EXISTS uploads (
	item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
	server  TEXT    NOT NULL,
	url     TEXT    NOT NULL,
	at_ns   INTEGER NOT NULL,
	PRIMARY KEY (item_id, server)
);
CREATE TABLE IF NOT EXISTS wraps (
	id         TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL,
	seen_ns    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS wraps_created ON wraps(created_at);
CREATE TABLE IF NOT EXISTS cursors (
	relay   TEXT PRIMARY KEY,
	unix    INTEGER NOT NULL
);
`

func (o *Outbox) migrate() error {
	if _, err := o.db.Exec(schema); err != nil {
		return fmt.Errorf("outbox: create schema: %w", err)
	}
	return nil
}

// sweepOrphans removes temp files and ciphertext files no pending row names: a crash
// between writing the file and committing its row leaves one.
func (o *Outbox) sweepOrphans() error {
	rows, err := o.db.Query(`SELECT path FROM items WHERE on_disk = 1`)
	if err != nil {
		return fmt.Errorf("outbox: list files: %w", err)
	}
	keep := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return fmt.Errorf("outbox: list files: %w", err)
		}
		keep[filepath.Base(p)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("outbox: list files: %w", err)
	}
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return fmt.Errorf("outbox: read %s: %w", o.dir, err)
	}
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(o.dir, e.Name())); err != nil {
			o.log.Warn("outbox: cannot remove leftover file", "file", e.Name(), "err", err)
			continue
		}
		o.log.Info("outbox: removed leftover file", "file", e.Name())
	}
	return nil
}

// Usage reports disk use against the quota.
func (o *Outbox) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	var bytes sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT SUM(size) FROM items WHERE on_disk = 1`).Scan(&bytes); err != nil {
		return u, fmt.Errorf("outbox: usage: %w", err)
	}
	var pending sql.NullInt64
	if err := o.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM items WHERE kind = 'segment'
		AND state NOT IN ('accepted','duplicate') AND NOT (state = 'rejected' AND permanent = 1)`).Scan(&pending); err != nil {
		return u, fmt.Errorf("outbox: usage: %w", err)
	}
	u.Bytes = bytes.Int64
	u.Pending = int(pending.Int64)
	u.QuotaBytes = o.quota
	u.WarnFraction = o.warn
	u.Warn = float64(u.Bytes) >= o.warn*float64(o.quota)
	u.Full = u.Bytes >= o.quota
	return u, nil
}

// AddSegment writes the ciphertext to <datadir>/outbox/<x>.bin (synced, renamed into
// place, directory synced) and then commits the row: when it returns nil the segment
// survives a crash. Adding the same segment again (same session, index and x) returns the
// existing item; a different one with the same session and index is ErrConflict. When
// the outbox has no room it returns ErrQuotaExceeded and writes nothing.
func (o *Outbox) AddSegment(ctx context.Context, s Segment) (Item, error) {
	if err := checkSegment(s); err != nil {
		return Item{}, fmt.Errorf("outbox: add segment %s/%d: %w", shortID(s.Session), s.Index, err)
	}
	id, existing, err := o.insertSegment(ctx, s)
	if err != nil || existing != nil {
		if existing != nil {
			return *existing, nil
		}
		return Item{}, err
	}
	// OnChange runs outside the lock: it may read the outbox.
	return o.changed(ctx, id)
}

// insertSegment does AddSegment's work under the quota lock; existing is set when the
// same segment was already queued.
func (o *Outbox) insertSegment(ctx context.Context, s Segment) (int64, *Item, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if it, err := o.segmentBy(ctx, s.Session, s.Index); err == nil {
		if it.X == s.Sealed.X {
			return 0, &it, nil
		}
		return 0, nil, fmt.Errorf("outbox: add segment %s/%d: %w", shortID(s.Session), s.Index, ErrConflict)
	} else if !errors.Is(err, ErrNotFound) {
		return 0, nil, err
	}
	u, err := o.Usage(ctx)
	if err != nil {
		return 0, nil, err
	}
	size := int64(len(s.Sealed.Ciphertext))
	if u.Bytes+size > o.quota {
		return 0, nil, fmt.Errorf("outbox: add segment %s/%d (%d bytes, %d of %d in use): %w",
			shortID(s.Session), s.Index, size, u.Bytes, o.quota, ErrQuotaExceeded)
	}
	path := filepath.Join(o.dir, s.Sealed.X+".bin")
	if err := writeFileSync(path, s.Sealed.Ciphertext); err != nil {
		return 0, nil, fmt.Errorf("outbox: add segment %s/%d: %w", shortID(s.Session), s.Index, err)
	}
	res, err := o.db.ExecContext(ctx, `INSERT INTO items
		(kind, session, seg_index, rumor_kind, start_ns, end_ns, path, key_hex, nonce_hex, x, ox, size, on_disk, state, created_ns)
		VALUES ('segment', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'queued', ?)`,
		s.Session, s.Index, proto.KindSegmentFile, s.Start.UnixNano(), s.End.UnixNano(), path,
		s.Sealed.KeyHex(), s.Sealed.NonceHex(), s.Sealed.X, s.Sealed.OX, size, o.now().UnixNano())
	if err != nil {
		os.Remove(path)
		return 0, nil, fmt.Errorf("outbox: add segment %s/%d: %w", shortID(s.Session), s.Index, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, nil, fmt.Errorf("outbox: add segment %s/%d: %w", shortID(s.Session), s.Index, err)
	}
	return id, nil, nil
}

func checkSegment(s Segment) error {
	switch {
	case len(s.Session) != 32 || !isHex(s.Session):
		return errors.New("session is not 32 hex chars")
	case s.Index < 0 || s.Index > proto.MaxSegmentIndex:
		return fmt.Errorf("index %d out of range", s.Index)
	case !s.Start.Before(s.End):
		return errors.New("start is not before end")
	case len(s.Sealed.Ciphertext) <= seal.TagSize:
		return errors.New("ciphertext too short")
	case int64(len(s.Sealed.Ciphertext)) > proto.MaxBlobBytes:
		return fmt.Errorf("ciphertext of %d bytes above the protocol's %d", len(s.Sealed.Ciphertext), proto.MaxBlobBytes)
	case len(s.Sealed.X) != 64 || !isHex(s.Sealed.X) || len(s.Sealed.OX) != 64 || !isHex(s.Sealed.OX):
		return errors.New("x or ox is not a sha256 hex")
	}
	return nil
}

// AddMessage queues a small rumor (already built, with its id) for the DVM. The rumor is
// stored as is, so a resend after a crash publishes the same rumor id.
func (o *Outbox) AddMessage(ctx context.Context, session string, rumor nostr.Event) (Item, error) {
	if rumor.ID == "" || rumor.ID != rumor.GetID() {
		return Item{}, fmt.Errorf("outbox: add message kind %d: rumor id missing or stale", rumor.Kind)
	}
	if len(rumor.String()) > proto.MaxRumorBytes {
		return Item{}, fmt.Errorf("outbox: add message kind %d: rumor above %d bytes", rumor.Kind, proto.MaxRumorBytes)
	}
	raw, err := json.Marshal(rumor)
	if err != nil {
		return Item{}, fmt.Errorf("outbox: add message kind %d: %w", rumor.Kind, err)
	}
	res, err := o.db.ExecContext(ctx, `INSERT INTO items (kind, session, seg_index, rumor_kind, state, rumor, rumor_id, created_ns)
		VALUES ('message', ?, -1, ?, 'uploaded', ?, ?, ?)`, session, rumor.Kind, string(raw), rumor.ID, o.now().UnixNano())
	if err != nil {
		return Item{}, fmt.Errorf("outbox: add message kind %d: %w", rumor.Kind, err)
	}
	id, _ := res.LastInsertId()
	return o.changed(ctx, id)
}

// Get returns one item.
func (o *Outbox) Get(ctx context.Context, id int64) (Item, error) {
	items, err := o.query(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Item{}, err
	}
	if len(items) == 0 {
		return Item{}, fmt.Errorf("outbox: item %d: %w", id, ErrNotFound)
	}
	return items[0], nil
}

// Segment returns the segment with this session and index.
func (o *Outbox) Segment(ctx context.Context, session string, index int) (Item, error) {
	return o.segmentBy(ctx, session, index)
}

func (o *Outbox) segmentBy(ctx context.Context, session string, index int) (Item, error) {
	items, err := o.query(ctx, `WHERE kind = 'segment' AND session = ? AND seg_index = ?`, session, index)
	if err != nil {
		return Item{}, err
	}
	if len(items) == 0 {
		return Item{}, fmt.Errorf("outbox: segment %s/%d: %w", shortID(session), index, ErrNotFound)
	}
	return items[0], nil
}

// ByRumor returns the item whose rumor has this id.
func (o *Outbox) ByRumor(ctx context.Context, rumorID string) (Item, error) {
	items, err := o.query(ctx, `WHERE rumor_id = ? AND rumor_id != ''`, rumorID)
	if err != nil {
		return Item{}, err
	}
	if len(items) == 0 {
		return Item{}, fmt.Errorf("outbox: rumor %s: %w", shortID(rumorID), ErrNotFound)
	}
	return items[0], nil
}

// List returns every item, oldest first; with pendingOnly, only those not Done.
func (o *Outbox) List(ctx context.Context, pendingOnly bool) ([]Item, error) {
	if pendingOnly {
		return o.query(ctx, `WHERE NOT (state IN ('accepted','duplicate') OR (state = 'rejected' AND permanent = 1)
			OR (kind = 'message' AND state = 'sent')) ORDER BY id`)
	}
	return o.query(ctx, `ORDER BY id`)
}

// Ready returns the items the publisher should work on at now, oldest first, keeping
// each session in order: per session, only the first item not yet published is
// eligible, and only once its retry time has come. Items already sent but waiting for a
// receipt do not hold back the next ones; see AwaitingReceipt. A segment rejected
// temporarily is eligible again once its retry time has come.
func (o *Outbox) Ready(ctx context.Context, now time.Time) ([]Item, error) {
	firsts, err := o.query(ctx, `WHERE id IN (
		SELECT MIN(id) FROM items WHERE state IN ('queued','uploaded') GROUP BY session)
		ORDER BY id`)
	if err != nil {
		return nil, err
	}
	retry, err := o.query(ctx, `WHERE state = 'rejected' AND permanent = 0 ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var out []Item
	for _, it := range append(firsts, retry...) {
		if !it.NextTry.After(now) {
			out = append(out, it)
		}
	}
	return out, nil
}

// AwaitingReceipt returns the segments sent at or before sentBefore that still have no
// receipt and whose retry time (after a failed resend) has come by now, oldest first: the
// publisher resends them (same rumor, new wrap).
func (o *Outbox) AwaitingReceipt(ctx context.Context, sentBefore, now time.Time) ([]Item, error) {
	return o.query(ctx, `WHERE kind = 'segment' AND state = 'sent' AND sent_ns <= ? AND next_ns <= ? ORDER BY id`,
		sentBefore.UnixNano(), now.UnixNano())
}

// NextWake is the earliest time something becomes Ready or a sent segment reaches its
// receipt deadline (given receiptTimeout); zero when nothing is waiting on a timer.
func (o *Outbox) NextWake(ctx context.Context, receiptTimeout time.Duration) (time.Time, error) {
	var next, sent sql.NullInt64
	err := o.db.QueryRowContext(ctx, `SELECT
		(SELECT MIN(next_ns) FROM items WHERE (state IN ('queued','uploaded') AND id IN (SELECT MIN(id) FROM items WHERE state IN ('queued','uploaded') GROUP BY session))
			OR (state = 'rejected' AND permanent = 0)),
		(SELECT MIN(MAX(sent_ns + ?, next_ns)) FROM items WHERE kind = 'segment' AND state = 'sent')`,
		receiptTimeout.Nanoseconds()).Scan(&next, &sent)
	if err != nil {
		return time.Time{}, fmt.Errorf("outbox: next wake: %w", err)
	}
	var t time.Time
	if next.Valid {
		t = time.Unix(0, next.Int64)
	}
	if sent.Valid && (t.IsZero() || sent.Int64 < t.UnixNano()) {
		t = time.Unix(0, sent.Int64)
	}
	return t, nil
}

// Open opens a segment's ciphertext file for upload.
func (it Item) Open() (*os.File, error) {
	f, err := os.Open(it.Path)
	if err != nil {
		return nil, fmt.Errorf("outbox: open ciphertext of %s/%d: %w", shortID(it.Session), it.Index, err)
	}
	return f, nil
}

// MarkUploaded records that server holds the segment's blob at blobURL. Idempotent.
func (o *Outbox) MarkUploaded(ctx context.Context, id int64, server, blobURL string) error {
	_, err := o.db.ExecContext(ctx, `INSERT INTO uploads (item_id, server, url, at_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT(item_id, server) DO UPDATE SET url = excluded.url, at_ns = excluded.at_ns`,
		id, server, blobURL, o.now().UnixNano())
	if err != nil {
		return fmt.Errorf("outbox: mark %d uploaded to %s: %w", id, server, err)
	}
	return nil
}

// SetRumor stores the segment's built rumor and moves it to uploaded. A rumor already
// stored is kept (resends must use the same id); the stored one is returned.
func (o *Outbox) SetRumor(ctx context.Context, id int64, rumor nostr.Event) (Item, error) {
	if rumor.ID == "" || rumor.ID != rumor.GetID() {
		return Item{}, fmt.Errorf("outbox: set rumor of %d: rumor id missing or stale", id)
	}
	raw, err := json.Marshal(rumor)
	if err != nil {
		return Item{}, fmt.Errorf("outbox: set rumor of %d: %w", id, err)
	}
	res, err := o.db.ExecContext(ctx, `UPDATE items SET rumor = ?, rumor_id = ?, state = 'uploaded', attempts = 0, next_ns = 0, last_error = ''
		WHERE id = ? AND kind = 'segment' AND rumor = '' AND state = 'queued'`, string(raw), rumor.ID, id)
	if err != nil {
		return Item{}, fmt.Errorf("outbox: set rumor of %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		it, err := o.Get(ctx, id)
		if err != nil {
			return Item{}, err
		}
		if it.Rumor == nil {
			return it, fmt.Errorf("outbox: set rumor of %d in state %s: %w", id, it.State, ErrState)
		}
		if it.State == StateQueued {
			// Re-uploaded after a temporary rejection: keep the first rumor.
			if _, err := o.db.ExecContext(ctx, `UPDATE items SET state = 'uploaded', attempts = 0, next_ns = 0, last_error = '' WHERE id = ?`, id); err != nil {
				return Item{}, fmt.Errorf("outbox: set rumor of %d: %w", id, err)
			}
			return o.changed(ctx, id)
		}
		return it, nil
	}
	return o.changed(ctx, id)
}

// MarkSent records that a wrap of the item's rumor was published at `at`.
func (o *Outbox) MarkSent(ctx context.Context, id int64, wrapID string, at time.Time) (Item, error) {
	res, err := o.db.ExecContext(ctx, `UPDATE items SET state = 'sent', wrap_id = ?, sent_ns = ?, sends = sends + 1,
		attempts = 0, next_ns = 0, last_error = '', done_ns = CASE WHEN kind = 'message' THEN ? ELSE 0 END
		WHERE id = ? AND state IN ('uploaded','sent')`, wrapID, at.UnixNano(), at.UnixNano(), id)
	if err != nil {
		return Item{}, fmt.Errorf("outbox: mark %d sent: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		it, err := o.Get(ctx, id)
		if err != nil {
			return Item{}, err
		}
		return it, fmt.Errorf("outbox: mark %d sent in state %s: %w", id, it.State, ErrState)
	}
	return o.changed(ctx, id)
}

// MarkFailed records a failed attempt (upload or publish) and when to try again. The
// message is shown to the worker: no secrets in it.
func (o *Outbox) MarkFailed(ctx context.Context, id int64, msg string, next time.Time) (Item, error) {
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	if _, err := o.db.ExecContext(ctx, `UPDATE items SET attempts = attempts + 1, last_error = ?, next_ns = ? WHERE id = ?`,
		msg, next.UnixNano(), id); err != nil {
		return Item{}, fmt.Errorf("outbox: mark %d failed: %w", id, err)
	}
	return o.changed(ctx, id)
}

// Defer sets when the item may next be retried or resent, without counting a failure.
func (o *Outbox) Defer(ctx context.Context, id int64, until time.Time) error {
	if _, err := o.db.ExecContext(ctx, `UPDATE items SET next_ns = ? WHERE id = ?`, until.UnixNano(), id); err != nil {
		return fmt.Errorf("outbox: defer %d: %w", id, err)
	}
	return nil
}

// Requeue moves a temporarily rejected segment back to queued (uploads forgotten, rumor
// kept) so the publisher uploads and sends it again.
func (o *Outbox) Requeue(ctx context.Context, id int64) (Item, error) {
	res, err := o.db.ExecContext(ctx, `UPDATE items SET state = 'queued' WHERE id = ? AND kind = 'segment'
		AND state = 'rejected' AND permanent = 0 AND on_disk = 1`, id)
	if err != nil {
		return Item{}, fmt.Errorf("outbox: requeue %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Item{}, fmt.Errorf("outbox: requeue %d: %w", id, ErrState)
	}
	if _, err := o.db.ExecContext(ctx, `DELETE FROM uploads WHERE item_id = ?`, id); err != nil {
		return Item{}, fmt.Errorf("outbox: requeue %d: %w", id, err)
	}
	return o.changed(ctx, id)
}

// ApplyReceipt records the DVM's verdict on the rumor it names. It checks the receipt's
// session and index against the item. Accepted or duplicate: done, ciphertext deleted.
// Rejected: the reason is kept; permanent deletes the ciphertext (it can never be
// delivered), temporary retries after retryAt. A receipt for an item already delivered
// changes nothing (changed false). Unknown rumor ids give ErrUnknownRumor.
func (o *Outbox) ApplyReceipt(ctx context.Context, r proto.Receipt, retryAt time.Time) (it Item, changed bool, err error) {
	it, err = o.ByRumor(ctx, r.Answers)
	if errors.Is(err, ErrNotFound) {
		return Item{}, false, fmt.Errorf("outbox: receipt for %s: %w", shortID(r.Answers), ErrUnknownRumor)
	}
	if err != nil {
		return Item{}, false, err
	}
	if it.Kind != KindSegment || it.Session != r.Session || it.Index != r.Index {
		return it, false, fmt.Errorf("outbox: receipt for %s names segment %s/%d, the rumor was %s/%d: %w",
			shortID(r.Answers), shortID(r.Session), r.Index, shortID(it.Session), it.Index, ErrUnknownRumor)
	}
	if it.Delivered() || (it.State == StateRejected && it.Permanent) {
		return it, false, nil
	}
	now := o.now().UnixNano()
	switch r.Status {
	case proto.StatusAccepted, proto.StatusDuplicate:
		_, err = o.db.ExecContext(ctx, `UPDATE items SET state = ?, on_disk = 0, done_ns = ?, reason = '', permanent = 0, last_error = '' WHERE id = ?`,
			string(r.Status), now, it.ID)
	case proto.StatusRejected:
		if r.Permanent {
			_, err = o.db.ExecContext(ctx, `UPDATE items SET state = 'rejected', reason = ?, permanent = 1, on_disk = 0, done_ns = ? WHERE id = ?`,
				r.Reason, now, it.ID)
		} else {
			_, err = o.db.ExecContext(ctx, `UPDATE items SET state = 'rejected', reason = ?, permanent = 0, next_ns = ?, attempts = attempts + 1 WHERE id = ?`,
				r.Reason, retryAt.UnixNano(), it.ID)
		}
	default:
		return it, false, fmt.Errorf("outbox: receipt for %s: unknown status %q", shortID(r.Answers), r.Status)
	}
	if err != nil {
		return it, false, fmt.Errorf("outbox: apply receipt to %d: %w", it.ID, err)
	}
	// The row no longer names the file; only now may it go (a crash before this point
	// leaves an orphan that Open sweeps).
	if r.Status.Delivered() || r.Permanent {
		if err := os.Remove(it.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			o.log.Warn("outbox: cannot remove delivered ciphertext", "file", filepath.Base(it.Path), "err", err)
		}
	}
	it, err = o.changed(ctx, it.ID)
	return it, true, err
}

// changed reloads an item and reports it to OnChange.
func (o *Outbox) changed(ctx context.Context, id int64) (Item, error) {
	it, err := o.Get(ctx, id)
	if err != nil {
		return Item{}, err
	}
	if o.onChange != nil {
		o.onChange(it)
	}
	return it, nil
}

const columns = `id, kind, session, seg_index, rumor_kind, start_ns, end_ns, path, key_hex, nonce_hex, x, ox, size,
	state, rumor, rumor_id, wrap_id, sent_ns, sends, attempts, next_ns, last_error, reason, permanent, created_ns, done_ns`

func (o *Outbox) query(ctx context.Context, where string, args ...any) ([]Item, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT `+columns+` FROM items `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: query: %w", err)
	}
	var out []Item
	for rows.Next() {
		var it Item
		var kind, state, keyHex, nonceHex, rumor string
		var startNS, endNS, sentNS, nextNS, createdNS, doneNS int64
		var permanent int
		if err := rows.Scan(&it.ID, &kind, &it.Session, &it.Index, &it.RumorKind, &startNS, &endNS, &it.Path,
			&keyHex, &nonceHex, &it.X, &it.OX, &it.Size, &state, &rumor, &it.RumorID, &it.WrapID, &sentNS,
			&it.Sends, &it.Attempts, &nextNS, &it.LastError, &it.Reason, &permanent, &createdNS, &doneNS); err != nil {
			rows.Close()
			return nil, fmt.Errorf("outbox: scan: %w", err)
		}
		it.Kind, it.State, it.Permanent = Kind(kind), State(state), permanent != 0
		it.Start, it.End = unixNano(startNS), unixNano(endNS)
		it.SentAt, it.NextTry = unixNano(sentNS), unixNano(nextNS)
		it.CreatedAt, it.DoneAt = unixNano(createdNS), unixNano(doneNS)
		if keyHex != "" {
			hex.Decode(it.Key[:], []byte(keyHex))
			hex.Decode(it.Nonce[:], []byte(nonceHex))
		}
		if rumor != "" {
			var ev nostr.Event
			if err := json.Unmarshal([]byte(rumor), &ev); err != nil {
				rows.Close()
				return nil, fmt.Errorf("outbox: item %d: stored rumor unreadable: %w", it.ID, err)
			}
			it.Rumor = &ev
		}
		out = append(out, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: query: %w", err)
	}
	for i := range out {
		if out[i].Kind != KindSegment {
			continue
		}
		if out[i].Uploads, err = o.uploads(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (o *Outbox) uploads(ctx context.Context, id int64) (map[string]string, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT server, url FROM uploads WHERE item_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("outbox: uploads of %d: %w", id, err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var s, u string
		if err := rows.Scan(&s, &u); err != nil {
			return nil, fmt.Errorf("outbox: uploads of %d: %w", id, err)
		}
		m[s] = u
	}
	return m, rows.Err()
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// writeFileSync writes data to path through a synced temp file, a rename and a directory
// sync, mode 0600.
func writeFileSync(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename into %s: %w", filepath.Base(path), err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
