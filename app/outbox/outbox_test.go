package outbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/clocktest"
	"pow.do/shared/proto"
	"pow.do/shared/seal"
)

var ctx = context.Background()

type clock = clocktest.Clock

func newClock() *clock { return clocktest.New(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)) }

func openAt(t *testing.T, dir string, opts Options) *Outbox {
	t.Helper()
	o, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func session(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sealed encrypts n random bytes for real.
func sealed(t *testing.T, n int) seal.Sealed {
	t.Helper()
	plain := make([]byte, n)
	rand.Read(plain)
	s, err := seal.Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func segment(t *testing.T, sess string, index, size int) Segment {
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Add(time.Duration(index) * 10 * time.Minute)
	return Segment{Session: sess, Index: index, Start: start, End: start.Add(10 * time.Minute), Sealed: sealed(t, size)}
}

// rumorFor builds a kind-15 rumor for an item as the publisher would.
func rumorFor(t *testing.T, it Item, worker, dvm string) nostr.Event {
	t.Helper()
	sf := proto.SegmentFile{To: dvm, URL: "http://127.0.0.1:1/" + it.X, Key: it.Key, Nonce: it.Nonce, X: it.X, OX: it.OX,
		Size: it.Size, Session: it.Session, Index: it.Index, Start: it.Start, End: it.End}
	if err := sf.Validate(); err != nil {
		t.Fatal(err)
	}
	return sf.Rumor(worker)
}

func keypair() (string, string) {
	sk := nostr.GeneratePrivateKey()
	pk, _ := nostr.GetPublicKey(sk)
	return sk, pk
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	o := openAt(t, dir, Options{Now: clk.Now})
	_, worker := keypair()
	_, dvm := keypair()
	sess := session(t)

	segs := []Segment{segment(t, sess, 0, 3000), segment(t, sess, 1, 4000), segment(t, sess, 2, 5000)}
	var items []Item
	for _, s := range segs {
		it, err := o.AddSegment(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	// Item 0: uploaded to two servers and rumor built; item 1: sent; item 2: queued.
	for _, srv := range []string{"http://a", "http://b"} {
		if err := o.MarkUploaded(ctx, items[0].ID, srv, srv+"/"+items[0].X); err != nil {
			t.Fatal(err)
		}
	}
	r0 := rumorFor(t, items[0], worker, dvm)
	if _, err := o.SetRumor(ctx, items[0].ID, r0); err != nil {
		t.Fatal(err)
	}
	r1 := rumorFor(t, items[1], worker, dvm)
	o.MarkUploaded(ctx, items[1].ID, "http://a", "http://a/"+items[1].X)
	if _, err := o.SetRumor(ctx, items[1].ID, r1); err != nil {
		t.Fatal(err)
	}
	if _, err := o.MarkSent(ctx, items[1].ID, "wrap1", clk.Now()); err != nil {
		t.Fatal(err)
	}
	start := proto.SessionStart{To: dvm, Session: sess, Project: 1, Activity: 2, Start: clk.Now(), Memo: "m"}
	msg, err := o.AddMessage(ctx, sess, start.Rumor(worker))
	if err != nil {
		t.Fatal(err)
	}
	o.Close()

	// Reopen as after a crash: every state and byte is back.
	o = openAt(t, dir, Options{Now: clk.Now})
	got0, _ := o.Get(ctx, items[0].ID)
	got1, _ := o.Get(ctx, items[1].ID)
	got2, _ := o.Get(ctx, items[2].ID)
	gotM, _ := o.Get(ctx, msg.ID)
	if got0.State != StateUploaded || len(got0.Uploads) != 2 || got0.Uploads["http://b"] != "http://b/"+items[0].X || got0.RumorID != r0.ID {
		t.Fatalf("item 0 after reopen: %+v", got0)
	}
	if got1.State != StateSent || got1.WrapID != "wrap1" || got1.Sends != 1 || !got1.SentAt.Equal(clk.Now()) || got1.Rumor == nil || got1.Rumor.ID != r1.ID {
		t.Fatalf("item 1 after reopen: %+v", got1)
	}
	if got2.State != StateQueued || len(got2.Uploads) != 0 || got2.Rumor != nil {
		t.Fatalf("item 2 after reopen: %+v", got2)
	}
	if gotM.Kind != KindMessage || gotM.State != StateUploaded || gotM.Rumor == nil || gotM.Rumor.ID != start.Rumor(worker).ID || gotM.RumorKind != proto.KindSessionStart {
		t.Fatalf("message after reopen: %+v", gotM)
	}
	for i, it := range []Item{got0, got1, got2} {
		ct, err := os.ReadFile(it.Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seal.Open(ct, it.Key[:], it.Nonce[:], it.X, it.OX); err != nil {
			t.Fatalf("item %d: stored ciphertext, key or nonce do not open: %v", i, err)
		}
		if !it.Start.Equal(segs[i].Start) || !it.End.Equal(segs[i].End) || it.Size != int64(len(segs[i].Sealed.Ciphertext)) {
			t.Fatalf("item %d: times or size changed: %+v", i, it)
		}
	}

	// Accepted: done and the file gone, durably.
	it, changed, err := o.ApplyReceipt(ctx, proto.Receipt{Answers: r1.ID, Session: sess, Index: 1, Status: proto.StatusAccepted}, time.Time{})
	if err != nil || !changed || it.State != StateAccepted || !it.Done() {
		t.Fatalf("accept: %+v %v %v", it, changed, err)
	}
	if _, err := os.Stat(got1.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ciphertext of an accepted segment still on disk: %v", err)
	}
	// A second receipt (the DVM answering a resend) changes nothing.
	if it, changed, err := o.ApplyReceipt(ctx, proto.Receipt{Answers: r1.ID, Session: sess, Index: 1, Status: proto.StatusDuplicate}, time.Time{}); err != nil || changed || it.State != StateAccepted {
		t.Fatalf("duplicate after accepted: %+v %v %v", it, changed, err)
	}
	o.Close()
	o = openAt(t, dir, Options{Now: clk.Now})
	if it, _ := o.Get(ctx, items[1].ID); it.State != StateAccepted {
		t.Fatalf("accepted state lost on reopen: %s", it.State)
	}
	fi, err := os.Stat(filepath.Join(dir, DBName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("db mode: %v %v", fi.Mode(), err)
	}
	for _, f := range []string{DBName + "-wal", DBName + "-shm"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil && fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s mode %o readable by others", f, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(o.Dir()); fi.Mode().Perm() != 0o700 {
		t.Fatalf("outbox dir mode %o", fi.Mode().Perm())
	}
}

func TestReadyKeepsSessionOrder(t *testing.T) {
	clk := newClock()
	o := openAt(t, t.TempDir(), Options{Now: clk.Now})
	_, worker := keypair()
	_, dvm := keypair()
	a, b := session(t), session(t)
	add := func(s Segment) Item {
		it, err := o.AddSegment(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	a0, a1, a2 := add(segment(t, a, 0, 100)), add(segment(t, a, 1, 100)), add(segment(t, a, 2, 100))
	b0 := add(segment(t, b, 0, 100))
	want := func(items []Item, err error, ids ...int64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != len(ids) {
			t.Fatalf("ready %v, want %v", idsOf(items), ids)
		}
		for i := range ids {
			if items[i].ID != ids[i] {
				t.Fatalf("ready %v, want %v", idsOf(items), ids)
			}
		}
	}
	r, err := o.Ready(ctx, clk.Now())
	want(r, err, a0.ID, b0.ID)

	send := func(it Item) {
		t.Helper()
		o.MarkUploaded(ctx, it.ID, "http://a", "http://a/"+it.X)
		if _, err := o.SetRumor(ctx, it.ID, rumorFor(t, it, worker, dvm)); err != nil {
			t.Fatal(err)
		}
		if _, err := o.MarkSent(ctx, it.ID, "w", clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	send(a0)
	r, err = o.Ready(ctx, clk.Now())
	want(r, err, a1.ID, b0.ID)

	// a1 fails and waits: a2 must not overtake it; b is unaffected.
	if _, err := o.MarkFailed(ctx, a1.ID, "relay unreachable", clk.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r, err = o.Ready(ctx, clk.Now())
	want(r, err, b0.ID)
	if wake, err := o.NextWake(ctx, time.Hour); err != nil || wake.After(clk.Now()) {
		t.Fatalf("next wake %v (%v): b0 is ready now", wake, err)
	}
	send(b0)
	r, err = o.Ready(ctx, clk.Now())
	want(r, err)
	wake, err := o.NextWake(ctx, time.Hour)
	if err != nil || !wake.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("next wake %v (%v), want a1's retry time", wake, err)
	}
	clk.Advance(time.Minute)
	r, err = o.Ready(ctx, clk.Now())
	want(r, err, a1.ID)
	if got, _ := o.Get(ctx, a1.ID); got.Attempts != 1 || got.LastError != "relay unreachable" {
		t.Fatalf("failure not recorded: %+v", got)
	}
	send(a1)
	r, err = o.Ready(ctx, clk.Now())
	want(r, err, a2.ID)

	// Sent segments wait for receipts; after the timeout they are due for a resend.
	due, err := o.AwaitingReceipt(ctx, clk.Now().Add(-time.Minute), clk.Now())
	if err != nil || len(due) != 2 || due[0].ID != a0.ID || due[1].ID != b0.ID {
		t.Fatalf("awaiting receipt: %v %v, want a0 and b0", idsOf(due), err)
	}
}

func idsOf(items []Item) []int64 {
	var out []int64
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func TestQuota(t *testing.T) {
	dir := t.TempDir()
	o := openAt(t, dir, Options{QuotaBytes: 3000, WarnFraction: 0.5})
	sess := session(t)
	// seal adds a 16-byte tag: sizes below are plaintext sizes.
	it0, err := o.AddSegment(ctx, segment(t, sess, 0, 984))
	if err != nil {
		t.Fatal(err)
	}
	u, err := o.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Bytes != 1000 || u.Warn || u.Full || u.Pending != 1 || u.QuotaBytes != 3000 {
		t.Fatalf("usage after 1000 bytes: %+v", u)
	}
	if _, err := o.AddSegment(ctx, segment(t, sess, 1, 984)); err != nil {
		t.Fatal(err)
	}
	u, _ = o.Usage(ctx)
	if !u.Warn || u.Full || u.Bytes != 2000 {
		t.Fatalf("usage after 2000 of 3000 with warning at 50%%: %+v", u)
	}
	before, _ := os.ReadDir(o.Dir())
	_, err = o.AddSegment(ctx, segment(t, sess, 2, 1484))
	if !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("over quota: %v, want ErrQuotaExceeded", err)
	}
	after, _ := os.ReadDir(o.Dir())
	if len(after) != len(before) {
		t.Fatal("a refused segment left a file")
	}
	if _, err := o.Segment(ctx, sess, 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused segment left a row: %v", err)
	}
	// Delivering one frees its room.
	_, worker := keypair()
	_, dvm := keypair()
	r := rumorFor(t, it0, worker, dvm)
	o.MarkUploaded(ctx, it0.ID, "http://a", "u")
	o.SetRumor(ctx, it0.ID, r)
	o.MarkSent(ctx, it0.ID, "w", time.Now())
	if _, _, err := o.ApplyReceipt(ctx, proto.Receipt{Answers: r.ID, Session: sess, Index: 0, Status: proto.StatusAccepted}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.AddSegment(ctx, segment(t, sess, 2, 1484)); err != nil {
		t.Fatalf("after delivery there is room again: %v", err)
	}
	u, _ = o.Usage(ctx)
	if u.Bytes != 2500 || u.Pending != 2 {
		t.Fatalf("usage: %+v", u)
	}
}

func TestAddSegmentIdempotentAndConflict(t *testing.T) {
	o := openAt(t, t.TempDir(), Options{})
	sess := session(t)
	s := segment(t, sess, 0, 100)
	a, err := o.AddSegment(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.AddSegment(ctx, s)
	if err != nil || b.ID != a.ID {
		t.Fatalf("same segment again: %v %v", b.ID, err)
	}
	if _, err := o.AddSegment(ctx, segment(t, sess, 0, 100)); !errors.Is(err, ErrConflict) {
		t.Fatalf("other bundle, same index: %v", err)
	}
	bad := segment(t, sess, 1, 100)
	bad.End = bad.Start
	if _, err := o.AddSegment(ctx, bad); err == nil {
		t.Fatal("segment with start == end accepted")
	}
	bad = segment(t, "nothex", 1, 100)
	if _, err := o.AddSegment(ctx, bad); err == nil {
		t.Fatal("bad session accepted")
	}
}

func TestRejections(t *testing.T) {
	clk := newClock()
	o := openAt(t, t.TempDir(), Options{Now: clk.Now})
	_, worker := keypair()
	_, dvm := keypair()
	sess := session(t)
	var changes []Item
	var mu sync.Mutex
	o.onChange = func(it Item) { mu.Lock(); changes = append(changes, it); mu.Unlock() }

	send := func(s Segment) (Item, nostr.Event) {
		it, err := o.AddSegment(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		o.MarkUploaded(ctx, it.ID, "http://a", "http://a/"+it.X)
		r := rumorFor(t, it, worker, dvm)
		if _, err := o.SetRumor(ctx, it.ID, r); err != nil {
			t.Fatal(err)
		}
		if _, err := o.MarkSent(ctx, it.ID, "w", clk.Now()); err != nil {
			t.Fatal(err)
		}
		return it, r
	}
	tmp, rTmp := send(segment(t, sess, 0, 100))
	perm, rPerm := send(segment(t, sess, 1, 100))

	// Temporary: reason kept, retried after retryAt with fresh uploads and the same rumor.
	it, changed, err := o.ApplyReceipt(ctx, proto.Receipt{Answers: rTmp.ID, Session: sess, Index: 0, Status: proto.StatusRejected,
		Reason: "blob not found on any server", Permanent: false}, clk.Now().Add(time.Minute))
	if err != nil || !changed || it.State != StateRejected || it.Reason != "blob not found on any server" || it.Done() {
		t.Fatalf("temporary rejection: %+v %v", it, err)
	}
	if r, _ := o.Ready(ctx, clk.Now()); len(r) != 0 {
		t.Fatalf("retried before its time: %v", idsOf(r))
	}
	clk.Advance(time.Minute)
	r, _ := o.Ready(ctx, clk.Now())
	if len(r) != 1 || r[0].ID != tmp.ID {
		t.Fatalf("ready after retry time: %v", idsOf(r))
	}
	it, err = o.Requeue(ctx, tmp.ID)
	if err != nil || it.State != StateQueued || len(it.Uploads) != 0 || it.RumorID != rTmp.ID {
		t.Fatalf("requeue: %+v %v", it, err)
	}
	o.MarkUploaded(ctx, it.ID, "http://a", "http://a/"+it.X)
	// A rebuilt rumor (new created_at) must not replace the first: the DVM knows that id.
	rebuilt := rumorFor(t, it, worker, dvm)
	rebuilt.CreatedAt++
	rebuilt.ID = rebuilt.GetID()
	it, err = o.SetRumor(ctx, it.ID, rebuilt)
	if err != nil || it.State != StateUploaded || it.RumorID != rTmp.ID {
		t.Fatalf("set rumor after requeue: %+v %v", it, err)
	}

	// Permanent: done, file gone, no retry.
	it, changed, err = o.ApplyReceipt(ctx, proto.Receipt{Answers: rPerm.ID, Session: sess, Index: 1, Status: proto.StatusRejected,
		Reason: "manifest worker differs from sender", Permanent: true}, clk.Now())
	if err != nil || !changed || !it.Done() || !it.Permanent || it.Reason != "manifest worker differs from sender" {
		t.Fatalf("permanent rejection: %+v %v", it, err)
	}
	if _, err := os.Stat(perm.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("permanently rejected ciphertext kept")
	}
	if _, err := o.Requeue(ctx, perm.ID); !errors.Is(err, ErrState) {
		t.Fatalf("requeue of a permanent rejection: %v", err)
	}

	// Receipts that do not fit.
	if _, _, err := o.ApplyReceipt(ctx, proto.Receipt{Answers: rumorFor(t, it, worker, worker).ID, Session: sess, Status: proto.StatusAccepted}, clk.Now()); !errors.Is(err, ErrUnknownRumor) {
		t.Fatalf("unknown rumor: %v", err)
	}
	if _, _, err := o.ApplyReceipt(ctx, proto.Receipt{Answers: rTmp.ID, Session: sess, Index: 5, Status: proto.StatusAccepted}, clk.Now()); !errors.Is(err, ErrUnknownRumor) {
		t.Fatalf("receipt naming another index: %v", err)
	}
	mu.Lock()
	n := len(changes)
	last := changes[n-1]
	mu.Unlock()
	if n < 8 || last.ID != perm.ID || last.State != StateRejected {
		t.Fatalf("OnChange saw %d changes, last %+v", n, last)
	}
}

func TestOrphansSwept(t *testing.T) {
	dir := t.TempDir()
	o := openAt(t, dir, Options{})
	it, err := o.AddSegment(ctx, segment(t, session(t), 0, 100))
	if err != nil {
		t.Fatal(err)
	}
	// A crash between writing a file and committing its row leaves an orphan.
	orphan := filepath.Join(o.Dir(), "deadbeef.bin")
	tmp := filepath.Join(o.Dir(), ".tmp-123")
	os.WriteFile(orphan, []byte("x"), 0o600)
	os.WriteFile(tmp, []byte("x"), 0o600)
	o.Close()
	o = openAt(t, dir, Options{})
	for _, p := range []string{orphan, tmp} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s not swept", filepath.Base(p))
		}
	}
	ct, err := os.ReadFile(it.Path)
	if err != nil {
		t.Fatal("a pending segment's file was swept")
	}
	sum := sha256.Sum256(ct)
	if hex.EncodeToString(sum[:]) != it.X {
		t.Fatal("pending ciphertext changed")
	}
}

func TestWrapSetAndCursor(t *testing.T) {
	dir := t.TempDir()
	o := openAt(t, dir, Options{})
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	if seen, err := o.SeenWrap(ctx, "w1"); err != nil || seen {
		t.Fatalf("fresh set: %v %v", seen, err)
	}
	o.MarkWrap(ctx, "w1", now.Add(-72*time.Hour))
	o.MarkWrap(ctx, "w2", now.Add(-time.Hour))
	o.MarkWrap(ctx, "w2", now.Add(-time.Hour))
	if c, _ := o.Cursor(ctx, "ws://r"); !c.IsZero() {
		t.Fatalf("fresh cursor %v", c)
	}
	o.SetCursor(ctx, "ws://r", now)
	o.SetCursor(ctx, "ws://r", now.Add(-time.Hour)) // never back
	o.Close()
	o = openAt(t, dir, Options{})
	for _, id := range []string{"w1", "w2"} {
		if seen, _ := o.SeenWrap(ctx, id); !seen {
			t.Fatalf("%s forgotten on reopen", id)
		}
	}
	if c, _ := o.Cursor(ctx, "ws://r"); !c.Equal(now) {
		t.Fatalf("cursor %v, want %v", c, now)
	}
	if c, _ := o.Cursor(ctx, "ws://other"); !c.IsZero() {
		t.Fatal("cursors are per relay")
	}
	n, err := o.PruneWraps(ctx, now.Add(-48*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if seen, _ := o.SeenWrap(ctx, "w1"); seen {
		t.Fatal("old wrap not pruned")
	}
	if seen, _ := o.SeenWrap(ctx, "w2"); !seen {
		t.Fatal("recent wrap pruned")
	}
}

func TestItemPrintsWithoutKey(t *testing.T) {
	o := openAt(t, t.TempDir(), Options{})
	it, err := o.AddSegment(ctx, segment(t, session(t), 0, 100))
	if err != nil {
		t.Fatal(err)
	}
	keyHex := hex.EncodeToString(it.Key[:])
	for _, s := range []string{it.String(), fmt.Sprintf("%v", it), fmt.Sprintf("%+v", it), it.LogValue().String()} {
		if strings.Contains(s, keyHex) || !strings.Contains(s, "queued") {
			t.Fatalf("item rendered as %q", s)
		}
	}
}
