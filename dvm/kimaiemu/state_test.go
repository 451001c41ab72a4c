package kimaiemu_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pow.do/dvm/kimaiemu"
)

func TestStatePersistsAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kimai-state.json")
	withState := func(o *kimaiemu.Options) { o.StatePath = path }

	e := newEnv(t, withState)
	expectStatus(t, e.do("POST", "/api/tags", asTeamlead, map[string]any{"name": "verified"}), 200)
	first := e.create(asAlice, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-31T08:00:00",
		"end": "2024-01-31T09:00:00", "tags": "verified"})
	running := e.create(asAlice, map[string]any{"project": 1, "activity": 3})
	deleted := e.create(asBob, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-30T08:00:00", "end": "2024-01-30T09:00:00"})
	expectStatus(t, e.do("DELETE", idPath("/api/timesheets", deleted["id"], ""), asBob, nil), 204)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	// No temp files are left beside it.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the state file", len(entries))
	}

	// A second emulator on the same file (a restart) sees the records, the
	// API-created tag, and continues the id sequence.
	e2 := newEnv(t, withState)
	got := e2.do("GET", idPath("/api/timesheets", first["id"], ""), asAlice, nil)
	expectStatus(t, got, 200)
	g := got.obj(t)
	if g["begin"] != first["begin"] || g["end"] != first["end"] || g["tags"].([]any)[0] != "verified" {
		t.Fatalf("restored %v, was %v", g, first)
	}
	if act := ids(t, e2.do("GET", "/api/timesheets/active", asAlice, nil)); !equalInts(act, []int64{num(t, running["id"])}) {
		t.Fatalf("active after restart %v", act)
	}
	expectStatus(t, e2.do("GET", idPath("/api/timesheets", deleted["id"], ""), asAdmin, nil), 404)
	next := e2.create(asBob, map[string]any{"project": 1, "activity": 1, "begin": "2024-01-29T08:00:00", "end": "2024-01-29T09:00:00"})
	if num(t, next["id"]) <= num(t, deleted["id"]) {
		t.Fatalf("id %v reused after restart (deleted was %v)", next["id"], deleted["id"])
	}
	expectStatus(t, e2.do("POST", "/api/tags", asTeamlead, map[string]any{"name": "verified"}), 400)
}

func TestDamagedStateIsRefusedNotOverwritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	damaged := []byte(`{"format":1,"nextTimesheetId":3,"timesheets":[{"id":1`)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := kimaiemu.DefaultOptions()
	opts.StatePath = path
	if _, err := kimaiemu.New(opts); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("New on a damaged state: %v", err)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(damaged) {
		t.Fatalf("damaged state file was changed")
	}
	for _, bad := range []string{
		`{"format":2,"nextTimesheetId":1,"nextTagId":1}`,
		`{"format":1,"nextTimesheetId":1,"nextTagId":1,"timesheets":[{"id":5}]}`,
		`{"format":1,"nextTimesheetId":9,"nextTagId":1,"timesheets":[{"id":5},{"id":5}]}`,
	} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := kimaiemu.New(opts); err == nil {
			t.Fatalf("accepted inconsistent state %s", bad)
		}
	}
}

func TestStateDirectoryMustExist(t *testing.T) {
	opts := kimaiemu.DefaultOptions()
	opts.StatePath = filepath.Join(t.TempDir(), "missing", "state.json")
	if _, err := kimaiemu.New(opts); err == nil {
		t.Fatal("New accepted a state path in a missing directory")
	}
}

func TestSeedValidation(t *testing.T) {
	if _, err := kimaiemu.ParseSeed([]byte(`{"users":[{"id":1,"username":"a","timezone":"UTC","roles":["ROLE_USER"],"apiToken":"t"}],
		"settings":{"allowOverlapping":false}}`)); err != nil {
		t.Fatalf("minimal seed: %v", err)
	}
	s, _ := kimaiemu.ParseSeed([]byte(`{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[]}],"settings":{"allowOverlapping":false}}`))
	if s.Settings.AllowOverlapping || !s.Settings.AllowFutureTimes || s.Settings.ActiveEntriesHardLimit != 1 || s.Settings.TrackingMode != "default" {
		t.Fatalf("settings absent from the file must keep Kimai's defaults: %+v", s.Settings)
	}
	bad := map[string]string{
		"no users":         `{"users":[]}`,
		"unknown key":      `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[]}],"userz":1}`,
		"bad timezone":     `{"users":[{"id":1,"username":"a","timezone":"Mars/Base","roles":[]}]}`,
		"duplicate id":     `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[]},{"id":1,"username":"b","timezone":"UTC","roles":[]}]}`,
		"unknown role":     `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":["ROLE_GOD"]}]}`,
		"shared token":     `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[],"apiToken":"x"},{"id":2,"username":"b","timezone":"UTC","roles":[],"apiToken":"x"}]}`,
		"token with space": `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[],"apiToken":"a b"}]}`,
		"orphan project":   `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[]}],"projects":[{"id":1,"customer":9,"name":"p"}]}`,
		"orphan activity":  `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[]}],"activities":[{"id":1,"project":9,"name":"a"}]}`,
		"hard limit 0":     `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[]}],"settings":{"activeEntriesHardLimit":0}}`,
		"trailing data":    `{"users":[{"id":1,"username":"a","timezone":"UTC","roles":[]}]} {}`,
	}
	for name, js := range bad {
		if _, err := kimaiemu.ParseSeed([]byte(js)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(path, []byte(`{"users":[{"id":7,"username":"z","timezone":"America/Bogota","roles":["ROLE_TEAMLEAD"],"apiToken":"zz"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := kimaiemu.LoadSeed(path)
	if err != nil || len(s.Users) != 1 || s.Users[0].Timezone != "America/Bogota" {
		t.Fatalf("LoadSeed: %+v %v", s, err)
	}
}
