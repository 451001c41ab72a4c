package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// TestAccessMatrix asserts every cell of {anonymous, unknown key, allowed worker, DVM,
// admin, banned key} × {publish wrap to the DVM, publish wrap to a stranger, read the
// DVM's wraps, read one's own wraps, upload, get, delete own blob, delete another's blob,
// list, every management call} against a real server and real go-nostr clients.
func TestAccessMatrix(t *testing.T) {
	admin, worker, dvm, banned, unknown, helper := newKey(t), newKey(t), newKey(t), newKey(t), newKey(t), newKey(t)
	s := start(t, "", func(c *Config) {
		c.Admins = []string{admin.pk}
		c.BlossomGetAuth = true // so "get" is a gated cell too (the default serves GET openly)
		c.ManagePerMinuteIP = -1
	})
	for _, k := range []key{worker, dvm, banned, helper} {
		if err := s.Access().Allow(admin.pk, k.pk, "matrix"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Access().SetQuota(dvm.pk, 5); err != nil {
		t.Fatal(err)
	}

	// Before its ban, the banned key uploads a blob: its "own blob" later.
	bannedBlob := randomBytes(t, 1000)
	if a := upload(t, s, &banned, bannedBlob); a.status != http.StatusCreated {
		t.Fatalf("setup upload by the soon-banned key: %v", a)
	}
	if _, err := s.Access().Ban(banned.pk, "matrix"); err != nil {
		t.Fatal(err)
	}

	type role struct {
		name string
		key  *key
	}
	roles := []role{{"anonymous", nil}, {"unknown", &unknown}, {"worker", &worker}, {"dvm", &dvm}, {"admin", &admin}, {"banned", &banned}}
	conns := map[string]*client{}
	for _, r := range roles {
		conns[r.name] = dial(t, s, r.key)
	}
	// Wraps addressed to each allowed role, so "read one's own" has something to find.
	helperConn := dial(t, s, &helper)
	for _, k := range []key{worker, dvm, admin} {
		if msg := helperConn.publish(giftWrap(t, helper, k.pk)); msg != "" {
			t.Fatalf("setup wrap to %s: %s", k.pk[:8], msg)
		}
	}

	cells := 0
	check := func(action, who string, ok bool, got string) {
		t.Helper()
		cells++
		if !ok {
			t.Errorf("[%s × %s] got %s", who, action, got)
		}
	}
	// expectation: "ok" or the NIP-01 prefix / HTTP status wanted.
	type row map[string]string

	// --- relay writes
	wrapToDVM := row{"anonymous": "auth-required:", "unknown": "restricted:", "worker": "ok", "dvm": "ok", "admin": "ok", "banned": "blocked:"}
	wrapToStranger := row{"anonymous": "auth-required:", "unknown": "restricted:", "worker": "restricted:", "dvm": "restricted:", "admin": "restricted:", "banned": "blocked:"}
	for _, r := range roles {
		sender := newKey(t)
		if r.key != nil {
			sender = *r.key
		}
		for action, want := range map[string]row{"publish wrap to the DVM": wrapToDVM, "publish wrap to a stranger": wrapToStranger} {
			to := dvm.pk
			if action == "publish wrap to a stranger" {
				to = newKey(t).pk
			}
			msg := conns[r.name].publish(giftWrap(t, sender, to))
			w := want[r.name]
			check(action, r.name, (w == "ok" && msg == "") || (w != "ok" && strings.HasPrefix(msg, w)), msg)
		}
	}

	// --- relay reads
	readDVM := row{"anonymous": "auth-required:", "unknown": "restricted:", "worker": "restricted:", "dvm": "ok", "admin": "restricted:", "banned": "blocked:"}
	readOwn := row{"anonymous": "auth-required:", "unknown": "restricted:", "worker": "ok", "dvm": "ok", "admin": "ok", "banned": "blocked:"}
	for _, r := range roles {
		self := newKey(t).pk
		if r.key != nil {
			self = r.key.pk
		}
		for action, c := range map[string]struct {
			want row
			p    string
		}{"read the DVM's wraps": {readDVM, dvm.pk}, "read one's own wraps": {readOwn, self}} {
			evs, reason := conns[r.name].query(nostr.Filter{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {c.p}}})
			w := c.want[r.name]
			ok := false
			if w == "ok" {
				ok = reason == "" && len(evs) > 0
				for _, ev := range evs {
					ok = ok && recipient(ev) == c.p
				}
			} else {
				ok = strings.HasPrefix(reason, w) && len(evs) == 0
			}
			check(action, r.name, ok, reason+" / events: "+strconv.Itoa(len(evs)))
		}
	}

	// --- Blossom
	workerBlob := randomBytes(t, 2000)
	if a := upload(t, s, &worker, workerBlob); a.status != http.StatusCreated {
		t.Fatalf("worker setup upload: %v", a)
	}
	statusRow := func(m map[string]int) map[string]int { return m }
	uploadWant := statusRow(map[string]int{"anonymous": 401, "unknown": 403, "worker": 201, "dvm": 201, "admin": 201, "banned": 403})
	getWant := statusRow(map[string]int{"anonymous": 401, "unknown": 403, "worker": 200, "dvm": 200, "admin": 200, "banned": 403})
	delOwnWant := statusRow(map[string]int{"anonymous": 401, "unknown": 403, "worker": 200, "dvm": 200, "admin": 200, "banned": 403})
	delOtherWant := statusRow(map[string]int{"anonymous": 401, "unknown": 403, "worker": 403, "dvm": 403, "admin": 200, "banned": 403})
	listWant := statusRow(map[string]int{"anonymous": 401, "unknown": 403, "worker": 200, "dvm": 200, "admin": 200, "banned": 403})
	for _, r := range roles {
		// upload
		data := randomBytes(t, 1500)
		a := upload(t, s, r.key, data)
		check("upload", r.name, a.status == uploadWant[r.name] && (a.status < 400 || a.reason != ""), a.String())
		if a.status == http.StatusCreated {
			var d descriptor
			if err := json.Unmarshal(a.body, &d); err != nil || d.SHA256 != sha(data) || d.Size != 1500 || !strings.HasSuffix(d.URL, "/"+sha(data)) {
				t.Errorf("[%s × upload] descriptor %s", r.name, a.body)
			}
		}
		own := sha(data)
		if r.name == "banned" {
			own = sha(bannedBlob)
		}
		// get (the worker's blob)
		auth := ""
		if r.key != nil {
			auth = token(t, *r.key, "get", sha(workerBlob))
		}
		a = do(t, http.MethodGet, s.URL()+"/"+sha(workerBlob), auth, nil, nil)
		ok := a.status == getWant[r.name] && (a.status >= 400) == (a.reason != "")
		if a.status == 200 {
			ok = ok && string(a.body) == string(workerBlob)
		}
		check("get", r.name, ok, a.String())
		// list
		who := newKey(t).pk
		if r.key != nil {
			who = r.key.pk
			auth = token(t, *r.key, "list")
		} else {
			auth = ""
		}
		a = do(t, http.MethodGet, s.URL()+"/list/"+who, auth, nil, nil)
		ok = a.status == listWant[r.name]
		if a.status == 200 {
			var list []descriptor
			json.Unmarshal(a.body, &list)
			found := false
			for _, d := range list {
				found = found || d.SHA256 == own
				ok = ok && (d.SHA256 == own || d.SHA256 == sha(workerBlob) && r.name == "worker")
			}
			ok = ok && found
		}
		check("list", r.name, ok, a.String())
		// delete own
		if r.key != nil {
			auth = token(t, *r.key, "delete", own)
		} else {
			auth = ""
		}
		a = do(t, http.MethodDelete, s.URL()+"/"+own, auth, nil, nil)
		check("delete own blob", r.name, a.status == delOwnWant[r.name] && (a.status < 400 || a.reason != ""), a.String())
		if _, stored := s.Blobs().Stat(own); (a.status == 200) == stored && r.name != "anonymous" && r.name != "unknown" {
			t.Errorf("[%s × delete own blob] answered %d but blob stored=%v", r.name, a.status, stored)
		}
		// delete another's: a fresh blob of the helper for each role
		victim := randomBytes(t, 500)
		if v := upload(t, s, &helper, victim); v.status != http.StatusCreated {
			t.Fatalf("victim upload: %v", v)
		}
		if r.key != nil {
			auth = token(t, *r.key, "delete", sha(victim))
		} else {
			auth = ""
		}
		a = do(t, http.MethodDelete, s.URL()+"/"+sha(victim), auth, nil, nil)
		_, stored := s.Blobs().Stat(sha(victim))
		check("delete another's blob", r.name, a.status == delOtherWant[r.name] && stored == (a.status != 200), a.String())
	}

	// --- management: every method × role. Targets are throwaway keys so cells do not
	// interfere; "ok" means HTTP 200 with a result.
	adminOnly := map[string]int{"anonymous": 401, "unknown": 403, "worker": 403, "dvm": 403, "admin": 200, "banned": 403}
	methods := []struct {
		name   string
		want   map[string]int
		params func(r role) []any
	}{
		{"supportedmethods", map[string]int{"anonymous": 401, "unknown": 200, "worker": 200, "dvm": 200, "admin": 200, "banned": 200}, nil},
		{"allowpubkey", adminOnly, func(role) []any { return []any{newKey(t).pk, "test"} }},
		{"unallowpubkey", adminOnly, func(role) []any {
			k := newKey(t).pk
			s.Access().Allow(helper.pk, k, "target")
			return []any{k}
		}},
		{"banpubkey", adminOnly, func(role) []any { return []any{newKey(t).pk, "test"} }},
		{"unbanpubkey", adminOnly, func(role) []any {
			k := newKey(t).pk
			s.Access().Ban(k, "target")
			return []any{k}
		}},
		{"listallowedpubkeys", adminOnly, nil},
		{"listbannedpubkeys", adminOnly, nil},
		// the DVM holds an invite quota; the worker has none
		{"allowinvite", map[string]int{"anonymous": 401, "unknown": 403, "worker": 403, "dvm": 200, "admin": 200, "banned": 403},
			func(role) []any { return []any{newKey(t).pk, time.Now().Add(time.Hour).Unix()} }},
		// only an invite key can claim; none of the roles is one
		{"claiminvite", map[string]int{"anonymous": 401, "unknown": 404, "worker": 404, "dvm": 404, "admin": 404, "banned": 404},
			func(role) []any { return []any{newKey(t).pk} }},
		{"setinvitequota", adminOnly, func(role) []any { return []any{helper.pk, 3} }},
		{"listinvites", adminOnly, nil},
	}
	for _, m := range methods {
		for _, r := range roles {
			var params []any
			if m.params != nil {
				params = m.params(r)
			}
			status, _, errMsg, result := manage(t, s, r.key, m.name, params...)
			want := m.want[r.name]
			ok := status == want && (status == 200) == (errMsg == "") && (status != 200 || result != nil)
			check("management "+m.name, r.name, ok, strconv.Itoa(status)+" "+errMsg)
		}
	}
	if want := 6 * (4 + 5 + len(methods)); cells != want {
		t.Fatalf("asserted %d cells, want %d", cells, want)
	}
}
