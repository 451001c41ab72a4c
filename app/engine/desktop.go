package engine

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	"pow.do/app/activitywatch"
	"pow.do/app/capture"
	"pow.do/app/engineapi"
	"pow.do/shared/proto"
)

// shooter takes a screenshot of every display with the segment's policy, unless an
// excluded app is focused.
type shooter struct{ e *Engine }

func (s *shooter) Shoot(ctx context.Context, p proto.Policy) (capture.Result, error) {
	s.e.mu.Lock()
	excluded := append([]string(nil), s.e.settings.ExcludedApps...)
	s.e.mu.Unlock()
	screen := s.e.desk.Screen(capture.EncodeOptions{Quality: p.JPEGQuality, MaxWidth: p.MaxWidth, Blur: p.Blur})
	return capture.Capture(ctx, screen, s.e.desk, excluded)
}

// collector reads a segment's activity from ActivityWatch when it runs (address from the
// settings) and from the built-in watcher otherwise, and remembers which it used.
type collector struct {
	builtin *activitywatch.Builtin

	mu     sync.Mutex
	col    activitywatch.Collector
	source engineapi.Source
	awSeen bool // ActivityWatch answered at least once in this run
	awLost bool // and then stopped answering
}

// configure points the collector at the ActivityWatch server of the settings ("" means
// the built-in watcher only).
func (c *collector) configure(s engineapi.Settings) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.col = activitywatch.Collector{Builtin: c.builtin}
	if base := strings.TrimRight(strings.TrimSpace(s.ActivityWatchURL), "/"); base != "" {
		if u, err := url.Parse(base); err == nil && !strings.HasSuffix(u.Path, "/api/0") {
			base += "/api/0"
		}
		c.col.Client = activitywatch.New(activitywatch.Config{BaseURL: base, APIKey: s.ActivityWatchKey, Timeout: 5 * time.Second})
	}
	c.awSeen, c.awLost = false, false
	if c.source == "" {
		c.source = engineapi.SourceBuiltin
	}
}

func (c *collector) Collect(ctx context.Context, start, end time.Time) activitywatch.Activity {
	c.mu.Lock()
	col := c.col
	c.mu.Unlock()
	a := col.Collect(ctx, start, end)
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.Source == activitywatch.SourceActivityWatch {
		c.source, c.awSeen, c.awLost = engineapi.SourceActivityWatch, true, false
	} else {
		c.source = engineapi.SourceBuiltin
		c.awLost = c.awSeen
	}
	return a
}

// status is the source last used, and whether ActivityWatch went away during this run.
func (c *collector) status() (engineapi.Source, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.source, c.awLost
}
