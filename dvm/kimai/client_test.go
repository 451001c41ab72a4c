package kimai_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pow.do/dvm/kimai"
	"pow.do/dvm/kimaiemu"
	"pow.do/shared/clocktest"
)

var emuNow = time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC)

type clock = clocktest.Clock

type fixture struct {
	url   string
	clock *clock
	// gets counts GET /api/timesheets requests (pagination).
	gets atomic.Int64
}

func startEmulator(t *testing.T, mutate func(*kimaiemu.Options)) *fixture {
	t.Helper()
	f := &fixture{clock: clocktest.New(emuNow)}
	opts := kimaiemu.DefaultOptions()
	opts.LegacyDelayMin, opts.LegacyDelayMax = 0, 0
	opts.Now = f.clock.Now
	if mutate != nil {
		mutate(&opts)
	}
	emu, err := kimaiemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/api/timesheets" {
			f.gets.Add(1)
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

func (f *fixture) client(t *testing.T, token string) *kimai.Client {
	t.Helper()
	c, err := kimai.New(kimai.Config{BaseURL: f.url, Token: token, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func apiError(t *testing.T, err error) *kimai.APIError {
	t.Helper()
	var e *kimai.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return e
}

func TestPingVersionMeBothAuthStyles(t *testing.T) {
	f := startEmulator(t, nil)
	ctx := context.Background()
	legacy, err := kimai.New(kimai.Config{BaseURL: f.url + "/api/", Username: "bob", Password: "demo-bob-password"})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*kimai.Client{"bearer": f.client(t, "demo-bob-token"), "legacy": legacy} {
		t.Run(name, func(t *testing.T) {
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			v, err := c.Version(ctx)
			if err != nil || v.Version != "2.66.0" || v.VersionID != 26600 {
				t.Fatalf("version %+v %v", v, err)
			}
			me, err := c.Me(ctx)
			if err != nil || me.ID != 4 || me.Username != "bob" || me.Timezone != "America/Bogota" || len(me.Roles) != 1 {
				t.Fatalf("me %+v %v", me, err)
			}
			loc, err := c.Location(ctx)
			if err != nil || loc.String() != "America/Bogota" {
				t.Fatalf("location %v %v", loc, err)
			}
		})
	}
}

func TestAuthErrorsAreTypedAndPermanent(t *testing.T) {
	f := startEmulator(t, nil)
	ctx := context.Background()
	err := f.client(t, "wrong-token").Ping(ctx)
	e := apiError(t, err)
	if e.Status != 401 || e.Message != "Invalid credentials." || e.Temporary() {
		t.Fatalf("bad bearer: %+v", e)
	}
	c, _ := kimai.New(kimai.Config{BaseURL: f.url, Username: "bob", Password: "wrong"})
	e = apiError(t, c.Ping(ctx))
	if e.Status != 403 || e.Message != "Invalid credentials" || e.Temporary() {
		t.Fatalf("bad legacy password: %+v", e)
	}
	_, err = f.client(t, "demo-alice-token").Users(ctx, 0)
	e = apiError(t, err)
	if e.Status != 403 || e.Message != "Forbidden" {
		t.Fatalf("users as ROLE_USER: %+v", e)
	}
}

// The user list leaves the time zone out; one user's entity carries it.
func TestUserEntityCarriesTimezone(t *testing.T) {
	f := startEmulator(t, nil)
	ctx := context.Background()
	admin := f.client(t, "demo-admin-token")
	u, err := admin.User(ctx, 4)
	if err != nil || u.Username != "bob" || u.Timezone != "America/Bogota" {
		t.Fatalf("user 4: %+v %v", u, err)
	}
	if e := apiError(t, func() error { _, err := admin.User(ctx, 999); return err }()); e.Status != 404 || e.Temporary() {
		t.Fatalf("unknown user: %+v", e)
	}
	alice := f.client(t, "demo-alice-token")
	if u, err := alice.User(ctx, 3); err != nil || u.Timezone != "Pacific/Tongatapu" {
		t.Fatalf("own entity: %+v %v", u, err)
	}
	if e := apiError(t, func() error { _, err := alice.User(ctx, 4); return err }()); e.Status != 403 {
		t.Fatalf("someone else's entity without view_user: %+v", e)
	}
}

func TestCatalogue(t *testing.T) {
	f := startEmulator(t, nil)
	ctx := context.Background()
	c := f.client(t, "demo-dvm-token")
	cfg, err := c.TimesheetConfig(ctx)
	if err != nil || cfg != (kimai.TimesheetConfig{TrackingMode: "default", DefaultBeginTime: "now", ActiveEntriesHardLimit: 1, AllowFutureTimes: true, AllowOverlapping: true}) {
		t.Fatalf("config %+v %v", cfg, err)
	}
	cust, err := c.Customers(ctx, kimai.AnyVisibility)
	if err != nil || len(cust) != 2 {
		t.Fatalf("customers %+v %v", cust, err)
	}
	// ignoreDates=1 is always sent: the ended project 4 is listed.
	projects, err := c.Projects(ctx, kimai.ProjectFilter{Customers: []int64{1}})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]kimai.Project{}
	for _, p := range projects {
		byID[p.ID] = p
	}
	if len(projects) != 3 || byID[4].End == nil || byID[1].Start == nil || byID[2].GlobalActivities || byID[1].ParentTitle != "Acme" {
		t.Fatalf("projects %+v", projects)
	}
	if !byID[1].Start.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("project start %v", byID[1].Start)
	}
	acts, err := c.Activities(ctx, kimai.ActivityFilter{Projects: []int64{1}})
	if err != nil {
		t.Fatal(err)
	}
	globals := 0
	for _, a := range acts {
		if a.Global() {
			globals++
		} else if a.Project != 1 {
			t.Fatalf("activity of another project: %+v", a)
		}
	}
	if len(acts) != 3 || globals != 2 {
		t.Fatalf("activities %+v", acts)
	}
	only, err := c.Activities(ctx, kimai.ActivityFilter{GlobalsOnly: true, Visibility: kimai.AnyVisibility})
	if err != nil || len(only) != 3 {
		t.Fatalf("global activities %+v %v", only, err)
	}
	admin := f.client(t, "demo-admin-token")
	users, err := admin.Users(ctx, kimai.AnyVisibility)
	if err != nil || len(users) != 5 || users[0].Username != "admin" {
		t.Fatalf("users %+v %v", users, err)
	}
	if _, err := c.Customers(ctx, kimai.Visibility(7)); err == nil {
		t.Fatal("visibility 7 accepted")
	}
}

// TestTimezones books the same instants as users at UTC+13 and UTC−5 and
// checks Kimai stored exactly those instants, shown in each user's zone.
func TestTimezones(t *testing.T) {
	f := startEmulator(t, nil)
	ctx := context.Background()
	cases := []struct {
		name, token, zone, offset string
		begin                     time.Time
	}{
		{"Tongatapu UTC+13", "demo-alice-token", "Pacific/Tongatapu", "+1300", time.Date(2024, 1, 30, 19, 30, 0, 0, time.UTC)},
		{"Bogota UTC-5", "demo-bob-token", "America/Bogota", "-0500", time.Date(2024, 1, 30, 19, 30, 0, 0, time.UTC)},
		{"Auckland summer UTC+13", "demo-dvm-token", "Pacific/Auckland", "+1300", time.Date(2024, 1, 29, 21, 0, 0, 0, time.UTC)},
		{"Auckland winter UTC+12", "demo-dvm-token", "Pacific/Auckland", "+1200", time.Date(2023, 7, 14, 21, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := f.client(t, c.token)
			end := c.begin.Add(90 * time.Minute)
			ts, err := cl.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Begin: c.begin, End: end, Description: c.name})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if !ts.Begin.Equal(c.begin) || ts.End == nil || !ts.End.Equal(end) || ts.Duration != 90*time.Minute {
				t.Fatalf("stored %v–%v (%v), sent %v–%v", ts.Begin, ts.End, ts.Duration, c.begin, end)
			}
			if got := ts.Begin.Format("-0700"); got != c.offset {
				t.Fatalf("Kimai answered with offset %s, want %s", got, c.offset)
			}
			// The wall clock Kimai shows is the user's local time.
			if got, want := ts.Begin.Format("15:04"), c.begin.In(mustLoc(t, c.zone)).Format("15:04"); got != want {
				t.Fatalf("wall clock %s, want %s", got, want)
			}
			// Filters are sent in the same zone: a window around the
			// record finds it, one starting a minute later does not.
			list, err := cl.ListTimesheets(ctx, kimai.TimesheetFilter{Begin: c.begin, End: c.begin})
			if err != nil || len(list) != 1 || list[0].ID != ts.ID {
				t.Fatalf("window at begin: %+v %v", list, err)
			}
			list, err = cl.ListTimesheets(ctx, kimai.TimesheetFilter{Begin: c.begin.Add(time.Minute), End: end})
			if err != nil || len(list) != 0 {
				t.Fatalf("window after begin: %+v %v", list, err)
			}
		})
	}
}

func TestRunningStopUpdateDelete(t *testing.T) {
	f := startEmulator(t, func(o *kimaiemu.Options) { o.Seed.MetaFields = nil })
	ctx := context.Background()
	c := f.client(t, "demo-dvm-token")
	// The DVM (teamlead, UTC+13) books for Bob (UTC−5).
	if err := c.EnsureTag(ctx, "pow.do-verified"); err != nil {
		t.Fatal(err)
	}
	begin := time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)
	first, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 3, Begin: begin, User: 4,
		Description: "session A", Tags: []string{"pow.do-verified", "pow.do"}})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Running() || first.User != 4 || len(first.Tags) != 2 || !first.Begin.Equal(begin) {
		t.Fatalf("running record %+v", first)
	}
	// With activeEntriesHardLimit 1 starting another stops the first.
	second, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Begin: begin.Add(time.Hour), User: 4})
	if err != nil {
		t.Fatal(err)
	}
	bob := f.client(t, "demo-bob-token")
	active, err := bob.ActiveTimesheets(ctx)
	if err != nil || len(active) != 1 || active[0].ID != second.ID || active[0].Project != 1 || active[0].User != 4 {
		t.Fatalf("active %+v %v", active, err)
	}
	// Partial update: only the description and end change.
	end := begin.Add(2 * time.Hour)
	desc := "session B: 12 segments, 3 screenshots"
	up, err := c.UpdateTimesheet(ctx, second.ID, kimai.TimesheetUpdate{End: &end, Description: &desc})
	if err != nil {
		t.Fatal(err)
	}
	if up.Running() || !up.End.Equal(end) || up.Description != desc || up.Activity != 1 || up.Duration != time.Hour {
		t.Fatalf("updated %+v", up)
	}
	// Tags: an empty non-nil list clears them.
	cleared, err := c.UpdateTimesheet(ctx, first.ID, kimai.TimesheetUpdate{Tags: []string{}})
	if err != nil || len(cleared.Tags) != 0 || cleared.Description != "session A" {
		t.Fatalf("cleared tags %+v %v", cleared, err)
	}
	// Stop: first was auto-stopped; stopping again is a 200 no-op.
	again, err := c.StopTimesheet(ctx, first.ID)
	if err != nil || again.Running() {
		t.Fatalf("stop stopped: %+v %v", again, err)
	}
	third, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(emuNow.Add(17*time.Minute + 5*time.Second))
	stopped, err := c.StopTimesheet(ctx, third.ID)
	if err != nil || stopped.End == nil || !stopped.End.Equal(emuNow.Add(18*time.Minute)) {
		t.Fatalf("stop at Kimai's now (rounded up): %+v %v", stopped, err)
	}
	if err := c.DeleteTimesheet(ctx, third.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.StopTimesheet(ctx, third.ID)
	if !kimai.IsNotFound(err) {
		t.Fatalf("stop deleted: %v", err)
	}
	if err := c.DeleteTimesheet(ctx, third.ID); !kimai.IsNotFound(err) {
		t.Fatalf("delete deleted: %v", err)
	}
}

func TestValidationErrorsDecoded(t *testing.T) {
	f := startEmulator(t, func(o *kimaiemu.Options) { o.Seed.Settings.AllowOverlapping = false })
	ctx := context.Background()
	alice := f.client(t, "demo-alice-token")
	b := time.Date(2024, 1, 30, 20, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		n      kimai.NewTimesheet
		global string
		field  string
		msg    string
	}{
		{"end before begin", kimai.NewTimesheet{Project: 1, Activity: 1, Begin: b, End: b.Add(-time.Hour)},
			"The end date must not be earlier than the start date.", "", ""},
		{"activity not in project", kimai.NewTimesheet{Project: 1, Activity: 4, Begin: b, End: b.Add(time.Hour)},
			"", "activity", "This value is not valid."},
		{"user field without permission", kimai.NewTimesheet{Project: 1, Activity: 1, Begin: b, End: b.Add(time.Hour), User: 4},
			"This form should not contain extra fields.", "", ""},
		{"hidden project", kimai.NewTimesheet{Project: 3, Activity: 1, Begin: b, End: b.Add(time.Hour)},
			"", "project", "This value is not valid."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := alice.CreateTimesheet(ctx, c.n)
			e := apiError(t, err)
			if e.Status != 400 || e.Message != "Validation Failed" || e.Temporary() || e.Validation == nil {
				t.Fatalf("%+v", e)
			}
			v, ok := kimai.IsValidation(err)
			if !ok {
				t.Fatal("IsValidation false")
			}
			if c.global != "" && (len(v.Global) != 1 || v.Global[0] != c.global) {
				t.Fatalf("global %q, want %q", v.Global, c.global)
			}
			if c.field != "" && (len(v.Fields[c.field]) != 1 || v.Fields[c.field][0] != c.msg) {
				t.Fatalf("fields %v, want %s: %s", v.Fields, c.field, c.msg)
			}
			// Fields without errors are not reported.
			for f, msgs := range v.Fields {
				if len(msgs) == 0 {
					t.Fatalf("empty field %q reported", f)
				}
			}
			if !strings.Contains(err.Error(), "400 Validation Failed") {
				t.Fatalf("error text %q", err)
			}
		})
	}
	// Overlap rule: the client surfaces Kimai's global error.
	if _, err := alice.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Begin: b, End: b.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, err := alice.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Begin: b.Add(30 * time.Minute), End: b.Add(2 * time.Hour)})
	if v, ok := kimai.IsValidation(err); !ok || len(v.Global) != 1 || v.Global[0] != "You already have an entry for this time." {
		t.Fatalf("overlap: %v", err)
	}
	// Client-side refusals never reach Kimai.
	if _, err := alice.CreateTimesheet(ctx, kimai.NewTimesheet{Activity: 1}); err == nil {
		t.Fatal("missing project accepted")
	}
	if _, err := alice.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Tags: []string{"a,b"}}); err == nil {
		t.Fatal("tag with a comma accepted")
	}
}

func TestListFollowsPagination(t *testing.T) {
	f := startEmulator(t, nil)
	ctx := context.Background()
	c := f.client(t, "demo-dvm-token")
	bob := f.client(t, "demo-bob-token")
	base := time.Date(2024, 1, 1, 14, 0, 0, 0, time.UTC)
	for i := 0; i < 7; i++ {
		b := base.Add(time.Duration(i) * 24 * time.Hour)
		if _, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Begin: b, End: b.Add(time.Hour), User: 4}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Begin: base, End: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.gets.Store(0)
	list, err := bob.ListTimesheets(ctx, kimai.TimesheetFilter{PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 7 || f.gets.Load() != 3 {
		t.Fatalf("%d records in %d requests, want 7 in 3", len(list), f.gets.Load())
	}
	for i := 1; i < len(list); i++ {
		if !list[i].Begin.Before(list[i-1].Begin) {
			t.Fatalf("not newest first at %d", i)
		}
	}
	// An exact multiple of the page size ends without a 404.
	all, err := c.ListTimesheets(ctx, kimai.TimesheetFilter{AllUsers: true, PageSize: 4, OrderBy: "id", Order: "ASC"})
	if err != nil || len(all) != 8 || all[0].ID != 1 || all[7].ID != 8 {
		t.Fatalf("all users: %d %v", len(all), err)
	}
	mine, err := c.ListTimesheets(ctx, kimai.TimesheetFilter{})
	if err != nil || len(mine) != 1 || mine[0].User != 2 {
		t.Fatalf("own: %+v %v", mine, err)
	}
	one, err := c.ListTimesheets(ctx, kimai.TimesheetFilter{User: 4, Begin: base.Add(48 * time.Hour), End: base.Add(72 * time.Hour)})
	if err != nil || len(one) != 2 {
		t.Fatalf("bob between: %d %v", len(one), err)
	}
	running := true
	if l, err := c.ListTimesheets(ctx, kimai.TimesheetFilter{AllUsers: true, Active: &running}); err != nil || len(l) != 0 {
		t.Fatalf("active filter: %d %v", len(l), err)
	}
	if _, err := c.ListTimesheets(ctx, kimai.TimesheetFilter{OrderBy: "duration"}); err == nil {
		t.Fatal("bad orderBy accepted")
	}
}

func TestEnsureTag(t *testing.T) {
	f := startEmulator(t, nil)
	ctx := context.Background()
	c := f.client(t, "demo-dvm-token")
	for i := 0; i < 2; i++ { // creating, then already existing
		if err := c.EnsureTag(ctx, "session-42"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	// Without create_tag Kimai refuses.
	err := f.client(t, "demo-alice-token").EnsureTag(ctx, "mine")
	if e := apiError(t, err); e.Status != 403 {
		t.Fatalf("alice: %v", err)
	}
	for _, bad := range []string{"", " pad", "a,b", strings.Repeat("x", 101)} {
		if err := c.EnsureTag(ctx, bad); err == nil {
			t.Fatalf("tag %q accepted", bad)
		}
	}
	ts, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Tags: []string{"session-42"}})
	if err != nil || len(ts.Tags) != 1 || ts.Tags[0] != "session-42" {
		t.Fatalf("tag used: %+v %v", ts, err)
	}
}

func TestTemporaryErrors(t *testing.T) {
	ctx := context.Background()
	// Nothing listening.
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	c, _ := kimai.New(kimai.Config{BaseURL: url, Token: "t"})
	e := apiError(t, c.Ping(ctx))
	if e.Status != 0 || !e.Temporary() || !kimai.IsTemporary(e) {
		t.Fatalf("connection refused: %+v", e)
	}
	// 5xx from a proxy in front of Kimai, with an HTML body.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/ping":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html><body>Bad gateway</body></html>"))
		case "/api/version":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/api/users/me":
			_, _ = w.Write(bytes.Repeat([]byte("x"), 4096))
		default:
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	c, _ = kimai.New(kimai.Config{BaseURL: srv.URL, Token: "t", MaxResponseBytes: 1024})
	e = apiError(t, c.Ping(ctx))
	if e.Status != 502 || !e.Temporary() || !strings.Contains(e.Message, "Bad gateway") {
		t.Fatalf("502: %+v", e)
	}
	_, err := c.Version(ctx)
	if e := apiError(t, err); e.Status != 429 || !e.Temporary() {
		t.Fatalf("429: %+v", e)
	}
	_, err = c.Me(ctx)
	if e := apiError(t, err); e.Temporary() || e.Status != 0 {
		t.Fatalf("oversized answer: %+v", e)
	}
	_, err = c.TimesheetConfig(ctx)
	if e := apiError(t, err); e.Status != 418 || e.Temporary() {
		t.Fatalf("418: %+v", e)
	}
	// A slow Kimai: the per-request timeout is temporary.
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(block)
	c, _ = kimai.New(kimai.Config{BaseURL: slow.URL, Token: "t", Timeout: 50 * time.Millisecond})
	if e := apiError(t, c.Ping(ctx)); !e.Temporary() || !errors.Is(e, context.DeadlineExceeded) {
		t.Fatalf("timeout: %+v", e)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var leaked atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
	}))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirector.Close()
	c, _ := kimai.New(kimai.Config{BaseURL: redirector.URL, Username: "u", Password: "secret-pass"})
	e := apiError(t, c.Ping(context.Background()))
	if e.Status != http.StatusFound || leaked.Load() != 0 {
		t.Fatalf("redirect followed: %+v, %d requests elsewhere", e, leaked.Load())
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	f := startEmulator(t, nil)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const token = "demo-dvm-token"
	cfg := kimai.Config{BaseURL: f.url, Token: token, Logger: log}
	c, err := kimai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = c.Ping(ctx)
	_, _ = c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 4})
	bad, _ := kimai.New(kimai.Config{BaseURL: f.url, Token: "another-secret-token", Logger: log})
	err = bad.Ping(ctx)
	log.Info("config", "kimai", cfg)
	legacyCfg := kimai.Config{BaseURL: f.url, Username: "bob", Password: "demo-bob-password", Logger: log}
	log.Info("config", "kimai", legacyCfg)
	out := buf.String() + err.Error()
	if !strings.Contains(out, "/api/ping") {
		t.Fatalf("debug log did not record requests: %s", out)
	}
	for _, secret := range []string{token, "another-secret-token", "demo-bob-password"} {
		if strings.Contains(out, secret) {
			t.Fatalf("secret %q in logs:\n%s", secret, out)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	for name, cfg := range map[string]kimai.Config{
		"no credentials":     {BaseURL: "https://kimai.example"},
		"password only":      {BaseURL: "https://kimai.example", Password: "x"},
		"userinfo in URL":    {BaseURL: "https://u:p@kimai.example", Token: "t"},
		"ftp":                {BaseURL: "ftp://kimai.example", Token: "t"},
		"no host":            {BaseURL: "https://", Token: "t"},
		"query":              {BaseURL: "https://kimai.example?x=1", Token: "t"},
		"newline in token":   {BaseURL: "https://kimai.example", Token: "t\r\nX-Evil: 1"},
		"newline in login":   {BaseURL: "https://kimai.example", Username: "u\n", Password: "p"},
		"relative URL":       {BaseURL: "kimai.example", Token: "t"},
		"whitespace in path": {BaseURL: "https://kimai.example/%zz", Token: "t"},
	} {
		if _, err := kimai.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseTime(t *testing.T) {
	cases := map[string]time.Time{
		"2020-03-27T14:35:00+1300":  time.Date(2020, 3, 27, 1, 35, 0, 0, time.UTC),
		"2024-01-31T09:00:00-0500":  time.Date(2024, 1, 31, 14, 0, 0, 0, time.UTC),
		"2024-01-31T09:00:00+0000":  time.Date(2024, 1, 31, 9, 0, 0, 0, time.UTC),
		"2024-01-31T09:00:00Z":      time.Date(2024, 1, 31, 9, 0, 0, 0, time.UTC),
		"2024-01-31T09:00:00+05:30": time.Date(2024, 1, 31, 3, 30, 0, 0, time.UTC),
	}
	for in, want := range cases {
		got, err := kimai.ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "2024-01-31", "2024-01-31T09:00:00", "31.01.2024 09:00"} {
		if _, err := kimai.ParseTime(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	loc := mustLoc(t, "Pacific/Tongatapu")
	if got := kimai.FormatLocal(time.Date(2024, 1, 30, 19, 30, 0, 0, time.UTC), loc); got != "2024-01-31T08:30:00" {
		t.Errorf("FormatLocal %s", got)
	}
}
