package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pow.do/dvm/kimai"
)

type emulatorProc struct {
	cmd    *exec.Cmd
	url    string
	lines  <-chan string
	done   chan error
	exited bool
}

func startEmulatorProc(t *testing.T, args ...string) *emulatorProc {
	t.Helper()
	cmd := childCommand(append([]string{"kimai-emulator", "--listen", "127.0.0.1:0", "--legacy-delay=false"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &emulatorProc{cmd: cmd, lines: lineReader(out), done: make(chan error, 1)}
	line := waitLine(t, p.lines, "listening on http://", 20*time.Second)
	p.url = strings.TrimSpace(line[strings.Index(line, "http://"):])
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if !p.exited {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *emulatorProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.exited = true
		return err
	case <-time.After(timeout):
		t.Fatalf("emulator did not exit within %v", timeout)
		return nil
	}
}

func TestEmulatorSurvivesKill9AndStopsGracefully(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "kimai-state.json")

	p := startEmulatorProc(t, "--state", state)
	// The demo tokens are printed at start.
	tokenLine := waitLine(t, p.lines, "token=demo-dvm-token", 5*time.Second)
	if !strings.Contains(tokenLine, "Pacific/Auckland") || !strings.Contains(tokenLine, "ROLE_TEAMLEAD") {
		t.Fatalf("token line %q", tokenLine)
	}
	c, err := kimai.New(kimai.Config{BaseURL: p.url, Token: "demo-dvm-token"})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Date(2024, 1, 31, 8, 0, 0, 0, time.UTC)
	closed, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, User: 4, Begin: begin, End: begin.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	running, err := c.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 3, Description: "running"})
	if err != nil {
		t.Fatal(err)
	}

	// kill -9: no chance to flush anything.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 10*time.Second); err == nil {
		t.Fatal("killed process reported success")
	}

	p2 := startEmulatorProc(t, "--state", state)
	c2, err := kimai.New(kimai.Config{BaseURL: p2.url, Token: "demo-dvm-token"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := c2.ListTimesheets(ctx, kimai.TimesheetFilter{AllUsers: true, OrderBy: "id", Order: "ASC"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != closed.ID || !all[0].Begin.Equal(begin) || all[0].User != 4 ||
		all[1].ID != running.ID || !all[1].Running() || all[1].Description != "running" {
		t.Fatalf("after restart: %+v", all)
	}
	next, err := c2.CreateTimesheet(ctx, kimai.NewTimesheet{Project: 1, Activity: 1, Begin: begin.Add(-48 * time.Hour), End: begin.Add(-47 * time.Hour)})
	if err != nil || next.ID <= running.ID {
		t.Fatalf("id after restart %d (err %v), must follow %d", next.ID, err, running.ID)
	}

	// SIGTERM: graceful shutdown, exit status 0.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.wait(t, 15*time.Second); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

func TestEmulatorWithSeedFile(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seed, []byte(`{
		"users": [{"id": 7, "username": "ops", "timezone": "America/Bogota", "roles": ["ROLE_ADMIN"], "apiToken": "ops-token"}],
		"customers": [{"id": 1, "name": "C"}],
		"projects": [{"id": 1, "customer": 1, "name": "P"}],
		"activities": [{"id": 1, "project": null, "name": "A"}],
		"settings": {"allowOverlapping": false}
	}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startEmulatorProc(t, "--seed", seed)
	waitLine(t, p.lines, "token=ops-token", 5*time.Second)
	c, err := kimai.New(kimai.Config{BaseURL: p.url, Token: "ops-token"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	me, err := c.Me(ctx)
	if err != nil || me.Timezone != "America/Bogota" {
		t.Fatalf("me %+v %v", me, err)
	}
	cfg, err := c.TimesheetConfig(ctx)
	if err != nil || cfg.AllowOverlapping || !cfg.AllowFutureTimes {
		t.Fatalf("config from seed %+v %v", cfg, err)
	}
	if err := c2Ping(ctx, p.url, "demo-dvm-token"); err == nil {
		t.Fatal("demo token accepted with a custom seed")
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"users":[{"id":1,"username":"x","timezone":"Nowhere/City","roles":[]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "kimai-emulator", "--listen", "127.0.0.1:0", "--seed", bad)
	if code != 1 || !strings.Contains(errOut, "Nowhere/City") {
		t.Fatalf("bad seed: exit %d, %q", code, errOut)
	}
}

func c2Ping(ctx context.Context, url, token string) error {
	c, err := kimai.New(kimai.Config{BaseURL: url, Token: token})
	if err != nil {
		return err
	}
	return c.Ping(ctx)
}
