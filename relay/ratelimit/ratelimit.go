// Package ratelimit is a keyed token-bucket limiter ("N per minute, bursts of N") with an
// injectable clock, used for per-pubkey and per-IP limits on events and uploads.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter allows PerMinute actions per key per minute, in bursts of at most PerMinute.
// A Limiter with PerMinute <= 0 allows everything.
type Limiter struct {
	perMinute float64
	now       func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastPrune time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New returns a limiter of perMinute actions per key; now may be nil for the wall clock.
func New(perMinute int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{perMinute: float64(perMinute), now: now, buckets: map[string]*bucket{}}
}

// Allow takes one token for key and reports whether there was one.
func (l *Limiter) Allow(key string) bool {
	if l == nil || l.perMinute <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Peek reports whether Allow would succeed, without taking a token (for preflights).
func (l *Limiter) Peek(key string) bool {
	if l == nil || l.perMinute <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refill(key).tokens >= 1
}

func (l *Limiter) refill(key string) *bucket {
	now := l.now()
	l.prune(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.perMinute, at: now}
		l.buckets[key] = b
		return b
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens += el.Minutes() * l.perMinute
		if b.tokens > l.perMinute {
			b.tokens = l.perMinute
		}
		b.at = now
	}
	return b
}

// prune drops full buckets once a minute so memory stays bounded by recent activity.
func (l *Limiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < time.Minute {
		return
	}
	l.lastPrune = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Minutes()*l.perMinute >= l.perMinute {
			delete(l.buckets, k)
		}
	}
}

// Len is the number of keys currently tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
