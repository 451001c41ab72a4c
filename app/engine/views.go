package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"pow.do/app/engineapi"
	"pow.do/app/outbox"
	"pow.do/app/publisher"
	"pow.do/app/session"
)

// State is a snapshot of the main screen.
func (e *Engine) State(ctx context.Context) (engineapi.State, error) {
	snap, err := e.sched.Snapshot(ctx)
	if err != nil {
		return engineapi.State{}, err
	}
	usage, uerr := e.ob.Usage(ctx)
	e.mu.Lock()
	st := engineapi.State{
		Onboarded: e.joined != nil,
		Locked:    e.ks.Exists() && e.ks.Locked(),
		At:        snap.At.UTC(),
	}
	if e.joined != nil {
		st.WorkerName = e.joined.Name
	}
	if e.catalogue != nil && e.catalogue.WorkerName != "" {
		st.WorkerName = e.catalogue.WorkerName
	}
	pubRunning, pubStatus := e.pub != nil, e.pubStatus
	relays, blossoms := e.settings.Relays, e.settings.Blossoms
	e.mu.Unlock()

	st.Source, _ = e.col.status()
	if pubRunning {
		st.Network.Relays, st.Network.Blossoms = pubStatus.Relays, pubStatus.Blossoms
		st.Network.DVMLastSeen = timePtr(pubStatus.DVMLastSeen)
	} else {
		st.Network.Relays, st.Network.Blossoms = disabled(relays), disabled(blossoms)
	}
	if st.Network.Relays == nil {
		st.Network.Relays = []engineapi.Endpoint{}
	}
	if st.Network.Blossoms == nil {
		st.Network.Blossoms = []engineapi.Endpoint{}
	}
	if uerr == nil {
		st.Network.Pending = usage.Pending
	}

	if s := snap.Session; s != nil {
		st.Running = true
		st.Paused = s.State == session.Paused
		st.Session = &engineapi.Session{
			ID: s.ID, ProjectID: int(s.Project), ProjectName: s.ProjectName,
			ActivityID: int(s.Activity), ActivityName: s.ActivityName, Memo: s.Memo, StartedAt: s.StartedAt,
		}
		st.ElapsedSeconds = int64(snap.Elapsed / time.Second)
		if !s.IdleSince.IsZero() && !s.IdleReturn.IsZero() {
			st.Idle = &engineapi.IdlePrompt{Since: s.IdleSince, IdleSeconds: int64(s.IdleReturn.Sub(s.IdleSince) / time.Second)}
		}
	}
	if seg := snap.Open; seg != nil {
		st.Segment = &engineapi.Segment{
			Index: seg.Index, Start: seg.Start, End: seg.PlannedEnd,
			RemainingSeconds:   max(0, int64(seg.PlannedEnd.Sub(snap.At)/time.Second)),
			ScreenshotsPlanned: len(seg.Planned), ScreenshotsTaken: snap.ShotsTaken,
		}
		st.Activity = meter(seg, snap.At)
		if e.builtin != nil { // live input counts; the rest is as of the last checkpoint
			st.Activity.Keys, st.Activity.Clicks, st.Activity.Moves = 0, 0, 0
			for t := seg.Start.Truncate(time.Minute); !t.After(snap.At); t = t.Add(time.Minute) {
				c := e.builtin.Counts(t)
				st.Activity.Keys += int(c.Keys)
				st.Activity.Clicks += int(c.Clicks)
				st.Activity.Moves += int(c.Moves)
			}
		}
		if seg.Activity.Source == "activitywatch" {
			st.Source = engineapi.SourceActivityWatch
		}
	}
	st.Error = e.problem(ctx, snap, usage, uerr, pubStatus)
	if st.Error != nil {
		at := st.At
		st.Error.At = &at
	}
	return st, nil
}

func disabled(urls []string) []engineapi.Endpoint {
	out := make([]engineapi.Endpoint, 0, len(urls))
	for _, u := range urls {
		out = append(out, engineapi.Endpoint{URL: u, Status: engineapi.EndpointDisabled})
	}
	return out
}

// meter summarises the open segment from its last checkpoint.
func meter(seg *session.SegmentRow, now time.Time) engineapi.ActivityMeter {
	m := engineapi.ActivityMeter{ActiveSeconds: seg.Activity.ActiveSeconds}
	for _, mn := range seg.Activity.Minutes {
		m.Keys += int(mn.Keys)
		m.Clicks += int(mn.Clicks)
		m.Moves += int(mn.Moves)
	}
	if span := seg.Checkpoint.Sub(seg.Start); span >= time.Second {
		m.Percent = min(100, int(100*m.ActiveSeconds/int64(span/time.Second)))
	}
	return m
}

// problem picks the most pressing thing the worker should act on.
func (e *Engine) problem(ctx context.Context, snap session.Snapshot, usage outbox.Usage, uerr error, pub publisher.Status) *engineapi.Problem {
	// A refused key needs a new invite: nothing else helps until then.
	if pub.Problem != nil && pub.Problem.Code == engineapi.ProblemKeyNotAllowed {
		p := *pub.Problem
		return &p
	}
	// The disk quota comes next: it needs the worker before work stops being recorded.
	const quotaAction = "Stay online so the DVM can confirm segments, or raise the disk quota in the settings."
	if e.outboxFull.Load() || errors.Is(snap.LastErr, outbox.ErrQuotaExceeded) {
		return engineapi.Fail(engineapi.ProblemDiskQuota,
			"The outbox is full: finished segments wait on this device and no screenshots are taken.", quotaAction, snap.LastErr)
	}
	if uerr == nil && (usage.Warn || usage.Full) {
		return engineapi.Fail(engineapi.ProblemDiskQuota,
			fmt.Sprintf("The outbox uses %.1f of %d MB.", float64(usage.Bytes)/(1<<20), usage.QuotaBytes>>20), quotaAction, nil)
	}
	if pub.Problem != nil {
		p := *pub.Problem
		return &p
	}
	if err := snap.LastErr; err != nil {
		return engineapi.Fail(engineapi.ProblemInternal, "A finished segment could not be sealed: "+err.Error(),
			"pow.do keeps it and tries again. If this keeps happening, restart pow.do and send its log to your employer.", err)
	}
	if items, err := e.ob.List(ctx, true); err == nil {
		for i := len(items) - 1; i >= 0; i-- {
			if it := items[i]; it.State == outbox.StateRejected {
				return engineapi.Fail(engineapi.ProblemRejected, fmt.Sprintf("The DVM refused segment %d: %s", it.Index, it.Reason),
					"pow.do sends it again later; if it keeps being refused, tell your employer.", nil)
			}
		}
	}
	if _, lost := e.col.status(); lost {
		return engineapi.Fail(engineapi.ProblemActivityWatch, "ActivityWatch stopped answering; the built-in watcher records activity instead.",
			"Start ActivityWatch again, or clear its address in the settings to use the built-in watcher only.", nil)
	}
	return nil
}

// Today lists today's finished segments (local day), oldest first.
func (e *Engine) Today(ctx context.Context) ([]engineapi.SegmentView, error) {
	now := e.cfg.Now().In(time.Local)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	segs, err := e.st.SegmentsBetween(ctx, midnight, midnight.AddDate(0, 0, 1))
	if err != nil {
		return nil, err
	}
	out := []engineapi.SegmentView{}
	sessions := map[string]session.SessionRow{}
	for _, seg := range segs {
		if seg.State == session.SegOpen {
			continue
		}
		sess, ok := sessions[seg.SessionID]
		if !ok {
			if sess, err = e.st.Session(ctx, seg.SessionID); err != nil {
				return nil, err
			}
			sessions[seg.SessionID] = sess
		}
		v, err := e.view(ctx, sess, seg)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// viewOf builds the view of one segment by session and index.
func (e *Engine) viewOf(ctx context.Context, sessionID string, index int) (engineapi.SegmentView, bool) {
	segs, err := e.st.Segments(ctx, sessionID)
	if err != nil {
		return engineapi.SegmentView{}, false
	}
	for _, seg := range segs {
		if seg.Index == index && seg.State != session.SegOpen {
			sess, err := e.st.Session(ctx, sessionID)
			if err != nil {
				return engineapi.SegmentView{}, false
			}
			v, err := e.view(ctx, sess, seg)
			return v, err == nil
		}
	}
	return engineapi.SegmentView{}, false
}

func (e *Engine) view(ctx context.Context, sess session.SessionRow, seg session.SegmentRow) (engineapi.SegmentView, error) {
	v := engineapi.SegmentView{
		ID: strconv.FormatInt(seg.ID, 10), SessionID: sess.ID, Index: seg.Index, Start: seg.Start, End: seg.End,
		ProjectName: sess.ProjectName, ActivityName: sess.ActivityName, ActiveSeconds: seg.Activity.ActiveSeconds,
	}
	shots, err := e.st.Shots(ctx, seg.ID, false)
	if err != nil {
		return v, err
	}
	for _, sh := range shots {
		if !sh.DeletedAt.IsZero() {
			v.Deleted++
			continue
		}
		v.Screenshots++
		if v.Thumbnail == "" && len(sh.Thumb) > 0 {
			v.Thumbnail = dataURL(sh.Thumb)
		}
	}
	switch seg.State {
	case session.SegHeld:
		// Not in review yet: idle time may still reach back over it.
		v.State, v.Reason = engineapi.SegmentHeld, engineapi.HeldReason
	case session.SegReviewing:
		v.State = engineapi.SegmentReviewing
		v.ReviewUntil = timePtr(seg.ReviewUntil)
	default:
		v.State = engineapi.SegmentQueued
		it, err := e.ob.Segment(ctx, sess.ID, seg.Index)
		if err != nil {
			break
		}
		switch it.State {
		case outbox.StateSent:
			v.State = engineapi.SegmentSent
		case outbox.StateAccepted, outbox.StateDuplicate:
			v.State = engineapi.SegmentAccepted
		case outbox.StateRejected:
			v.State, v.Reason, v.Permanent = engineapi.SegmentRejected, it.Reason, it.Permanent
		}
	}
	return v, nil
}

func dataURL(jpg []byte) string {
	return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(jpg)
}

func parseSegmentID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, engineapi.Fail(engineapi.ProblemInvalidInput, fmt.Sprintf("There is no segment %q.", id), "Pick a segment from today's timeline.", nil)
	}
	return n, nil
}

// Screenshots returns a segment's screenshots while it can still be reviewed.
func (e *Engine) Screenshots(ctx context.Context, segmentID string) ([]engineapi.Screenshot, error) {
	id, err := parseSegmentID(segmentID)
	if err != nil {
		return nil, err
	}
	seg, err := e.st.Segment(ctx, id)
	if err != nil {
		return nil, problemFor(err)
	}
	if seg.State != session.SegHeld && seg.State != session.SegReviewing {
		return nil, problemFor(session.ErrNotInReview)
	}
	shots, err := e.st.Shots(ctx, id, true)
	if err != nil {
		return nil, err
	}
	out := []engineapi.Screenshot{}
	for _, sh := range shots {
		if !sh.DeletedAt.IsZero() || len(sh.JPEG) == 0 {
			continue
		}
		out = append(out, engineapi.Screenshot{Name: sh.Name, TakenAt: sh.TakenAt, DataURL: dataURL(sh.JPEG), Width: sh.Width, Height: sh.Height})
	}
	return out, nil
}

// DeleteScreenshot removes a screenshot from a segment in review; the manifest records it.
func (e *Engine) DeleteScreenshot(ctx context.Context, segmentID, name string) error {
	id, err := parseSegmentID(segmentID)
	if err != nil {
		return err
	}
	if err := e.sched.DeleteScreenshot(ctx, id, name); err != nil {
		return problemFor(err)
	}
	e.events.push(func() (engineapi.Event, bool) {
		seg, err := e.st.Segment(context.Background(), id)
		if err != nil {
			return engineapi.Event{}, false
		}
		v, ok := e.viewOf(context.Background(), seg.SessionID, seg.Index)
		return engineapi.Event{Kind: engineapi.EventSegment, Segment: &v}, ok
	})
	return nil
}

// diskUsedMB is what the tracker keeps on disk: the outbox and the session database.
func (e *Engine) diskUsedMB(ctx context.Context) int64 {
	var used int64
	if u, err := e.ob.Usage(ctx); err == nil {
		used += u.Bytes
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(e.st.Path() + suffix); err == nil {
			used += fi.Size()
		}
	}
	return used >> 20
}
