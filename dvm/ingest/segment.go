package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"pow.do/dvm/inbox"
	"pow.do/dvm/store"
	"pow.do/shared/bundle"
	"pow.do/shared/proto"
	"pow.do/shared/seal"
)

// reject answers a segment with a rejected receipt.
func reject(rc proto.Receipt, label string, permanent bool, format string, a ...any) outcome {
	reason := fmt.Sprintf(format, a...)
	rc.Status, rc.Reason, rc.Permanent = proto.StatusRejected, clipReason(reason), permanent
	return outcome{status: store.WrapRejected, label: label, reason: reason, receipt: &rc}
}

// segment handles a kind-15 file message (PROTOCOL.md section 3).
func (p *Processor) segment(ctx context.Context, op inbox.Opened, at Attempt) outcome {
	sf, err := proto.ParseSegmentFile(op.Rumor)
	if err != nil {
		return p.malformedSegment(op, err)
	}
	rc := proto.Receipt{To: op.Sender, Answers: op.Rumor.ID, Session: sf.Session, Index: sf.Index}
	if !op.Known {
		return reject(rc, inbox.RefusedNotOnRoster, true, "sender is not on the roster")
	}

	// The same bundle again needs no download: its ox names its plaintext.
	if prev, err := p.Store.SegmentAt(ctx, sf.Session, sf.Index); err == nil {
		if prev.Worker == op.Sender && prev.OX == sf.OX {
			rc.Status = proto.StatusDuplicate
			return outcome{status: store.WrapDuplicate, receipt: &rc}
		}
		return reject(rc, LabelConflict, true, "segment %s/%d already holds another bundle", sf.Session, sf.Index)
	} else if !errors.Is(err, store.ErrNotFound) {
		return transient(LabelStore, err)
	}

	now := p.Now()
	pol := p.Policy
	switch {
	case sf.End.After(now.Add(pol.FutureSkew)):
		return reject(rc, LabelFuture, false, "segment ends at %s, in the future (DVM clock %s)",
			sf.End.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case sf.Start.Before(now.Add(-pol.MaxAge)):
		return reject(rc, LabelTooOld, true, "segment starts at %s, more than %s ago", sf.Start.UTC().Format(time.RFC3339), pol.MaxAge)
	case sf.Size > pol.MaxBlobBytes:
		return reject(rc, LabelTooLarge, true, "blob of %d bytes, this DVM takes at most %d", sf.Size, pol.MaxBlobBytes)
	}
	cat, err := p.Catalogue.CatalogueFor(ctx, op.Sender)
	if err != nil {
		return transient(LabelCatalogue, err)
	}

	ct, err := p.Fetcher.Fetch(ctx, append([]string{sf.URL}, sf.Fallbacks...), sf.X, sf.Size)
	if err != nil {
		var fe *FetchError
		switch {
		case errors.As(err, &fe) && fe.Temporary:
			return transient(LabelFetch, err)
		case errors.As(err, &fe) && fe.HashMismatch:
			return reject(rc, LabelHashMismatch, true, "%v", err)
		case errors.As(err, &fe) && fe.NotFound:
			// Not permanent: the tracker may upload the bundle again and resend.
			return reject(rc, LabelBlobNotFound, false, "%v", err)
		default:
			return reject(rc, LabelFetch, true, "%v", err)
		}
	}
	plain, err := seal.Open(ct, sf.Key[:], sf.Nonce[:], sf.X, sf.OX)
	switch {
	case errors.Is(err, seal.ErrPlainHashMismatch):
		return reject(rc, LabelOXMismatch, true, "%v", err)
	case errors.Is(err, seal.ErrHashMismatch):
		return reject(rc, LabelHashMismatch, true, "%v", err)
	case err != nil:
		return reject(rc, LabelDecrypt, true, "%v", err)
	}
	b, err := bundle.OpenBytes(plain, pol.Limits)
	if err != nil {
		if errors.Is(err, bundle.ErrRefused) {
			return reject(rc, LabelBundle, true, "%v", err)
		}
		return transient(LabelBundle, err) // only I/O errors remain, and ours is in memory
	}
	m := b.Manifest
	if o := p.checkManifest(rc, op, sf, m, cat); o != nil {
		return *o
	}

	rec := p.record(op, sf, b, plain)
	inserted, err := p.Store.InsertSegment(ctx, rec)
	switch {
	case errors.Is(err, store.ErrConflict):
		return reject(rc, LabelConflict, true, "%v", err)
	case errors.Is(err, store.ErrInvalid):
		return reject(rc, LabelInvalid, true, "%v", err)
	case err != nil:
		return transient(LabelStore, err)
	case !inserted:
		rc.Status = proto.StatusDuplicate
		return outcome{status: store.WrapDuplicate, receipt: &rc}
	}
	p.Observer.Ingested(p.Now().Sub(at.First))
	rc.Status = proto.StatusAccepted
	return outcome{status: store.WrapAccepted, receipt: &rc, after: func(ctx context.Context) {
		seg, err := p.Store.SegmentAt(ctx, sf.Session, sf.Index)
		if err != nil {
			p.Log.Error("read back stored segment for the hooks", "session", sf.Session, "index", sf.Index, "err", err)
			return
		}
		p.Segments.SegmentAccepted(ctx, seg.Segment)
	}}
}

// malformedSegment answers a kind-15 message that does not parse, if its session and
// segment tags at least allow a receipt; otherwise it is only logged.
func (p *Processor) malformedSegment(op inbox.Opened, perr error) outcome {
	o := outcome{status: store.WrapRejected, label: LabelBadMessage, reason: perr.Error()}
	var session, index string
	for _, t := range op.Rumor.Tags {
		if len(t) >= 2 && t[0] == proto.TagSession && session == "" {
			session = t[1]
		}
		if len(t) >= 2 && t[0] == proto.TagSegment && index == "" {
			index = t[1]
		}
	}
	var n int
	if _, err := fmt.Sscanf(index, "%d", &n); err != nil || fmt.Sprint(n) != index {
		return o
	}
	rc := proto.Receipt{To: op.Sender, Answers: op.Rumor.ID, Session: session, Index: n,
		Status: proto.StatusRejected, Reason: clipReason("malformed segment message: " + perr.Error()), Permanent: true}
	if rc.Validate() == nil && op.Known {
		o.receipt = &rc
	}
	return o
}

// checkManifest compares the manifest with the message, the sender, the clock, the
// catalogue and the size policy.
func (p *Processor) checkManifest(rc proto.Receipt, op inbox.Opened, sf proto.SegmentFile, m bundle.Manifest, cat proto.Catalogue) *outcome {
	bad := func(label string, permanent bool, format string, a ...any) *outcome {
		o := reject(rc, label, permanent, format, a...)
		return &o
	}
	switch {
	case m.Worker != op.Sender:
		return bad(LabelWorkerMismatch, true, "manifest names worker %s, the message comes from %s", m.Worker, op.Sender)
	case m.Session != sf.Session:
		return bad(LabelTagMismatch, true, "manifest session %s differs from tag %s", m.Session, sf.Session)
	case m.Index != sf.Index:
		return bad(LabelTagMismatch, true, "manifest index %d differs from tag %d", m.Index, sf.Index)
	case !m.Start.Equal(sf.Start) || !m.End.Equal(sf.End):
		return bad(LabelTagMismatch, true, "manifest span %s–%s differs from tags %s–%s",
			m.Start.Format(time.RFC3339), m.End.Format(time.RFC3339), sf.Start.UTC().Format(time.RFC3339), sf.End.UTC().Format(time.RFC3339))
	case m.End.Sub(m.Start) > time.Duration(m.Policy.SegmentSeconds)*time.Second:
		return bad(LabelInvalid, true, "segment lasts %s, longer than its policy's %d s", m.End.Sub(m.Start), m.Policy.SegmentSeconds)
	}
	shots := 0
	for _, f := range m.Files {
		if bundle.IsScreenshotName(f.Name) {
			shots++
		}
	}
	if shots > p.Policy.MaxScreenshots {
		return bad(LabelTooLarge, true, "%d screenshots, at most %d per segment", shots, p.Policy.MaxScreenshots)
	}
	if why := allowed(cat, m.Project, m.Activity); why != "" {
		// Not permanent: the worker's catalogue may yet grant it.
		return bad(LabelProjectNotAllowed, false, "%s", why)
	}
	return nil
}

// record maps a verified bundle to the store's record.
func (p *Processor) record(op inbox.Opened, sf proto.SegmentFile, b *bundle.Bundle, plain []byte) *store.SegmentRecord {
	m, act := b.Manifest, b.Activity
	rumorJSON, _ := json.Marshal(op.Rumor)
	activityJSON, _ := b.File(bundle.ActivityName)
	rec := &store.SegmentRecord{
		Worker: op.Sender, Session: m.Session, Index: m.Index, Start: m.Start, End: m.End,
		Project: m.Project, Activity: m.Activity, Memo: m.Memo, AppVersion: m.AppVersion,
		Policy: store.Policy(m.Policy), Source: act.Source,
		RumorID: op.Rumor.ID, X: sf.X, OX: sf.OX, Prev: m.Prev,
		ActiveSeconds: int(act.ActiveSeconds),
		Evidence:      store.Evidence{Manifest: b.ManifestJSON(), Activity: activityJSON, Rumor: rumorJSON, Seal: op.Seal},
	}
	if p.Policy.KeepBundles {
		rec.Bundle = plain
	}
	for _, l := range []struct {
		bucket store.Bucket
		evs    []bundle.Event
	}{{store.BucketWindow, act.Window}, {store.BucketAFK, act.AFK}, {store.BucketWeb, act.Web}, {store.BucketInput, act.Input}} {
		for _, e := range l.evs {
			data, err := json.Marshal(e.Data)
			if err != nil || e.Data == nil {
				data = []byte("{}")
			}
			rec.Events = append(rec.Events, store.Event{Bucket: l.bucket, Timestamp: e.Timestamp, Duration: e.Duration, Data: data})
		}
	}
	for _, mi := range act.Minutes {
		rec.Minutes = append(rec.Minutes, store.Minute{T: mi.T, Keys: int(mi.Keys), Clicks: int(mi.Clicks), Moves: int(mi.Moves), Active: mi.Active})
	}
	for _, f := range m.Files {
		if !bundle.IsScreenshotName(f.Name) {
			continue
		}
		data, _ := b.Screenshot(f.Name)
		rec.Screenshots = append(rec.Screenshots, store.Screenshot{Name: f.Name, SHA256: f.SHA256, TakenAt: f.TakenAt, Data: data})
	}
	for _, d := range m.Deleted {
		rec.Deleted = append(rec.Deleted, store.DeletedScreenshot{Name: d.Name, TakenAt: d.TakenAt, DeletedAt: d.DeletedAt})
	}
	for _, s := range m.Skipped {
		rec.Skipped = append(rec.Skipped, store.SkippedCapture{At: s.At, Reason: s.Reason})
	}
	return rec
}
