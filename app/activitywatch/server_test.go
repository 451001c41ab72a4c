package activitywatch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// exportPath is ActivityWatch's own export of a real aw-android install.
const exportPath = "../../../shared/testdata/activitywatch/aw-android-export.json"

type rawEvent struct {
	ID        int64           `json:"id"`
	Timestamp string          `json:"timestamp"`
	Duration  float64         `json:"duration"`
	Data      json.RawMessage `json:"data"`
}

type rawBucket struct {
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	Client   string     `json:"client"`
	Hostname string     `json:"hostname"`
	Created  string     `json:"created"`
	Events   []rawEvent `json:"events"`
}

func loadExport(t *testing.T) map[string]rawBucket {
	t.Helper()
	b, err := os.ReadFile(exportPath)
	if err != nil {
		t.Fatalf("read export: %v", err)
	}
	var exp struct {
		Buckets map[string]rawBucket `json:"buckets"`
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatalf("parse export: %v", err)
	}
	if len(exp.Buckets) == 0 {
		t.Fatal("export has no buckets")
	}
	return exp.Buckets
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// awServer serves buckets through ActivityWatch's real routes and answers
// the way aw-server-rust does: events newest first, every event that touches
// [start, end] (not clipped), 404 with {"message": …} for unknown buckets.
type awServer struct {
	t        testing.TB
	hostname string
	apiKey   string // required in X-API-Key when set
	mu       sync.Mutex
	buckets  map[string]rawBucket
	times    map[string]time.Time // parsed event timestamps
	queries  []string
}

func newAWServer(t testing.TB, hostname string, buckets map[string]rawBucket) (*awServer, *httptest.Server) {
	s := &awServer{t: t, hostname: hostname, buckets: buckets, times: map[string]time.Time{}}
	for _, b := range buckets {
		for _, e := range b.Events {
			s.times[e.Timestamp] = mustTime(t, e.Timestamp)
		}
	}
	srv := httptest.NewServer(s) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return s, srv
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *awServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.apiKey != "" && r.Header.Get("X-API-Key") != s.apiKey {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "missing or wrong API key"})
		return
	}
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
		return
	}
	s.mu.Lock()
	s.queries = append(s.queries, r.URL.RequestURI())
	s.mu.Unlock()
	path := r.URL.Path
	switch {
	case path == "/api/0/info":
		writeJSON(w, 200, map[string]any{"hostname": s.hostname, "version": "v0.13.2 (rust)", "testing": false, "device_id": "4ef0b1b2-test"})
	case path == "/api/0/buckets/":
		out := map[string]any{}
		for id, b := range s.buckets {
			out[id] = map[string]any{"id": b.ID, "name": nil, "type": b.Type, "client": b.Client,
				"hostname": b.Hostname, "created": b.Created, "data": map[string]any{}}
		}
		writeJSON(w, 200, out)
	case strings.HasPrefix(path, "/api/0/buckets/") && strings.HasSuffix(path, "/events"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/api/0/buckets/"), "/events")
		s.events(w, r, id)
	default:
		writeJSON(w, 404, map[string]string{"message": "no route " + path})
	}
}

func (s *awServer) events(w http.ResponseWriter, r *http.Request, id string) {
	b, ok := s.buckets[id]
	if !ok {
		writeJSON(w, 404, map[string]string{"message": fmt.Sprintf("The requested bucket '%s' does not exist", id)})
		return
	}
	q := r.URL.Query()
	var start, end time.Time
	var err error
	if v := q.Get("start"); v != "" {
		if start, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeJSON(w, 400, map[string]string{"message": "bad start"})
			return
		}
	}
	if v := q.Get("end"); v != "" {
		if end, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeJSON(w, 400, map[string]string{"message": "bad end"})
			return
		}
	}
	limit := -1
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			writeJSON(w, 400, map[string]string{"message": "bad limit"})
			return
		}
	}
	type keyed struct {
		ts time.Time
		e  rawEvent
	}
	var sel []keyed
	for _, e := range b.Events {
		ts := s.times[e.Timestamp]
		endTS := ts.Add(time.Duration(e.Duration * float64(time.Second)))
		if (!start.IsZero() && endTS.Before(start)) || (!end.IsZero() && ts.After(end)) {
			continue
		}
		sel = append(sel, keyed{ts, e})
	}
	sort.SliceStable(sel, func(i, j int) bool {
		if !sel[i].ts.Equal(sel[j].ts) {
			return sel[i].ts.After(sel[j].ts)
		}
		return sel[i].e.ID > sel[j].e.ID
	})
	if limit >= 0 && len(sel) > limit {
		sel = sel[:limit]
	}
	out := make([]rawEvent, len(sel))
	for i, k := range sel {
		out[i] = k.e
	}
	writeJSON(w, 200, out)
}

// ev builds a raw event for crafted buckets.
func ev(id int64, ts string, dur float64, data string) rawEvent {
	return rawEvent{ID: id, Timestamp: ts, Duration: dur, Data: json.RawMessage(data)}
}

func newPlainServer(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
