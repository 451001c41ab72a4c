package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/e2e"
	"pow.do/dvm/inbox"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
)

// markingSink marks every wrap processed and records how often each was handed over.
type markingSink struct {
	st  store.Inbox
	mu  sync.Mutex
	got map[string]int
}

func (s *markingSink) Submit(ctx context.Context, w inbox.Wrap, done func(bool)) error {
	s.mu.Lock()
	s.got[w.Event.ID]++
	s.mu.Unlock()
	err := s.st.MarkWrapProcessed(ctx, store.ProcessedWrap{ID: w.Event.ID, Outcome: store.WrapIgnored})
	done(err == nil)
	return nil
}

func (s *markingSink) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.got {
		out[k] = v
	}
	return out
}

// The loop lists every stored wrap across pages, hands each over once, advances the
// cursor, and after the relay restarts it reconnects, skips what it processed and gets
// new wraps.
func TestRelayLoopPagesReconnectsAndSkipsProcessed(t *testing.T) {
	dvm, worker := e2e.NewKey(), e2e.NewKey()
	relay := e2e.StartRelay(t, e2e.RelayOptions{Admins: []string{dvm.PK}, Allow: []string{worker.PK}})
	ctx := context.Background()
	publish := func(n int) []string {
		conn, err := e2e.Connect(ctx, relay.WS, worker.SK)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var ids []string
		for i := range n {
			r := proto.CatalogueRequest{To: dvm.PK}.Rumor(worker.PK)
			r.CreatedAt -= nostr.Timestamp(i) // distinct rumors
			r.ID = r.GetID()
			w, err := giftwrap.Wrap(r, worker.SK, dvm.PK)
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.Publish(ctx, w); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, w.ID)
		}
		return ids
	}
	first := publish(10)

	db, err := sqlite.Open(t.TempDir(), sqlite.WithLogger(e2e.Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sink := &markingSink{st: db, got: map[string]int{}}
	r, err := inbox.NewRelay(inbox.Config{URL: relay.WS, SecretKey: dvm.SK, Store: db, Sink: sink, Log: e2e.Quiet(),
		PageLimit: 3, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	waitAll := func(ids []string) {
		t.Helper()
		if err := e2e.Eventually(15*time.Second, func() error {
			c := sink.counts()
			for _, id := range ids {
				if c[id] == 0 {
					return errors.New("not every wrap handed over yet")
				}
			}
			if !r.Status().Ready {
				return errors.New("not ready")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitAll(first)
	for id, n := range sink.counts() {
		if n != 1 {
			t.Fatalf("wrap %s handed over %d times", id, n)
		}
	}
	cur, err := db.RelayCursor(ctx, relay.WS)
	if err != nil || cur.IsZero() {
		t.Fatalf("cursor %v (err %v) after listing", cur, err)
	}

	// The relay goes away and comes back on the same address.
	relay.Stop()
	if err := e2e.Eventually(10*time.Second, func() error {
		if r.Status().Connected {
			return errors.New("still connected")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	relay = e2e.StartRelay(t, e2e.RelayOptions{Addr: relay.Addr, DataDir: relay.DataDir, Admins: []string{dvm.PK}, Allow: []string{worker.PK}})
	second := publish(2)
	waitAll(second)
	for id, n := range sink.counts() {
		if n != 1 {
			t.Fatalf("after the reconnect wrap %s was handed over %d times", id, n)
		}
	}
	if len(sink.counts()) != 12 {
		t.Fatalf("%d wraps handed over, want 12", len(sink.counts()))
	}
}
