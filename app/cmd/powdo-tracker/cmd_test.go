package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pow.do/app/engineapi"
)

// call runs the command in-process.
func call(t *testing.T, vars map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return vars[k] }, home: func() (string, error) { return "/nonexistent-home", nil }}
	code = dispatch(context.Background(), args, e)
	return out.String(), errb.String(), code
}

func TestUsage(t *testing.T) {
	if _, errOut, code := call(t, nil, ""); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Fatalf("no args: %d %q", code, errOut)
	}
	if out, _, code := call(t, nil, "", "help"); code != 0 || !strings.Contains(out, "join LINK") {
		t.Fatalf("help: %d %q", code, out)
	}
	if _, errOut, code := call(t, nil, "", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown: %d %q", code, errOut)
	}
	dir := t.TempDir()
	if _, errOut, code := call(t, nil, "", "run", "--data-dir", dir); code != 2 || !strings.Contains(errOut, "no passphrase") {
		t.Fatalf("run without passphrase: %d %q", code, errOut)
	}
	if _, errOut, code := call(t, nil, "", "join", "--data-dir", dir); code != 2 || !strings.Contains(errOut, "exactly one invite link") {
		t.Fatalf("join without link: %d %q", code, errOut)
	}
	if _, errOut, code := call(t, nil, "", "run", "--data-dir", dir, "--idle", "sometimes"); code != 2 || !strings.Contains(errOut, "idle answer") {
		t.Fatalf("bad idle answer: %d %q", code, errOut)
	}
}

func TestRunBeforeJoiningSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"POWDO_PASSPHRASE": "a long passphrase"}
	// Global flags before the command work too.
	_, errOut, code := call(t, vars, "", "--data-dir", dir, "run", "--no-desktop", "--project", "1", "--activity", "1")
	if code != 1 || !strings.Contains(errOut, "code=not_ready") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestJoinRefusesABadLink(t *testing.T) {
	dir := t.TempDir()
	_, errOut, code := call(t, nil, "a long passphrase\n", "join", "--passphrase-stdin", "--data-dir", dir, "https://example.com/nope")
	if code != 1 || !strings.Contains(errOut, "code=invite_invalid") || !strings.Contains(errOut, "action=") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tracker.json")
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("from the file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte(`{"data_dir": "/from/file", "idle": "keep", "passphrase_file": "`+passFile+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := env{getenv: func(k string) string {
		return map[string]string{"POWDO_CONFIG": cfgFile, "POWDO_IDLE": "stop"}[k]
	}, home: func() (string, error) { return "/home/w", nil }, stderr: &bytes.Buffer{}}
	c := common{dataDir: "/from/flag"}
	if err := c.resolve(e); err != nil {
		t.Fatal(err)
	}
	if c.dataDir != "/from/flag" || c.idle != "stop" || c.passphraseFile != passFile {
		t.Fatalf("resolved %+v", c)
	}
	if p, err := c.passphrase(e); err != nil || p != "from the file" {
		t.Fatalf("passphrase %q, %v", p, err)
	}
	c = common{}
	if err := c.resolve(e); err != nil || c.dataDir != "/from/file" {
		t.Fatalf("data dir from the file: %+v, %v", c, err)
	}
	if err := os.WriteFile(cfgFile, []byte(`{"data_dri": "typo"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c = common{}
	if err := c.resolve(e); err == nil || !strings.Contains(err.Error(), "data_dri") {
		t.Fatalf("unknown config field accepted: %v", err)
	}
	c = common{}
	e.getenv = func(string) string { return "" }
	if err := c.resolve(e); err != nil || c.dataDir != "/home/w/.local/share/pow.do" {
		t.Fatalf("default data dir %+v, %v", c, err)
	}
}

func TestStatusReadsTheLastReport(t *testing.T) {
	dir := t.TempDir()
	out, _, code := call(t, nil, "", "status", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "live=false") || !strings.Contains(out, "no run has reported yet") {
		t.Fatalf("empty status: %d %q", code, out)
	}
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	snap := snapshot{WrittenAt: at, PID: 42,
		State: engineapi.State{Running: true, ElapsedSeconds: 75, Source: engineapi.SourceBuiltin,
			Segment: &engineapi.Segment{Index: 3, RemainingSeconds: 12, ScreenshotsPlanned: 2, ScreenshotsTaken: 1}},
		Today: []engineapi.SegmentView{{ID: "7", SessionID: "abc", Index: 2, Start: at, End: at.Add(time.Minute),
			State: engineapi.SegmentRejected, Reason: "clock skew too large", Permanent: true},
			{ID: "8", SessionID: "abc", Index: 3, Start: at.Add(time.Minute), End: at.Add(2 * time.Minute),
				State: engineapi.SegmentHeld, Reason: engineapi.HeldReason}},
	}
	if err := writeSnapshot(dir, snap); err != nil {
		t.Fatal(err)
	}
	out, _, code = call(t, nil, "", "status", "--data-dir", dir)
	for _, want := range []string{"tracker live=false", "pid=42", "status running=true", "elapsed=75", "segment=3", "screenshots=1/2",
		"segment session=abc index=2 state=rejected", `reason="clock skew too large" permanent=true`,
		"segment session=abc index=3 state=held", `active_seconds=0 reason="waiting for input after the segment to decide about idle time"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status output lacks %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`(?m)^segment .*state=held.*permanent`).MatchString(out) {
		t.Fatalf("a held segment is printed with a rejection's permanent flag:\n%s", out)
	}
}
