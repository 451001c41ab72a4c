package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"pow.do/app/activitywatch"
	"pow.do/app/join"
	"pow.do/app/keys"
	"pow.do/app/outbox"
	"pow.do/app/publisher"
	"pow.do/app/segment"
	"pow.do/shared/bundle"
	"pow.do/shared/proto"
)

// SimTracker is a tracker without a desktop, for load tests of many trackers in one
// process: it pairs with the real join code and delivers through the real outbox and
// publisher, but its segments are built from a given screenshot and a synthetic
// activity instead of a capture loop. Receipt times are recorded as they arrive.
type SimTracker struct {
	Dir    string
	Worker string
	Pub    *publisher.Publisher
	Ob     *outbox.Outbox

	session string
	index   int
	prev    string
	policy  proto.Policy

	mu      sync.Mutex
	waiters map[SegKey]chan time.Time
}

// NewSimTracker joins with link (key at rest under a cheap scrypt cost: only its
// storage, not the protocol, is cheaper than a real tracker's) and opens the outbox.
func NewSimTracker(ctx context.Context, dir, link string, policy proto.Policy, log *slog.Logger) (*SimTracker, error) {
	ks, err := keys.Open(dir, keys.Options{LogN: 4, Logger: log})
	if err != nil {
		return nil, err
	}
	res, err := join.Join(ctx, link, ks, join.Options{DataDir: dir, Passphrase: "simulated tracker passphrase",
		CatalogueTimeout: -1, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", dir, err)
	}
	t := &SimTracker{Dir: dir, Worker: res.Config.Worker, policy: policy, waiters: map[SegKey]chan time.Time{}}
	if t.Ob, err = outbox.Open(dir, outbox.Options{OnChange: t.changed, Logger: log}); err != nil {
		return nil, err
	}
	sk, err := ks.SecretKey()
	if err != nil {
		return nil, err
	}
	t.Pub, err = publisher.New(publisher.Config{
		Outbox: t.Ob, SecretKey: sk, DVM: res.Config.DVM, Relays: res.Config.Relays, Blossoms: res.Config.Blossoms,
		ReceiptTimeout: 2 * time.Duration(policy.SegmentSeconds) * time.Second, Logger: log,
	})
	if err != nil {
		t.Ob.Close()
		return nil, err
	}
	return t, nil
}

// changed is the outbox hook: it stamps the moment a segment's receipt is applied.
func (t *SimTracker) changed(it outbox.Item) {
	if it.Kind != outbox.KindSegment || !it.Delivered() {
		return
	}
	at := time.Now()
	t.mu.Lock()
	ch := t.waiters[SegKey{it.Session, it.Index}]
	delete(t.waiters, SegKey{it.Session, it.Index})
	t.mu.Unlock()
	if ch != nil {
		ch <- at
	}
}

// StartSession queues the session start message.
func (t *SimTracker) StartSession(ctx context.Context, project, activity int64, start time.Time) error {
	t.session = randHex(16)
	t.index, t.prev = 0, ""
	_, err := t.Pub.SendSessionStart(ctx, proto.SessionStart{Session: t.session, Project: project, Activity: activity,
		Start: start.UTC().Truncate(time.Second), Memo: "simulated tracker"})
	return err
}

// Send seals the next segment [start, end) with one screenshot and enqueues it. It
// returns when the outbox holds it (the moment a real tracker's capture is done and
// handed over), and a channel that receives the time its receipt was applied.
func (t *SimTracker) Send(ctx context.Context, start, end time.Time, project, activity int64, jpeg []byte) (time.Time, <-chan time.Time, error) {
	in := segment.Input{
		Worker: t.Worker, Session: t.session, Index: t.index, Start: start, End: end,
		Project: project, Activity: activity, Memo: "simulated tracker", AppVersion: "0.1.0",
		Policy: bundle.Policy{SegmentSeconds: t.policy.SegmentSeconds, Screenshots: t.policy.Screenshots,
			JPEGQuality: t.policy.JPEGQuality, MaxWidth: t.policy.MaxWidth},
		Prev:     t.prev,
		Recorded: syntheticActivity(start, end),
		Shots:    []segment.Shot{{Name: bundle.ScreenshotName(1), TakenAt: start.Add(end.Sub(start) / 2), JPEG: jpeg}},
	}
	sealed, err := segment.Seal(in)
	if err != nil {
		return time.Time{}, nil, err
	}
	ch := make(chan time.Time, 1)
	k := SegKey{t.session, t.index}
	t.mu.Lock()
	t.waiters[k] = ch
	t.mu.Unlock()
	if _, err := t.Pub.Enqueue(ctx, outbox.Segment{Session: t.session, Index: t.index, Start: in.Start, End: in.End,
		Sealed: sealed.Seal()}); err != nil {
		return time.Time{}, nil, err
	}
	enqueued := time.Now()
	t.index++
	t.prev = sealed.OX
	return enqueued, ch, nil
}

// Close closes the outbox (stop the publisher's Run first).
func (t *SimTracker) Close() error { return t.Ob.Close() }

// syntheticActivity is one focused window and not-afk for the whole segment, with input
// every minute: an active segment.
func syntheticActivity(start, end time.Time) activitywatch.Activity {
	d := end.Sub(start).Seconds()
	a := activitywatch.Activity{V: 1, Source: activitywatch.SourceBuiltin,
		Window: []activitywatch.Event{{Timestamp: start, Duration: d, Data: map[string]any{"app": "editor", "title": "simulated work"}}},
		AFK:    []activitywatch.Event{{Timestamp: start, Duration: d, Data: map[string]any{"status": "not-afk"}}},
	}
	for m := start.Truncate(time.Minute); m.Before(end); m = m.Add(time.Minute) {
		a.Minutes = append(a.Minutes, activitywatch.Minute{T: m, Keys: 40, Clicks: 3, Moves: 120, Active: true})
	}
	a.ActiveSeconds = int64(d)
	return a
}
