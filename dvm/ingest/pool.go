package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"pow.do/dvm/inbox"
)

// ErrClosed: the pool is shutting down and takes no more wraps.
var ErrClosed = errors.New("ingest pool closed")

// Attempt describes which try this is for a wrap.
type Attempt struct {
	N     int       // 1 for the first try
	First time.Time // when the first try began
}

// Result is what handling a wrap came to.
type Result struct {
	// Processed: the wrap is in the durable processed set.
	Processed bool
	// RetryAfter > 0: a transient failure; nothing was marked, try again after this long.
	RetryAfter time.Duration
}

// HandlerFunc handles one wrap. relays are the relays that delivered it so far.
type HandlerFunc func(ctx context.Context, w inbox.Wrap, relays []string, at Attempt) Result

// Pool runs a bounded number of handlers. Submit blocks while every worker is busy and
// the queue is full, which stops the relay loops from reading more (backpressure). A wrap
// delivered again while in flight (by a second relay, or after a reconnect) joins the
// first delivery instead of being handled twice. Transient failures wait for their retry
// outside the workers, so a Blossom outage does not stall session or catalogue messages.
type Pool struct {
	handle  HandlerFunc
	work    chan job
	quit    chan struct{}
	ctx     context.Context // handlers' context: outlives quit by the shutdown grace
	cancel  context.CancelFunc
	workers sync.WaitGroup
	timers  sync.WaitGroup
	senders sync.WaitGroup // Submit calls between their closed check and their send

	mu       sync.Mutex
	inflight map[string]*entry
	closed   bool
	parked   int
}

type job struct {
	w  inbox.Wrap
	at Attempt
}

type entry struct {
	dones  []func(bool)
	relays []string
}

// NewPool starts workers goroutines with a queue of queue wraps.
func NewPool(workers, queue int, handle HandlerFunc) *Pool {
	workers = max(workers, 1)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		handle:   handle,
		work:     make(chan job, max(queue, 0)),
		quit:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		inflight: map[string]*entry{},
	}
	for range workers {
		p.workers.Add(1)
		go p.worker()
	}
	return p
}

// Submit implements inbox.Sink.
func (p *Pool) Submit(ctx context.Context, w inbox.Wrap, done func(bool)) error {
	id := w.Event.ID
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if e, ok := p.inflight[id]; ok {
		e.dones = append(e.dones, done)
		e.addRelay(w.Relay)
		p.mu.Unlock()
		return nil
	}
	p.inflight[id] = &entry{dones: []func(bool){done}, relays: []string{w.Relay}}
	p.senders.Add(1)
	p.mu.Unlock()
	defer p.senders.Done()
	select {
	case p.work <- job{w: w, at: Attempt{N: 1}}:
		return nil
	case <-ctx.Done():
		p.finish(id, false)
		return ctx.Err()
	case <-p.quit:
		p.finish(id, false)
		return ErrClosed
	}
}

func (e *entry) addRelay(r string) {
	for _, x := range e.relays {
		if x == r {
			return
		}
	}
	e.relays = append(e.relays, r)
}

// Parked counts wraps waiting for a retry after a transient failure.
func (p *Pool) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parked
}

// InFlight counts wraps queued, being handled or parked.
func (p *Pool) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

func (p *Pool) worker() {
	defer p.workers.Done()
	for {
		select {
		case <-p.quit:
			return
		case j := <-p.work:
			p.run(j)
		}
	}
}

func (p *Pool) run(j job) {
	if j.at.First.IsZero() {
		j.at.First = time.Now()
	}
	id := j.w.Event.ID
	p.mu.Lock()
	relays := append([]string(nil), p.inflight[id].relays...)
	p.mu.Unlock()

	res := p.handle(p.ctx, j.w, relays, j.at)
	if res.RetryAfter <= 0 {
		p.finish(id, res.Processed)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.finish(id, false)
		return
	}
	p.parked++
	p.timers.Add(1)
	p.mu.Unlock()
	// Wait outside the workers; the timer gives up at shutdown, leaving the wrap
	// unprocessed so that the next start fetches it again.
	go func() {
		defer p.timers.Done()
		t := time.NewTimer(res.RetryAfter)
		defer t.Stop()
		next := job{w: j.w, at: Attempt{N: j.at.N + 1, First: j.at.First}}
		select {
		case <-t.C:
			select {
			case p.work <- next:
				p.unpark()
				return
			case <-p.quit:
			}
		case <-p.quit:
		}
		p.unpark()
		p.finish(id, false)
	}()
}

func (p *Pool) unpark() {
	p.mu.Lock()
	p.parked--
	p.mu.Unlock()
}

func (p *Pool) finish(id string, processed bool) {
	p.mu.Lock()
	e := p.inflight[id]
	delete(p.inflight, id)
	p.mu.Unlock()
	if e == nil {
		return
	}
	for _, d := range e.dones {
		d(processed)
	}
}

// Close stops taking wraps, lets the handlers at work finish (for up to grace, after which
// their context is cancelled), and gives up queued and parked wraps unprocessed.
func (p *Pool) Close(grace time.Duration) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.quit)

	finished := make(chan struct{})
	go func() {
		p.workers.Wait()
		close(finished)
	}()
	t := time.NewTimer(grace)
	select {
	case <-finished:
		t.Stop()
	case <-t.C:
		p.cancel()
		<-finished
	}
	p.cancel()
	p.timers.Wait()
	p.senders.Wait()
	for {
		select {
		case j := <-p.work:
			p.finish(j.w.Event.ID, false)
		default:
			return
		}
	}
}

// Backoff returns a retry delay doubling from base up to limit, with jitter (between half
// and all of the delay).
func Backoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		return d/2 + rand.N(d/2+1)
	}
}
