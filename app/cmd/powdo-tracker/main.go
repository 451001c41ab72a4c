// Command powdo-tracker runs the pow.do tracker engine without a window, for terminals,
// servers and tests. It prints one status or progress line at a time as key=value pairs.
//
//	powdo-tracker join LINK                    pair this device (passphrase: see below)
//	powdo-tracker run --project N --activity N [--memo TEXT] [--idle keep|discard|stop]
//	powdo-tracker status                       what a running tracker (or the last run) did
//
// Settings come from flags, then the environment (POWDO_DATA_DIR, POWDO_PASSPHRASE,
// POWDO_PASSPHRASE_FILE, POWDO_IDLE, POWDO_LOG_LEVEL), then a JSON config file
// (--config or POWDO_CONFIG), then defaults. The passphrase protects the worker key at
// rest; it is read from a file, the environment or standard input, never a flag.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"pow.do/app/engineapi"
)

// usageError marks a bad invocation (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// env is what the command reads from its surroundings, so tests run it in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	home   func() (string, error)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, home: os.UserHomeDir})
	stop()
	os.Exit(code)
}

const usage = `usage: powdo-tracker [global flags] COMMAND [flags]

commands:
  join LINK      pair this device with an employer from an invite link
  run            track work on a project until interrupted (SIGINT/SIGTERM)
  status         print the tracker's state and today's segments

global flags (before or after the command):
  --data-dir DIR          state directory ($POWDO_DATA_DIR; default ~/.local/share/pow.do)
  --config FILE           JSON config file ($POWDO_CONFIG)
  --passphrase-file FILE  file holding the key passphrase ($POWDO_PASSPHRASE_FILE;
                          or $POWDO_PASSPHRASE, or --passphrase-stdin)
  --log-level LEVEL       debug, info, warn, error ($POWDO_LOG_LEVEL; default info)
`

func dispatch(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	// Global flags may come before the command: the command is the first known name.
	cmd, rest := args[0], args[1:]
	for i, a := range args {
		if a == "join" || a == "run" || a == "status" || a == "help" {
			cmd, rest = a, append(append([]string(nil), args[:i]...), args[i+1:]...)
			break
		}
	}
	var err error
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return 0
	case "join":
		err = cmdJoin(ctx, rest, e)
	case "run":
		err = cmdRun(ctx, rest, e)
	case "status":
		err = cmdStatus(ctx, rest, e)
	default:
		err = usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "powdo-tracker: %s\n\n%s", ue.msg, usage)
		return 2
	}
	p := engineapi.AsProblem(err)
	fmt.Fprintf(e.stderr, "error code=%s message=%q action=%q\n", p.Code, p.Message, p.Action)
	if p.Cause != nil {
		slog.Debug("cause", "err", p.Cause)
	}
	return 1
}

// common holds the settings every command shares.
type common struct {
	dataDir        string
	configFile     string
	passphraseFile string
	passStdin      bool
	logLevel       string
	idle           string
	noDesktop      bool
}

// fileConfig is the JSON config file.
type fileConfig struct {
	DataDir        string `json:"data_dir"`
	PassphraseFile string `json:"passphrase_file"`
	LogLevel       string `json:"log_level"`
	Idle           string `json:"idle"`
	NoDesktop      bool   `json:"no_desktop"`
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", "", "state `directory`")
	fs.StringVar(&c.configFile, "config", "", "JSON config `file`")
	fs.StringVar(&c.passphraseFile, "passphrase-file", "", "`file` holding the key passphrase")
	fs.BoolVar(&c.passStdin, "passphrase-stdin", false, "read the key passphrase from the first line of standard input")
	fs.StringVar(&c.logLevel, "log-level", "", "log `level`: debug, info, warn, error")
}

// resolve fills what flags left empty from the environment, the config file and defaults.
func (c *common) resolve(e env) error {
	if c.configFile == "" {
		c.configFile = e.getenv("POWDO_CONFIG")
	}
	var fc fileConfig
	if c.configFile != "" {
		b, err := os.ReadFile(c.configFile)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fc); err != nil {
			return usageError{fmt.Sprintf("config file %s: %v", c.configFile, err)}
		}
	}
	pick := func(flagV, envName, fileV, def string) string {
		switch {
		case flagV != "":
			return flagV
		case envName != "" && e.getenv(envName) != "":
			return e.getenv(envName)
		case fileV != "":
			return fileV
		}
		return def
	}
	c.dataDir = pick(c.dataDir, "POWDO_DATA_DIR", fc.DataDir, "")
	if c.dataDir == "" {
		d, err := defaultDataDir(e)
		if err != nil {
			return err
		}
		c.dataDir = d
	}
	c.passphraseFile = pick(c.passphraseFile, "POWDO_PASSPHRASE_FILE", fc.PassphraseFile, "")
	c.logLevel = pick(c.logLevel, "POWDO_LOG_LEVEL", fc.LogLevel, "info")
	c.idle = pick(c.idle, "POWDO_IDLE", fc.Idle, "")
	c.noDesktop = c.noDesktop || fc.NoDesktop
	if c.idle != "" && !engineapi.IdleChoice(c.idle).Valid() {
		return usageError{fmt.Sprintf("idle answer %q: use keep, discard or stop", c.idle)}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return usageError{fmt.Sprintf("log level %q: use debug, info, warn or error", c.logLevel)}
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl})))
	return nil
}

// defaultDataDir matches the window's: $XDG_DATA_HOME/pow.do, else ~/.local/share/pow.do.
func defaultDataDir(e env) (string, error) {
	if d := e.getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "pow.do"), nil
	}
	h, err := e.home()
	if err != nil {
		return "", fmt.Errorf("find the data directory: set --data-dir or POWDO_DATA_DIR: %w", err)
	}
	return filepath.Join(h, ".local", "share", "pow.do"), nil
}

// passphrase reads the key passphrase: file, then environment, then standard input.
func (c *common) passphrase(e env) (string, error) {
	switch {
	case c.passphraseFile != "":
		b, err := os.ReadFile(c.passphraseFile)
		if err != nil {
			return "", fmt.Errorf("read the passphrase file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case e.getenv("POWDO_PASSPHRASE") != "":
		return e.getenv("POWDO_PASSPHRASE"), nil
	case c.passStdin:
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the passphrase from standard input: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	return "", usageError{"no passphrase: use --passphrase-file, POWDO_PASSPHRASE or --passphrase-stdin"}
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string, e env) ([]string, error) {
	fs.SetOutput(e.stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// line prints one key=value status line; values with spaces are quoted.
func line(w io.Writer, kind string, kv ...any) {
	var b strings.Builder
	b.WriteString(kind)
	for i := 0; i+1 < len(kv); i += 2 {
		v := fmt.Sprint(kv[i+1])
		if t, ok := kv[i+1].(time.Time); ok {
			v = t.UTC().Format(time.RFC3339)
		}
		if v == "" || strings.ContainsAny(v, " \t\"=") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", kv[i], v)
	}
	b.WriteByte('\n')
	_, _ = io.WriteString(w, b.String())
}
