package diary

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/dvm/store"
)

// The JSON shapes of API v1 (documented in API.md). Times are RFC 3339 in the zone the
// request asked for; durations are whole seconds.

type workerJSON struct {
	Pubkey      string            `json:"pubkey"`
	Npub        string            `json:"npub"`
	Name        string            `json:"name"`
	KimaiUserID *int64            `json:"kimai_user_id"`
	JoinedAt    *time.Time        `json:"joined_at"`
	RemovedAt   *time.Time        `json:"removed_at"`
	Zone        string            `json:"zone"`                 // set by a reviewer; "" = Kimai's or the diary's default
	KimaiZone   string            `json:"kimai_zone,omitempty"` // the worker's Kimai user's zone, if known
	Links       map[string]string `json:"links"`
}

type totalsJSON struct {
	Segments       int   `json:"segments"`
	TrackedSeconds int64 `json:"tracked_seconds"`
	ActiveSeconds  int64 `json:"active_seconds"`
	IdleSeconds    int64 `json:"idle_seconds"`
	Screenshots    int   `json:"screenshots"`
	ChainVerified  int   `json:"chain_verified"`
	ChainGaps      int   `json:"chain_gaps"`
	ChainBroken    int   `json:"chain_broken"`
	KimaiPending   int   `json:"kimai_pending"`
}

type minuteJSON struct {
	T      time.Time `json:"t"`
	Keys   int       `json:"keys"`
	Clicks int       `json:"clicks"`
	Moves  int       `json:"moves"`
	Active bool      `json:"active"`
}

type usageJSON struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

type screenshotJSON struct {
	Name     string    `json:"name"`
	SHA256   string    `json:"sha256"`
	Size     int64     `json:"size"`
	TakenAt  time.Time `json:"taken_at"`
	URL      string    `json:"url"`
	ThumbURL string    `json:"thumb_url"`
}

type deletedJSON struct {
	Name      string     `json:"name"`
	TakenAt   *time.Time `json:"taken_at"`
	DeletedAt *time.Time `json:"deleted_at"`
}

type skippedJSON struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

type chainJSON struct {
	Status  store.ChainStatus `json:"status"`
	Prev    string            `json:"prev"`
	OX      string            `json:"ox"`
	X       string            `json:"x"`
	RumorID string            `json:"rumor_id"`
}

type kimaiJSON struct {
	State       store.KimaiState `json:"state"`
	TimesheetID *int64           `json:"timesheet_id"`
}

type segmentJSON struct {
	ID              int64             `json:"id"`
	Worker          string            `json:"worker"`
	Session         string            `json:"session"`
	Index           int               `json:"index"`
	Start           time.Time         `json:"start"`
	End             time.Time         `json:"end"`
	DurationSeconds int64             `json:"duration_seconds"`
	Project         int64             `json:"project"`
	Activity        int64             `json:"activity"`
	Memo            string            `json:"memo"`
	AppVersion      string            `json:"app_version"`
	Source          string            `json:"source"`
	Policy          store.Policy      `json:"policy"`
	ActiveSeconds   int               `json:"active_seconds"`
	ActiveMinutes   int               `json:"active_minutes"`
	Idle            bool              `json:"idle"`
	Minutes         []minuteJSON      `json:"minutes"`
	TopApps         []usageJSON       `json:"top_apps"`
	TopTitles       []usageJSON       `json:"top_titles"`
	TopURLs         []usageJSON       `json:"top_urls"`
	Screenshots     []screenshotJSON  `json:"screenshots"`
	Deleted         []deletedJSON     `json:"deleted_screenshots"`
	Skipped         []skippedJSON     `json:"skipped_captures"`
	Chain           chainJSON         `json:"chain"`
	ReceivedAt      time.Time         `json:"received_at"`
	DeliverySeconds int64             `json:"delivery_seconds"` // received_at - end
	Kimai           kimaiJSON         `json:"kimai"`
	BundleKept      bool              `json:"bundle_kept"`
	Links           map[string]string `json:"links"`
}

func optTime(t time.Time, loc *time.Location) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.In(loc)
	return &t
}

func optID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func npub(pk string) string {
	n, err := nip19.EncodePublicKey(pk)
	if err != nil {
		return ""
	}
	return n
}

func (d *Diary) workerOut(w store.Worker, loc *time.Location) workerJSON {
	return workerJSON{
		Pubkey: w.Pubkey, Npub: npub(w.Pubkey), Name: w.Name, KimaiUserID: optID(w.KimaiUserID),
		JoinedAt: optTime(w.JoinedAt, loc), RemovedAt: optTime(w.RemovedAt, loc), Zone: d.zones.get(w.Pubkey),
		KimaiZone: d.zones.getLearnt(w.Pubkey),
		Links: map[string]string{
			"self": d.path("/api/v1/workers/" + w.Pubkey),
			"days": d.path("/api/v1/workers/" + w.Pubkey + "/days"),
			"page": d.path("/workers/" + w.Pubkey),
		},
	}
}

func totalsOut(t store.Totals) totalsJSON {
	return totalsJSON{Segments: t.Segments, TrackedSeconds: t.TrackedSeconds, ActiveSeconds: t.ActiveSeconds,
		IdleSeconds: t.TrackedSeconds - t.ActiveSeconds, Screenshots: t.Screenshots, ChainVerified: t.Verified,
		ChainGaps: t.Gaps, ChainBroken: t.Broken, KimaiPending: t.KimaiPending}
}

func activeMinutes(ms []store.Minute) int {
	n := 0
	for _, m := range ms {
		if m.Active {
			n++
		}
	}
	return n
}

func (d *Diary) shotURL(sha string) string  { return d.path("/api/v1/screenshots/" + sha) }
func (d *Diary) thumbURL(sha string) string { return d.path("/api/v1/screenshots/" + sha + "/thumb") }

func (d *Diary) segmentOut(s store.SegmentDetail, loc *time.Location) segmentJSON {
	out := segmentJSON{
		ID: s.ID, Worker: s.Worker, Session: s.Session, Index: s.Index, Start: s.Start.In(loc), End: s.End.In(loc),
		DurationSeconds: int64(s.End.Sub(s.Start) / time.Second), Project: s.Project, Activity: s.Activity,
		Memo: s.Memo, AppVersion: s.AppVersion, Source: s.Source, Policy: s.Policy,
		ActiveSeconds: s.ActiveSeconds, ActiveMinutes: activeMinutes(s.Minutes), Idle: s.ActiveSeconds == 0,
		Minutes: []minuteJSON{}, TopApps: usages(s.TopApps), TopTitles: usages(s.TopTitles), TopURLs: usages(s.TopURLs),
		Screenshots: []screenshotJSON{}, Deleted: []deletedJSON{}, Skipped: []skippedJSON{},
		Chain:      chainJSON{Status: s.ChainStatus, Prev: s.Prev, OX: s.OX, X: s.X, RumorID: s.RumorID},
		ReceivedAt: s.ReceivedAt.In(loc), DeliverySeconds: int64(s.ReceivedAt.Sub(s.End) / time.Second),
		Kimai:      kimaiJSON{State: s.KimaiState, TimesheetID: optID(s.KimaiTimesheetID)},
		BundleKept: s.BundleKept,
		Links: map[string]string{
			"self": d.path(fmt.Sprintf("/api/v1/segments/%d", s.ID)),
			"page": d.path(fmt.Sprintf("/segments/%d", s.ID)),
		},
	}
	for _, m := range s.Minutes {
		out.Minutes = append(out.Minutes, minuteJSON{T: m.T.In(loc), Keys: m.Keys, Clicks: m.Clicks, Moves: m.Moves, Active: m.Active})
	}
	for _, sc := range s.Screenshots {
		out.Screenshots = append(out.Screenshots, screenshotJSON{Name: sc.Name, SHA256: sc.SHA256, Size: sc.Size,
			TakenAt: sc.TakenAt.In(loc), URL: d.shotURL(sc.SHA256), ThumbURL: d.thumbURL(sc.SHA256)})
	}
	for _, del := range s.Deleted {
		out.Deleted = append(out.Deleted, deletedJSON{Name: del.Name, TakenAt: optTime(del.TakenAt, loc), DeletedAt: optTime(del.DeletedAt, loc)})
	}
	for _, sk := range s.Skipped {
		out.Skipped = append(out.Skipped, skippedJSON{At: sk.At.In(loc), Reason: sk.Reason})
	}
	if s.KimaiTimesheetID != 0 {
		out.Links["timesheet"] = d.path(fmt.Sprintf("/api/v1/timesheets/%d", s.KimaiTimesheetID))
	}
	return out
}

func usages(us []store.Usage) []usageJSON {
	out := make([]usageJSON, 0, len(us))
	for _, u := range us {
		out = append(out, usageJSON{Name: u.Name, Seconds: u.Seconds})
	}
	return out
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

// httpError is an error with the status it should be answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

// statusOf maps an error to a status and a message safe to show.
func (d *Diary) statusOf(r *http.Request, err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	}
	d.log.Error("diary: request failed", "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "internal error (see the DVM's log)"
}

func (d *Diary) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := d.statusOf(r, err)
	apiError(w, status, msg)
}

// workerParam reads {pk} (hex or npub) and loads the worker.
func (d *Diary) workerParam(r *http.Request) (store.Worker, error) {
	pk := strings.ToLower(r.PathValue("pk"))
	if strings.HasPrefix(pk, "npub1") {
		prefix, v, err := nip19.Decode(pk)
		if err != nil || prefix != "npub" {
			return store.Worker{}, badRequest("worker %q: not a valid npub", clip(pk))
		}
		pk = v.(string)
	}
	if !store.IsHex(pk, 64) {
		return store.Worker{}, badRequest("worker %q: want 64 hex characters or an npub", clip(pk))
	}
	w, err := d.st.Worker(r.Context(), pk)
	if errors.Is(err, store.ErrNotFound) {
		return store.Worker{}, notFound("no worker %s", pk)
	}
	return w, err
}

func dayParam(s string) (store.Day, error) {
	day, err := store.ParseDay(s)
	if err != nil || day.Year < 2000 || day.Year > 9999 {
		return store.Day{}, badRequest("day %q: want YYYY-MM-DD", clip(s))
	}
	return day, nil
}

func idParam(s, what string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("%s %q: want a positive number", what, clip(s))
	}
	return id, nil
}

// clip keeps hostile values short in messages.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
