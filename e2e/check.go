package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // the same pure-Go driver the DVM and tracker use
)

// openRO opens a SQLite file read-only; the writer may keep running (WAL).
func openRO(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// DVMSegment is one row of the DVM's segments table.
type DVMSegment struct {
	Worker, Session, OX, KimaiState string
	Index                           int
	Start, End                      time.Time
	ActiveSeconds                   int64
	Project, Activity               int64
	TimesheetID                     int64 // 0: none
	Screenshots                     int
}

// Key identifies a segment across the system.
func (s DVMSegment) Key() SegKey { return SegKey{s.Session, s.Index} }

// SegKey is (session, index).
type SegKey struct {
	Session string
	Index   int
}

func (k SegKey) String() string { return fmt.Sprintf("%s/%d", k.Session[:8], k.Index) }

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

// DVMSegments reads every stored segment from the DVM's database.
func DVMSegments(ctx context.Context, dbPath string) ([]DVMSegment, error) {
	db, err := openRO(dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT worker, session, idx, start_at, end_at, active_seconds, project, activity,
		ox, kimai_state, COALESCE(kimai_timesheet_id, 0), screenshot_count FROM segments ORDER BY worker, session, idx`)
	if err != nil {
		return nil, fmt.Errorf("query segments in %s: %w", dbPath, err)
	}
	defer rows.Close()
	var out []DVMSegment
	for rows.Next() {
		var s DVMSegment
		var start, end int64
		if err := rows.Scan(&s.Worker, &s.Session, &s.Index, &start, &end, &s.ActiveSeconds, &s.Project, &s.Activity,
			&s.OX, &s.KimaiState, &s.TimesheetID, &s.Screenshots); err != nil {
			return nil, fmt.Errorf("scan segment: %w", err)
		}
		s.Start, s.End = ms(start), ms(end)
		out = append(out, s)
	}
	return out, rows.Err()
}

// DVMWrapOutcomes counts the DVM's processed wraps by outcome (accepted, duplicate, …).
func DVMWrapOutcomes(ctx context.Context, dbPath string) (map[string]int, error) {
	db, err := openRO(dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT outcome, COUNT(*) FROM processed_wraps GROUP BY outcome`)
	if err != nil {
		return nil, fmt.Errorf("query processed_wraps: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// DVMScreenshotBytes sums the stored screenshot bytes of the segments lasting exactly
// length, and counts those segments.
func DVMScreenshotBytes(ctx context.Context, dbPath string, length time.Duration) (bytes int64, segments int, err error) {
	db, err := openRO(dbPath)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, `SELECT COALESCE(SUM(sc.size), 0), COUNT(DISTINCT s.id) FROM segments s
		LEFT JOIN screenshots sc ON sc.segment_id = s.id WHERE s.end_at - s.start_at = ?`, length.Milliseconds()).Scan(&bytes, &segments)
	if err != nil {
		return 0, 0, fmt.Errorf("query screenshot bytes: %w", err)
	}
	return bytes, segments, nil
}

// DVMWorkerKimai maps worker pubkeys to their Kimai user ids.
func DVMWorkerKimai(ctx context.Context, dbPath string) (map[string]int64, error) {
	db, err := openRO(dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT pubkey, COALESCE(kimai_user_id, 0) FROM workers`)
	if err != nil {
		return nil, fmt.Errorf("query workers: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var pk string
		var id int64
		if err := rows.Scan(&pk, &id); err != nil {
			return nil, err
		}
		out[pk] = id
	}
	return out, rows.Err()
}

// OutboxItem is one row of a tracker's outbox.
type OutboxItem struct {
	Kind, Session, State, OX, RumorID string
	Index, RumorKind                  int
	Size                              int64
	Permanent                         bool
	Sends                             int
	StartNS, EndNS, CreatedNS, DoneNS int64
}

// Start and End are the segment's times.
func (it OutboxItem) Start() time.Time { return time.Unix(0, it.StartNS).UTC() }
func (it OutboxItem) End() time.Time   { return time.Unix(0, it.EndNS).UTC() }

// Done mirrors outbox.Item.Done: nothing more will happen to the item.
func (it OutboxItem) Done() bool {
	switch it.State {
	case "accepted", "duplicate":
		return true
	case "rejected":
		return it.Permanent
	case "sent":
		return it.Kind == "message"
	}
	return false
}

// OutboxItems reads a tracker's outbox (<dataDir>/outbox.db) without disturbing it.
func OutboxItems(ctx context.Context, dataDir string) ([]OutboxItem, error) {
	db, err := openRO(filepath.Join(dataDir, "outbox.db"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT kind, session, seg_index, rumor_kind, state, ox, rumor_id, size, permanent,
		sends, start_ns, end_ns, created_ns, done_ns FROM items ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("query outbox in %s: %w", dataDir, err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var perm int
		if err := rows.Scan(&it.Kind, &it.Session, &it.Index, &it.RumorKind, &it.State, &it.OX, &it.RumorID, &it.Size,
			&perm, &it.Sends, &it.StartNS, &it.EndNS, &it.CreatedNS, &it.DoneNS); err != nil {
			return nil, fmt.Errorf("scan outbox item: %w", err)
		}
		it.Permanent = perm != 0
		out = append(out, it)
	}
	return out, rows.Err()
}

// KimaiGET calls the emulator's API as its admin and returns the body (200 only).
func (s *System) KimaiGET(ctx context.Context, path string) ([]byte, error) {
	b, _, err := s.kimaiGet(ctx, path)
	return b, err
}

func (s *System) kimaiGet(ctx context.Context, path string) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.KimaiURL()+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+KimaiAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.Header, fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, b)
	}
	return b, resp.Header, nil
}

// Timesheet is what the test reads of a Kimai timesheet.
type Timesheet struct {
	ID          int64
	Begin, End  time.Time // End zero: running
	User        int64
	Project     int64
	Activity    int64
	Description string
	Tags        []string
}

// kimaiTime is Kimai's output format: offset without a colon.
const kimaiTime = "2006-01-02T15:04:05-0700"

// KimaiTimesheets lists every timesheet of every user, all pages.
func (s *System) KimaiTimesheets(ctx context.Context) ([]Timesheet, error) {
	var out []Timesheet
	for page := 1; ; page++ {
		b, h, err := s.kimaiGet(ctx, "/api/timesheets?user=all&size=500&orderBy=id&order=ASC&page="+strconv.Itoa(page))
		if err != nil {
			if page > 1 && h != nil {
				return out, nil // past the last page: 404
			}
			return nil, err
		}
		var raw []struct {
			ID          int64    `json:"id"`
			Begin       string   `json:"begin"`
			End         *string  `json:"end"`
			Description *string  `json:"description"`
			User        int64    `json:"user"`
			Project     int64    `json:"project"`
			Activity    int64    `json:"activity"`
			Tags        []string `json:"tags"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("timesheets page %d: %w", page, err)
		}
		for _, r := range raw {
			t := Timesheet{ID: r.ID, User: r.User, Project: r.Project, Activity: r.Activity, Tags: r.Tags}
			if t.Begin, err = time.Parse(kimaiTime, r.Begin); err != nil {
				return nil, fmt.Errorf("timesheet %d begin %q: %w", r.ID, r.Begin, err)
			}
			if r.End != nil {
				if t.End, err = time.Parse(kimaiTime, *r.End); err != nil {
					return nil, fmt.Errorf("timesheet %d end %q: %w", r.ID, *r.End, err)
				}
			}
			if r.Description != nil {
				t.Description = *r.Description
			}
			out = append(out, t)
		}
		pages, _ := strconv.Atoi(h.Get("X-Total-Pages"))
		if page >= pages {
			return out, nil
		}
	}
}

// Hit is a needle found in a file.
type Hit struct {
	Needle string // its label
	File   string
	Offset int64
}

// GrepTree searches every regular file under root for each needle (label → bytes),
// reading files in chunks with an overlap so a needle across a chunk boundary is found.
func GrepTree(root string, needles map[string][]byte) ([]Hit, int, error) {
	maxLen := 0
	for _, n := range needles {
		maxLen = max(maxLen, len(n))
	}
	var hits []Hit
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while we walked (badger compaction, sweeper)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		files++
		h, err := grepFile(path, needles, maxLen)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		hits = append(hits, h...)
		return nil
	})
	return hits, files, err
}

func grepFile(path string, needles map[string][]byte, maxLen int) ([]Hit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const chunk = 1 << 20
	buf := make([]byte, chunk+maxLen)
	var hits []Hit
	found := map[string]bool{}
	var base int64 // file offset of buf[0]
	keep := 0
	for {
		n, err := io.ReadFull(f, buf[keep:])
		data := buf[:keep+n]
		for label, nd := range needles {
			if found[label] || len(nd) == 0 {
				continue
			}
			if i := bytes.Index(data, nd); i >= 0 {
				found[label] = true
				hits = append(hits, Hit{Needle: label, File: path, Offset: base + int64(i)})
			}
		}
		if err != nil { // EOF or short read: done
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return hits, nil
			}
			return hits, fmt.Errorf("read %s: %w", path, err)
		}
		keep = min(maxLen-1, len(data))
		if keep < 0 {
			keep = 0
		}
		copy(buf, data[len(data)-keep:])
		base += int64(len(data) - keep)
	}
}
