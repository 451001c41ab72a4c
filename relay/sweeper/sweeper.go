// Package sweeper does the regular discarding: blobs older than their TTL, the oldest blobs
// while storage is over quota, wraps (and the deletion requests about them) older than the
// wrap TTL, and invites that expired unused. The clock is injected so tests can move time.
package sweeper

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/relay/access"
	"pow.do/relay/blobstore"
)

// Events is the part of an event store the sweeper needs.
type Events interface {
	QueryEvents(ctx context.Context, f nostr.Filter) (chan *nostr.Event, error)
	DeleteEvent(ctx context.Context, ev *nostr.Event) error
}

// Kinds the wrap TTL applies to: gift wraps and the deletion/vanish requests about them.
var Kinds = []int{1059, 5, 62}

// Sweeper removes what has outlived its welcome. Zero TTLs or quota disable that part.
type Sweeper struct {
	Now     func() time.Time
	Blobs   *blobstore.Store
	Events  Events
	Access  *access.Store
	BlobTTL time.Duration
	WrapTTL time.Duration
	Quota   int64 // bytes
	Log     *slog.Logger
	// OnSweep, if set, receives every report (metrics).
	OnSweep func(Report)
}

// Report counts what one sweep removed.
type Report struct {
	BlobsExpired   int
	BlobsEvicted   int
	BytesFreed     int64
	WrapsExpired   int // kind 1059
	OthersExpired  int // kinds 5 and 62
	InvitesExpired int
}

// batch bounds each query; the store caps results anyway.
const batch = 500

// Sweep runs one pass.
func (s *Sweeper) Sweep(ctx context.Context) (Report, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	var r Report
	if s.Blobs != nil {
		if s.BlobTTL > 0 {
			gone, err := s.Blobs.Expire(t.Add(-s.BlobTTL))
			for _, m := range gone {
				r.BlobsExpired++
				r.BytesFreed += m.Size
			}
			if err != nil {
				return s.done(r), fmt.Errorf("sweep expired blobs: %w", err)
			}
		}
		if s.Quota > 0 {
			gone, err := s.Blobs.Evict(s.Quota)
			for _, m := range gone {
				r.BlobsEvicted++
				r.BytesFreed += m.Size
			}
			if err != nil {
				return s.done(r), fmt.Errorf("sweep blobs over quota: %w", err)
			}
		}
	}
	if s.Events != nil && s.WrapTTL > 0 {
		until := nostr.Timestamp(t.Add(-s.WrapTTL).Unix())
		for {
			if err := ctx.Err(); err != nil {
				return s.done(r), fmt.Errorf("sweep wraps: %w", err)
			}
			ch, err := s.Events.QueryEvents(ctx, nostr.Filter{Kinds: Kinds, Until: &until, Limit: batch})
			if err != nil {
				return s.done(r), fmt.Errorf("sweep wraps: query: %w", err)
			}
			var old []*nostr.Event
			for ev := range ch {
				old = append(old, ev)
			}
			for _, ev := range old {
				if err := s.Events.DeleteEvent(ctx, ev); err != nil {
					return s.done(r), fmt.Errorf("sweep wraps: delete %s: %w", ev.ID, err)
				}
				if ev.Kind == 1059 {
					r.WrapsExpired++
				} else {
					r.OthersExpired++
				}
			}
			if len(old) < batch {
				break
			}
		}
	}
	if s.Access != nil {
		n, err := s.Access.PruneInvites(t)
		r.InvitesExpired = n
		if err != nil {
			return s.done(r), fmt.Errorf("sweep invites: %w", err)
		}
	}
	return s.done(r), nil
}

func (s *Sweeper) done(r Report) Report {
	if s.OnSweep != nil {
		s.OnSweep(r)
	}
	if s.Log != nil && r != (Report{}) {
		s.Log.Info("sweep", "blobs_expired", r.BlobsExpired, "blobs_evicted", r.BlobsEvicted,
			"bytes_freed", r.BytesFreed, "wraps_expired", r.WrapsExpired,
			"deletions_expired", r.OthersExpired, "invites_expired", r.InvitesExpired)
	}
	return r
}

// Run sweeps every interval until ctx ends. kick makes it sweep at once (after an upload
// that may have crossed the quota); it may be nil.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration, kick <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil && s.Log != nil {
			s.Log.Error("sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}
