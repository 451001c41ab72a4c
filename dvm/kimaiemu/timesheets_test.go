package kimaiemu_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"pow.do/dvm/kimaiemu"
)

func TestLocalTimeInputAndOffsetOutput(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name      string
		auth      auth
		begin     string
		end       string
		wantBegin string
		wantEnd   string
	}{
		{"UTC+13 HTML5 with seconds", asAlice, "2024-01-31T08:30:00", "2024-01-31T09:30:00", "2024-01-31T08:30:00+1300", "2024-01-31T09:30:00+1300"},
		{"UTC-5 space, no seconds", asBob, "2024-01-30 14:30", "2024-01-30 15:00", "2024-01-30T14:30:00-0500", "2024-01-30T15:00:00-0500"},
		{"UTC+13 via Auckland summer time", asTeamlead, "2024-01-29T10:00:00", "2024-01-29T11:00:00", "2024-01-29T10:00:00+1300", "2024-01-29T11:00:00+1300"},
		// An offset is honoured and the record keeps that zone: a
		// Bogota user's 14:30 silently becomes 14:30 UTC (09:30 in Bogota).
		{"offset silently shifts", asBob, "2024-01-29T14:30:00+00:00", "2024-01-29T15:30:00Z", "2024-01-29T14:30:00+0000", "2024-01-29T15:30:00+0000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := e.create(c.auth, map[string]any{"project": 1, "activity": 1, "begin": c.begin, "end": c.end})
			if ts["begin"] != c.wantBegin || ts["end"] != c.wantEnd {
				t.Fatalf("begin %v end %v, want %s %s", ts["begin"], ts["end"], c.wantBegin, c.wantEnd)
			}
			if num(t, ts["duration"]) != 3600 && c.name != "UTC-5 space, no seconds" {
				t.Fatalf("duration %v", ts["duration"])
			}
		})
	}
	// The same instant read back by a user in another zone is still
	// serialised in the record's zone.
	list := e.do("GET", "/api/timesheets?user=all&orderBy=id&order=ASC", asAdmin, nil).list(t)
	if got := list[0].(map[string]any)["begin"]; got != "2024-01-31T08:30:00+1300" {
		t.Fatalf("admin sees Alice's record as %v", got)
	}
	// Instants are right: Alice's 08:30 at UTC+13 is 19:30 UTC the day before.
	b, err := time.Parse("2006-01-02T15:04:05-0700", list[0].(map[string]any)["begin"].(string))
	if err != nil || !b.Equal(time.Date(2024, 1, 30, 19, 30, 0, 0, time.UTC)) {
		t.Fatalf("instant %v %v", b, err)
	}
}

func TestInvalidDateTimes(t *testing.T) {
	e := newEnv(t, nil)
	for _, bad := range []string{"31.01.2024 14:30", "2024-02-30T10:00:00", "2024-01-31T25:00:00", "2024-01-31T10:00:00 garbage", "yesterday"} {
		r := e.do("POST", "/api/timesheets", asAlice, map[string]any{"project": 1, "activity": 1, "begin": bad})
		expectStatus(t, r, 400)
		if got := fieldErrors(t, r, "begin"); !equalStrings(got, []string{"Please enter a valid date and time."}) {
			t.Fatalf("%q: begin errors %v", bad, got)
		}
	}
}

func TestRoundingAndNullFields(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.create(asAlice, map[string]any{"project": 1, "activity": 1,
		"begin": "2024-01-31T08:30:45", "end": "2024-01-31T09:00:10"})
	if ts["begin"] != "2024-01-31T08:30:00+1300" || ts["end"] != "2024-01-31T09:01:00+1300" || num(t, ts["duration"]) != 1860 {
		t.Fatalf("rounding: begin %v end %v duration %v", ts["begin"], ts["end"], ts["duration"])
	}
	// A running record: end, description and rates are present as null.
	e.clock.Set(time.Date(2024, 1, 31, 10, 15, 42, 0, time.UTC))
	r := e.do("POST", "/api/timesheets", asAlice, map[string]any{"project": 1, "activity": 1})
	expectStatus(t, r, 200)
	run := r.obj(t)
	for _, k := range []string{"end", "description", "fixedRate", "hourlyRate"} {
		v, ok := run[k]
		if !ok || v != nil {
			t.Errorf("%s: present=%v value=%v, want null", k, ok, v)
		}
	}
	want := []string{"activity", "begin", "billable", "description", "duration", "end", "exported", "fixedRate", "hourlyRate",
		"id", "internalRate", "metaFields", "project", "rate", "tags", "user"}
	if got := keys(run); !equalStrings(got, want) {
		t.Fatalf("entity keys %v, want %v", got, want)
	}
	// Begin defaults to the server's now, rounded down, in Alice's zone.
	if run["begin"] != "2024-01-31T23:15:00+1300" || num(t, run["duration"]) != 0 {
		t.Fatalf("running begin %v duration %v", run["begin"], run["duration"])
	}
	// PATCH rounds too and recomputes duration.
	p := e.do("PATCH", idPath("/api/timesheets", run["id"], ""), asAlice, map[string]any{"end": "2024-01-31T23:44:01"})
	expectStatus(t, p, 200)
	if got := p.obj(t); got["end"] != "2024-01-31T23:45:00+1300" || num(t, got["duration"]) != 1800 {
		t.Fatalf("patched end %v duration %v", got["end"], got["duration"])
	}
}

func TestValidationTreeShape(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("POST", "/api/timesheets", asAlice, map[string]any{"project": 3, "activity": 1, "begin": "2024-01-31T08:00:00"})
	// Hidden project: the choice is not valid. Every form child is listed,
	// the ones without errors as {}.
	expectJSON(t, r, 400, `{"code":400,"message":"Validation Failed","errors":{"children":{
		"begin":{},"end":{},"project":{"errors":["This value is not valid."]},"activity":{},
		"description":{},"tags":{}}}}`)

	r = e.do("POST", "/api/timesheets", asAlice, map[string]any{"project": 1, "activity": 1,
		"begin": "2024-01-31T10:00:00", "end": "2024-01-31T09:00:00"})
	expectJSON(t, r, 400, `{"code":400,"message":"Validation Failed","errors":{
		"errors":["The end date must not be earlier than the start date."],
		"children":{"begin":{},"end":{},"project":{},"activity":{},"description":{},"tags":{}}}}`)
}

func TestTimesheetValidationRules(t *testing.T) {
	e := newEnv(t, nil)
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"project": 1, "activity": 1, "begin": "2024-01-31T08:00:00", "end": "2024-01-31T09:00:00"}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	const extra = "This form should not contain extra fields."
	cases := []struct {
		name   string
		auth   auth
		body   map[string]any
		global []string
		field  string
		errs   []string
	}{
		{"user may not set user", asAlice, base(map[string]any{"user": 4}), []string{extra}, "", nil},
		{"user may not set billable", asAlice, base(map[string]any{"billable": false}), []string{extra}, "", nil},
		{"user may not set exported", asAlice, base(map[string]any{"exported": true}), []string{extra}, "", nil},
		{"user may not set fixedRate", asAlice, base(map[string]any{"fixedRate": 10}), []string{extra}, "", nil},
		{"teamlead may not set hourlyRate", asTeamlead, base(map[string]any{"hourlyRate": 10}), []string{extra}, "", nil},
		{"duration never", asAdmin, base(map[string]any{"duration": 3600}), []string{extra}, "", nil},
		{"metaFields never", asAdmin, base(map[string]any{"metaFields": []any{}}), []string{extra}, "", nil},
		{"unknown key", asAdmin, base(map[string]any{"colour": "red"}), []string{extra}, "", nil},
		{"activity of another project", asAlice, base(map[string]any{"activity": 4}), nil, "activity", []string{"This value is not valid."}},
		{"hidden activity", asAlice, base(map[string]any{"activity": 6}), nil, "activity", []string{"This value is not valid."}},
		{"unknown project", asAlice, base(map[string]any{"project": 999}), nil, "project", []string{"This value is not valid."}},
		{"project of hidden customer", asAlice, base(map[string]any{"project": 5}), nil, "project", []string{"This value is not valid."}},
		{"missing project", asAlice, base(map[string]any{"project": nil}), nil, "project", []string{"A project needs to be selected."}},
		{"missing activity", asAlice, base(map[string]any{"activity": nil}), nil, "activity", []string{"An activity needs to be selected."}},
		{"global activity on a project without globals", asAlice, base(map[string]any{"project": 2}), nil, "activity", []string{"Global activities are forbidden for the selected project."}},
		{"project ended", asAlice, base(map[string]any{"project": 4}), []string{"The project is finished at that time.", "The project is finished at that time."}, "", nil},
		{"negative rate", asAdmin, base(map[string]any{"hourlyRate": -1}), nil, "hourlyRate", []string{"This value should be greater than or equal to 0."}},
		{"rate not a number", asAdmin, base(map[string]any{"fixedRate": "ten"}), nil, "fixedRate", []string{"Please enter a number."}},
		{"unknown user", asTeamlead, base(map[string]any{"user": 999}), nil, "user", []string{"This value is not valid."}},
		{"disabled user", asTeamlead, base(map[string]any{"user": 5}), nil, "user", []string{"This value is not valid."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/api/timesheets", c.auth, c.body)
			expectStatus(t, r, 400)
			if m := r.obj(t); m["message"] != "Validation Failed" || num(t, m["code"]) != 400 {
				t.Fatalf("head %s", r.body)
			}
			if got := globalErrors(t, r); !equalStrings(got, c.global) {
				t.Fatalf("global errors %q, want %q", got, c.global)
			}
			if c.field != "" {
				if got := fieldErrors(t, r, c.field); !equalStrings(got, c.errs) {
					t.Fatalf("%s errors %q, want %q", c.field, got, c.errs)
				}
			}
		})
	}
	if n := len(e.do("GET", "/api/timesheets?user=all", asAdmin, nil).list(t)); n != 0 {
		t.Fatalf("refused submissions stored %d records", n)
	}
}

func TestPermittedFieldsByRole(t *testing.T) {
	e := newEnv(t, nil)
	// A teamlead books for a worker and sets billable/exported.
	ts := e.create(asTeamlead, map[string]any{"project": 1, "activity": 1, "user": 4, "billable": false, "exported": true,
		"begin": "2024-01-31T08:00:00", "end": "2024-01-31T09:00:00", "description": "proof: 6 segments"})
	if num(t, ts["user"]) != 4 || ts["billable"] != false || ts["exported"] != true || ts["description"] != "proof: 6 segments" {
		t.Fatalf("teamlead booking: %v", ts)
	}
	// Times are read in the teamlead's zone, not the worker's.
	if ts["begin"] != "2024-01-31T08:00:00+1300" {
		t.Fatalf("begin %v", ts["begin"])
	}
	// Bob sees it in his list.
	if got := ids(t, e.do("GET", "/api/timesheets", asBob, nil)); !equalInts(got, []int64{num(t, ts["id"])}) {
		t.Fatalf("bob's list %v", got)
	}
	// Admin sets rates; rate follows fixedRate, or hourlyRate × hours.
	a := e.create(asAdmin, map[string]any{"project": 1, "activity": 1, "hourlyRate": 50,
		"begin": "2024-01-31T08:00:00", "end": "2024-01-31T09:30:00"})
	if a["hourlyRate"] != 50.0 || a["rate"] != 75.0 || a["fixedRate"] != nil {
		t.Fatalf("admin rates: %v", a)
	}
	// Billable is derived when not set: activity 2 is not billable.
	nb := e.create(asAlice, map[string]any{"project": 1, "activity": 2, "begin": "2024-01-31T08:00:00", "end": "2024-01-31T08:30:00"})
	if nb["billable"] != false {
		t.Fatalf("derived billable %v", nb["billable"])
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t, nil)
	// Unknown tag names are silently dropped.
	ts := e.create(asAlice, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-31T08:00:00",
		"end": "2024-01-31T09:00:00", "tags": "pow.do, unknown-tag"})
	if got := ts["tags"].([]any); len(got) != 1 || got[0] != "pow.do" {
		t.Fatalf("tags %v, want only the existing one", got)
	}
	// Create the tag first, then it sticks; arrays are accepted too.
	r := e.do("POST", "/api/tags", asTeamlead, map[string]any{"name": "segments-verified"})
	expectStatus(t, r, 200)
	tag := r.obj(t)
	if tag["name"] != "segments-verified" || tag["visible"] != true || tag["color"] != nil || tag["color-safe"] == nil {
		t.Fatalf("tag %v", tag)
	}
	ts2 := e.create(asAlice, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-31T09:00:00",
		"end": "2024-01-31T10:00:00", "tags": []string{"Segments-Verified", "pow.do"}})
	if got := ts2["tags"].([]any); len(got) != 2 || got[0] != "segments-verified" || got[1] != "pow.do" {
		t.Fatalf("tags %v", got)
	}
	// Duplicate names are refused (case-insensitively, like Kimai's DB).
	r = e.do("POST", "/api/tags", asTeamlead, map[string]any{"name": "SEGMENTS-verified"})
	expectStatus(t, r, 400)
	if got := fieldErrors(t, r, "name"); !equalStrings(got, []string{"This value is already used."}) {
		t.Fatalf("duplicate tag: %v", got)
	}
	r = e.do("POST", "/api/tags", asTeamlead, map[string]any{"name": ""})
	if got := fieldErrors(t, r, "name"); !equalStrings(got, []string{"This value should not be blank."}) {
		t.Fatalf("blank tag: %v", got)
	}
	// tags[] filter: records with any of the existing tags; unknown names
	// alone do not filter at all.
	if got := ids(t, e.do("GET", "/api/timesheets?tags[]=segments-verified", asAlice, nil)); !equalInts(got, []int64{num(t, ts2["id"])}) {
		t.Fatalf("tag filter %v", got)
	}
	if got := ids(t, e.do("GET", "/api/timesheets?tags[]=nothing-to-see", asAlice, nil)); len(got) != 2 {
		t.Fatalf("unknown tag filter %v", got)
	}
}

func TestPatchStopActiveDelete(t *testing.T) {
	e := newEnv(t, nil)
	run := e.create(asBob, map[string]any{"project": 1, "activity": 3, "begin": "2024-01-31T06:00:00", "description": "first"})
	id := run["id"]
	// Partial update keeps the other fields.
	r := e.do("PATCH", idPath("/api/timesheets", id, ""), asBob, map[string]any{"description": "changed"})
	expectStatus(t, r, 200)
	if got := r.obj(t); got["description"] != "changed" || num(t, got["activity"]) != 3 || got["begin"] != "2024-01-31T06:00:00-0500" || got["end"] != nil {
		t.Fatalf("patched: %v", got)
	}
	// PATCH validates like POST.
	r = e.do("PATCH", idPath("/api/timesheets", id, ""), asBob, map[string]any{"activity": 4})
	if got := fieldErrors(t, r, "activity"); !equalStrings(got, []string{"This value is not valid."}) {
		t.Fatalf("patch activity of other project: %s", r.body)
	}
	// Changing only the project leaves the project activity mismatched.
	r = e.do("PATCH", idPath("/api/timesheets", id, ""), asBob, map[string]any{"project": 2})
	if got := fieldErrors(t, r, "project"); !equalStrings(got, []string{"Project mismatch, project specific activity and timesheet project are different."}) {
		t.Fatalf("patch project mismatch: %s", r.body)
	}

	active := e.do("GET", "/api/timesheets/active", asBob, nil).list(t)
	if len(active) != 1 {
		t.Fatalf("active: %v", active)
	}
	// /active serialises expanded objects.
	a := active[0].(map[string]any)
	if act, ok := a["activity"].(map[string]any); !ok || act["name"] != "Design" {
		t.Fatalf("active activity not expanded: %v", a["activity"])
	}
	if proj, ok := a["project"].(map[string]any); !ok || proj["customer"].(map[string]any)["name"] != "Acme" {
		t.Fatalf("active project not expanded: %v", a["project"])
	}

	// Stop sets end to the server's now, rounded up.
	e.clock.Set(time.Date(2024, 1, 31, 12, 30, 20, 0, time.UTC))
	r = e.do("PATCH", idPath("/api/timesheets", id, "/stop"), asBob, nil)
	expectStatus(t, r, 200)
	if got := r.obj(t); got["end"] != "2024-01-31T07:31:00-0500" || num(t, got["duration"]) != 5460 {
		t.Fatalf("stopped: end %v duration %v", got["end"], got["duration"])
	}
	// A second stop is a no-op 200.
	e.clock.Advance(time.Hour)
	r = e.do("PATCH", idPath("/api/timesheets", id, "/stop"), asBob, nil)
	expectStatus(t, r, 200)
	if got := r.obj(t); got["end"] != "2024-01-31T07:31:00-0500" {
		t.Fatalf("second stop moved end to %v", got["end"])
	}
	if n := len(e.do("GET", "/api/timesheets/active", asBob, nil).list(t)); n != 0 {
		t.Fatalf("still %d active", n)
	}

	r = e.do("DELETE", idPath("/api/timesheets", id, ""), asBob, nil)
	if r.status != 204 || len(r.body) != 0 {
		t.Fatalf("delete: %d %q", r.status, r.body)
	}
	expectStatus(t, e.do("GET", idPath("/api/timesheets", id, ""), asBob, nil), 404)
}

func TestMeta(t *testing.T) {
	e := newEnv(t, func(o *kimaiemu.Options) { o.Seed.MetaFields = []string{"evidence"} })
	ts := e.create(asAlice, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-31T08:00:00", "end": "2024-01-31T09:00:00"})
	path := idPath("/api/timesheets", ts["id"], "/meta")
	expectJSON(t, e.do("PATCH", path, asAlice, map[string]any{"name": "not-registered", "value": "x"}), 404,
		`{"code":404,"message":"Not Found"}`)
	expectJSON(t, e.do("PATCH", path, asAlice, map[string]any{"value": "x"}), 400,
		`{"code":400,"message":"Parameter \"name\" of value \"NULL\" violated a constraint \"This value should not be null.\""}`)
	r := e.do("PATCH", path, asAlice, map[string]any{"name": "evidence", "value": "https://diary.example/s/1"})
	expectStatus(t, r, 200)
	mf := r.obj(t)["metaFields"].([]any)
	if len(mf) != 1 || mf[0].(map[string]any)["value"] != "https://diary.example/s/1" {
		t.Fatalf("metaFields %v", mf)
	}
	// Without a plugin-registered field, meta is always 404.
	e2 := newEnv(t, nil)
	ts2 := e2.create(asAlice, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-31T08:00:00", "end": "2024-01-31T09:00:00"})
	expectStatus(t, e2.do("PATCH", idPath("/api/timesheets", ts2["id"], "/meta"), asAlice, map[string]any{"name": "evidence", "value": "x"}), 404)
}

func TestActiveEntriesHardLimit(t *testing.T) {
	for _, limit := range []int{1, 2} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			e := newEnv(t, func(o *kimaiemu.Options) { o.Seed.Settings.ActiveEntriesHardLimit = limit })
			var started []any
			for i := 0; i < 3; i++ {
				e.clock.Advance(10 * time.Minute)
				started = append(started, e.create(asAlice, map[string]any{"project": 1, "activity": 1})["id"])
			}
			active := ids(t, e.do("GET", "/api/timesheets/active", asAlice, nil))
			var want []int64
			for _, id := range started[3-limit:] {
				want = append(want, num(t, id))
			}
			if !equalInts(active, want) {
				t.Fatalf("active %v, want the newest %v", active, want)
			}
			// The auto-stopped ones ended at the moment the next started.
			first := e.do("GET", idPath("/api/timesheets", started[0], ""), asAlice, nil).obj(t)
			if first["end"] == nil {
				t.Fatalf("oldest record still running")
			}
			// A closed record does not stop running ones.
			e.create(asAlice, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-30T08:00:00", "end": "2024-01-30T09:00:00"})
			if got := ids(t, e.do("GET", "/api/timesheets/active", asAlice, nil)); !equalInts(got, want) {
				t.Fatalf("closed record changed active set to %v", got)
			}
			// Other users are not affected.
			if n := len(e.do("GET", "/api/timesheets/active", asBob, nil).list(t)); n != 0 {
				t.Fatalf("bob has %d active", n)
			}
		})
	}
}

func TestOverlappingAndFutureRules(t *testing.T) {
	entry := func(b, e string) map[string]any {
		return map[string]any{"project": 1, "activity": 1, "begin": b, "end": e}
	}
	// Defaults: both allowed.
	e := newEnv(t, nil)
	e.create(asAlice, entry("2024-01-31T08:00:00", "2024-01-31T09:00:00"))
	e.create(asAlice, entry("2024-01-31T08:30:00", "2024-01-31T09:30:00"))
	e.create(asAlice, entry("2024-02-05T08:00:00", "2024-02-05T09:00:00"))

	strict := newEnv(t, func(o *kimaiemu.Options) {
		o.Seed.Settings.AllowOverlapping = false
		o.Seed.Settings.AllowFutureTimes = false
	})
	strict.create(asAlice, entry("2024-01-31T08:00:00", "2024-01-31T09:00:00"))
	r := strict.do("POST", "/api/timesheets", asAlice, entry("2024-01-31T08:30:00", "2024-01-31T09:30:00"))
	expectStatus(t, r, 400)
	if got := globalErrors(t, r); !equalStrings(got, []string{"You already have an entry for this time."}) {
		t.Fatalf("overlap: %v", got)
	}
	// Touching is not overlapping; another user may overlap.
	strict.create(asAlice, entry("2024-01-31T09:00:00", "2024-01-31T10:00:00"))
	strict.create(asBob, entry("2024-01-30T14:30:00", "2024-01-30T15:30:00"))
	// Now is 2024-02-01 01:00 in Tongatapu: 02:00 is in the future.
	r = strict.do("POST", "/api/timesheets", asAlice, entry("2024-02-01T02:00:00", "2024-02-01T03:00:00"))
	expectStatus(t, r, 400)
	if got := globalErrors(t, r); !equalStrings(got, []string{"The begin date cannot be in the future."}) {
		t.Fatalf("future: %v", got)
	}
	// Starting a running record while one runs: the hard limit stops the
	// old one, which therefore does not count as overlapping.
	strict.clock.Set(time.Date(2024, 1, 31, 22, 0, 0, 0, time.UTC))
	strict.create(asAlice, map[string]any{"project": 1, "activity": 1})
	strict.clock.Advance(time.Hour)
	strict.create(asAlice, map[string]any{"project": 1, "activity": 1})
	if n := len(strict.do("GET", "/api/timesheets/active", asAlice, nil).list(t)); n != 1 {
		t.Fatalf("%d active", n)
	}
}

func TestTrackingModePunchRefusesTimes(t *testing.T) {
	e := newEnv(t, func(o *kimaiemu.Options) { o.Seed.Settings.TrackingMode = "punch" })
	r := e.do("POST", "/api/timesheets", asAlice, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-31T08:00:00"})
	expectStatus(t, r, 400)
	if got := globalErrors(t, r); !equalStrings(got, []string{"This form should not contain extra fields."}) {
		t.Fatalf("punch mode: %v", got)
	}
	ts := e.create(asAlice, map[string]any{"project": 1, "activity": 1})
	if ts["end"] != nil || ts["begin"] != "2024-02-01T01:00:00+1300" {
		t.Fatalf("punch start %v", ts)
	}
}

func TestBadBodies(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{"{", "[1,2]", `"text"`, `{"a":1} {"b":2}`} {
		expectJSON(t, e.do("POST", "/api/timesheets", asAlice, body), 400,
			`{"code":400,"message":"Invalid json message received"}`)
	}
	// An empty body is an empty submission: project and activity missing.
	r := e.do("POST", "/api/timesheets", asAlice, "")
	if got := fieldErrors(t, r, "project"); !equalStrings(got, []string{"A project needs to be selected."}) {
		t.Fatalf("empty body: %s", r.body)
	}
}

func TestListFiltersOrderAndFull(t *testing.T) {
	e := newEnv(t, nil)
	mk := func(a auth, project, activity int, b, en string) int64 {
		body := map[string]any{"project": project, "activity": activity, "begin": b}
		if en != "" {
			body["end"] = en
		}
		return num(t, e.create(a, body)["id"])
	}
	a1 := mk(asAlice, 1, 1, "2024-01-29T08:00:00", "2024-01-29T09:00:00")
	e.clock.Advance(time.Hour) // later modification time for what follows
	a2 := mk(asAlice, 1, 3, "2024-01-30T08:00:00", "2024-01-30T09:00:00")
	a3 := mk(asAlice, 2, 4, "2024-01-31T08:00:00", "")
	b1 := mk(asBob, 1, 1, "2024-01-29T08:00:00", "2024-01-29T09:00:00")

	cases := []struct {
		name string
		a    auth
		q    string
		want []int64 // in response order
	}{
		{"default: own, begin DESC", asAlice, "", []int64{a3, a2, a1}},
		{"order ASC", asAlice, "order=ASC", []int64{a1, a2, a3}},
		{"orderBy id", asAlice, "orderBy=id&order=ASC", []int64{a1, a2, a3}},
		{"orderBy end ASC: running first", asAlice, "orderBy=end&order=ASC", []int64{a3, a1, a2}},
		{"plain user cannot widen scope", asAlice, "user=all", []int64{a3, a2, a1}},
		{"teamlead: user=all", asTeamlead, "user=all&orderBy=id&order=ASC", []int64{a1, a2, a3, b1}},
		{"teamlead: one user", asTeamlead, "user=4", []int64{b1}},
		{"project", asAlice, "project=1&order=ASC", []int64{a1, a2}},
		{"projects[]", asAlice, "projects[]=2", []int64{a3}},
		{"activity", asAlice, "activity=3", []int64{a2}},
		{"customer", asAlice, "customer=1&order=ASC", []int64{a1, a2, a3}},
		{"active=1", asAlice, "active=1", []int64{a3}},
		{"active=0", asAlice, "active=0&order=ASC", []int64{a1, a2}},
		// begin/end filter on the record's begin, read in Alice's zone.
		{"begin", asAlice, "begin=2024-01-30T08:00:00&order=ASC", []int64{a2, a3}},
		{"begin one minute later", asAlice, "begin=2024-01-30T08:01:00&order=ASC", []int64{a3}},
		{"end", asAlice, "end=2024-01-30T08:00:00&order=ASC", []int64{a1, a2}},
		// modified_after is UTC: testNow + 30 minutes.
		{"modified_after", asAlice, "modified_after=2024-01-31T12:30:00&order=ASC", []int64{a2, a3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("GET", "/api/timesheets?"+c.q, c.a, nil)
			expectStatus(t, r, 200)
			var got []int64
			for _, x := range r.list(t) {
				got = append(got, num(t, x.(map[string]any)["id"]))
			}
			if !equalInts(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	for _, bad := range []string{"begin=2024-01-30%2008:00:00", "begin=2024-01-30T08:00", "end=2024-01-30T08:00:00%2B01:00", "modified_after=yesterday"} {
		r := e.do("GET", "/api/timesheets?"+bad, asAlice, nil)
		expectStatus(t, r, 400)
		v, _ := url.ParseQuery(bad)
		for name, vals := range v {
			want := fmt.Sprintf(`{"code":400,"message":%q}`,
				fmt.Sprintf(`Parameter "%s" of value "%s" violated a constraint "This value is not a valid datetime."`, name, vals[0]))
			expectJSON(t, r, 400, want)
		}
	}
	expectStatus(t, e.do("GET", "/api/timesheets?orderBy=duration", asAlice, nil), 400)
	expectStatus(t, e.do("GET", "/api/timesheets?active=yes", asAlice, nil), 400)

	// Collection items carry ids; full=true expands them.
	plain := e.do("GET", "/api/timesheets?order=ASC", asAlice, nil).list(t)[0].(map[string]any)
	wantKeys := []string{"activity", "begin", "billable", "description", "duration", "end", "exported", "id", "internalRate", "metaFields", "project", "rate", "tags", "user"}
	if got := keys(plain); !equalStrings(got, wantKeys) {
		t.Fatalf("collection keys %v, want %v", got, wantKeys)
	}
	if _, isNum := plain["project"].(float64); !isNum {
		t.Fatalf("collection project is not an id: %v", plain["project"])
	}
	full := e.do("GET", "/api/timesheets?order=ASC&full=true", asAlice, nil).list(t)[0].(map[string]any)
	if p, ok := full["project"].(map[string]any); !ok || p["name"] != "Website" {
		t.Fatalf("full project %v", full["project"])
	}
	if u, ok := full["user"].(map[string]any); !ok || u["username"] != "alice" {
		t.Fatalf("full user %v", full["user"])
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t, nil)
	for i := 0; i < 7; i++ {
		b := time.Date(2024, 1, 20+i, 8, 0, 0, 0, time.UTC).Format("2006-01-02T15:04:05")
		e.create(asBob, map[string]any{"project": 1, "activity": 1, "begin": b, "end": b[:11] + "09:00:00"})
	}
	cases := []struct {
		q                           string
		status                      int
		n                           int
		page, total, pages, perPage string
	}{
		{"", 200, 7, "1", "7", "1", "50"},
		{"size=3", 200, 3, "1", "7", "3", "3"},
		{"size=3&page=2", 200, 3, "2", "7", "3", "3"},
		{"size=3&page=3", 200, 1, "3", "7", "3", "3"},
		{"size=3&page=4", 404, 0, "", "", "", ""},
		{"size=1000", 200, 7, "1", "7", "1", "500"},
		{"page=x", 400, 0, "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) {
			r := e.do("GET", "/api/timesheets?"+c.q, asBob, nil)
			expectStatus(t, r, c.status)
			if c.status == 404 {
				expectJSON(t, r, 404, `{"code":404,"message":"Not Found"}`)
				return
			}
			if c.status != 200 {
				return
			}
			if n := len(r.list(t)); n != c.n {
				t.Fatalf("%d items, want %d", n, c.n)
			}
			for h, want := range map[string]string{"X-Page": c.page, "X-Total-Count": c.total, "X-Total-Pages": c.pages, "X-Per-Page": c.perPage} {
				if got := r.header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
		})
	}
	// The pages together hold every record exactly once, newest first.
	seen := map[int64]bool{}
	var last string
	for p := 1; p <= 3; p++ {
		for _, x := range e.do("GET", fmt.Sprintf("/api/timesheets?size=3&page=%d", p), asBob, nil).list(t) {
			m := x.(map[string]any)
			id := num(t, m["id"])
			if seen[id] {
				t.Fatalf("record %d on two pages", id)
			}
			seen[id] = true
			if b := m["begin"].(string); last != "" && b >= last {
				t.Fatalf("not begin DESC: %s after %s", b, last)
			}
			last = m["begin"].(string)
		}
	}
	if len(seen) != 7 {
		t.Fatalf("pages held %d records", len(seen))
	}
	// An empty result is page 1 of 1.
	r := e.do("GET", "/api/timesheets", asAlice, nil)
	expectStatus(t, r, 200)
	if r.header.Get("X-Total-Count") != "0" || r.header.Get("X-Total-Pages") != "1" || len(r.list(t)) != 0 {
		t.Fatalf("empty: %v %s", r.header, r.body)
	}
}
