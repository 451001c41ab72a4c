package daemon

import (
	"context"
	"time"

	"pow.do/dvm/store"
	"pow.do/shared/proto"
)

// The hooks below connect the daemon (inbox, ingest, join) to the Kimai side (kimaisync,
// catalogue). Every hook is optional: the daemon runs with the no-op defaults.
//
// Hooks are called after the store has committed, from the goroutine that handled the
// message; they must not block for long (enqueue work, do not call Kimai inline). A hook
// that fails must not lose data: the store already holds the record and the Kimai queue is
// durable, so hooks return nothing.

// SegmentSink hears about every segment newly stored (not about duplicates).
type SegmentSink interface {
	// SegmentAccepted is called once per stored segment, after commit. seg is the row as
	// stored (ID, chain status, times, project, activity, active seconds...).
	SegmentAccepted(ctx context.Context, seg store.Segment)
}

// SessionSink hears about session start and stop messages, after they are stored.
type SessionSink interface {
	// SessionStarted gets the session as stored after a kind-7700 start message.
	SessionStarted(ctx context.Context, s store.Session)
	// SessionStopped gets the session as stored after a kind-7701 stop message.
	SessionStopped(ctx context.Context, s store.Session)
}

// CatalogueSource says what a worker may book to and how to capture. The daemon uses it
// to answer catalogue requests, after a join, and to check each segment's project and
// activity.
//
// Return an error only for temporary trouble (the daemon retries; ingest does not mark
// the wrap processed). A worker with nothing to book to gets a catalogue with no projects,
// which makes every segment of theirs "project not allowed".
type CatalogueSource interface {
	CatalogueFor(ctx context.Context, workerPubkey string) (proto.Catalogue, error)
}

// CatalogueSender is what the daemon offers the catalogue side: send a worker its current
// catalogue now (e.g. when Kimai's data changed). Implemented by *Daemon.
type CatalogueSender interface {
	SendCatalogue(ctx context.Context, workerPubkey string) error
}

// NopSegmentSink ignores segments.
type NopSegmentSink struct{}

func (NopSegmentSink) SegmentAccepted(context.Context, store.Segment) {}

// NopSessionSink ignores sessions.
type NopSessionSink struct{}

func (NopSessionSink) SessionStarted(context.Context, store.Session) {}
func (NopSessionSink) SessionStopped(context.Context, store.Session) {}

// StaticCatalogue offers every worker the same projects, activities and policy; the
// default CatalogueSource when no Kimai catalogue is wired in (projects come from the
// config file then).
type StaticCatalogue struct {
	Projects   []proto.Project
	Activities []proto.Activity
	Policy     proto.Policy // zero: proto.DefaultPolicy()
	// Names maps worker pubkeys to display names (optional).
	Names func(ctx context.Context, workerPubkey string) string
}

func (s StaticCatalogue) CatalogueFor(ctx context.Context, worker string) (proto.Catalogue, error) {
	pol := s.Policy
	if pol == (proto.Policy{}) {
		pol = proto.DefaultPolicy()
	}
	c := proto.Catalogue{
		To:         worker,
		UpdatedAt:  time.Now().UTC().Truncate(time.Second),
		Projects:   append([]proto.Project(nil), s.Projects...),
		Activities: append([]proto.Activity(nil), s.Activities...),
		Policy:     pol,
	}
	if s.Names != nil {
		c.WorkerName = s.Names(ctx, worker)
	}
	return c, nil
}
