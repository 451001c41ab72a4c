package activitywatch

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// expectedFromFile computes, straight from the export, how many events of a
// bucket fall in [start, end) and their clipped total duration.
func expectedFromFile(t *testing.T, b rawBucket, times map[string]time.Time, start, end time.Time) (int, float64) {
	n, total := 0, 0.0
	s, e := float64(start.UnixNano())/1e9, float64(end.UnixNano())/1e9
	for _, r := range b.Events {
		ts := float64(times[r.Timestamp].UnixNano()) / 1e9
		if r.Duration == 0 {
			if ts >= s && ts < e {
				n++
			}
			continue
		}
		if o := math.Min(ts+r.Duration, e) - math.Max(ts, s); o > 0 {
			n++
			total += o
		}
	}
	return n, total
}

func TestClientAgainstAndroidExport(t *testing.T) {
	buckets := loadExport(t)
	aw, srv := newAWServer(t, "unknown", buckets)
	c := New(Config{BaseURL: srv.URL + "/api/0/"})
	ctx := context.Background()

	if !c.Available(ctx) {
		t.Fatal("server not available")
	}
	info, err := c.Info(ctx)
	if err != nil || info.Hostname != "unknown" || !strings.Contains(info.Version, "rust") {
		t.Fatalf("info %+v %v", info, err)
	}
	all, err := c.Buckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(buckets) {
		t.Fatalf("%d buckets, file has %d", len(all), len(buckets))
	}
	for id, b := range buckets {
		if got := all[id]; got.ID != id || got.Type != b.Type || got.Hostname != b.Hostname || got.Created.IsZero() {
			t.Fatalf("bucket %s: %+v", id, got)
		}
	}
	hb, err := c.FindBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wantWindow string
	for id, b := range buckets {
		if b.Type == TypeWindow && b.Hostname == "unknown" {
			wantWindow = id
		}
	}
	if hb.Window != wantWindow || wantWindow == "" || hb.AFK != "" || hb.Input != "" || len(hb.Web) != 0 {
		t.Fatalf("host buckets %+v, want window %q and nothing else", hb, wantWindow)
	}

	for id, b := range buckets {
		for _, r := range [][2]string{
			{"2026-04-23T12:00:00Z", "2026-04-23T13:00:00Z"},
			{"2026-04-23T12:07:30.5Z", "2026-04-23T12:17:30.5Z"},
			{"2026-04-20T00:00:00Z", "2026-04-21T00:00:00Z"},
			{"2026-04-14T00:00:00Z", "2026-04-25T00:00:00Z"}, // everything
			{"2025-01-01T00:00:00Z", "2025-01-01T00:10:00Z"}, // nothing
		} {
			start, end := mustTime(t, r[0]), mustTime(t, r[1])
			got, err := c.Events(ctx, id, start, end)
			if err != nil {
				t.Fatalf("%s %v: %v", id, r, err)
			}
			wantN, wantTotal := expectedFromFile(t, b, aw.times, start, end)
			total := 0.0
			for i, e := range got {
				total += e.Duration
				if e.Timestamp.Before(start) || e.End().After(end) || !e.Timestamp.Before(end) {
					t.Fatalf("%s %v: event %d (%v + %vs) outside the range", id, r, i, e.Timestamp, e.Duration)
				}
				if i > 0 && e.Timestamp.Before(got[i-1].Timestamp) {
					t.Fatalf("%s %v: events not oldest first at %d", id, r, i)
				}
				if e.Timestamp.Location() != time.UTC {
					t.Fatalf("timestamp %v not UTC", e.Timestamp)
				}
			}
			if b.Type == TypeWindow && !strings.HasPrefix(r[0], "2025") && wantN == 0 {
				t.Fatalf("%s %v: the file has no events here; the range proves nothing", id, r)
			}
			if len(got) != wantN || math.Abs(total-wantTotal) > 1e-3*float64(wantN+1) {
				t.Fatalf("%s %v: %d events / %.3fs, file says %d / %.3fs", id, r, len(got), total, wantN, wantTotal)
			}
		}
	}
}

func TestClientUnknownBucket(t *testing.T) {
	_, srv := newAWServer(t, "unknown", loadExport(t))
	c := New(Config{BaseURL: srv.URL + "/api/0"})
	_, err := c.Events(context.Background(), "aw-watcher-window_nosuchhost", time.Unix(0, 0), time.Now())
	if !errors.Is(err, ErrNoBucket) {
		t.Fatalf("err %v, want ErrNoBucket", err)
	}
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 404 || !strings.Contains(he.Message, "does not exist") {
		t.Fatalf("err %v does not carry ActivityWatch's 404 message", err)
	}
}

func TestClientSendsAPIKeyAndQuery(t *testing.T) {
	s, srv := newAWServer(t, "host1", map[string]rawBucket{
		"aw-watcher-window_host1": {ID: "aw-watcher-window_host1", Type: TypeWindow, Hostname: "host1", Created: "2026-01-01T00:00:00Z",
			Events: []rawEvent{ev(1, "2026-11-21T10:00:00Z", 30, `{"app":"a","title":"t"}`)}},
	})
	s.apiKey = "s3cret-key"
	ctx := context.Background()
	if New(Config{BaseURL: srv.URL + "/api/0"}).Available(ctx) {
		t.Fatal("available without the API key")
	}
	c := New(Config{BaseURL: srv.URL + "/api/0", APIKey: "s3cret-key"})
	if !c.Available(ctx) {
		t.Fatal("not available with the API key")
	}
	_, err := c.Events(ctx, "aw-watcher-window_host1", mustTime(t, "2026-11-21T10:00:00Z"), mustTime(t, "2026-11-21T10:10:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	last := s.queries[len(s.queries)-1]
	for _, want := range []string{"/api/0/buckets/aw-watcher-window_host1/events?", "start=2026-11-21T10%3A00%3A00Z", "end=2026-11-21T10%3A10%3A00Z", "limit="} {
		if !strings.Contains(last, want) {
			t.Fatalf("query %q lacks %q", last, want)
		}
	}
	for _, q := range s.queries {
		if strings.Contains(q, "s3cret") {
			t.Fatalf("API key leaked into a URL: %s", q)
		}
	}
}

func TestClientRefusesBadAnswers(t *testing.T) {
	ctx := context.Background()
	start, end := mustTime(t, "2026-11-21T10:00:00Z"), mustTime(t, "2026-11-21T10:10:00Z")
	for name, handler := range map[string]http.HandlerFunc{
		"garbage": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>not json")) },
		"negative duration": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`[{"id":1,"timestamp":"2026-11-21T10:00:00Z","duration":-5,"data":{}}]`))
		},
		"no timestamp": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`[{"id":1,"duration":5,"data":{}}]`)) },
		"server error": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			w.Write([]byte(`{"message":"db locked"}`))
		},
		"too many": func(w http.ResponseWriter, r *http.Request) {
			evs := make([]map[string]any, 4)
			for i := range evs {
				evs[i] = map[string]any{"id": i, "timestamp": "2026-11-21T10:00:00Z", "duration": 1, "data": map[string]any{}}
			}
			json.NewEncoder(w).Encode(evs)
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newPlainServer(t, handler)
			c := New(Config{BaseURL: srv + "/api/0", MaxEvents: 3})
			evs, err := c.Events(ctx, "b", start, end)
			if err == nil {
				t.Fatalf("accepted: %+v", evs)
			}
		})
	}
	c := New(Config{BaseURL: "http://127.0.0.1:1/api/0", Timeout: time.Second})
	if c.Available(ctx) {
		t.Fatal("nothing listens on port 1, yet available")
	}
	if _, err := c.Events(ctx, "b", end, start); err == nil {
		t.Fatal("reversed range accepted")
	}
}

func TestFindHostBuckets(t *testing.T) {
	b := func(id, typ, host, created string) Bucket {
		return Bucket{ID: id, Type: typ, Hostname: host, Created: mustTime(t, created)}
	}
	all := map[string]Bucket{}
	for _, x := range []Bucket{
		b("aw-watcher-window_laptop", TypeWindow, "laptop", "2025-01-01T00:00:00Z"),
		b("aw-watcher-window_laptop-2", TypeWindow, "laptop", "2026-01-01T00:00:00Z"),
		b("aw-watcher-window_desk", TypeWindow, "desk", "2026-06-01T00:00:00Z"),
		b("aw-watcher-afk_laptop", TypeAFK, "laptop", "2025-01-01T00:00:00Z"),
		b("aw-watcher-input_laptop", TypeInput, "laptop", "2025-01-01T00:00:00Z"),
		b("aw-watcher-web-firefox", TypeWeb, "unknown", "2025-01-01T00:00:00Z"),
		b("aw-watcher-web-chrome", TypeWeb, "unknown", "2025-01-01T00:00:00Z"),
	} {
		all[x.ID] = x
	}
	got := FindHostBuckets(all, "laptop")
	if got.Window != "aw-watcher-window_laptop-2" || got.AFK != "aw-watcher-afk_laptop" || got.Input != "aw-watcher-input_laptop" ||
		strings.Join(got.Web, ",") != "aw-watcher-web-chrome,aw-watcher-web-firefox" {
		t.Fatalf("laptop: %+v", got)
	}
	all["aw-watcher-web-chrome_laptop"] = b("aw-watcher-web-chrome_laptop", TypeWeb, "laptop", "2026-01-01T00:00:00Z")
	if got := FindHostBuckets(all, "laptop"); strings.Join(got.Web, ",") != "aw-watcher-web-chrome_laptop" {
		t.Fatalf("host-specific web bucket not preferred: %v", got.Web)
	}
	if got := FindHostBuckets(all, "desk"); got.Window != "aw-watcher-window_desk" || got.AFK != "" {
		t.Fatalf("desk: %+v", got)
	}
}
