package kimaiemu_test

import (
	"sort"
	"testing"

	"pow.do/dvm/kimaiemu"
)

func TestPingVersionMe(t *testing.T) {
	e := newEnv(t, nil)
	expectJSON(t, e.do("GET", "/api/ping", asAdmin, nil), 200, `{"message":"pong"}`)

	v := e.do("GET", "/api/version", asAdmin, nil).obj(t)
	if v["version"] != "2.66.0" || num(t, v["versionId"]) != 26600 || v["copyright"] == "" {
		t.Fatalf("version: %v", v)
	}

	me := e.do("GET", "/api/users/me", asAlice, nil).obj(t)
	if num(t, me["id"]) != 3 || me["username"] != "alice" || me["timezone"] != "Pacific/Tongatapu" {
		t.Fatalf("me: %v", me)
	}
	if roles, ok := me["roles"].([]any); !ok || len(roles) != 1 || roles[0] != "ROLE_USER" {
		t.Fatalf("roles: %v", me["roles"])
	}
	for _, k := range []string{"enabled", "apiToken", "alias", "title", "supervisor", "avatar", "color", "teams",
		"initials", "language", "locale", "accountNumber", "memberships", "preferences"} {
		if _, ok := me[k]; !ok {
			t.Errorf("users/me lacks %q (null fields must be present)", k)
		}
	}
	if me["title"] != nil || me["initials"] != "AT" {
		t.Errorf("title %v initials %v", me["title"], me["initials"])
	}
}

func TestUsersList(t *testing.T) {
	e := newEnv(t, nil)
	names := func(path string) []string {
		var out []string
		for _, u := range e.do("GET", path, asAdmin, nil).list(t) {
			out = append(out, u.(map[string]any)["username"].(string))
		}
		return out
	}
	if got := names("/api/users"); !equalStrings(got, []string{"admin", "alice", "bob", "dvm"}) {
		t.Fatalf("enabled users by username: %v", got)
	}
	if got := names("/api/users?visible=2"); !equalStrings(got, []string{"carol"}) {
		t.Fatalf("disabled users: %v", got)
	}
	if got := names("/api/users?visible=3&orderBy=id&order=DESC"); !equalStrings(got, []string{"carol", "bob", "alice", "dvm", "admin"}) {
		t.Fatalf("all users by id desc: %v", got)
	}
	u := e.do("GET", "/api/users", asAdmin, nil).list(t)[0].(map[string]any)
	want := []string{"accountNumber", "alias", "apiToken", "color", "enabled", "id", "initials", "title", "username"}
	if got := keys(u); !equalStrings(got, want) {
		t.Fatalf("user collection keys %v, want %v", got, want)
	}
	expectJSON(t, e.do("GET", "/api/users?visible=4", asAdmin, nil), 400,
		`{"code":400,"message":"Parameter \"visible\" of value \"4\" violated a constraint \"Parameter 'visible' value, does not match requirements '1|2|3'\""}`)
}

func TestTimesheetConfig(t *testing.T) {
	e := newEnv(t, nil)
	expectJSON(t, e.do("GET", "/api/config/timesheet", asAlice, nil), 200,
		`{"trackingMode":"default","defaultBeginTime":"now","activeEntriesHardLimit":1,"isAllowFutureTimes":true,"isAllowOverlapping":true}`)
	e2 := newEnv(t, func(o *kimaiemu.Options) {
		o.Seed.Settings = kimaiemu.Settings{TrackingMode: "punch", DefaultBeginTime: "08:00",
			ActiveEntriesHardLimit: 3, AllowOverlapping: false, AllowFutureTimes: false}
	})
	expectJSON(t, e2.do("GET", "/api/config/timesheet", asAlice, nil), 200,
		`{"trackingMode":"punch","defaultBeginTime":"08:00","activeEntriesHardLimit":3,"isAllowFutureTimes":false,"isAllowOverlapping":false}`)
}

func ids(t *testing.T, r resp) []int64 {
	t.Helper()
	expectStatus(t, r, 200)
	var out []int64
	for _, x := range r.list(t) {
		out = append(out, num(t, x.(map[string]any)["id"]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func TestCatalogueFilters(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		path string
		want []int64
	}{
		{"/api/customers", []int64{1}},
		{"/api/customers?visible=2", []int64{2}},
		{"/api/customers?visible=3", []int64{1, 2}},
		// Without ignoreDates the ended project 4 is hidden; 3 is hidden,
		// 5 belongs to a hidden customer.
		{"/api/projects", []int64{1, 2}},
		{"/api/projects?ignoreDates=1", []int64{1, 2, 4}},
		{"/api/projects?ignoreDates=1&visible=2", []int64{3, 5}},
		{"/api/projects?ignoreDates=1&visible=3", []int64{1, 2, 3, 4, 5}},
		{"/api/projects?ignoreDates=1&visible=3&customer=2", []int64{5}},
		{"/api/projects?ignoreDates=1&visible=3&customers[]=1", []int64{1, 2, 3, 4}},
		{"/api/projects?start=2020-06-01T00:00:00&end=2020-06-01T00:00:00", []int64{1, 2, 4}},
		{"/api/projects?ignoreDates=1&globalActivities=0", []int64{2}},
		{"/api/activities", []int64{1, 2, 3, 4}},
		{"/api/activities?visible=2", []int64{5, 6}},
		{"/api/activities?visible=3", []int64{1, 2, 3, 4, 5, 6}},
		{"/api/activities?project=1", []int64{1, 2, 3}},
		// Project 2 does not accept global activities.
		{"/api/activities?project=2", []int64{4}},
		{"/api/activities?globals=true", []int64{1, 2}},
		{"/api/activities?projects[]=1&projects[]=2", []int64{1, 2, 3, 4}},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			if got := ids(t, e.do("GET", c.path, asAlice, nil)); !equalInts(got, c.want) {
				t.Fatalf("ids %v, want %v", got, c.want)
			}
		})
	}
}

func TestCatalogueShapes(t *testing.T) {
	e := newEnv(t, nil)
	c := e.do("GET", "/api/customers", asAlice, nil).list(t)[0].(map[string]any)
	if got, want := keys(c), []string{"billable", "color", "comment", "currency", "id", "metaFields", "name", "number", "teams", "visible"}; !equalStrings(got, want) {
		t.Fatalf("customer keys %v, want %v", got, want)
	}
	var website map[string]any
	for _, p := range e.do("GET", "/api/projects?orderBy=id", asAlice, nil).list(t) {
		if m := p.(map[string]any); num(t, m["id"]) == 1 {
			website = m
		}
	}
	want := []string{"billable", "color", "comment", "customer", "end", "globalActivities", "id", "metaFields", "name", "number", "parentTitle", "start", "teams", "visible"}
	if got := keys(website); !equalStrings(got, want) {
		t.Fatalf("project keys %v, want %v", got, want)
	}
	// Project dates are serialised in the reading user's zone (+1300 for Alice).
	if website["start"] != "2020-01-01T13:00:00+1300" || website["end"] != nil || num(t, website["customer"]) != 1 || website["parentTitle"] != "Acme" {
		t.Fatalf("project 1: %v", website)
	}
	for _, a := range e.do("GET", "/api/activities?project=1&orderBy=id", asAlice, nil).list(t) {
		m := a.(map[string]any)
		switch num(t, m["id"]) {
		case 1:
			if m["project"] != nil || m["parentTitle"] != nil {
				t.Fatalf("global activity must have project null: %v", m)
			}
		case 3:
			if num(t, m["project"]) != 1 || m["parentTitle"] != "Website" {
				t.Fatalf("project activity: %v", m)
			}
		}
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
