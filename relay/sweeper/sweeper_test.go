package sweeper

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/fiatjaf/eventstore/badger"
	"github.com/nbd-wtf/go-nostr"

	"pow.do/relay/access"
	"pow.do/relay/blobstore"
	"pow.do/shared/clocktest"
)

type clock = clocktest.Clock

func wrap(t *testing.T, kind int, createdAt time.Time) *nostr.Event {
	t.Helper()
	ev := &nostr.Event{Kind: kind, CreatedAt: nostr.Timestamp(createdAt.Unix()), Tags: nostr.Tags{{"p", "00"}}, Content: "x"}
	if err := ev.Sign(nostr.GeneratePrivateKey()); err != nil {
		t.Fatal(err)
	}
	return ev
}

func count(t *testing.T, db *badger.BadgerBackend, kinds ...int) int {
	t.Helper()
	ch, err := db.QueryEvents(context.Background(), nostr.Filter{Kinds: kinds})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range ch {
		n++
	}
	return n
}

func TestRetentionQuotaAndWrapTTL(t *testing.T) {
	dir := t.TempDir()
	db := &badger.BadgerBackend{Path: filepath.Join(dir, "events")}
	if err := db.Init(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, err := blobstore.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_800_000_000, 0)
	c := clocktest.New(start)
	acc, err := access.Open(filepath.Join(dir, "access.json"), access.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	put := func(at time.Time, n int) string {
		b := make([]byte, n)
		rand.Read(b)
		m, _, err := blobs.Put(bytes.NewReader(b), blobstore.PutOptions{Size: int64(n), Owner: "o", Uploaded: at})
		if err != nil {
			t.Fatal(err)
		}
		return m.SHA256
	}
	day := 24 * time.Hour
	old := put(start, 1000)              // expires at start+7d
	mid := put(start.Add(3*day), 1000)   // evicted first when over quota
	newer := put(start.Add(4*day), 1000) // survives
	for _, ev := range []*nostr.Event{
		wrap(t, 1059, start.Add(-20*day)),
		wrap(t, 1059, start.Add(-15*day)),
		wrap(t, 5, start.Add(-15*day)),
		wrap(t, 1059, start.Add(-1*day)),
	} {
		if err := db.SaveEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}

	var reports []Report
	s := &Sweeper{Now: c.Now, Blobs: blobs, Events: db, Access: acc, BlobTTL: 7 * day, WrapTTL: 14 * day, Quota: 10_000,
		OnSweep: func(r Report) { reports = append(reports, r) }}

	r, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.BlobsExpired != 0 || r.BlobsEvicted != 0 || r.WrapsExpired != 2 || r.OthersExpired != 1 {
		t.Fatalf("first sweep %+v", r)
	}
	if count(t, db, 1059) != 1 || count(t, db, 5) != 0 {
		t.Fatalf("wraps left %d, deletions left %d", count(t, db, 1059), count(t, db, 5))
	}

	c.Set(start.Add(7*day + time.Second))
	r, err = s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.BlobsExpired != 1 || r.BytesFreed != 1000 {
		t.Fatalf("TTL sweep %+v", r)
	}
	if _, ok := blobs.Stat(old); ok {
		t.Fatal("blob older than the TTL survived")
	}

	s.Quota = 1500 // two blobs of 1000 left: the older one must go
	r, err = s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.BlobsEvicted != 1 {
		t.Fatalf("quota sweep %+v", r)
	}
	if _, ok := blobs.Stat(mid); ok {
		t.Fatal("quota eviction kept the older blob")
	}
	if _, ok := blobs.Stat(newer); !ok {
		t.Fatal("quota eviction removed the newest blob")
	}
	if len(reports) != 3 {
		t.Fatalf("OnSweep called %d times", len(reports))
	}
}

func TestRunStopsAndKicks(t *testing.T) {
	blobs, err := blobstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sweeps := make(chan Report, 10)
	s := &Sweeper{Blobs: blobs, BlobTTL: time.Hour, OnSweep: func(r Report) { sweeps <- r }}
	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{})
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Hour, kick); close(done) }()
	<-sweeps // the first sweep runs at once
	kick <- struct{}{}
	<-sweeps // and again when kicked, long before the hour
	cancel()
	<-done
}
