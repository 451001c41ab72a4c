package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"pow.do/dvm/store"
	"pow.do/dvm/store/storetest"
)

const (
	benchWorkers     = 50
	benchDays        = 30
	benchSegsPerDay  = 48 // eight hours of 10-minute segments
	benchEventsPerSg = 24
)

var benchFirstDay = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// benchRecord generates one segment: events over a few apps and sites, ten minutes,
// two screenshots (metadata only: the fill bypasses file writes).
func benchRecord(worker, session string, index int, start time.Time, prev string) (*store.SegmentRecord, []store.ScreenshotMeta) {
	apps := []string{"code", "firefox", "slack", "terminal", "figma"}
	r := &store.SegmentRecord{
		Worker: worker, Session: session, Index: index, Start: start, End: start.Add(10 * time.Minute),
		Project: 12, Activity: 5, Memo: "bench", AppVersion: "0.1.0", Source: "activitywatch",
		Policy:  store.Policy{SegmentSeconds: 600, Screenshots: 2, JPEGQuality: 80, MaxWidth: 1920},
		RumorID: store.HashHex([]byte(fmt.Sprint("r", session, index))),
		X:       store.HashHex([]byte(fmt.Sprint("x", session, index))),
		OX:      store.HashHex([]byte(fmt.Sprint("ox", session, index))),
		Prev:    prev, ActiveSeconds: 300 + index%300,
	}
	for e := 0; e < benchEventsPerSg; e++ {
		ts := start.Add(time.Duration(e) * 25 * time.Second)
		app := apps[(index+e)%len(apps)]
		bucket, data := store.BucketWindow, fmt.Sprintf(`{"app":%q,"title":"%s window %d"}`, app, app, e%7)
		switch e % 4 {
		case 1:
			bucket, data = store.BucketWeb, fmt.Sprintf(`{"url":"https://example.com/page/%d","title":"Page %d"}`, e%9, e%9)
		case 2:
			bucket, data = store.BucketInput, fmt.Sprintf(`{"presses":%d,"clicks":%d}`, e*3, e)
		case 3:
			bucket, data = store.BucketAFK, `{"status":"not-afk"}`
		}
		r.Events = append(r.Events, store.Event{Bucket: bucket, Timestamp: ts, Duration: 25, Data: json.RawMessage(data)})
	}
	for m := 0; m < 10; m++ {
		r.Minutes = append(r.Minutes, store.Minute{T: start.Add(time.Duration(m) * time.Minute), Keys: 30 + m, Clicks: m, Moves: 200, Active: m != 4})
	}
	shots := []store.ScreenshotMeta{
		{Name: "screenshots/001.jpg", SHA256: store.HashHex([]byte(fmt.Sprint("s1", session, index))), Size: 210_000, TakenAt: start.Add(2 * time.Minute)},
		{Name: "screenshots/002.jpg", SHA256: store.HashHex([]byte(fmt.Sprint("s2", session, index))), Size: 205_000, TakenAt: start.Add(7 * time.Minute)},
	}
	return r, shots
}

// fillBench loads 50 workers × 30 days × 48 segments, one transaction per worker, through
// the same insertSegmentTx that InsertSegment uses.
func fillBench(b *testing.B, db *DB) []string {
	ctx := context.Background()
	var workers []string
	for w := 0; w < benchWorkers; w++ {
		pk := storetest.Key(fmt.Sprint("bench-worker-", w))
		workers = append(workers, pk)
		if err := db.AddWorker(ctx, store.Worker{Pubkey: pk, Name: fmt.Sprint("Worker ", w)}); err != nil {
			b.Fatal(err)
		}
		err := db.write(ctx, "bench fill", func(tx *sql.Tx) error {
			for day := 0; day < benchDays; day++ {
				session := storetest.SessionID(fmt.Sprint(pk, day))
				first := benchFirstDay.AddDate(0, 0, day).Add(8 * time.Hour)
				prev := ""
				for i := 0; i < benchSegsPerDay; i++ {
					rec, shots := benchRecord(pk, session, i, first.Add(time.Duration(i)*10*time.Minute), prev)
					prev = rec.OX
					if err := insertSegmentTx(ctx, tx, rec, shots, rec.End.Add(time.Minute)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return workers
}

// BenchmarkDiary times the work diary's queries on a month of data for 50 workers.
func BenchmarkDiary(b *testing.B) {
	db, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	t0 := time.Now()
	workers := fillBench(b, db)
	total := benchWorkers * benchDays * benchSegsPerDay
	b.Logf("filled %d segments in %s (%.0f segments/s)", total, time.Since(t0).Round(time.Millisecond),
		float64(total)/time.Since(t0).Seconds())
	plus13 := time.FixedZone("UTC+13", 13*3600)

	b.Run("day_segments", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			day := store.DayOf(benchFirstDay.AddDate(0, 0, i%benchDays), time.UTC)
			segs, err := db.DaySegments(ctx, workers[i%benchWorkers], day, time.UTC)
			if err != nil || len(segs) != benchSegsPerDay || len(segs[0].Minutes) != 10 || len(segs[0].Screenshots) != 2 {
				b.Fatalf("day %s: %d segments, %v", day, len(segs), err)
			}
			n += len(segs)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n), "µs/segment")
	})
	b.Run("worker_month_day_totals", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			days, err := db.DayTotals(ctx, workers[i%benchWorkers], plus13, store.Day{}, store.Day{})
			if err != nil || len(days) < benchDays {
				b.Fatalf("%d days, %v", len(days), err)
			}
		}
	})
	b.Run("worker_week_totals", func(b *testing.B) {
		from := store.DayOf(benchFirstDay.AddDate(0, 0, 7), time.UTC).Week()
		for i := 0; b.Loop(); i++ {
			weeks, err := db.WeekTotals(ctx, workers[i%benchWorkers], time.UTC, from, from.AddDays(6))
			if err != nil || len(weeks) != 1 || weeks[0].Segments != 7*benchSegsPerDay {
				b.Fatalf("weeks %+v, %v", weeks, err)
			}
		}
	})
	b.Run("all_workers_week_totals", func(b *testing.B) {
		from := store.DayOf(benchFirstDay.AddDate(0, 0, 7), time.UTC).Week()
		for b.Loop() {
			weeks, err := db.WeekTotals(ctx, "", time.UTC, from, from.AddDays(6))
			if err != nil || len(weeks) != benchWorkers {
				b.Fatalf("%d weeks, %v", len(weeks), err)
			}
		}
	})
}
