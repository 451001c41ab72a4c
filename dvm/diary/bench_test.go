package diary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"pow.do/dvm/diary"
	seed "pow.do/dvm/diary/diarytest"
	"pow.do/dvm/diary/password"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

// The work diary on a month of data for 50 workers (8 hours a day of 10-minute segments:
// 72,000 segments, 144,000 screenshots), against the same requests on a store holding
// one worker's month. The ratios printed at the end say what the 49 other workers cost
// per request: the goal is close to 1 (indexed range reads, no scans).

const (
	benchWorkers = 50
	benchDays    = 30
	benchPerDay  = 48
)

var benchFirst = time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)

func benchRecords(worker string, w, days int) []*store.SegmentRecord {
	apps := []string{"code", "firefox", "slack", "terminal", "figma"}
	var recs []*store.SegmentRecord
	for day := 0; day < days; day++ {
		session := fmt.Sprintf("%08x%08x%016x", w, day, 0xabc)
		prev := ""
		for i := 0; i < benchPerDay; i++ {
			start := benchFirst.AddDate(0, 0, day).Add(time.Duration(i) * 10 * time.Minute)
			r := &store.SegmentRecord{
				Worker: worker, Session: session, Index: i, Start: start, End: start.Add(10 * time.Minute),
				Project: 12, Activity: 5, Memo: "bench", AppVersion: "0.1.0", Source: "activitywatch",
				Policy:  store.Policy{SegmentSeconds: 600, Screenshots: 2, JPEGQuality: 80, MaxWidth: 1920},
				RumorID: store.HashHex([]byte(fmt.Sprint("r", session, i))), X: store.HashHex([]byte(fmt.Sprint("x", session, i))),
				OX: store.HashHex([]byte(fmt.Sprint("ox", session, i))), Prev: prev, ActiveSeconds: 300 + i*5,
				ReceivedAt: start.Add(11 * time.Minute),
			}
			prev = r.OX
			for e := 0; e < 24; e++ {
				ts := start.Add(time.Duration(e) * 25 * time.Second)
				app := apps[(i+e)%len(apps)]
				bucket, data := store.BucketWindow, fmt.Sprintf(`{"app":%q,"title":"%s window %d"}`, app, app, e%7)
				switch e % 4 {
				case 1:
					bucket, data = store.BucketWeb, fmt.Sprintf(`{"url":"https://example.com/page/%d","title":"Page"}`, e%9)
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
			for s := 1; s <= 2; s++ {
				r.Screenshots = append(r.Screenshots, store.Screenshot{Name: fmt.Sprintf("screenshots/%03d.jpg", s),
					TakenAt: start.Add(time.Duration(s*3) * time.Minute), Data: seed.JPEG(640, 360, i*2+s, uint64(w))})
			}
			recs = append(recs, r)
		}
	}
	return recs
}

type benchEnv struct {
	d      *diary.Diary
	cookie *http.Cookie
	worker string
	day    string
}

func newBenchEnv(b *testing.B, workers, days int) *benchEnv {
	b.Helper()
	ctx := context.Background()
	now := func() time.Time { return benchFirst.AddDate(0, 0, benchDays+1) }
	db, err := sqlite.Open(b.TempDir(), sqlite.WithClock(now), sqlite.WithLogger(quietLog()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	t0 := time.Now()
	var first string
	for w := 0; w < workers; w++ {
		pk := store.HashHex([]byte(fmt.Sprint("bench worker ", w)))
		if w == 0 {
			first = pk
		}
		if err := db.AddWorker(ctx, store.Worker{Pubkey: pk, Name: fmt.Sprint("Worker ", w)}); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ImportSegments(ctx, benchRecords(pk, w, days)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d workers × %d days × %d segments in %s", workers, days, benchPerDay, time.Since(t0).Round(time.Millisecond))
	h, _ := password.Hash(reviewerPW, cheap)
	if err := db.AddReviewer(ctx, store.Reviewer{Username: reviewer, PasswordHash: h}); err != nil {
		b.Fatal(err)
	}
	d, err := diary.Open(db, diary.Options{CacheDir: b.TempDir(), PasswordParams: cheap, Log: quietLog(), Now: now})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	c := login(b, srv.URL)
	return &benchEnv{d: d, cookie: sessionCookieTB(c, srv.URL), worker: first, day: benchFirst.AddDate(0, 0, days/2).Format(time.DateOnly)}
}

func sessionCookieTB(c *http.Client, base string) *http.Cookie {
	req, _ := http.NewRequest(http.MethodGet, base, nil)
	for _, ck := range c.Jar.Cookies(req.URL) {
		if ck.Name == "powdo_diary" {
			return ck
		}
	}
	return nil
}

// serve runs one request in process and checks the status.
func (e *benchEnv) serve(b *testing.B, path string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(e.cookie)
	rec := httptest.NewRecorder()
	e.d.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
	}
	return rec.Body.Len()
}

func BenchmarkDiary(b *testing.B) {
	big := newBenchEnv(b, benchWorkers, benchDays)
	small := newBenchEnv(b, 1, benchDays)
	requests := []struct{ name, path string }{
		{"day_page", "/workers/{pk}/days/{day}?tz=UTC"},
		{"day_api", "/api/v1/workers/{pk}/days/{day}?tz=UTC"},
		{"worker_month_page", "/workers/{pk}?tz=UTC&month=2026-10"},
		{"days_api", "/api/v1/workers/{pk}/days?tz=Europe/Berlin"},
		{"index_page", "/"},
		{"week_csv", "/api/v1/workers/{pk}/weeks/{day}/export.csv?tz=UTC"},
	}
	perOp := map[string]float64{}
	for _, env := range []struct {
		label string
		e     *benchEnv
	}{{"month_50_workers", big}, {"month_1_worker", small}} {
		for _, rq := range requests {
			path := strings.NewReplacer("{pk}", env.e.worker, "{day}", env.e.day).Replace(rq.path)
			name := env.label + "/" + rq.name
			b.Run(name, func(b *testing.B) {
				n := 0
				for b.Loop() {
					n += env.e.serve(b, path)
				}
				perOp[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(float64(n)/float64(b.N), "bytes/op")
			})
		}
	}
	// Thumbnails: made once, then served from the disk cache.
	var shot string
	b.Run("month_50_workers/thumbnail_first", func(b *testing.B) {
		recs := benchRecords(big.worker, 0, 1)
		shot = store.HashHex(recs[0].Screenshots[0].Data)
		for i := 0; b.Loop(); i++ {
			// A different screenshot each time (16 variants per worker) so it is not cached.
			w := 1 + i%(benchWorkers-1)
			sum := store.HashHex(seed.JPEG(640, 360, 2+i%16, uint64(w)))
			big.serve(b, "/api/v1/screenshots/"+sum+"/thumb")
		}
		perOp["thumbnail_first"] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("month_50_workers/thumbnail_cached", func(b *testing.B) {
		big.serve(b, "/api/v1/screenshots/"+shot+"/thumb")
		for b.Loop() {
			big.serve(b, "/api/v1/screenshots/"+shot+"/thumb")
		}
		perOp["thumbnail_cached"] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})

	var lines []string
	for _, rq := range requests {
		bg, sm := perOp["month_50_workers/"+rq.name], perOp["month_1_worker/"+rq.name]
		if bg > 0 && sm > 0 {
			lines = append(lines, fmt.Sprintf("%-18s %8.0f µs with 50 workers, %8.0f µs with 1 worker: ratio %.2f", rq.name, bg/1e3, sm/1e3, bg/sm))
		}
	}
	sort.Strings(lines)
	if f, c := perOp["thumbnail_first"], perOp["thumbnail_cached"]; f > 0 && c > 0 {
		lines = append(lines, fmt.Sprintf("thumbnail: first %0.f µs (unless cached), cached %.0f µs: ratio %.1f", f/1e3, c/1e3, f/c))
	}
	// Printed, not logged: benchmark logs of a parent are dropped without -v.
	fmt.Println("work diary, per request, measured in this run (a month of data per worker;")
	fmt.Println("index_page lists every worker, so it grows with their number):")
	fmt.Println("  " + strings.Join(lines, "\n  "))
}
