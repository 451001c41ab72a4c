package engine

import (
	"sync"

	"pow.do/app/engineapi"
)

// events delivers engine events to subscribers from one goroutine, in order. Producers
// never block: they queue a function that builds the event when it is delivered, and
// state changes coalesce into one fresh State.
type events struct {
	mu      sync.Mutex
	subs    map[int]func(engineapi.Event)
	next    int
	queue   []func() (engineapi.Event, bool)
	dirty   bool
	stateFn func() (engineapi.Event, bool)

	signal  chan struct{}
	quit    chan struct{}
	done    chan struct{}
	started bool
}

func newEvents() *events {
	return &events{subs: map[int]func(engineapi.Event){}, signal: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
}

func (ev *events) start() {
	ev.mu.Lock()
	ev.started = true
	ev.mu.Unlock()
	go ev.run()
}

func (ev *events) stop() {
	ev.mu.Lock()
	started := ev.started
	ev.started = false
	ev.mu.Unlock()
	if !started {
		return
	}
	close(ev.quit)
	<-ev.done
}

func (ev *events) subscribe(fn func(engineapi.Event)) func() {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	id := ev.next
	ev.next++
	ev.subs[id] = fn
	return func() {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		delete(ev.subs, id)
	}
}

func (ev *events) wake() {
	select {
	case ev.signal <- struct{}{}:
	default:
	}
}

// push queues one event, built at delivery time.
func (ev *events) push(build func() (engineapi.Event, bool)) {
	ev.mu.Lock()
	ev.queue = append(ev.queue, build)
	ev.mu.Unlock()
	ev.wake()
}

// stateChanged asks for a fresh State to be delivered.
func (ev *events) stateChanged() {
	ev.mu.Lock()
	ev.dirty = true
	ev.mu.Unlock()
	ev.wake()
}

func (ev *events) run() {
	defer close(ev.done)
	for {
		select {
		case <-ev.quit:
			return
		case <-ev.signal:
		}
		ev.mu.Lock()
		queue, dirty, stateFn := ev.queue, ev.dirty, ev.stateFn
		ev.queue, ev.dirty = nil, false
		ev.mu.Unlock()
		for _, build := range queue {
			if e, ok := build(); ok {
				ev.deliver(e)
			}
		}
		if dirty && stateFn != nil {
			if e, ok := stateFn(); ok {
				ev.deliver(e)
			}
		}
	}
}

func (ev *events) deliver(e engineapi.Event) {
	ev.mu.Lock()
	fns := make([]func(engineapi.Event), 0, len(ev.subs))
	for _, fn := range ev.subs {
		fns = append(fns, fn)
	}
	ev.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}
