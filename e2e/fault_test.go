package e2e

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pow.do/shared/proto"
)

// Fault-test shape. The trackers track for faultRun; every fault happens inside it.
const (
	faultTrackers = 10
	faultSegment  = 20 // seconds
	faultRun      = 150 * time.Second
	faultDrain    = 4 * time.Minute // a tracker's own bound for delivering after it stops
	faultSettle   = 4 * time.Minute // the test's bound for the DVM and Kimai to catch up
)

// fault is one scheduled outage: at `At` after the trackers start, `Down` long.
type fault struct {
	What     string
	At, Down time.Duration
}

// faultPlan draws the outages from the seed: each service is killed with SIGKILL (the
// relay twice), Blossom is cut off once, and one tracker is killed and started again
// (it resumes its session), all well inside the run.
func faultPlan(rng *mrand.Rand) []fault {
	d := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Second }
	return []fault{
		{"relay", d(15, 40), d(2, 6)},
		{"relay", d(85, 110), d(2, 6)},
		{"dvm", d(30, 75), d(3, 10)},
		{"kimai", d(20, 100), d(3, 12)},
		{"blossom", d(45, 80), d(20, 35)},
		{"tracker", d(25, 100), d(2, 8)},
	}
}

func TestFault(t *testing.T) {
	bins := FindBinaries(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("POWDO_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("POWDO_E2E_SEED=%q: not a number", s)
		}
		seed = v
	}
	t.Logf("fault seed %d (rerun the same faults with POWDO_E2E_SEED=%d)", seed, seed)
	rng := mrand.New(mrand.NewPCG(seed, 0x706f772e646f))

	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// Keep the logs of a failed run where a human can read them.
	t.Cleanup(func() {
		if t.Failed() {
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("powdo-e2e-fault-%d", seed))
			os.RemoveAll(keep)
			if err := os.Rename(filepath.Join(dir, "sys", "logs"), keep); err == nil {
				t.Logf("logs kept in %s", keep)
			}
		}
	})

	title := "powdo-e2e-window-" + randHex(8)
	memo := "powdo-e2e-memo-" + randHex(8)
	x, err := StartXvfb(filepath.Join(dir, "sys", "logs"), title, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)

	policy := proto.Policy{SegmentSeconds: faultSegment, Screenshots: 1, ReviewSeconds: 2, IdleSeconds: 300,
		JPEGQuality: 70, MaxWidth: 1280}
	sys := NewSystem(t, bins, SystemConfig{Dir: filepath.Join(dir, "sys"), Policy: policy, Kimai: true, KimaiWorkers: faultTrackers})
	t.Cleanup(sys.Stop)
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Pair every tracker through its own invite, in parallel.
	trackers := make([]*Tracker, faultTrackers)
	var wg sync.WaitGroup
	errs := make([]error, faultTrackers)
	for i := range trackers {
		tr, err := NewTracker(bins.Tracker, filepath.Join(dir, "trackers"), fmt.Sprintf("tracker%02d", i), x.Env())
		if err != nil {
			t.Fatal(err)
		}
		trackers[i] = tr
		link, err := sys.Invite(ctx, tr.Name, int64(KimaiFirstWorkerID+i))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			projects, err := tr.Join(ctx, link)
			if err == nil && !containsInt(projects, 1) {
				err = fmt.Errorf("%s: catalogue offers projects %v, not the seed's project 1", tr.Name, projects)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d trackers joined", len(trackers))

	for _, tr := range trackers {
		if err := tr.Start(sys.LogsDir, tr.RunArgs(1, 1, memo, faultRun, faultDrain)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, tr := range trackers {
			tr.Proc.Stop(20 * time.Second)
		}
	})
	started := time.Now()

	// Faults, each in its own goroutine; a restart failure fails the test.
	plan := faultPlan(rng)
	var fwg sync.WaitGroup
	ferrs := make([]error, len(plan))
	var logMu sync.Mutex
	var events []string
	note := func(format string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		events = append(events, fmt.Sprintf("%6.1fs ", time.Since(started).Seconds())+fmt.Sprintf(format, a...))
	}
	for i, f := range plan {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			ferrs[i] = runFault(ctx, sys, trackers[0], memo, f, started, note)
		}()
	}
	fwg.Wait()
	if err := errors.Join(ferrs...); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		t.Log("fault: " + e)
	}

	// The trackers stop on their own after faultRun and drain their outboxes.
	for _, tr := range trackers {
		select {
		case <-tr.Proc.Exited():
		case <-time.After(time.Until(started.Add(faultRun + faultDrain + 30*time.Second))):
			t.Fatalf("%s still running %v after its session should have ended\n%s", tr.Name, faultDrain, tr.Proc.Tail(2000))
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		if err := tr.Proc.ExitErr(); err != nil {
			t.Errorf("%s exited with %v\n%s", tr.Name, err, tr.Proc.Tail(2000))
		}
	}
	t.Logf("trackers finished %.0fs after start", time.Since(started).Seconds())

	// Every tracker outbox is empty: each item delivered or final, and every segment
	// answered accepted or duplicate.
	produced := map[SegKey]OutboxItem{}
	owner := map[SegKey]string{}
	resends, items, liveDelivered := 0, 0, 0
	for _, tr := range trackers {
		its, err := OutboxItems(ctx, tr.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if n := countFiles(filepath.Join(tr.Dir, "outbox")); n != 0 {
			t.Errorf("%s: %d ciphertext files left in the outbox directory", tr.Name, n)
		}
		if l := tr.DoneLine(); l == "" || strings.Contains(l, "undelivered=") {
			t.Errorf("%s: did not finish delivering: %q", tr.Name, l)
		}
		for _, it := range its {
			items++
			if !it.Done() {
				t.Errorf("%s: outbox item %s %s/%d still %s", tr.Name, it.Kind, short(it.Session), it.Index, it.State)
			}
			if it.Kind != "segment" {
				continue
			}
			if it.State != "accepted" && it.State != "duplicate" {
				t.Errorf("%s: segment %s/%d ended %s", tr.Name, short(it.Session), it.Index, it.State)
			}
			k := SegKey{it.Session, it.Index}
			if _, dup := produced[k]; dup {
				t.Errorf("segment %v produced twice", k)
			}
			produced[k], owner[k] = it, tr.Worker
			resends += max(it.Sends-1, 0)
			if it.DoneNS > 0 && time.Unix(0, it.DoneNS).Before(started.Add(faultRun)) {
				liveDelivered++
			}
		}
	}
	if len(produced) < faultTrackers*int(faultRun/time.Second)/faultSegment/2 {
		t.Errorf("only %d segments produced by %d trackers in %v", len(produced), faultTrackers, faultRun)
	}
	// The faults must have met live traffic: most segments went out while tracking.
	if liveDelivered < len(produced)/2 {
		t.Errorf("only %d of %d segments were delivered while the trackers ran (during the faults)", liveDelivered, len(produced))
	}

	// Every produced segment is in the DVM exactly once, from its tracker, with the same
	// plaintext hash; and the DVM has nothing else.
	var segs []DVMSegment
	err = WaitFor(ctx, "the DVM to hold every produced segment", faultSettle, time.Second, func() error {
		var err error
		if segs, err = DVMSegments(ctx, sys.DVMDB()); err != nil {
			return err
		}
		if len(segs) < len(produced) {
			return fmt.Errorf("%d of %d segments stored", len(segs), len(produced))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[SegKey]int{}
	for _, s := range segs {
		k := s.Key()
		seen[k]++
		it, ok := produced[k]
		switch {
		case !ok:
			t.Errorf("DVM holds segment %v that no tracker produced", k)
		case s.Worker != owner[k]:
			t.Errorf("DVM segment %v: worker %s, produced by %s", k, short(s.Worker), short(owner[k]))
		case s.OX != it.OX:
			t.Errorf("DVM segment %v: ox %s, tracker sent %s", k, short(s.OX), short(it.OX))
		}
	}
	for k := range produced {
		if seen[k] != 1 {
			t.Errorf("segment %v is in the DVM %d times, want exactly once", k, seen[k])
		}
	}

	// Kimai's timesheets cover exactly the accepted segments.
	var cov kimaiCoverage
	err = WaitFor(ctx, "Kimai to match the accepted segments", faultSettle, 2*time.Second, func() error {
		var err error
		if segs, err = DVMSegments(ctx, sys.DVMDB()); err != nil {
			return err
		}
		sheets, err := sys.KimaiTimesheets(ctx)
		if err != nil {
			return err
		}
		users, err := DVMWorkerKimai(ctx, sys.DVMDB())
		if err != nil {
			return err
		}
		cov, err = checkKimai(segs, sheets, users)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing readable on the public server: the relay's events and Blossom's blobs.
	outcomes, err := DVMWrapOutcomes(ctx, sys.DVMDB())
	if err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{"window title": []byte(title), "memo": []byte(memo)}
	shot, err := someScreenshot(filepath.Join(sys.DVMDir, "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	needles["screenshot bytes"] = shot
	// Positive control: the DVM, which may read everything, has the title and memo, so
	// the needles are real plaintext that went through the system.
	dvmHits, _, err := GrepTree(sys.DVMDir, map[string][]byte{"window title": []byte(title), "memo": []byte(memo)})
	if err != nil {
		t.Fatal(err)
	}
	if got := labels(dvmHits); !(got["window title"] && got["memo"]) {
		t.Errorf("positive control: the DVM's storage should hold the window title and memo, found %v", got)
	}
	relayHits, relayFiles, err := GrepTree(sys.RelayDir, needles)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range relayHits {
		t.Errorf("plaintext %q found on the public server: %s at offset %d", h.Needle, h.File, h.Offset)
	}
	blobs := countFiles(filepath.Join(sys.RelayDir, "blobs"))
	if blobs == 0 {
		t.Errorf("no blob files under %s: the plaintext search looked at nothing", filepath.Join(sys.RelayDir, "blobs"))
	}

	sessions := map[string]bool{}
	for k := range produced {
		sessions[k.Session] = true
	}
	active := 0
	for _, s := range segs {
		if s.ActiveSeconds > 0 {
			active++
		}
	}
	summary := []string{
		fmt.Sprintf("seed                         %d", seed),
		fmt.Sprintf("trackers                     %d (segments of %ds, run %v)", len(trackers), faultSegment, faultRun),
		fmt.Sprintf("sessions                     %d", len(sessions)),
		fmt.Sprintf("segments produced           %d", len(produced)),
		fmt.Sprintf("segments in the DVM          %d (each exactly once: %v)", len(segs), len(segs) == len(produced)),
		fmt.Sprintf("segments with activity       %d", active),
		fmt.Sprintf("outbox items (all done)      %d", items),
		fmt.Sprintf("delivered during the faults  %d", liveDelivered),
		fmt.Sprintf("segment resends              %d", resends),
		fmt.Sprintf("DVM wraps by outcome         %v", outcomes),
		fmt.Sprintf("kill -9 relay/dvm/kimai/trk  %d/%d/%d/%d", sys.Relay.Starts()-1, sys.DVM.Starts()-1, sys.Kimai.Starts()-1,
			trackers[0].Proc.Starts()-1),
		fmt.Sprintf("Kimai timesheets             %d covering %d segments, %v booked", cov.Sheets, cov.Segments, cov.Booked),
		fmt.Sprintf("idle segments (not booked)   %d", cov.Idle),
		fmt.Sprintf("public storage searched      %d files (%d blobs), plaintext hits %d", relayFiles, blobs, len(relayHits)),
	}
	fmt.Println("=== TestFault counts")
	for _, l := range summary {
		fmt.Println("  " + l)
	}
}

// runFault kills one process with SIGKILL (or cuts Blossom off), waits, and restores it.
// A killed tracker is started again to track for the rest of the run.
func runFault(ctx context.Context, sys *System, tr *Tracker, memo string, f fault, started time.Time, note func(string, ...any)) error {
	select {
	case <-time.After(time.Until(started.Add(f.At))):
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.What == "blossom" {
		sys.Blossom.Disable()
		note("blossom unreachable for %v", f.Down)
	} else {
		p := map[string]*Proc{"relay": sys.Relay, "dvm": sys.DVM, "kimai": sys.Kimai, "tracker": tr.Proc}[f.What]
		pid := p.Pid()
		if err := p.Kill9(); err != nil {
			return err
		}
		note("kill -9 %s (pid %d), down for %v", f.What, pid, f.Down)
	}
	select {
	case <-time.After(f.Down):
	case <-ctx.Done():
		return ctx.Err()
	}
	var err error
	switch f.What {
	case "blossom":
		err = sys.Blossom.Enable()
	case "relay":
		err = sys.StartRelay(ctx)
	case "dvm":
		err = sys.StartDVM(ctx)
	case "kimai":
		err = sys.StartKimai(ctx)
	case "tracker":
		rest := faultRun - time.Since(started)
		tr.Proc.Args = tr.RunArgs(1, 1, memo, rest.Round(time.Second), faultDrain)
		err = tr.Proc.Start()
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", f.What, err)
	}
	note("%s back", f.What)
	return nil
}

// kimaiCoverage sums up a successful Kimai check.
type kimaiCoverage struct {
	Sheets, Segments, Idle int
	Booked                 time.Duration
}

func floorMinute(t time.Time) time.Time { return t.Truncate(time.Minute) }
func ceilMinute(t time.Time) time.Time {
	if f := t.Truncate(time.Minute); !f.Equal(t) {
		return f.Add(time.Minute)
	}
	return t
}

// checkKimai: every accepted segment with activity is booked in exactly one pow.do
// timesheet of its worker's Kimai user, on its project and activity, inside the
// timesheet's times; each timesheet runs from its first segment's start to its last
// segment's end (Kimai rounds begin down and end up to the minute); no timesheet is
// running (every session was stopped); idle segments are booked nowhere; and Kimai has
// no pow.do timesheet that no segment names.
func checkKimai(segs []DVMSegment, sheets []Timesheet, users map[string]int64) (kimaiCoverage, error) {
	var cov kimaiCoverage
	byID := map[int64]Timesheet{}
	for _, s := range sheets {
		if containsStr(s.Tags, "pow.do") {
			byID[s.ID] = s
		}
	}
	type span struct{ first, last time.Time }
	spans := map[int64]*span{}
	var problems []string
	for _, g := range segs {
		if g.ActiveSeconds <= 0 {
			cov.Idle++
			if g.TimesheetID != 0 {
				problems = append(problems, fmt.Sprintf("idle segment %v booked to timesheet %d", g.Key(), g.TimesheetID))
			}
			continue
		}
		if g.KimaiState != "synced" || g.TimesheetID == 0 {
			problems = append(problems, fmt.Sprintf("segment %v not booked yet (kimai_state %s)", g.Key(), g.KimaiState))
			continue
		}
		ts, ok := byID[g.TimesheetID]
		if !ok {
			problems = append(problems, fmt.Sprintf("segment %v names timesheet %d, which Kimai does not have", g.Key(), g.TimesheetID))
			continue
		}
		if ts.User != users[g.Worker] || ts.Project != g.Project || ts.Activity != g.Activity {
			problems = append(problems, fmt.Sprintf("timesheet %d: user/project/activity %d/%d/%d, segment %v wants %d/%d/%d",
				ts.ID, ts.User, ts.Project, ts.Activity, g.Key(), users[g.Worker], g.Project, g.Activity))
		}
		if !strings.Contains(ts.Description, g.Session) {
			problems = append(problems, fmt.Sprintf("timesheet %d does not name session %s", ts.ID, g.Session))
		}
		sp := spans[ts.ID]
		if sp == nil {
			sp = &span{g.Start, g.End}
			spans[ts.ID] = sp
		}
		if g.Start.Before(sp.first) {
			sp.first = g.Start
		}
		if g.End.After(sp.last) {
			sp.last = g.End
		}
		cov.Segments++
	}
	for id, ts := range byID {
		sp := spans[id]
		switch {
		case sp == nil:
			problems = append(problems, fmt.Sprintf("Kimai timesheet %d (%s–%v) covers no accepted segment", id, ts.Begin, ts.End))
		case ts.End.IsZero():
			problems = append(problems, fmt.Sprintf("timesheet %d is still running", id))
		case !ts.Begin.Equal(floorMinute(sp.first)) || !ts.End.Equal(ceilMinute(sp.last)):
			problems = append(problems, fmt.Sprintf("timesheet %d runs %s–%s, its segments %s–%s", id,
				ts.Begin.UTC().Format(time.TimeOnly), ts.End.UTC().Format(time.TimeOnly),
				sp.first.Format(time.TimeOnly), sp.last.Format(time.TimeOnly)))
		default:
			cov.Booked += ts.End.Sub(ts.Begin)
		}
	}
	cov.Sheets = len(byID)
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("… and %d more", len(problems)-10))
		}
		return cov, errors.New(strings.Join(problems, "; "))
	}
	if cov.Segments == 0 {
		return cov, errors.New("no accepted segment with activity: nothing to book")
	}
	return cov, nil
}

// someScreenshot returns 64 bytes from the middle of the first screenshot the DVM
// stored (content-addressed files under dir).
func someScreenshot(dir string) ([]byte, error) {
	var pick string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && pick == "" {
			if st, err := d.Info(); err == nil && st.Size() > 4096 {
				pick = path
			}
		}
		return nil
	})
	if pick == "" {
		return nil, fmt.Errorf("no screenshot stored under %s", dir)
	}
	b, err := os.ReadFile(pick)
	if err != nil {
		return nil, err
	}
	if len(b) < 3 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF {
		return nil, fmt.Errorf("%s is not a JPEG", pick)
	}
	mid := len(b) / 2
	return b[mid : mid+64], nil
}

func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func labels(hits []Hit) map[string]bool {
	m := map[string]bool{}
	for _, h := range hits {
		m[h.Needle] = true
	}
	return m
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

func containsStr(xs []string, v string) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
