// Package relayproc runs a real powdo-relay process on 127.0.0.1 for tests of the
// tracker's network code: the binary is built once from pow.do/relay/cmd/powdo-relay,
// started with a private data directory, and stopped (or killed) on demand.
package relayproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Build compiles powdo-relay into dir (once per process) and returns its path.
func Build(dir string) (string, error) {
	buildOnce.Do(func() {
		binPath = filepath.Join(dir, "powdo-relay")
		cmd := exec.Command("go", "build", "-o", binPath, "pow.do/relay/cmd/powdo-relay")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("build powdo-relay: %w\n%s", err, out.String())
		}
	})
	return binPath, buildErr
}

// Options for Start.
type Options struct {
	Bin     string   // from Build
	DataDir string   // kept across restarts
	Listen  string   // "127.0.0.1:0" by default; give the old address to restart on it
	Admins  []string // hex pubkeys
	Allow   []string // hex pubkeys
}

// Relay is one running process.
type Relay struct {
	t    testing.TB
	opts Options
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
	mu   sync.Mutex
	addr string
}

// Start runs the relay and waits until it listens. It is stopped at the test's end.
func Start(t testing.TB, opts Options) *Relay {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	r := &Relay{t: t, opts: opts}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (r *Relay) start() error {
	addrFile := filepath.Join(r.opts.DataDir, "addr")
	os.Remove(addrFile)
	args := []string{"serve", "--listen", r.opts.Listen, "--data-dir", r.opts.DataDir, "--addr-file", addrFile,
		"--events-per-minute-pubkey", "-1", "--events-per-minute-ip", "-1",
		"--uploads-per-minute-pubkey", "-1", "--uploads-per-minute-ip", "-1", "--manage-per-minute-ip", "-1",
		"--max-conns-per-ip", "-1", "--log-level", "warn"}
	for _, a := range r.opts.Admins {
		args = append(args, "--admin", a)
	}
	for _, a := range r.opts.Allow {
		args = append(args, "--allow", a)
	}
	cmd := exec.Command(r.opts.Bin, args...)
	r.log = &bytes.Buffer{}
	lb := &lockedBuffer{b: r.log}
	cmd.Stdout, cmd.Stderr = lb, lb
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start powdo-relay: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && strings.TrimSpace(string(b)) != "" {
			r.mu.Lock()
			r.cmd, r.done, r.addr = cmd, done, strings.TrimSpace(string(b))
			r.mu.Unlock()
			return nil
		}
		select {
		case <-done:
			lb.mu.Lock()
			defer lb.mu.Unlock()
			return fmt.Errorf("powdo-relay exited at start: %s", r.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return errors.New("powdo-relay did not listen within 20 s")
		}
	}
}

// Addr is host:port.
func (r *Relay) Addr() string { r.mu.Lock(); defer r.mu.Unlock(); return r.addr }

// WS is the relay's websocket URL.
func (r *Relay) WS() string { return "ws://" + r.Addr() }

// HTTP is the Blossom / management base URL.
func (r *Relay) HTTP() string { return "http://" + r.Addr() }

// Stop ends the process with SIGTERM (SIGKILL after 10 s). Idempotent.
func (r *Relay) Stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Restart starts the relay again on the same address and data directory.
func (r *Relay) Restart(ctx context.Context) {
	r.t.Helper()
	r.Stop()
	r.opts.Listen = r.Addr()
	var err error
	for ctx.Err() == nil {
		// The port may linger briefly after the old process: try until ctx ends.
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("restart relay: %v", err)
}
