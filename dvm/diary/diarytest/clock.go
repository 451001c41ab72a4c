package diarytest

import (
	"sync"
	"time"
)

// Clock is a settable clock that runs on from where it was set, for tests that need the
// store, ingest and the diary to agree on a made-up "now".
type Clock struct {
	mu   sync.Mutex
	base time.Time
	t0   time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{base: t, t0: time.Now()} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.t0))
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.t0 = t, time.Now()
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = c.base.Add(d)
}
