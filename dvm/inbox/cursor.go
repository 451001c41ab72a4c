package inbox

import (
	"sync"
	"time"
)

// cursor decides how far a relay's durable cursor may move: up to the newest created_at
// handled, but never past a wrap still in flight or one that ended unprocessed (a
// transient failure at shutdown), so that a restart asks for it again. It never passes
// the local clock, so a wrap dated in the future cannot make the DVM skip later ones.
type cursor struct {
	mu      sync.Mutex
	pending map[string]int64 // wrap id → created_at, in flight or ended unprocessed
	done    int64            // newest created_at processed
	holds   int              // > 0 while stored events are still being listed (before EOSE)
	now     func() time.Time
}

func newCursor(now func() time.Time) *cursor {
	return &cursor{pending: map[string]int64{}, now: now}
}

// start notes a wrap handed over for processing.
func (c *cursor) start(id string, createdAt int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[id]; !ok {
		c.pending[id] = createdAt
	}
}

// finish notes the outcome and returns the cursor the store may advance to (0: none).
func (c *cursor) finish(id string, createdAt int64, processed bool) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !processed {
		c.pending[id] = createdAt // keeps blocking until a later delivery processes it
		return 0
	}
	delete(c.pending, id)
	if createdAt > c.done {
		c.done = createdAt
	}
	return c.limitLocked()
}

// hold stops the cursor while a listing of stored events is incomplete: an event not yet
// listed may be older than everything handled so far.
func (c *cursor) hold() {
	c.mu.Lock()
	c.holds++
	c.mu.Unlock()
}

// release ends a hold and returns the cursor the store may advance to (0: none).
func (c *cursor) release() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds > 0 {
		c.holds--
	}
	return c.limitLocked()
}

// skip notes a wrap found in the processed set: it counts as done.
func (c *cursor) skip(id string, createdAt int64) int64 {
	return c.finish(id, createdAt, true)
}

func (c *cursor) limitLocked() int64 {
	if c.holds > 0 {
		return 0
	}
	v := c.done
	for _, at := range c.pending {
		if at-1 < v {
			v = at - 1
		}
	}
	if now := c.now().Unix(); v > now {
		v = now
	}
	if v < 0 {
		return 0
	}
	return v
}

// inFlight counts wraps not yet processed.
func (c *cursor) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
