package ratelimit

import (
	"testing"
	"time"

	"pow.do/shared/clocktest"
)

type clock = clocktest.Clock

func TestBurstThenRefill(t *testing.T) {
	c := clocktest.New(time.Unix(1_700_000_000, 0))
	l := New(3, c.Now)
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatalf("action %d refused within the burst", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("4th action in the same instant allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key is limited by a's usage")
	}
	if l.Peek("a") {
		t.Fatal("Peek reports a token that is not there")
	}
	c.Advance(20 * time.Second) // one token per 20 s
	if !l.Peek("a") || !l.Allow("a") {
		t.Fatal("token not refilled after 20 s")
	}
	if l.Allow("a") {
		t.Fatal("more than one token after 20 s")
	}
	c.Advance(time.Hour)
	for i := 0; i < 3; i++ {
		if !l.Allow("a") {
			t.Fatalf("bucket not refilled to the burst after an hour (action %d)", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("bucket refilled beyond its burst")
	}
}

func TestPruneAndUnlimited(t *testing.T) {
	c := clocktest.New(time.Unix(1_700_000_000, 0))
	l := New(2, c.Now)
	l.Allow("x")
	l.Allow("y")
	if l.Len() != 2 {
		t.Fatalf("tracked %d keys, want 2", l.Len())
	}
	c.Advance(2 * time.Minute)
	l.Allow("z")
	if l.Len() != 1 {
		t.Fatalf("after prune tracked %d keys, want 1", l.Len())
	}
	u := New(0, nil)
	for i := 0; i < 1000; i++ {
		if !u.Allow("k") {
			t.Fatal("unlimited limiter refused")
		}
	}
	var nl *Limiter
	if !nl.Allow("k") {
		t.Fatal("nil limiter refused")
	}
}
