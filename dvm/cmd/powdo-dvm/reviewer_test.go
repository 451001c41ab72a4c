package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pow.do/dvm/diary/password"
	"pow.do/dvm/store/sqlite"
)

// runCLIInput runs powdo-dvm with stdin.
func runCLIInput(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := childCommand(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func storedHash(t *testing.T, dir, user string) string {
	t.Helper()
	db, err := sqlite.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Reviewer(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return r.PasswordHash
}

func TestReviewerCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	const pw = "a long reviewer passphrase"

	out, errOut, code := runCLIInput(t, pw+"\n", "reviewer", "add", "--data-dir", dir, "rita")
	if code != 0 || !strings.Contains(out, "reviewer rita added") {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, pw) {
		t.Fatal("the password was printed")
	}
	h := storedHash(t, dir, "rita")
	if ok, err := password.Verify(pw, h); !ok || err != nil {
		t.Fatalf("stored hash does not verify the password: %v", err)
	}
	if p, _, _, err := password.Decode(h); err != nil || p != password.Default {
		t.Fatalf("stored hash parameters %+v (%v), want the defaults", p, err)
	}

	// The data directory from the environment and from a config file.
	cfg := filepath.Join(t.TempDir(), "dvm.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"data_dir": %q, "relays": ["wss://r.example"]}`, dir)), 0o600)
	out, _, code = runCLI(t, "reviewer", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "rita") {
		t.Fatalf("list via --config: exit %d\n%s", code, out)
	}

	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"again", pw + "\n", []string{"add", "rita"}, 1, "already exists"},
		{"short password", "short\n", []string{"add", "sam"}, 1, "at least 10 bytes"},
		{"no password", "", []string{"add", "sam"}, 1, "no password on standard input"},
		{"bad name", pw + "\n", []string{"add", "sam smith"}, 2, "letters, digits"},
		{"password flag", "", []string{"add", "--password", "x", "sam"}, 2, "flag provided but not defined"},
		{"remove unknown", "", []string{"remove", "nobody"}, 1, `no reviewer "nobody"`},
		{"no subcommand", "", nil, 2, "name a subcommand"},
		{"unknown subcommand", "", []string{"promote", "rita"}, 2, "unknown subcommand"},
	} {
		out, errOut, code := runCLIInput(t, tc.stdin, append([]string{"reviewer", "--data-dir", dir}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", tc.name, code, tc.code, tc.want, out, errOut)
		}
	}
	if out, _, _ := runCLI(t, "reviewer", "list", "--data-dir", dir); strings.Contains(out, "sam") {
		t.Fatalf("a refused account was created:\n%s", out)
	}

	out, _, code = runCLI(t, "reviewer", "remove", "rita", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "reviewer rita removed") {
		t.Fatalf("remove: exit %d\n%s", code, out)
	}
	t.Setenv("POWDO_DVM_DATA_DIR", dir)
	out, _, code = runCLI(t, "reviewer", "list")
	if code != 0 || strings.Contains(out, "rita") || !strings.Contains(out, "USERNAME") {
		t.Fatalf("list after remove: exit %d\n%s", code, out)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	return m, s
}

// TestReviewerPromptsWithoutEcho runs `reviewer add` on a terminal: it must prompt twice
// and the password must not be echoed back to the terminal.
func TestReviewerPromptsWithoutEcho(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	const pw = "typed on a terminal 123"
	master, slave := openPTY(t)
	defer master.Close()
	cmd := childCommand("reviewer", "add", "--data-dir", dir, "tess")
	cmd.Stdin = slave
	var out, errOut syncBuf
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	// Everything the terminal shows (its echo) comes back on the master side.
	echoed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO when the child exits
		echoed <- string(b)
	}()
	waitFor(t, 20*time.Second, "first prompt", func() bool { return strings.Contains(errOut.String(), "Password for tess:") })
	fmt.Fprintf(master, "%s\n", pw)
	waitFor(t, 20*time.Second, "second prompt", func() bool { return strings.Contains(errOut.String(), "Repeat it:") })
	fmt.Fprintf(master, "%s\n", pw)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reviewer add on a terminal: %v\n%s%s", err, out.String(), errOut.String())
	}
	if got := <-echoed; strings.Contains(got, pw) {
		t.Fatalf("the terminal echoed the password: %q", got)
	}
	if ok, _ := password.Verify(pw, storedHash(t, dir, "tess")); !ok {
		t.Fatal("the typed password was not stored")
	}
}

// syncBuf is a buffer the exec package's copying goroutine writes while the test reads.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond (a real condition) until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
