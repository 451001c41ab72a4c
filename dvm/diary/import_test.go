package diary_test

import (
	"context"
	"errors"
	"testing"

	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

// TestImportSegments covers the bulk insert the benchmark fills its store with
// (store/sqlite/diary_queries.go): all or nothing, duplicates skipped.
func TestImportSegments(t *testing.T) {
	db, err := sqlite.Open(t.TempDir(), sqlite.WithLogger(quietLog()))
	must(t, err)
	defer db.Close()
	ctx := context.Background()
	pk := store.HashHex([]byte("import worker"))
	must(t, db.AddWorker(ctx, store.Worker{Pubkey: pk, Name: "I"}))
	recs := benchRecords(pk, 0, 1)[:3]
	n, err := db.ImportSegments(ctx, recs)
	if err != nil || n != 3 {
		t.Fatalf("import: %d, %v", n, err)
	}
	if n, err := db.ImportSegments(ctx, recs); err != nil || n != 0 {
		t.Fatalf("import again: %d new, %v", n, err)
	}
	// A batch with one conflicting record (same slot, other bundle) stores nothing.
	fresh := benchRecords(pk, 0, 1)[3:5]
	clash := *recs[1]
	clash.OX = store.HashHex([]byte("another bundle"))
	if _, err := db.ImportSegments(ctx, append(fresh, &clash)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("conflicting import: %v", err)
	}
	segs, err := db.SessionSegments(ctx, recs[0].Session)
	if err != nil || len(segs) != 3 {
		t.Fatalf("after the refused batch: %d segments (%v), want 3", len(segs), err)
	}
	for i, s := range segs {
		if s.ChainStatus != store.ChainVerified || s.ScreenshotCount != 2 {
			t.Errorf("segment %d: chain %s, %d screenshots", i, s.ChainStatus, s.ScreenshotCount)
		}
	}
	bad := *recs[0]
	bad.Worker = "nothex"
	if _, err := db.ImportSegments(ctx, []*store.SegmentRecord{&bad}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("invalid record: %v", err)
	}
}
