package ingest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/inbox"
)

func wrapWithID(id string, relay string) inbox.Wrap {
	return inbox.Wrap{Event: nostr.Event{ID: id}, Relay: relay}
}

type doneLog struct {
	mu  sync.Mutex
	got map[string][]bool
	ch  chan string
}

func newDoneLog() *doneLog { return &doneLog{got: map[string][]bool{}, ch: make(chan string, 100)} }

func (d *doneLog) fn(id string) func(bool) {
	return func(p bool) {
		d.mu.Lock()
		d.got[id] = append(d.got[id], p)
		d.mu.Unlock()
		d.ch <- id
	}
}

func (d *doneLog) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-d.ch:
		case <-time.After(10 * time.Second):
			t.Fatal("done not called")
		}
	}
}

func TestPoolBackpressure(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 10)
	p := NewPool(1, 1, func(ctx context.Context, w inbox.Wrap, relays []string, at Attempt) Result {
		started <- w.Event.ID
		<-release
		return Result{Processed: true}
	})
	defer p.Close(time.Second)
	dl := newDoneLog()
	ctx := context.Background()
	if err := p.Submit(ctx, wrapWithID("1", "r"), dl.fn("1")); err != nil {
		t.Fatal(err)
	}
	<-started // the only worker is busy
	if err := p.Submit(ctx, wrapWithID("2", "r"), dl.fn("2")); err != nil {
		t.Fatal(err) // fits the queue
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := p.Submit(short, wrapWithID("3", "r"), dl.fn("3")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third submit with a full pool: %v, want it to block until its context ends", err)
	}
	dl.wait(t, 1) // the refused wrap is given back unprocessed
	if got := dl.got["3"]; !slices.Equal(got, []bool{false}) {
		t.Fatalf("refused wrap done %v, want [false]", got)
	}
	close(release)
	dl.wait(t, 2)
	if !slices.Equal(dl.got["1"], []bool{true}) || !slices.Equal(dl.got["2"], []bool{true}) {
		t.Fatalf("done calls %v", dl.got)
	}
}

func TestPoolJoinsRepeatedDelivery(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	var seenRelays []string
	p := NewPool(2, 4, func(ctx context.Context, w inbox.Wrap, relays []string, at Attempt) Result {
		<-release
		mu.Lock()
		calls++
		seenRelays = relays
		mu.Unlock()
		return Result{Processed: true}
	})
	defer p.Close(time.Second)
	dl := newDoneLog()
	ctx := context.Background()
	for _, r := range []string{"ws://a", "ws://b", "ws://a"} {
		if err := p.Submit(ctx, wrapWithID("x", r), dl.fn("x")); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	dl.wait(t, 3)
	if calls != 1 {
		t.Fatalf("handled %d times, want once", calls)
	}
	if !slices.Equal(seenRelays, []string{"ws://a", "ws://b"}) {
		t.Fatalf("relays %v, want both, once each", seenRelays)
	}
	if !slices.Equal(dl.got["x"], []bool{true, true, true}) {
		t.Fatalf("done %v", dl.got["x"])
	}
}

func TestPoolRetriesTransientFailures(t *testing.T) {
	var mu sync.Mutex
	var attempts []Attempt
	p := NewPool(1, 1, func(ctx context.Context, w inbox.Wrap, relays []string, at Attempt) Result {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, at)
		if len(attempts) < 3 {
			return Result{RetryAfter: time.Millisecond}
		}
		return Result{Processed: true}
	})
	defer p.Close(time.Second)
	dl := newDoneLog()
	if err := p.Submit(context.Background(), wrapWithID("r", "ws://a"), dl.fn("r")); err != nil {
		t.Fatal(err)
	}
	dl.wait(t, 1)
	if !slices.Equal(dl.got["r"], []bool{true}) || len(attempts) != 3 {
		t.Fatalf("done %v after %d attempts", dl.got["r"], len(attempts))
	}
	for i, a := range attempts {
		if a.N != i+1 || !a.First.Equal(attempts[0].First) {
			t.Fatalf("attempt %d: %+v (first %v)", i, a, attempts[0].First)
		}
	}
}

func TestPoolCloseFinishesInFlightAndGivesUpParked(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	p := NewPool(1, 2, func(ctx context.Context, w inbox.Wrap, relays []string, at Attempt) Result {
		if w.Event.ID == "parked" {
			return Result{RetryAfter: time.Hour}
		}
		close(inHandler)
		<-release
		return Result{Processed: true}
	})
	dl := newDoneLog()
	ctx := context.Background()
	p.Submit(ctx, wrapWithID("parked", "r"), dl.fn("parked"))
	if err := waitFor(func() bool { return p.Parked() == 1 }); err != nil {
		t.Fatal(err)
	}
	p.Submit(ctx, wrapWithID("busy", "r"), dl.fn("busy"))
	<-inHandler
	closed := make(chan struct{})
	go func() {
		p.Close(10 * time.Second)
		close(closed)
	}()
	close(release)
	<-closed
	if !slices.Equal(dl.got["busy"], []bool{true}) {
		t.Fatalf("in-flight wrap: done %v, want finished", dl.got["busy"])
	}
	if !slices.Equal(dl.got["parked"], []bool{false}) {
		t.Fatalf("parked wrap: done %v, want given up unprocessed", dl.got["parked"])
	}
	if err := p.Submit(ctx, wrapWithID("late", "r"), func(bool) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}

func waitFor(cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("condition not met")
		}
		time.Sleep(5 * time.Millisecond) // polling a real condition with a deadline
	}
	return nil
}

func TestBackoff(t *testing.T) {
	b := Backoff(time.Second, 8*time.Second)
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		for range 20 {
			if d := b(n); d < want/2 || d > want {
				t.Fatalf("attempt %d: %s, want within [%s, %s]", n, d, want/2, want)
			}
		}
	}
}
