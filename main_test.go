package main

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestDataDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	home := func() (string, error) { return "/home/w", nil }
	noHome := func() (string, error) { return "", errors.New("no home") }
	abs, _ := filepath.Abs("rel/dir")
	cases := []struct {
		name string
		env  map[string]string
		home func() (string, error)
		want string
		err  bool
	}{
		{"override", map[string]string{"POWDO_DATA_DIR": "rel/dir", "XDG_DATA_HOME": "/x"}, home, abs, false},
		{"xdg", map[string]string{"XDG_DATA_HOME": "/x"}, home, "/x/pow.do", false},
		{"relative xdg is ignored", map[string]string{"XDG_DATA_HOME": "x"}, home, "/home/w/.local/share/pow.do", false},
		{"home", nil, home, "/home/w/.local/share/pow.do", false},
		{"nothing", nil, noHome, "", true},
	}
	for _, c := range cases {
		got, err := dataDir(env(c.env), c.home)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%s: dataDir = %q, %v; want %q (error %v)", c.name, got, err, c.want, c.err)
		}
	}
}

func TestNewEngineBuildsAnEngine(t *testing.T) {
	eng, err := newEngine(t.TempDir())
	if err != nil || eng == nil {
		t.Fatalf("newEngine: %v, %v", eng, err)
	}
	if err := eng.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
