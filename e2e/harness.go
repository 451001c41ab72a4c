// Package e2e runs pow.do as its users do: the real powdo-relay, powdo-dvm (daemon and
// Kimai emulator) and powdo-tracker binaries as separate processes on 127.0.0.1, a real
// X server (Xvfb) for the trackers, and checks what they leave behind (SQLite files,
// Kimai's API, the relay's storage). The fault test and the benchmarks build on the
// helpers here.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// Binaries are the paths of the pow.do executables under test.
type Binaries struct {
	Relay, DVM, Tracker string
}

var (
	buildOnce sync.Once
	buildBins Binaries
	buildErr  error
)

// RepoRoot is the repository root (this package sits one level below it).
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		wd, _ := os.Getwd()
		return filepath.Dir(wd)
	}
	return filepath.Dir(filepath.Dir(file))
}

// FindBinaries returns the binaries in $POWDO_BIN (set by `make test`), or builds them
// once per test binary into a temporary directory.
func FindBinaries(tb testing.TB) Binaries {
	tb.Helper()
	if dir := os.Getenv("POWDO_BIN"); dir != "" {
		b := Binaries{
			Relay:   filepath.Join(dir, "powdo-relay"),
			DVM:     filepath.Join(dir, "powdo-dvm"),
			Tracker: filepath.Join(dir, "powdo-tracker"),
		}
		for _, p := range []string{b.Relay, b.DVM, b.Tracker} {
			if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
				tb.Fatalf("POWDO_BIN=%s: %s is missing or not executable (run `make build`)", dir, p)
			}
		}
		return b
	}
	buildOnce.Do(func() { buildBins, buildErr = buildAll() })
	if buildErr != nil {
		tb.Fatalf("build the binaries (or set POWDO_BIN after `make build`): %v", buildErr)
	}
	return buildBins
}

func buildAll() (Binaries, error) {
	dir, err := os.MkdirTemp("", "powdo-e2e-bin-")
	if err != nil {
		return Binaries{}, err
	}
	root := RepoRoot()
	b := Binaries{
		Relay:   filepath.Join(dir, "powdo-relay"),
		DVM:     filepath.Join(dir, "powdo-dvm"),
		Tracker: filepath.Join(dir, "powdo-tracker"),
	}
	for _, s := range []struct{ module, pkg, out string }{
		{"relay", "./cmd/powdo-relay", b.Relay},
		{"dvm", "./cmd/powdo-dvm", b.DVM},
		{".", "./app/cmd/powdo-tracker", b.Tracker},
	} {
		cmd := exec.Command("go", "build", "-o", s.out, s.pkg)
		cmd.Dir = filepath.Join(root, s.module)
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go build %s in %s: %w\n%s", s.pkg, s.module, err, out)
		}
	}
	return b, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Services that
// are killed and restarted need a fixed port, so the harness picks it, not the service.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Proc is one long-running child process whose output goes to a log file. It can be
// stopped gently, killed with SIGKILL and started again with the same command.
type Proc struct {
	Name string
	Bin  string
	Args []string
	Env  []string // added to the test's environment
	Dir  string
	Log  string // log file path (appended across restarts)

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	starts  int
}

// Start starts the process (again). It is an error to start a running process.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("%s: already running (pid %d)", p.Name, p.cmd.Process.Pid)
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.Log), 0o755); err != nil {
		return fmt.Errorf("%s: log dir: %w", p.Name, err)
	}
	lf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.Name, err)
	}
	fmt.Fprintf(lf, "\n===== %s start #%d at %s: %s %s\n", p.Name, p.starts+1,
		time.Now().UTC().Format(time.RFC3339Nano), p.Bin, strings.Join(p.Args, " "))
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group: a kill reaches nothing else, and Ctrl-C on the test does not
	// hit the children before the test's cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("%s: start %s: %w", p.Name, p.Bin, err)
	}
	p.starts++
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the current process id (0 when not started).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Starts counts how often the process was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Exited is closed when the current run ends.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.exited
}

// ExitErr is the current run's exit error once it has ended.
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Kill9 sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill9() error {
	return p.signal(syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM and waits up to grace, then SIGKILL. It returns the run's exit
// error when the process did not end cleanly on SIGTERM.
func (p *Proc) Stop(grace time.Duration) error {
	if err := p.signal(syscall.SIGTERM, grace); err != nil {
		_ = p.signal(syscall.SIGKILL, 10*time.Second)
		return err
	}
	return p.ExitErr()
}

func (p *Proc) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%s: still running %s after %v", p.Name, wait, sig)
	}
}

// Tail returns the last n bytes of the log, for error messages.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// WaitFor polls cond every interval until it returns nil or the deadline passes; the
// error names what was awaited and the last reason.
func WaitFor(ctx context.Context, what string, timeout, interval time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		if last = cond(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %v for %s: %w", timeout, what, last)
		case <-t.C:
		}
	}
}

// HTTPOK is a WaitFor condition: GET url answers 200.
func HTTPOK(url string) func() error {
	c := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// RunCmd runs a short command and returns its stdout; stderr goes into the error.
func RunCmd(ctx context.Context, env []string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\nstderr: %s", filepath.Base(bin), strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// randHex returns n random bytes in hex.
func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
