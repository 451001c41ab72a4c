package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"pow.do/dvm/store"
	"pow.do/dvm/store/storetest"
)

func openTest(t *testing.T, dir string, now func() time.Time) *DB {
	t.Helper()
	db, err := Open(dir, WithClock(now))
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return db
}

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return openTest(t, t.TempDir(), now)
	})
}

func tableNames(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.r.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func count(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.r.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestMigrationsIdempotent(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, time.Now)
	tables := tableNames(t, db)
	if err := db.AddWorker(context.Background(), store.Worker{Pubkey: storetest.Key("a"), Name: "a"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // open again, twice: nothing is re-applied, data stays
		db = openTest(t, dir, time.Now)
		if got := count(t, db, "schema_migrations"); got != len(ms) {
			t.Fatalf("open %d: %d migration rows, want %d", i+2, got, len(ms))
		}
		if got := tableNames(t, db); strings.Join(got, ",") != strings.Join(tables, ",") {
			t.Fatalf("tables changed on reopen: %v vs %v", got, tables)
		}
		if got := count(t, db, "workers"); got != 1 {
			t.Fatalf("workers after reopen = %d", got)
		}
		db.Close()
	}
}

func TestMigrationsApplyOnlyNewOnes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := sql.Open("sqlite", dsn(filepath.Join(dir, "m.db"), []string{"foreign_keys(1)"}, "immediate"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	v1 := fstest.MapFS{"migrations/0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);`)}}
	v2 := fstest.MapFS{
		"migrations/0001_a.sql": v1["migrations/0001_a.sql"],
		"migrations/0002_b.sql": {Data: []byte(`INSERT INTO a VALUES (2);`)},
	}
	for _, fsys := range []fstest.MapFS{v1, v1, v2, v2} {
		ms, err := loadMigrations(fsys)
		if err != nil {
			t.Fatal(err)
		}
		if err := applyMigrations(ctx, w, ms, time.Now); err != nil {
			t.Fatal(err)
		}
	}
	var n, sum int
	if err := w.QueryRow(`SELECT count(*), sum(x) FROM a`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != 3 {
		t.Fatalf("rows %d sum %d: a migration ran more than once", n, sum)
	}
	// A database from a newer program is refused, not silently used.
	ms, _ := loadMigrations(v1)
	if err := applyMigrations(ctx, w, ms, time.Now); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("older program on newer schema: %v", err)
	}
	// A failing migration leaves no trace of itself.
	bad := fstest.MapFS{
		"migrations/0001_a.sql": v1["migrations/0001_a.sql"],
		"migrations/0002_b.sql": v2["migrations/0002_b.sql"],
		"migrations/0003_c.sql": {Data: []byte(`INSERT INTO a VALUES (4); INSERT INTO nowhere VALUES (1);`)},
	}
	ms, _ = loadMigrations(bad)
	if err := applyMigrations(ctx, w, ms, time.Now); err == nil {
		t.Fatal("broken migration applied")
	}
	if err := w.QueryRow(`SELECT count(*) FROM a`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("half a migration stayed: %d rows, %v", n, err)
	}
	if _, err := loadMigrations(fstest.MapFS{"migrations/0002_x.sql": {Data: []byte(`SELECT 1`)}}); err == nil {
		t.Fatal("a gap in migration versions was accepted")
	}
}

func TestPragmas(t *testing.T) {
	db := openTest(t, t.TempDir(), time.Now)
	defer db.Close()
	for _, pool := range []*sql.DB{db.w, db.r} {
		var mode string
		var fk, sync, busy int
		if err := pool.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || sync != 2 || busy != int(busyTimeout.Milliseconds()) {
			t.Fatalf("journal_mode=%s foreign_keys=%d synchronous=%d busy_timeout=%d", mode, fk, sync, busy)
		}
	}
	if _, err := db.r.Exec(`DELETE FROM workers`); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFileModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	db := openTest(t, dir, time.Now)
	defer db.Close()
	alice := storetest.Key("alice")
	if err := db.AddWorker(ctx, store.Worker{Pubkey: alice, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	rec := storetest.Record(alice, storetest.SessionID("s"), 0, storetest.Epoch, "", "a")
	rec.Bundle = []byte("zip")
	rec.OX = store.HashHex(rec.Bundle)
	if _, err := db.InsertSegment(ctx, rec); err != nil {
		t.Fatal(err)
	}
	sum := store.HashHex(rec.Screenshots[0].Data)
	dbPath := filepath.Join(dir, FileName)
	want := map[string]fs.FileMode{
		dir:                               0o700,
		dbPath:                            0o600,
		dbPath + "-wal":                   0o600,
		dbPath + "-shm":                   0o600,
		filepath.Join(dir, "screenshots"): 0o700,
		filepath.Join(dir, "screenshots", sum[:2]):            0o700,
		filepath.Join(dir, "screenshots", sum[:2], sum[2:]):   0o600,
		filepath.Join(dir, "bundles", rec.OX[:2], rec.OX[2:]): 0o600,
	}
	for p, m := range want {
		if got := mode(t, p); got != m {
			t.Errorf("%s: mode %v, want %v", p, got, m)
		}
	}
}

func TestLooseModesAreTightened(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil { // WriteFile's mode is subject to the umask
		t.Fatal(err)
	}
	db := openTest(t, dir, time.Now)
	db.Close()
	if m := mode(t, p); m != 0o600 {
		t.Fatalf("database mode %v after open", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("data dir mode %v after open", m)
	}
}

// A failed insert must leave no row in any table, whatever table the failure hits.
func TestFailedInsertLeavesNoRows(t *testing.T) {
	ctx := context.Background()
	db := openTest(t, t.TempDir(), time.Now)
	defer db.Close()
	alice := storetest.Key("alice")
	if err := db.AddWorker(ctx, store.Worker{Pubkey: alice, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, tb := range tableNames(t, db) {
		before[tb] = count(t, db, tb)
	}
	breakers := map[string]func(r *store.SegmentRecord){
		"minutes":     func(r *store.SegmentRecord) { r.Minutes = append(r.Minutes, r.Minutes[9]) },
		"screenshots": func(r *store.SegmentRecord) { r.Screenshots = append(r.Screenshots, r.Screenshots[0]) },
		"deleted":     func(r *store.SegmentRecord) { r.Deleted = append(r.Deleted, r.Deleted[0]) },
	}
	for name, brk := range breakers {
		rec := storetest.Record(alice, storetest.SessionID(name), 0, storetest.Epoch, "", name)
		brk(rec)
		ok, err := db.InsertSegment(ctx, rec)
		if ok || err == nil {
			t.Fatalf("%s: insert = %v, %v; want a constraint error", name, ok, err)
		}
		if !strings.Contains(err.Error(), "constraint") {
			t.Fatalf("%s: error %q does not name the constraint", name, err)
		}
		for tb, n := range before {
			if got := count(t, db, tb); got != n {
				t.Fatalf("%s: table %s has %d rows after the failed insert, had %d", name, tb, got, n)
			}
		}
	}
}

// A cancelled context aborts the insert without leaving anything behind.
func TestCancelledInsert(t *testing.T) {
	db := openTest(t, t.TempDir(), time.Now)
	defer db.Close()
	alice := storetest.Key("alice")
	if err := db.AddWorker(context.Background(), store.Worker{Pubkey: alice, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := db.InsertSegment(ctx, storetest.Record(alice, storetest.SessionID("s"), 0, storetest.Epoch, "", "a"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("insert with cancelled context: %v", err)
	}
	if n := count(t, db, "segments"); n != 0 {
		t.Fatalf("%d segments after cancelled insert", n)
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := storetest.NewClock(storetest.Epoch)
	db := openTest(t, dir, clock.Now)
	wraps := []string{storetest.Key("w1"), storetest.Key("w2")}
	for _, id := range wraps {
		if err := db.MarkWrapProcessed(ctx, store.ProcessedWrap{ID: id, Outcome: store.WrapAccepted}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AdvanceRelayCursor(ctx, "wss://r/", storetest.Epoch); err != nil {
		t.Fatal(err)
	}
	alice := storetest.Key("alice")
	if err := db.AddWorker(ctx, store.Worker{Pubkey: alice, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	rec := storetest.Record(alice, storetest.SessionID("s"), 0, storetest.Epoch, "", "a")
	if _, err := db.InsertSegment(ctx, rec); err != nil {
		t.Fatal(err)
	}
	jobID, err := db.Enqueue(ctx, store.Job{Op: "start"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTest(t, dir, clock.Now)
	defer db.Close()
	for _, id := range wraps {
		if ok, err := db.WrapProcessed(ctx, id); err != nil || !ok {
			t.Fatalf("wrap %s forgotten after reopen: %v", id[:8], err)
		}
	}
	if ok, _ := db.WrapProcessed(ctx, storetest.Key("w3")); ok {
		t.Fatal("an unseen wrap counts as processed")
	}
	if c, _ := db.RelayCursor(ctx, "wss://r/"); !c.Equal(storetest.Epoch) {
		t.Fatalf("cursor after reopen = %v", c)
	}
	if ok, err := db.InsertSegment(ctx, rec); err != nil || ok {
		t.Fatalf("re-insert after reopen = %v, %v; want duplicate", ok, err)
	}
	if j, err := db.Job(ctx, jobID); err != nil || j.State != store.JobPending {
		t.Fatalf("queued job after reopen = %+v, %v", j, err)
	}
}

func TestDefaultBackoff(t *testing.T) {
	prev := time.Duration(0)
	for a := 1; a <= 20; a++ {
		d := DefaultBackoff(a)
		if d < prev || d > time.Hour || d <= 0 {
			t.Fatalf("backoff(%d) = %s after %s", a, d, prev)
		}
		prev = d
	}
	if DefaultBackoff(1) != 30*time.Second || DefaultBackoff(20) != time.Hour {
		t.Fatalf("backoff bounds: %s .. %s", DefaultBackoff(1), DefaultBackoff(20))
	}
}
