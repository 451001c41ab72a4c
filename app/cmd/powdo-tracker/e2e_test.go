package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pow.do/relay/relaytest"
)

// End-to-end: the powdo-tracker binary against the real powdo-relay and powdo-dvm
// binaries ($POWDO_BIN, else built from this checkout), with 20-second segments, on a
// real X server (Xvfb) so screenshots are real.

var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}()

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// binary returns $POWDO_BIN/name, else builds it once from src (relative to the repo).
func binary(t *testing.T, name, src string) string {
	t.Helper()
	if dir := os.Getenv("POWDO_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "powdo-tracker-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	p := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", p, ".")
	cmd.Dir = filepath.Join(repoRoot, src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	built[name] = p
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// proc is a child process whose output is kept line by line.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	errb  bytes.Buffer
	done  chan struct{}
	err   error
}

func start(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.errb}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %s\nstdout:\n%s\nstderr (tail):\n%s", filepath.Base(bin), args[0], p.stdout(), tail(p.stderr(), 400))
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitLine waits for an output line matching re.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			t.Fatalf("exited (%v) before printing a line matching %s", p.err, re)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %s within %s", re, timeout)
		}
	}
}

func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("still running after %s", timeout)
	}
	if p.err != nil {
		t.Fatalf("exited with %v", p.err)
	}
}

// xvfb starts an X server and returns its display name.
func xvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-noreset", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("Xvfb display number: %v", err)
	}
	return ":" + strings.TrimSpace(line)
}

// typist plays a worker at the keyboard: xdotool moves the pointer and types every
// second until the test ends, so segments see input after their end (a segment is held
// back from review until then: idle time might still reach back over it).
func typist(t *testing.T, display string) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			cmd := exec.Command("xdotool", "mousemove", strconv.Itoa(100+i%200), strconv.Itoa(100+i%150), "key", "shift")
			cmd.Env = append(os.Environ(), "DISPLAY="+display)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("xdotool: %v\n%s", err, out)
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// world is a relay, a DVM with 20-second segments, and a tracker data directory that has
// joined it.
type world struct {
	relay   *relaytest.Relay
	dvm     *proc
	tracker string
	data    string
	env     []string
	memo    string
}

func setup(t *testing.T) *world {
	t.Helper()
	dvmBin := binary(t, "powdo-dvm", "dvm/cmd/powdo-dvm")
	w := &world{tracker: binary(t, "powdo-tracker", "app/cmd/powdo-tracker")}
	dir := t.TempDir()

	keyFile := filepath.Join(dir, "dvm.key")
	out, err := exec.Command(dvmBin, "keygen", "--out", keyFile).CombinedOutput()
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^pubkey ([0-9a-f]{64})$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("keygen printed no pubkey:\n%s", out)
	}
	dvmPK := string(m[1])
	w.relay = relaytest.Start(t, relaytest.Options{Admins: []string{dvmPK}, Allow: []string{dvmPK}, Args: []string{
		"--events-per-minute-pubkey", "-1", "--events-per-minute-ip", "-1", "--max-conns-per-ip", "-1",
		"--manage-per-minute-ip", "-1", "--uploads-per-minute-pubkey", "-1", "--uploads-per-minute-ip", "-1",
	}})

	cfg := map[string]any{
		"data_dir": filepath.Join(dir, "dvm"), "key_file": keyFile, "relays": []string{w.relay.WSURL}, "listen": "off",
		"policy":     map[string]any{"segment_seconds": 20, "screenshots": 1, "blur": false, "review_seconds": 2, "idle_seconds": 300, "jpeg_quality": 60, "max_width": 800},
		"projects":   []map[string]any{{"id": 1, "name": "Website", "customer": "ACME"}},
		"activities": []map[string]any{{"id": 5, "name": "Development"}},
		"retry_min":  "200ms", "retry_max": "2s", "reconnect_min": "200ms", "reconnect_max": "2s",
	}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "dvm.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(dvmBin, "invite", "--config", cfgFile, "--name", "Alice", "--no-qr").CombinedOutput()
	if err != nil {
		t.Fatalf("invite: %v\n%s", err, out)
	}
	link := regexp.MustCompile(`(?m)^(powdo://join\S+)$`).FindSubmatch(out)
	if link == nil {
		t.Fatalf("invite printed no link:\n%s", out)
	}
	w.dvm = start(t, nil, dvmBin, "run", "--config", cfgFile, "--log-level", "debug")

	w.data = filepath.Join(dir, "tracker")
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	w.memo = "e2e private memo " + hex.EncodeToString(rnd[:])
	display := xvfb(t)
	typist(t, display)
	w.env = []string{"POWDO_PASSPHRASE=e2e passphrase", "POWDO_DATA_DIR=" + w.data, "DISPLAY=" + display}
	j := start(t, w.env, w.tracker, "join", string(link[1]))
	j.wait(t, 2*time.Minute)
	for _, want := range []string{"joined worker=npub1", "catalogue state=received", "segment_seconds=20", `project id=1 name=Website`} {
		if !strings.Contains(j.stdout(), want) {
			t.Fatalf("join output lacks %q:\n%s", want, j.stdout())
		}
	}
	return w
}

var (
	doneRe     = regexp.MustCompile(`^done session=([0-9a-f]{32}) segments=(\d+) accepted=(\d+)$`)
	acceptedRe = regexp.MustCompile(`^segment session=[0-9a-f]{32} index=(\d+) state=accepted .*screenshots=(\d+)`)
)

// accepted returns the indexes printed as accepted.
func accepted(out string) map[int]int {
	got := map[int]int{}
	for _, l := range strings.Split(out, "\n") {
		if m := acceptedRe.FindStringSubmatch(l); m != nil {
			i, _ := strconv.Atoi(m[1])
			n, _ := strconv.Atoi(m[2])
			got[i] = n
		}
	}
	return got
}

func TestHeadlessTrackerEndToEnd(t *testing.T) {
	w := setup(t)
	run := start(t, w.env, w.tracker, "run", "--project", "1", "--activity", "5", "--memo", w.memo,
		"--duration", "50s", "--status-every", "5s", "--drain", "2m")
	run.waitLine(t, regexp.MustCompile(`^started session=[0-9a-f]{32} project=1 activity=5`), time.Minute)
	// While it runs, status reads its report.
	run.waitLine(t, regexp.MustCompile(`^status running=true`), time.Minute)
	st, err := exec.Command(w.tracker, "status", "--data-dir", w.data).CombinedOutput()
	if err != nil || !strings.Contains(string(st), "tracker live=true") || !strings.Contains(string(st), "status running=true") {
		t.Fatalf("status while running: %v\n%s", err, st)
	}
	run.wait(t, 4*time.Minute)
	m := run.waitLine(t, doneRe, time.Second)
	n, _ := strconv.Atoi(m[2])
	if n < 3 || m[3] != m[2] {
		t.Fatalf("%s: want every one of at least 3 segments (50 s of 20-second segments) accepted", m[0])
	}
	got := accepted(run.stdout())
	shots := 0
	for i := 0; i < n; i++ {
		c, ok := got[i]
		if !ok {
			t.Fatalf("segment %d never printed as accepted", i)
		}
		shots += c
	}
	if shots == 0 {
		t.Fatal("no segment carried a screenshot from the X display")
	}
	// The public server holds only ciphertext: the memo is nowhere in its storage.
	err = filepath.WalkDir(w.relay.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(w.memo)) {
			return fmt.Errorf("%s holds the memo in plaintext", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kill -9 mid-session: the next run resumes the session, closes the interrupted segment
// at its last evidence, and everything is delivered.
func TestHeadlessTrackerSurvivesKill9(t *testing.T) {
	w := setup(t)
	first := start(t, w.env, w.tracker, "run", "--project", "1", "--activity", "5", "--memo", w.memo, "--status-every", "2s")
	sess := first.waitLine(t, regexp.MustCompile(`^started session=([0-9a-f]{32})`), time.Minute)[1]
	first.waitLine(t, regexp.MustCompile(`^segment session=[0-9a-f]{32} index=0 state=accepted`), 2*time.Minute)
	// Let a later segment gather evidence (its screenshot), then kill.
	m := first.waitLine(t, regexp.MustCompile(`^status running=true .* segment=([1-9]\d*) .*screenshots=1/1`), time.Minute)
	killed := m[1]
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done

	second := start(t, w.env, w.tracker, "run", "--duration", "25s", "--status-every", "5s", "--drain", "2m")
	second.waitLine(t, regexp.MustCompile(`^resumed session=`+sess), time.Minute)
	second.wait(t, 4*time.Minute)
	// The killed segment ends at its last evidence, not at a 20-second boundary.
	seg := second.waitLine(t, regexp.MustCompile(`^segment session=`+sess+` index=`+killed+` state=accepted start=(\S+) end=(\S+)`), time.Second)
	startT, err1 := time.Parse(time.RFC3339, seg[1])
	endT, err2 := time.Parse(time.RFC3339, seg[2])
	if err1 != nil || err2 != nil || !endT.After(startT) || endT.Unix()%20 == 0 {
		t.Fatalf("interrupted segment %s: want it to end at its last evidence inside the 20 s slot", seg[0])
	}
	m = second.waitLine(t, doneRe, time.Second)
	if m[1] != sess || m[2] != m[3] {
		t.Fatalf("%s: want every segment of session %s accepted", m[0], sess)
	}
	n, _ := strconv.Atoi(m[2])
	got := accepted(first.stdout() + "\n" + second.stdout())
	for i := 0; i < n; i++ {
		if _, ok := got[i]; !ok {
			t.Fatalf("segment %d of %d never accepted", i, n)
		}
	}
}
