package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets tests run the real command as a child process: the test
// binary re-executed with POWDO_DVM_TEST_MAIN=1 is powdo-dvm itself.
func TestMain(m *testing.M) {
	if os.Getenv("POWDO_DVM_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// childCommand returns the powdo-dvm child process for args (not started).
func childCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "POWDO_DVM_TEST_MAIN=1")
	return cmd
}

// runCLI runs powdo-dvm to completion.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := childCommand(args...)
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

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, _, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for name, c := range commands {
			if !strings.Contains(out, name) || !strings.Contains(out, c.summary) {
				t.Fatalf("%v: %q or its summary missing from\n%s", args, name, out)
			}
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for name, c := range commands {
		for _, args := range [][]string{{name, "--help"}, {"help", name}} {
			out, _, code := runCLI(t, args...)
			if code != 0 || !strings.Contains(out, "usage: powdo-dvm "+name) || !strings.Contains(out, c.summary) {
				t.Fatalf("%v: exit %d, output\n%s", args, code, out)
			}
		}
	}
}

func TestBadInvocations(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: powdo-dvm COMMAND"},
		{[]string{"no-such-command"}, 2, `unknown command "no-such-command"`},
		{[]string{"kimai-emulator", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"kimai-emulator", "extra"}, 2, "unexpected arguments"},
		{[]string{"kimai-emulator", "--seed", "/nonexistent/seed.json"}, 1, "open seed"},
		{[]string{"kimai-emulator", "--listen", "not-an-address"}, 1, "listen not-an-address"},
	}
	for _, c := range cases {
		_, errOut, code := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d containing %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

func TestDispatchInProcess(t *testing.T) {
	var out, errOut bytes.Buffer
	stdout, stderr = &out, &errOut
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	if code := dispatch(context.Background(), []string{"help", "kimai-emulator"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "-listen") || !strings.Contains(out.String(), "-state") || !strings.Contains(out.String(), "-seed") {
		t.Fatalf("help lacks flags:\n%s", out.String())
	}
}

// lineReader delivers a child's output lines on a channel so tests can
// wait for a line with a deadline.
func lineReader(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func waitLine(t *testing.T, lines <-chan string, contains string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line containing %q", contains)
			}
			if strings.Contains(l, contains) {
				return l
			}
		case <-deadline.C:
			t.Fatalf("no line containing %q within %v", contains, timeout)
		}
	}
}
