// Package sqlite is the SQLite implementation of store.Store, on the pure-Go
// modernc.org/sqlite driver. One file in the data directory holds every table; screenshots
// (and kept bundles) are files named by their sha256 under <dir>/screenshots and
// <dir>/bundles.
//
// Writes go through a pool of one connection whose transactions BEGIN IMMEDIATE, so writers
// queue in Go instead of failing with SQLITE_BUSY; reads use a separate pool of read-only
// connections that WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers driver "sqlite"

	"pow.do/dvm/store"
	"pow.do/dvm/store/cas"
)

// FileName is the database file's name inside the data directory.
const FileName = "dvm.db"

const (
	dirMode     = 0o700
	fileMode    = 0o600
	busyTimeout = 10 * time.Second
	readConns   = 4
)

// DB is the SQLite store. It is safe for concurrent use.
type DB struct {
	dir     string
	w       *sql.DB // one connection, BEGIN IMMEDIATE
	r       *sql.DB // read-only connections
	shots   *cas.Dir
	bundles *cas.Dir
	now     func() time.Time
	backoff func(attempts int) time.Duration
	log     *slog.Logger
}

var _ store.Store = (*DB)(nil)

// Option changes how Open sets up the store.
type Option func(*DB)

// WithClock sets the clock used for received/seen times, leases and backoff (tests).
func WithClock(now func() time.Time) Option { return func(d *DB) { d.now = now } }

// WithBackoff sets the delay before the next attempt of a failed Kimai job, given how many
// attempts it has had (1 after the first failure).
func WithBackoff(f func(attempts int) time.Duration) Option { return func(d *DB) { d.backoff = f } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(d *DB) { d.log = l } }

// DefaultBackoff doubles from 30 s up to one hour.
func DefaultBackoff(attempts int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Open opens (creating if needed) the store in dir: the directory and file directories
// with mode 0700, the database file with mode 0600, WAL, foreign keys, synchronous=FULL
// (a segment acknowledged to a worker must survive a power cut), and every pending
// migration applied.
func Open(dir string, opts ...Option) (*DB, error) {
	d := &DB{dir: dir, now: time.Now, backoff: DefaultBackoff, log: slog.Default()}
	for _, o := range opts {
		o(d)
	}
	if err := ensurePrivateDir(dir, d.log); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := ensurePrivateFile(path, d.log); err != nil {
		return nil, err
	}
	if d.shots, err = cas.Open(filepath.Join(dir, "screenshots")); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if d.bundles, err = cas.Open(filepath.Join(dir, "bundles")); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}

	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"foreign_keys(1)",
		"synchronous(FULL)",
	}
	if d.w, err = sql.Open("sqlite", dsn(path, append(pragmas, "journal_mode(WAL)"), "immediate")); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	d.w.SetMaxOpenConns(1)
	d.w.SetMaxIdleConns(1)
	d.w.SetConnMaxLifetime(0)
	d.w.SetConnMaxIdleTime(0)
	// The writer creates the file and switches it to WAL before any reader opens it.
	if err := d.checkPragmas(); err != nil {
		d.w.Close()
		return nil, err
	}
	if err := migrate(context.Background(), d.w, d.now); err != nil {
		d.w.Close()
		return nil, err
	}
	if d.r, err = sql.Open("sqlite", dsn(path, append(pragmas, "query_only(1)"), "")); err != nil {
		d.w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	d.r.SetMaxOpenConns(readConns)
	d.r.SetMaxIdleConns(readConns)
	return d, nil
}

// Dir is the data directory.
func (d *DB) Dir() string { return d.dir }

// Close closes both pools.
func (d *DB) Close() error {
	return errors.Join(d.r.Close(), d.w.Close())
}

func (d *DB) checkPragmas() error {
	var mode string
	if err := d.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var fk int
	if err := d.w.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("read foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("foreign keys are off")
	}
	return nil
}

func dsn(path string, pragmas []string, txlock string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if txlock != "" {
		q.Set("_txlock", txlock)
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// ensurePrivateDir creates dir with mode 0700, or tightens an existing one.
func ensurePrivateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat data dir %s: %w", dir, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("data directory was readable by others; tightening to 0700", "dir", dir, "mode", fi.Mode().Perm().String())
		if err := os.Chmod(dir, dirMode); err != nil {
			return fmt.Errorf("chmod data dir %s: %w", dir, err)
		}
	}
	return nil
}

// ensurePrivateFile creates the database file with mode 0600 before SQLite opens it
// (SQLite would use 0644 less the umask), and SQLite gives its -wal and -shm files the
// same mode as the database file.
func ensurePrivateFile(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm() != fileMode {
		log.Warn("database file mode was not 0600; tightening", "path", path, "mode", fi.Mode().Perm().String())
		if err := os.Chmod(path, fileMode); err != nil {
			return fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(side); err == nil && fi.Mode().Perm() != fileMode {
			if err := os.Chmod(side, fileMode); err != nil {
				return fmt.Errorf("chmod %s: %w", side, err)
			}
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", side, err)
		}
	}
	return nil
}

// write runs fn in one write transaction.
func (d *DB) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("%s: rollback: %w", what, rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// read runs fn in one read transaction, so its queries see one snapshot.
func (d *DB) read(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// Times are stored as INTEGER Unix milliseconds; zero time is NULL.

func ms(t time.Time) int64 { return t.UnixMilli() }

func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func fromNullID(v sql.NullInt64) int64 {
	if !v.Valid {
		return 0
	}
	return v.Int64
}

// affected turns "no row changed" into ErrNotFound.
func affected(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}
