package diarytest

import (
	"context"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

// TestStandard checks that every planned segment went through ingest into the store.
func TestStandard(t *testing.T) {
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env, err := Start(db, nostr.GeneratePrivateKey(), func() time.Time { return StandardNow })
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	d, err := Standard(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []Worker{d.Alice, d.Bob} {
		days, err := db.DayTotals(ctx, w.Pub, nil, store.Day{}, store.Day{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, dt := range days {
			n += dt.Segments
		}
		if n != len(d.Sent[w.Pub]) || n == 0 {
			t.Fatalf("%s: %d segments stored, %d sent", w.Name, n, len(d.Sent[w.Pub]))
		}
	}
	// The lost segment makes the next one a gap; Bob's bad prev makes a broken link.
	s := d.Sent[d.Alice.Pub][7] // index 8 of the first session (7 was lost)
	got, err := db.SegmentAt(ctx, s.Session, s.Index)
	if err != nil || s.Index != 8 || got.ChainStatus != store.ChainGap {
		t.Fatalf("segment after the lost one: index %d, chain %q, err %v", s.Index, got.ChainStatus, err)
	}
	b := d.Sent[d.Bob.Pub][3]
	got, err = db.SegmentAt(ctx, b.Session, b.Index)
	if err != nil || got.ChainStatus != store.ChainBroken {
		t.Fatalf("bob's bad prev: chain %q, err %v", got.ChainStatus, err)
	}
	ev, err := db.SegmentEvidence(ctx, got.ID)
	if err != nil || len(ev.Seal) == 0 || len(ev.Rumor) == 0 || !got.BundleKept {
		t.Fatalf("evidence kept: seal %d bytes, rumor %d bytes, bundle kept %v, err %v", len(ev.Seal), len(ev.Rumor), got.BundleKept, err)
	}
}
