package kimaisync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"pow.do/dvm/kimai"
	"pow.do/dvm/store"
)

// ErrUnmapped: the worker has no Kimai user yet (`powdo-dvm workers map`). Retried.
var ErrUnmapped = errors.New("worker is not mapped to a Kimai user")

// ErrOverlap: Kimai forbids overlapping records and another record covers the part.
var ErrOverlap = errors.New("kimai forbids overlapping timesheets and another timesheet covers this time")

// errVanished: a timesheet the database knows was deleted in Kimai; reconcile again.
var errVanished = errors.New("timesheet vanished from Kimai")

// classify turns a Kimai failure into a retried or a permanent job failure.
func classify(err error) error {
	var ae *kimai.APIError
	if !errors.As(err, &ae) || ae.Temporary() {
		return err
	}
	switch ae.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		// Token or role trouble: the operator fixes Kimai, the same job then succeeds.
		return err
	}
	return permanent(err)
}

// syncSession reconciles a session with Kimai; a timesheet deleted in Kimai meanwhile is
// forgotten and the session reconciled again (bounded).
func (s *Syncer) syncSession(ctx context.Context, id string) error {
	var err error
	for range 3 {
		if err = s.reconcile(ctx, id, true); !errors.Is(err, errVanished) {
			return err
		}
	}
	return err
}

// sessionCtx is what one reconcile knows about its session.
type sessionCtx struct {
	sess    store.Session
	user    int64
	env     kimaiEnv
	segs    []store.Segment
	known   map[int64]bool    // timesheet ids the database links to the session
	byTS    map[int64][]int64 // timesheet id -> segment ids synced to it
	running int64             // the session's running timesheet as recorded
}

// reconcile makes Kimai hold exactly the session's planned timesheets. withOthers: when
// the session is its worker's newest open one, first end the running timesheets of the
// worker's other open sessions, explicitly, rather than let Kimai's activeEntriesHardLimit
// stop them at the wrong time.
func (s *Syncer) reconcile(ctx context.Context, id string, withOthers bool) error {
	sess, err := s.st.Session(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return permanent(fmt.Errorf("sync session %s: %w", id, err))
		}
		return fmt.Errorf("sync session %s: %w", id, err)
	}
	w, err := s.st.Worker(ctx, sess.Worker)
	if err != nil {
		return fmt.Errorf("sync session %s: worker: %w", id, err)
	}
	if w.KimaiUserID == 0 {
		return fmt.Errorf("sync session %s of worker %s (%s): %w", id, w.Name, w.Pubkey, ErrUnmapped)
	}
	current := false
	var others []store.Session
	if sess.State == store.SessionOpen {
		open, err := s.st.OpenSessions(ctx)
		if err != nil {
			return fmt.Errorf("sync session %s: %w", id, err)
		}
		newest := sess
		for _, o := range open {
			if o.Worker != sess.Worker || o.ID == sess.ID {
				continue
			}
			others = append(others, o)
			if o.StartedAt.After(newest.StartedAt) || o.StartedAt.Equal(newest.StartedAt) && o.ID > newest.ID {
				newest = o
			}
		}
		current = newest.ID == sess.ID
	}
	env, err := s.kimaiEnv(ctx)
	if err != nil {
		if errors.Is(err, ErrTrackingMode) {
			return err // retried: the operator changes Kimai's mode, nothing is lost meanwhile
		}
		return classify(err)
	}
	if current && withOthers {
		for _, o := range others {
			if o.KimaiTimesheetID == 0 {
				continue
			}
			if err := s.reconcile(ctx, o.ID, false); err != nil {
				return fmt.Errorf("end running timesheet of older session %s first: %w", o.ID, err)
			}
		}
	}

	segs, err := s.st.SessionSegments(ctx, id)
	if err != nil {
		return fmt.Errorf("sync session %s: %w", id, err)
	}
	sc := &sessionCtx{sess: sess, user: w.KimaiUserID, env: env, segs: segs,
		known: map[int64]bool{}, byTS: map[int64][]int64{}, running: sess.KimaiTimesheetID}
	for _, g := range segs {
		if g.KimaiTimesheetID != 0 {
			sc.known[g.KimaiTimesheetID] = true
			sc.byTS[g.KimaiTimesheetID] = append(sc.byTS[g.KimaiTimesheetID], g.ID)
		}
	}
	if sc.running != 0 {
		sc.known[sc.running] = true
	}
	parts, idleSegs := plan(planInput{Session: sess, Segments: segs, Now: s.now(),
		SegmentLength: s.segmentLength(segs), Grace: s.cfg.Grace, Current: current})
	return s.apply(ctx, sc, parts, idleSegs)
}

// apply matches the known timesheets to the planned parts, then closes, updates,
// deletes and creates, in an order that never leaves two of the worker's records running.
func (s *Syncer) apply(ctx context.Context, sc *sessionCtx, parts []part, idleSegs []store.Segment) error {
	// Each known timesheet is anchored at its earliest segment (or, if it has none, at the
	// session start: the provisional one) and goes to the part spanning that anchor.
	segStart := map[int64]time.Time{}
	for _, g := range sc.segs {
		segStart[g.ID] = g.Start
	}
	type anchored struct {
		id int64
		at time.Time
	}
	var ks []anchored
	for id := range sc.known {
		at := sc.sess.StartedAt
		for i, sid := range sc.byTS[id] {
			if t := segStart[sid]; i == 0 || t.Before(at) {
				at = t
			}
		}
		ks = append(ks, anchored{id, at})
	}
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].at.Equal(ks[j].at) {
			return ks[i].at.Before(ks[j].at)
		}
		return ks[i].id < ks[j].id
	})
	ts := make([]int64, len(parts))
	fresh := make([]bool, len(parts)) // reused or adopted: its fields must be written
	var spare []int64
	for _, k := range ks {
		matched := false
		for i, p := range parts {
			if ts[i] == 0 && p.spans(k.at) {
				ts[i], matched = k.id, true
				break
			}
		}
		if !matched {
			spare = append(spare, k.id)
		}
	}
	unmatched := func() bool {
		for _, id := range ts {
			if id == 0 {
				return true
			}
		}
		return false
	}
	// Timesheets the database does not know but Kimai has for this session: created by
	// a call whose answer was lost. Look for them before creating anything.
	if unmatched() || (len(sc.known) == 0 && sc.sess.State != store.SessionOpen) {
		orphans, err := s.findOrphans(ctx, sc)
		if err != nil {
			return err
		}
		spare = append(spare, orphans...)
	}
	for i := range parts {
		if ts[i] == 0 && len(spare) > 0 {
			ts[i], spare, fresh[i] = spare[0], spare[1:], true
		}
	}

	// 1. Delete what no part needs (no proof, or duplicates found by the search).
	for _, id := range spare {
		if err := s.k.DeleteTimesheet(ctx, id); err != nil && !kimai.IsNotFound(err) {
			return classify(fmt.Errorf("delete unproven timesheet %d of session %s: %w", id, sc.sess.ID, err))
		}
		s.log.Info("kimai sync: deleted timesheet without proof", "session", sc.sess.ID, "timesheet", id)
		if err := s.forget(ctx, sc, id); err != nil {
			return err
		}
	}
	// 2. Update existing timesheets, closed ones first.
	order := make([]int, 0, len(parts))
	for i := range parts {
		if ts[i] != 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return !parts[order[a]].Running && parts[order[b]].Running })
	var overlapErr error
	for _, i := range order {
		err := s.updatePart(ctx, sc, parts[i], ts[i], fresh[i])
		if errors.Is(err, ErrOverlap) {
			overlapErr = errors.Join(overlapErr, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	// 3. Create the missing ones, the running one last.
	order = order[:0]
	for i := range parts {
		if ts[i] == 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return !parts[order[a]].Running && parts[order[b]].Running })
	for _, i := range order {
		var err error
		ts[i], err = s.createPart(ctx, sc, parts[i])
		if errors.Is(err, ErrOverlap) {
			overlapErr = errors.Join(overlapErr, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	// 4. Idle segments are booked nowhere.
	var idleIDs []int64
	for _, g := range idleSegs {
		if g.KimaiState != store.KimaiSkipped || g.KimaiTimesheetID != 0 {
			idleIDs = append(idleIDs, g.ID)
		}
	}
	if len(idleIDs) > 0 {
		if err := s.st.SetSegmentsKimai(ctx, idleIDs, store.KimaiSkipped, 0); err != nil {
			return fmt.Errorf("mark idle segments of session %s: %w", sc.sess.ID, err)
		}
	}
	// 5. Record which timesheet (if any) is left running.
	if sc.running != 0 && !sc.known[sc.running] {
		sc.running = 0
	}
	var want int64
	for i, p := range parts {
		if p.Running && ts[i] != 0 && sc.running == ts[i] {
			want = ts[i]
		}
	}
	if want != sc.sess.KimaiTimesheetID {
		if err := s.st.SetSessionTimesheet(ctx, sc.sess.ID, want); err != nil {
			return fmt.Errorf("record running timesheet of session %s: %w", sc.sess.ID, err)
		}
	}
	if overlapErr != nil {
		return permanent(overlapErr)
	}
	return nil
}

// forget drops a timesheet id from the database: its segments go back to pending.
func (s *Syncer) forget(ctx context.Context, sc *sessionCtx, id int64) error {
	if segs := sc.byTS[id]; len(segs) > 0 {
		if err := s.st.SetSegmentsKimai(ctx, segs, store.KimaiPending, 0); err != nil {
			return fmt.Errorf("forget timesheet %d: %w", id, err)
		}
		delete(sc.byTS, id)
	}
	if sc.running == id {
		if err := s.st.SetSessionTimesheet(ctx, sc.sess.ID, 0); err != nil {
			return fmt.Errorf("forget timesheet %d: %w", id, err)
		}
		sc.running, sc.sess.KimaiTimesheetID = 0, 0
	}
	delete(sc.known, id)
	return nil
}

// findOrphans lists the worker's pow.do timesheets in Kimai that carry this session's
// marker but are unknown to the database.
func (s *Syncer) findOrphans(ctx context.Context, sc *sessionCtx) ([]int64, error) {
	from, to := sc.sess.StartedAt, sc.sess.StartedAt
	for _, g := range sc.segs {
		if g.Start.Before(from) {
			from = g.Start
		}
		if g.End.After(to) {
			to = g.End
		}
	}
	// Kimai filters on begin, rounded down to the minute: widen the window a little.
	list, err := s.k.ListTimesheets(ctx, kimai.TimesheetFilter{User: sc.user, Tags: s.cfg.Tags[:1],
		Begin: from.Add(-2 * time.Minute), End: to.Add(2 * time.Minute), OrderBy: "id", Order: "ASC", PageSize: 500})
	if err != nil {
		return nil, classify(fmt.Errorf("look for timesheets of session %s: %w", sc.sess.ID, err))
	}
	var out []int64
	for _, t := range list {
		if t.User != 0 && t.User != sc.user || sc.known[t.ID] || !hasMarker(t.Description, sc.sess.ID) {
			continue
		}
		s.log.Info("kimai sync: found a timesheet created by an unanswered call", "session", sc.sess.ID, "timesheet", t.ID)
		sc.known[t.ID] = true
		if t.Running() {
			sc.running = t.ID // running in Kimai: it may stay the running one
		}
		out = append(out, t.ID)
	}
	return out, nil
}

func hasMarker(desc, sessionID string) bool {
	for _, line := range strings.Split(desc, "\n") {
		if strings.TrimSpace(line) == marker(sessionID) {
			return true
		}
	}
	return false
}

// description builds a part's description from its segments' details.
func (s *Syncer) description(ctx context.Context, sc *sessionCtx, p part, tsID int64) (string, error) {
	details := make([]store.SegmentDetail, 0, len(p.Segments))
	for _, g := range p.Segments {
		d, err := s.st.Segment(ctx, g.ID)
		if err != nil {
			return "", fmt.Errorf("read segment %d for the description: %w", g.ID, err)
		}
		details = append(details, d)
	}
	memo := sc.sess.Memo
	if len(p.Segments) > 0 && p.Segments[len(p.Segments)-1].Memo != "" {
		memo = p.Segments[len(p.Segments)-1].Memo
	}
	return describe(memo, summarize(details), p.Provisional, diaryLink(s.cfg.DiaryBaseURL, tsID), sc.sess.ID), nil
}

// times is what a part's timesheet should say, clipped to what Kimai allows.
func (s *Syncer) times(ctx context.Context, sc *sessionCtx, p part, self int64, running bool) (begin, end time.Time, err error) {
	begin = p.Begin
	if !running {
		end = p.End
	}
	if sc.env.AllowOverlapping {
		return begin, end, nil
	}
	return s.clip(ctx, sc, self, begin, end)
}

// clip moves a part's begin past, and its end before, the worker's other Kimai records,
// which Kimai requires when it forbids overlapping. A part left with nothing is ErrOverlap.
func (s *Syncer) clip(ctx context.Context, sc *sessionCtx, self int64, begin, end time.Time) (time.Time, time.Time, error) {
	upTo := end
	if upTo.IsZero() {
		upTo = s.now().Add(24 * time.Hour)
	}
	list, err := s.k.ListTimesheets(ctx, kimai.TimesheetFilter{User: sc.user, Begin: begin.Add(-24 * time.Hour),
		End: upTo, OrderBy: "begin", Order: "ASC", PageSize: 500})
	if err != nil {
		return begin, end, classify(fmt.Errorf("read worker's timesheets to avoid overlaps: %w", err))
	}
	farFuture := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	endOf := func(t kimai.Timesheet) time.Time {
		if t.End == nil {
			return farFuture
		}
		return *t.End
	}
	var blocker *kimai.Timesheet
	for _, t := range list {
		if t.ID == self {
			continue
		}
		if !t.Begin.After(begin) && endOf(t).After(begin) {
			begin, blocker = endOf(t), &t
		}
	}
	for _, t := range list {
		if t.ID == self {
			continue
		}
		e := end
		if e.IsZero() {
			e = farFuture
		}
		if t.Begin.After(begin) && t.Begin.Before(e) {
			// A running part cannot stop before another record: it gets an end there.
			end, blocker = t.Begin, &t
			break
		}
	}
	if blocker != nil && (end.IsZero() && begin.Equal(farFuture) || !end.IsZero() && !begin.Before(end)) {
		return begin, end, fmt.Errorf("%w: session %s, %s–%s, Kimai timesheet %d of user %d",
			ErrOverlap, sc.sess.ID, begin.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), blocker.ID, sc.user)
	}
	if blocker != nil {
		s.log.Warn("kimai sync: clipped a timesheet to avoid overlapping another (Kimai forbids overlaps)",
			"session", sc.sess.ID, "other", blocker.ID, "begin", begin, "end", end)
	}
	return begin, end, nil
}

// clean reports whether a matched part needs no write: the same segments are synced to
// its timesheet, and it is running exactly when it should be.
func clean(sc *sessionCtx, p part, id int64) bool {
	if p.Provisional {
		return sc.running == id
	}
	if p.Running != (sc.running == id) {
		return false
	}
	have := sc.byTS[id]
	if len(have) != len(p.Segments) {
		return false
	}
	set := map[int64]bool{}
	for _, sid := range have {
		set[sid] = true
	}
	for _, g := range p.Segments {
		if !set[g.ID] || g.KimaiState != store.KimaiSynced {
			return false
		}
	}
	return true
}

// updatePart writes a part's fields to an existing timesheet and records its segments.
func (s *Syncer) updatePart(ctx context.Context, sc *sessionCtx, p part, id int64, fresh bool) error {
	if !fresh && clean(sc, p, id) {
		return nil
	}
	// A closed record cannot be made running again through the API: it is extended instead.
	running := p.Running && sc.running == id
	begin, end, err := s.times(ctx, sc, p, id, running)
	if err != nil {
		return err
	}
	desc, err := s.description(ctx, sc, p, id)
	if err != nil {
		return err
	}
	u := kimai.TimesheetUpdate{Begin: &begin, Project: &p.Project, Activity: &p.Activity, Description: &desc,
		Tags: s.cfg.Tags}
	if !running {
		u.End = &end
	}
	if _, err := s.k.UpdateTimesheet(ctx, id, u); err != nil {
		if kimai.IsNotFound(err) {
			s.log.Warn("kimai sync: timesheet was deleted in Kimai; booking the session again",
				"session", sc.sess.ID, "timesheet", id)
			if ferr := s.forget(ctx, sc, id); ferr != nil {
				return ferr
			}
			return errVanished
		}
		return classify(fmt.Errorf("update timesheet %d of session %s: %w", id, sc.sess.ID, err))
	}
	if !running && sc.running == id {
		if err := s.st.SetSessionTimesheet(ctx, sc.sess.ID, 0); err != nil {
			return fmt.Errorf("record end of timesheet %d: %w", id, err)
		}
		sc.running, sc.sess.KimaiTimesheetID = 0, 0
	}
	return s.record(ctx, sc, p, id)
}

// record links a part's segments to its timesheet in the database.
func (s *Syncer) record(ctx context.Context, sc *sessionCtx, p part, id int64) error {
	if len(p.Segments) == 0 {
		return nil
	}
	ids := make([]int64, len(p.Segments))
	for i, g := range p.Segments {
		ids[i] = g.ID
	}
	if err := s.st.SetSegmentsKimai(ctx, ids, store.KimaiSynced, id); err != nil {
		return fmt.Errorf("record segments of timesheet %d: %w", id, err)
	}
	sc.byTS[id] = ids
	return nil
}

// createPart creates a part's timesheet, adds the diary link (which needs the id), and
// records it. A crash between the create and the record is healed by findOrphans.
func (s *Syncer) createPart(ctx context.Context, sc *sessionCtx, p part) (int64, error) {
	begin, end, err := s.times(ctx, sc, p, 0, p.Running)
	if err != nil {
		return 0, err
	}
	running := end.IsZero()
	desc, err := s.description(ctx, sc, p, 0)
	if err != nil {
		return 0, err
	}
	t, err := s.k.CreateTimesheet(ctx, kimai.NewTimesheet{User: sc.user, Project: p.Project, Activity: p.Activity,
		Begin: begin, End: end, Description: desc, Tags: s.cfg.Tags})
	if err != nil {
		return 0, classify(fmt.Errorf("create timesheet for session %s: %w", sc.sess.ID, err))
	}
	s.log.Info("kimai sync: timesheet created", "session", sc.sess.ID, "timesheet", t.ID, "running", running)
	sc.known[t.ID] = true
	if s.cfg.DiaryBaseURL != "" {
		desc, err = s.description(ctx, sc, p, t.ID)
		if err != nil {
			return 0, err
		}
		if _, err := s.k.UpdateTimesheet(ctx, t.ID, kimai.TimesheetUpdate{Description: &desc}); err != nil {
			return 0, classify(fmt.Errorf("add diary link to timesheet %d: %w", t.ID, err))
		}
	}
	if running {
		if err := s.st.SetSessionTimesheet(ctx, sc.sess.ID, t.ID); err != nil {
			return 0, fmt.Errorf("record running timesheet %d: %w", t.ID, err)
		}
		sc.running, sc.sess.KimaiTimesheetID = t.ID, t.ID
	}
	return t.ID, s.record(ctx, sc, p, t.ID)
}
