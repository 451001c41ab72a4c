package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pow.do/app/capture"
	"pow.do/shared/proto"
)

// BenchmarkCaptureToReceipt measures how long a segment takes from the moment its sealed
// bundle is handed to the outbox (capture and review done) until the DVM's receipt is
// applied to that outbox, with 10 and with 100 trackers sending at the same instant (as
// clock-aligned segments do). The relay and the DVM are real processes; the trackers
// are simulated in this process (SimTracker: the real join, outbox and publisher, one
// real screenshot per segment, no capture loop), because 100 tracker processes do not
// fit on a small machine. Each iteration is one round: every tracker sends one segment.
//
//	go test -run '^$' -bench CaptureToReceipt -benchtime 3x ./e2e/
func BenchmarkCaptureToReceipt(b *testing.B) {
	const maxTrackers = 100
	bins := FindBinaries(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	x, err := StartXvfbSize(filepath.Join(dir, "logs"), "powdo bench", "1920x1080x24", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	jpeg := screenshot(b, x.Display)

	policy := proto.Policy{SegmentSeconds: 60, Screenshots: 1, ReviewSeconds: 0, IdleSeconds: 300, JPEGQuality: 80, MaxWidth: 1920}
	sys := NewSystem(b, bins, SystemConfig{Dir: filepath.Join(dir, "sys"), Policy: policy,
		Projects: []proto.Project{{ID: 1, Name: "Bench"}}, Activities: []proto.Activity{{ID: 1, Name: "Work"}}})
	defer sys.Stop()
	if err := sys.Start(ctx); err != nil {
		b.Fatal(err)
	}

	trackers := make([]*SimTracker, maxTrackers)
	runCtx, stopRun := context.WithCancel(ctx)
	var runWG sync.WaitGroup
	defer func() {
		stopRun()
		runWG.Wait()
		for _, t := range trackers {
			if t != nil {
				t.Close()
			}
		}
	}()
	// Invites are made one by one (the CLI opens the DVM's store each time); joins run
	// a few at a time.
	links := make([]string, maxTrackers)
	for i := range links {
		if links[i], err = sys.Invite(ctx, fmt.Sprintf("sim%03d", i), 0); err != nil {
			b.Fatal(err)
		}
	}
	sem := make(chan struct{}, 8)
	errs := make([]error, maxTrackers)
	var wg sync.WaitGroup
	for i := range trackers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t, err := NewSimTracker(ctx, filepath.Join(dir, "sim", strconv.Itoa(i)), links[i], policy, quiet)
			if err == nil {
				err = t.StartSession(ctx, 1, 1, time.Now())
			}
			trackers[i], errs[i] = t, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	for _, t := range trackers {
		runWG.Add(1)
		go func() { defer runWG.Done(); t.Pub.Run(runCtx) }()
	}

	// Segments are 60 s long and lie in the past, one after the other per session.
	base := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	round := 0
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("trackers=%d", n), func(b *testing.B) {
			var lat []time.Duration
			start := time.Now()
			for range b.N {
				segStart := base.Add(time.Duration(round) * time.Minute)
				round++
				type pending struct {
					at time.Time
					ch <-chan time.Time
				}
				ps := make([]pending, n)
				for i := range n {
					at, ch, err := trackers[i].Send(ctx, segStart, segStart.Add(time.Minute), 1, 1, jpeg)
					if err != nil {
						b.Fatal(err)
					}
					ps[i] = pending{at, ch}
				}
				deadline := time.After(3 * time.Minute)
				for i, p := range ps {
					select {
					case got := <-p.ch:
						lat = append(lat, got.Sub(p.at))
					case <-deadline:
						b.Fatalf("round %d: tracker %d got no receipt within 3 minutes", round, i)
					}
				}
			}
			elapsed := time.Since(start)
			slices.Sort(lat)
			b.ReportMetric(millis(percentile(lat, 0.50)), "p50-ms")
			b.ReportMetric(millis(percentile(lat, 0.99)), "p99-ms")
			b.ReportMetric(millis(lat[len(lat)-1]), "max-ms")
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "segments/s")
		})
	}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// screenshot captures the bench display once, as the tracker would (JPEG q80).
func screenshot(tb testing.TB, display string) []byte {
	tb.Helper()
	x, err := capture.Open(display)
	if err != nil {
		tb.Fatal(err)
	}
	defer x.Close()
	shots, err := x.Screen(capture.EncodeOptions{Quality: 80, MaxWidth: 1920}).Capture(context.Background())
	if err != nil || len(shots) == 0 {
		tb.Fatalf("capture %s: %v", display, err)
	}
	return shots[0].JPEG
}

// BenchmarkTrackerProcess runs one real powdo-tracker process tracking a 1920×1080 Xvfb
// desktop (a titled window, pointer moving every 2 s) with 20-second segments and two
// screenshots each, against a real relay and DVM, and samples its CPU time and RSS from
// /proc once a second over the measured window (after the first segment is delivered).
// It also reports the ciphertext bytes per segment it sent and the screenshot bytes in
// them (from the DVM), and the DVM's and relay's own CPU over the same window.
//
//	go test -run '^$' -bench TrackerProcess -benchtime 1x ./e2e/
func BenchmarkTrackerProcess(b *testing.B) {
	const window = 80 * time.Second
	bins := FindBinaries(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := b.TempDir()
	x, err := StartXvfbSize(filepath.Join(dir, "logs"), "powdo bench: editing report.odt", "1920x1080x24", 2*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	policy := proto.Policy{SegmentSeconds: 20, Screenshots: 2, ReviewSeconds: 0, IdleSeconds: 300, JPEGQuality: 80, MaxWidth: 1920}
	sys := NewSystem(b, bins, SystemConfig{Dir: filepath.Join(dir, "sys"), Policy: policy,
		Projects: []proto.Project{{ID: 1, Name: "Bench"}}, Activities: []proto.Activity{{ID: 1, Name: "Work"}}})
	defer sys.Stop()
	if err := sys.Start(ctx); err != nil {
		b.Fatal(err)
	}
	tr, err := NewTracker(bins.Tracker, filepath.Join(dir, "trackers"), "tracker", x.Env())
	if err != nil {
		b.Fatal(err)
	}
	link, err := sys.Invite(ctx, "bench", 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.Join(ctx, link); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		if err := tr.Start(sys.LogsDir, tr.RunArgs(1, 1, "bench", time.Hour, 30*time.Second)); err != nil {
			b.Fatal(err)
		}
		// Measure once tracking is steady: the first segment went all the way through.
		err := WaitFor(ctx, "the first delivered segment", 2*time.Minute, time.Second, func() error {
			its, err := OutboxItems(ctx, tr.Dir)
			if err != nil {
				return err
			}
			for _, it := range its {
				if it.Kind == "segment" && (it.State == "accepted" || it.State == "duplicate") {
					return nil
				}
			}
			return errors.New("none yet")
		})
		if err != nil {
			b.Fatalf("%v\n%s", err, tr.Proc.Tail(2000))
		}
		procs := map[string]int{"tracker": tr.Proc.Pid(), "dvm": sys.DVM.Pid(), "relay": sys.Relay.Pid()}
		b.ResetTimer()
		samples, err := sampleProcs(ctx, procs, window, time.Second)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Proc.Stop(60 * time.Second); err != nil {
			b.Fatalf("tracker stop: %v\n%s", err, tr.Proc.Tail(2000))
		}
		t := samples["tracker"]
		b.ReportMetric(t.CPUPercent, "tracker-cpu-%")
		b.ReportMetric(t.RSSMeanMiB, "tracker-rss-MiB")
		b.ReportMetric(t.RSSMaxMiB, "tracker-rss-max-MiB")
		b.ReportMetric(samples["dvm"].CPUPercent, "dvm-cpu-%")
		b.ReportMetric(samples["relay"].CPUPercent, "relay-cpu-%")
		b.ReportMetric(samples["dvm"].RSSMeanMiB, "dvm-rss-MiB")
	}
	its, err := OutboxItems(ctx, tr.Dir)
	if err != nil {
		b.Fatal(err)
	}
	var cipher, n int64
	for _, it := range its {
		if it.Kind == "segment" && it.End().Sub(it.Start()) == time.Duration(policy.SegmentSeconds)*time.Second {
			cipher += it.Size
			n++
		}
	}
	shotBytes, full, err := DVMScreenshotBytes(ctx, sys.DVMDB(), time.Duration(policy.SegmentSeconds)*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	if n == 0 || full == 0 {
		b.Fatalf("no full-length segment to measure (tracker %d, DVM %d)", n, full)
	}
	b.ReportMetric(float64(cipher)/float64(n), "bundle-bytes/segment")
	b.ReportMetric(float64(shotBytes)/float64(full), "jpeg-bytes/segment")
	b.ReportMetric(float64(policy.SegmentSeconds), "segment-s")
	b.ReportMetric(float64(policy.Screenshots), "screenshots/segment")
}

// ProcSample is what sampleProcs measured of one process.
type ProcSample struct {
	CPUPercent            float64 // of one core, over the window
	RSSMeanMiB, RSSMaxMiB float64
}

// sampleProcs reads /proc/<pid>/stat and /proc/<pid>/status of each process every
// interval for the window and returns CPU share and RSS.
func sampleProcs(ctx context.Context, pids map[string]int, window, interval time.Duration) (map[string]ProcSample, error) {
	const clkTck = 100 // USER_HZ on Linux
	type acc struct {
		cpu0, cpu1 float64
		rss        []float64
	}
	accs := map[string]*acc{}
	read := func() error {
		for name, pid := range pids {
			cpu, err := procCPU(pid)
			if err != nil {
				return fmt.Errorf("%s (pid %d): %w", name, pid, err)
			}
			rss, err := procRSS(pid)
			if err != nil {
				return fmt.Errorf("%s (pid %d): %w", name, pid, err)
			}
			a := accs[name]
			if a == nil {
				a = &acc{cpu0: cpu}
				accs[name] = a
			}
			a.cpu1 = cpu
			a.rss = append(a.rss, rss)
		}
		return nil
	}
	t0 := time.Now()
	if err := read(); err != nil {
		return nil, err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for time.Since(t0) < window {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if err := read(); err != nil {
			return nil, err
		}
	}
	wall := time.Since(t0).Seconds()
	out := map[string]ProcSample{}
	for name, a := range accs {
		var sum, mx float64
		for _, r := range a.rss {
			sum += r
			mx = max(mx, r)
		}
		out[name] = ProcSample{CPUPercent: (a.cpu1 - a.cpu0) / clkTck / wall * 100,
			RSSMeanMiB: sum / float64(len(a.rss)), RSSMaxMiB: mx}
	}
	return out, nil
}

// procCPU is utime+stime in clock ticks.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64) // field 14 of stat
	st, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

// procRSS is VmRSS in MiB.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status VmRSS %q", pid, v)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
