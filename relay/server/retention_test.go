package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/clocktest"
)

// metric returns the value of one series line of /metrics ("" when absent).
func metric(t *testing.T, s *Server, series string) string {
	t.Helper()
	a := do(t, http.MethodGet, s.URL()+"/metrics", "", nil, nil)
	for _, line := range strings.Split(string(a.body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func TestRetentionAndQuotaWithInjectedClock(t *testing.T) {
	clock := clocktest.New(time.Now())
	s := start(t, "", func(c *Config) {
		c.Now = clock.Now
		c.BlobTTL = 7 * 24 * time.Hour
		c.WrapTTL = 3 * 24 * time.Hour
		c.BlobQuotaBytes = 10_000
	})
	dvm, worker := newKey(t), newKey(t)
	allow(t, s, dvm, worker)
	wc, dc := dial(t, s, &worker), dial(t, s, &dvm)

	// Three 4000-byte blobs a minute apart: the third crosses the 10000-byte quota and
	// the oldest must go (the upload kicks the sweeper).
	var blobs [][]byte
	for i := 0; i < 3; i++ {
		b := randomBytes(t, 4000)
		blobs = append(blobs, b)
		if a := upload(t, s, &worker, b); a.status != 201 {
			t.Fatal(a)
		}
		clock.Advance(time.Minute)
	}
	// The background sweep reports through the metric once it is done.
	deadline := time.Now().Add(wait)
	for metric(t, s, `powdo_relay_sweeper_deleted_total{what="blob_quota"}`) != "1" {
		if time.Now().After(deadline) {
			t.Fatal("no blob was evicted when the quota was exceeded")
		}
		time.Sleep(5 * time.Millisecond) // polling a real condition with a deadline
	}
	if _, ok := s.Blobs().Stat(sha(blobs[0])); ok {
		t.Fatal("quota eviction kept the oldest blob")
	}
	for _, b := range blobs[1:] {
		if _, ok := s.Blobs().Stat(sha(b)); !ok {
			t.Fatal("quota eviction removed a newer blob")
		}
	}

	// Wraps: one fresh, one two days old (NIP-59 backdating).
	fresh, old := giftWrap(t, worker, dvm.pk), giftWrap(t, worker, dvm.pk)
	old.CreatedAt = nostr.Timestamp(clock.Now().Add(-48 * time.Hour).Unix())
	old.Sign(nostr.GeneratePrivateKey())
	for _, w := range []nostr.Event{fresh, old} {
		if msg := wc.publish(w); msg != "" {
			t.Fatal(msg)
		}
	}

	// A day and a bit later the old wrap has outlived the 3-day TTL, the fresh one not.
	clock.Advance(25 * time.Hour)
	r, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.WrapsExpired != 1 || r.BlobsExpired != 0 {
		t.Fatalf("sweep after 25 h: %+v", r)
	}
	evs, _ := dc.query(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}})
	if len(evs) != 1 || evs[0].ID != fresh.ID {
		t.Fatalf("after the wrap TTL the DVM sees %d wraps", len(evs))
	}

	// Past the blob TTL both remaining blobs go; GET answers 404.
	clock.Advance(7 * 24 * time.Hour)
	r, err = s.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.BlobsExpired != 2 || r.WrapsExpired != 1 {
		t.Fatalf("sweep after 8 days: %+v", r)
	}
	if a := do(t, http.MethodGet, s.URL()+"/"+sha(blobs[2]), "", nil, nil); a.status != 404 {
		t.Fatalf("expired blob still served: %v", a)
	}
	for series, want := range map[string]string{
		`powdo_relay_sweeper_deleted_total{what="blob_ttl"}`: "2",
		`powdo_relay_sweeper_deleted_total{what="wrap_ttl"}`: "2",
		`powdo_relay_blobs_stored`:                           "0",
		`powdo_relay_bytes_stored`:                           "0",
		`powdo_relay_events_accepted_total{kind="1059"}`:     "2",
		`powdo_relay_uploads_total{result="created"}`:        "3",
		`powdo_relay_connections`:                            "2",
	} {
		if got := metric(t, s, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}

func TestRestartKeepsEventsBlobsAndWhitelist(t *testing.T) {
	dir := t.TempDir()
	admin, dvm, worker := newKey(t), newKey(t), newKey(t)
	mod := func(c *Config) { c.Admins = []string{admin.pk} }
	s := start(t, dir, mod)
	if st, _, msg, _ := manage(t, s, &admin, "allowpubkey", dvm.pk); st != 200 {
		t.Fatal(msg)
	}
	if st, _, msg, _ := manage(t, s, &admin, "allowpubkey", worker.pk); st != 200 {
		t.Fatal(msg)
	}
	wrap := giftWrap(t, worker, dvm.pk)
	if msg := dial(t, s, &worker).publish(wrap); msg != "" {
		t.Fatal(msg)
	}
	data := randomBytes(t, 7000)
	if a := upload(t, s, &worker, data); a.status != 201 {
		t.Fatal(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	s = start(t, dir, mod)
	evs, reason := dial(t, s, &dvm).query(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}})
	if len(evs) != 1 || evs[0].ID != wrap.ID {
		t.Fatalf("after restart: %d wraps (%s)", len(evs), reason)
	}
	if a := do(t, http.MethodGet, s.URL()+"/"+sha(data), "", nil, nil); a.status != 200 || string(a.body) != string(data) {
		t.Fatalf("blob after restart: %v", a)
	}
	st, _, _, res := manage(t, s, &admin, "listallowedpubkeys")
	list, _ := res.([]any)
	found := 0
	for _, e := range list {
		if m, _ := e.(map[string]any); m["pubkey"] == dvm.pk || m["pubkey"] == worker.pk {
			found++
		}
	}
	if st != 200 || found != 2 {
		t.Fatalf("whitelist after restart: %d %v", st, res)
	}
	if msg := dial(t, s, &worker).publish(giftWrap(t, worker, dvm.pk)); msg != "" {
		t.Fatalf("worker after restart: %s", msg)
	}
}
