// Package relaytest starts real powdo-relay processes on 127.0.0.1 for end-to-end tests, in
// this module and in others (the DVM's and the tracker's). It uses only the standard
// library, so importing it pulls in none of the relay's dependencies.
package relaytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Binary returns a powdo-relay binary: $POWDO_BIN/powdo-relay when that exists (make test
// builds it), otherwise one built once per test process from this module's source.
func Binary(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("POWDO_BIN"); dir != "" {
		p := filepath.Join(dir, "powdo-relay")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	buildOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = errors.New("relaytest: cannot locate the relay source")
			return
		}
		src := filepath.Join(filepath.Dir(file), "..", "cmd", "powdo-relay")
		dir, err := os.MkdirTemp("", "powdo-relay-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "powdo-relay")
		cmd := exec.Command("go", "build", "-o", builtBin, ".")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("relaytest: go build powdo-relay: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// Options for Start. Zero values are fine.
type Options struct {
	Bin     string    // binary; default Binary(t)
	DataDir string    // default: a new t.TempDir()
	Admins  []string  // hex pubkeys
	Allow   []string  // hex pubkeys always allowed (e.g. the DVM)
	Args    []string  // more command-line options (see powdo-relay --help)
	Env     []string  // extra environment, "NAME=value"
	Log     io.Writer // the relay's stderr; default: the test log, on failure only
}

// Relay is a running powdo-relay process.
type Relay struct {
	Addr    string // host:port it listens on
	URL     string // http://Addr: Blossom and NIP-86 base URL
	WSURL   string // ws://Addr: the Nostr relay URL
	DataDir string

	t    testing.TB
	opts Options
	cmd  *exec.Cmd
	done chan error
	logs *lockedBuffer
}

// Start runs powdo-relay on 127.0.0.1 with a free port and returns once it listens. The
// process is stopped when the test ends.
func Start(t testing.TB, o Options) *Relay {
	t.Helper()
	if o.Bin == "" {
		o.Bin = Binary(t)
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	r := &Relay{t: t, opts: o, DataDir: o.DataDir}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil && !errors.Is(err, errStopped) {
			t.Errorf("powdo-relay: %v", err)
		}
		if t.Failed() && o.Log == nil {
			t.Logf("powdo-relay log:\n%s", r.logs.String())
		}
	})
	return r
}

var errStopped = errors.New("already stopped")

func (r *Relay) start() error {
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", r.opts.DataDir, "--log-level", "debug"}
	if len(r.opts.Admins) > 0 {
		args = append(args, "--admin", strings.Join(r.opts.Admins, ","))
	}
	if len(r.opts.Allow) > 0 {
		args = append(args, "--allow", strings.Join(r.opts.Allow, ","))
	}
	args = append(args, r.opts.Args...)
	cmd := exec.Command(r.opts.Bin, args...)
	cmd.Env = append(os.Environ(), r.opts.Env...)
	if r.logs == nil { // one log across restarts
		r.logs = &lockedBuffer{}
	}
	if r.opts.Log != nil {
		cmd.Stderr = io.MultiWriter(r.opts.Log, r.logs)
	} else {
		cmd.Stderr = r.logs
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start powdo-relay: %w", err)
	}
	r.cmd = cmd
	r.done = make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "powdo-relay listening on "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { r.done <- cmd.Wait() }()
	select {
	case a := <-addr:
		r.Addr, r.URL, r.WSURL = a, "http://"+a, "ws://"+a
		return nil
	case err := <-r.done:
		r.cmd = nil
		return fmt.Errorf("powdo-relay exited before listening (%v):\n%s", err, r.logs.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-r.done
		r.cmd = nil
		return fmt.Errorf("powdo-relay did not listen within 30 s:\n%s", r.logs.String())
	}
}

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after 15 s).
func (r *Relay) Stop() error {
	if r.cmd == nil {
		return errStopped
	}
	cmd := r.cmd
	r.cmd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("powdo-relay exited with %v:\n%s", err, r.logs.String())
		}
		return nil
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("powdo-relay ignored SIGTERM for 15 s")
	}
}

// Restart stops the process and starts it again on the same data directory (the port
// changes).
func (r *Relay) Restart() {
	r.t.Helper()
	if err := r.Stop(); err != nil && !errors.Is(err, errStopped) {
		r.t.Fatal(err)
	}
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

// Logs returns what the process (and its earlier runs) wrote to stderr so far.
func (r *Relay) Logs() string { return r.logs.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
