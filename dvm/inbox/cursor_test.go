package inbox

import (
	"testing"
	"time"
)

func TestCursor(t *testing.T) {
	now := time.Unix(10_000, 0)
	c := newCursor(func() time.Time { return now })

	c.hold() // listing stored wraps
	c.start("a", 100)
	c.start("b", 200)
	if got := c.finish("b", 200, true); got != 0 {
		t.Fatalf("advanced to %d while the listing is held", got)
	}
	if got := c.release(); got != 99 {
		t.Fatalf("after the listing: %d, want 99 (just below a, still in flight)", got)
	}
	if got := c.finish("a", 100, true); got != 200 {
		t.Fatalf("all done: %d, want 200", got)
	}

	// A wrap given up unprocessed keeps blocking until a later delivery processes it.
	c.start("c", 300)
	c.start("d", 400)
	if got := c.finish("c", 300, false); got != 0 {
		t.Fatalf("unprocessed finish advanced to %d", got)
	}
	if got := c.finish("d", 400, true); got != 299 {
		t.Fatalf("with c unprocessed: %d, want 299", got)
	}
	if got := c.skip("c", 300); got != 400 {
		t.Fatalf("c found processed later: %d, want 400", got)
	}

	// A wrap dated in the future does not move the cursor past the clock.
	c.start("e", 20_000)
	if got := c.finish("e", 20_000, true); got != now.Unix() {
		t.Fatalf("future wrap: %d, want the clock %d", got, now.Unix())
	}
	if c.inFlight() != 0 {
		t.Fatalf("%d in flight, want 0", c.inFlight())
	}
}
