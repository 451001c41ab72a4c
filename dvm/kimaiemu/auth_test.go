package kimaiemu_test

import (
	"net/http"
	"testing"
	"time"

	"pow.do/dvm/kimaiemu"
)

func TestAuthentication(t *testing.T) {
	expired := testNow.Add(-time.Second)
	e := newEnv(t, func(o *kimaiemu.Options) {
		o.Seed.Users = append(o.Seed.Users, kimaiemu.User{
			ID: 9, Username: "old", Timezone: "UTC", APIToken: "expired-token", APITokenExpires: &expired,
		})
	})
	const invalidToken = `Bearer error="invalid_token",error_description="Invalid credentials."`
	cases := []struct {
		name       string
		auth       auth
		status     int
		body       string // "" means an empty body is required
		wwwAuth    string
		requireHdr bool
	}{
		{"bearer", asAlice, 200, `{"message":"pong"}`, "", false},
		{"legacy by username", legacy("alice", "demo-alice-password"), 200, `{"message":"pong"}`, "", false},
		{"legacy by email, any case", legacy("ALICE@example.invalid", "demo-alice-password"), 200, `{"message":"pong"}`, "", false},
		{"no credentials", noAuth, 401, `{"code":401,"message":"Unauthorized"}`, "", false},
		{"only X-AUTH-USER", func(r *http.Request) { r.Header.Set("X-AUTH-USER", "alice") }, 401, `{"code":401,"message":"Unauthorized"}`, "", false},
		{"basic auth is not Kimai's", func(r *http.Request) { r.SetBasicAuth("alice", "demo-alice-password") }, 401, `{"code":401,"message":"Unauthorized"}`, "", false},
		{"bad bearer", bearer("nope"), 401, "", invalidToken, true},
		{"expired bearer", bearer("expired-token"), 401, "", invalidToken, true},
		{"disabled user's bearer", bearer("demo-carol-token"), 401, "", invalidToken, true},
		{"bearer wins over legacy", func(r *http.Request) { bearer("nope")(r); legacy("alice", "demo-alice-password")(r) }, 401, "", invalidToken, true},
		{"bad legacy password", legacy("alice", "wrong"), 403, `{"message":"Invalid credentials"}`, "", false},
		{"legacy unknown user", legacy("nobody", "x"), 403, `{"message":"Invalid credentials"}`, "", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A fresh minute per case so earlier legacy failures don't throttle.
			e.clock.Set(testNow.Add(time.Duration(i) * 2 * time.Minute))
			r := e.do("GET", "/api/ping", c.auth, nil)
			if c.body == "" {
				if r.status != c.status || len(r.body) != 0 {
					t.Fatalf("got %d %q, want %d with empty body", r.status, r.body, c.status)
				}
			} else {
				expectJSON(t, r, c.status, c.body)
			}
			if got := r.header.Get("WWW-Authenticate"); c.requireHdr && got != c.wwwAuth {
				t.Fatalf("WWW-Authenticate %q, want %q", got, c.wwwAuth)
			}
			if !c.requireHdr && r.header.Get("WWW-Authenticate") != "" {
				t.Fatalf("unexpected WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestEveryEndpointRequiresCredentials(t *testing.T) {
	e := newEnv(t, nil)
	for _, ep := range []struct{ method, path string }{
		{"GET", "/api/ping"}, {"GET", "/api/version"}, {"GET", "/api/users/me"}, {"GET", "/api/users"},
		{"GET", "/api/config/timesheet"}, {"GET", "/api/customers"}, {"GET", "/api/projects"},
		{"GET", "/api/activities"}, {"POST", "/api/tags"}, {"GET", "/api/timesheets"},
		{"POST", "/api/timesheets"}, {"GET", "/api/timesheets/active"}, {"PATCH", "/api/timesheets/1"},
		{"PATCH", "/api/timesheets/1/stop"}, {"PATCH", "/api/timesheets/1/meta"}, {"DELETE", "/api/timesheets/1"},
	} {
		r := e.do(ep.method, ep.path, noAuth, nil)
		if r.status != 401 {
			t.Errorf("%s %s without credentials: %d %s", ep.method, ep.path, r.status, r.body)
		}
	}
}

func TestLegacySlowdownIsApplied(t *testing.T) {
	const delay = 40 * time.Millisecond
	e := newEnv(t, func(o *kimaiemu.Options) { o.LegacyDelayMin, o.LegacyDelayMax = delay, delay })
	start := time.Now()
	expectStatus(t, e.do("GET", "/api/ping", legacy("bob", "demo-bob-password"), nil), 200)
	if el := time.Since(start); el < delay {
		t.Fatalf("legacy request answered after %v, before the configured %v slowdown", el, delay)
	}
}

func TestLegacyFailureThrottle(t *testing.T) {
	e := newEnv(t, nil)
	good := legacy("bob", "demo-bob-password")
	for i := 0; i < 5; i++ {
		expectJSON(t, e.do("GET", "/api/ping", legacy("bob", "wrong"), nil), 403, `{"message":"Invalid credentials"}`)
		e.clock.Advance(5 * time.Second)
	}
	// Five failures within a minute: every legacy login from this IP is
	// refused with 400, even a correct one.
	r := e.do("GET", "/api/ping", good, nil)
	expectStatus(t, r, 400)
	if msg := r.obj(t)["message"]; msg == nil || msg == "" {
		t.Fatalf("400 without a message: %s", r.body)
	}
	// Bearer tokens are not throttled.
	expectStatus(t, e.do("GET", "/api/ping", asBob, nil), 200)
	// Once the oldest failure is more than a minute old the IP may try again.
	e.clock.Advance(40 * time.Second)
	expectStatus(t, e.do("GET", "/api/ping", good, nil), 200)
}

func TestPermissionsAndNotFound(t *testing.T) {
	e := newEnv(t, func(o *kimaiemu.Options) {
		o.Seed.Users[1].Permissions = []string{kimaiemu.PermViewUser} // teamlead "dvm"
	})
	bobs := e.create(asBob, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-30T09:00:00", "end": "2024-01-30T10:00:00"})
	forbiddenBody := `{"code":403,"message":"Forbidden"}`
	notFoundBody := `{"code":404,"message":"Not Found"}`
	cases := []struct {
		name   string
		method string
		path   string
		auth   auth
		body   any
		status int
		want   string
	}{
		{"users needs view_user (user)", "GET", "/api/users", asAlice, nil, 403, forbiddenBody},
		{"users: teamlead granted view_user", "GET", "/api/users", asTeamlead, nil, 200, ""},
		{"users: admin", "GET", "/api/users", asAdmin, nil, 200, ""},
		{"own user entity", "GET", "/api/users/3", asAlice, nil, 200, ""},
		{"other user entity needs view_user", "GET", "/api/users/4", asAlice, nil, 403, forbiddenBody},
		{"unknown user hidden without view_user", "GET", "/api/users/999", asAlice, nil, 403, forbiddenBody},
		{"teamlead may view other user", "GET", "/api/users/4", asTeamlead, nil, 200, ""},
		{"unknown user", "GET", "/api/users/999", asAdmin, nil, 404, notFoundBody},
		{"tag creation needs create_tag", "POST", "/api/tags", asAlice, map[string]any{"name": "x"}, 403, forbiddenBody},
		{"other user's timesheet: view", "GET", idPath("/api/timesheets", bobs["id"], ""), asAlice, nil, 403, forbiddenBody},
		{"other user's timesheet: edit", "PATCH", idPath("/api/timesheets", bobs["id"], ""), asAlice, map[string]any{"description": "x"}, 403, forbiddenBody},
		{"other user's timesheet: stop", "PATCH", idPath("/api/timesheets", bobs["id"], "/stop"), asAlice, nil, 403, forbiddenBody},
		{"other user's timesheet: delete", "DELETE", idPath("/api/timesheets", bobs["id"], ""), asAlice, nil, 403, forbiddenBody},
		{"teamlead may view other's", "GET", idPath("/api/timesheets", bobs["id"], ""), asTeamlead, nil, 200, ""},
		{"unknown timesheet GET", "GET", "/api/timesheets/999", asAdmin, nil, 404, notFoundBody},
		{"unknown timesheet PATCH", "PATCH", "/api/timesheets/999", asAdmin, map[string]any{}, 404, notFoundBody},
		{"unknown timesheet stop", "PATCH", "/api/timesheets/999/stop", asAdmin, nil, 404, notFoundBody},
		{"unknown timesheet meta", "PATCH", "/api/timesheets/999/meta", asAdmin, map[string]any{"name": "a", "value": "b"}, 404, notFoundBody},
		{"unknown timesheet DELETE", "DELETE", "/api/timesheets/999", asAdmin, nil, 404, notFoundBody},
		{"unknown route", "GET", "/api/nothing-here", asAdmin, nil, 404, notFoundBody},
		{"non-numeric id", "GET", "/api/timesheets/abc", asAdmin, nil, 404, notFoundBody},
		{"unknown route needs no credentials", "GET", "/api/nothing-here", noAuth, nil, 404, notFoundBody},
		{"wrong method", "PUT", "/api/timesheets", asAdmin, nil, 405, `{"code":405,"message":"Method Not Allowed"}`},
		{"unknown project filter", "GET", "/api/timesheets?project=999", asAdmin, nil, 404, notFoundBody},
		{"unknown user filter", "GET", "/api/timesheets?user=999", asAdmin, nil, 404, notFoundBody},
		{"unknown customer for projects", "GET", "/api/projects?customer=999", asAdmin, nil, 404, notFoundBody},
		{"unknown project for activities", "GET", "/api/activities?project=999", asAdmin, nil, 404, notFoundBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, c.auth, c.body)
			if c.want != "" {
				expectJSON(t, r, c.status, c.want)
			} else {
				expectStatus(t, r, c.status)
			}
		})
	}
}
