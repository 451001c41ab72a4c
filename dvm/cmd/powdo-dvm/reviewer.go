package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"pow.do/dvm/daemon"
	"pow.do/dvm/diary"
	"pow.do/dvm/diary/password"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

func init() {
	register(command{
		name:    "reviewer",
		summary: "manage work-diary reviewer accounts: add (password from stdin or a prompt), remove, list",
		run:     runReviewer,
	})
}

// openDiary opens the work diary that `powdo-dvm run` serves; its exports are signed with
// the DVM key.
func openDiary(cfg daemon.Config, sk string, st store.Store) (*diary.Diary, error) {
	return diary.Open(st, diary.Options{
		CacheDir:   filepath.Join(cfg.DataDir, "diary"),
		SecretKey:  sk,
		TrustProxy: os.Getenv("POWDO_DVM_TRUST_PROXY") == "1",
		Log:        cfg.Logger(stderr),
	})
}

const reviewerUsage = `subcommands:
  reviewer add NAME       create an account; the password is read from standard input
                          (first line) or, on a terminal, prompted for twice without echo
  reviewer remove NAME    delete the account and log out its sessions
  reviewer list           list the accounts
The data directory comes from --data-dir, POWDO_DVM_DATA_DIR, the config file's data_dir
(--config or POWDO_DVM_CONFIG), or /var/lib/powdo-dvm.`

func runReviewer(ctx context.Context, args []string) error {
	fs := newFlagSet("reviewer")
	config := fs.String("config", "", "JSON configuration `file` to read data_dir from (env POWDO_DVM_CONFIG)")
	dataDir := fs.String("data-dir", "", "data `dir`ectory (env POWDO_DVM_DATA_DIR; default /var/lib/powdo-dvm)")
	appendUsage(fs, reviewerUsage)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"name a subcommand: add, remove or list"}
	}
	sub, pos := pos[0], pos[1:]
	switch {
	case sub == "list" && len(pos) != 0:
		return usageError{"reviewer list takes no arguments"}
	case (sub == "add" || sub == "remove") && len(pos) != 1:
		return usageError{"reviewer " + sub + " takes one NAME"}
	case sub != "add" && sub != "remove" && sub != "list":
		return usageError{fmt.Sprintf("unknown subcommand %q: want add, remove or list", sub)}
	}
	dir, err := resolveDataDir(*config, *dataDir, os.Getenv)
	if err != nil {
		return err
	}
	if sub == "add" {
		if err := checkUsername(pos[0]); err != nil {
			return usageError{err.Error()}
		}
	}
	// Ask for the password before opening the store, so a typo costs nothing.
	var pw string
	if sub == "add" {
		if pw, err = readNewPassword(os.Stdin, pos[0]); err != nil {
			return err
		}
	}
	defaults := daemon.DefaultConfig()
	db, err := sqlite.Open(dir, sqlite.WithLogger(defaults.Logger(stderr)))
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "add":
		h, err := password.Hash(pw, password.Default)
		if err != nil {
			return err
		}
		if err := db.AddReviewer(ctx, store.Reviewer{Username: pos[0], PasswordHash: h}); err != nil {
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("reviewer %q already exists (remove it first to change the password)", pos[0])
			}
			return err
		}
		fmt.Fprintf(stdout, "reviewer %s added\n", pos[0])
	case "remove":
		if err := db.RemoveReviewer(ctx, pos[0]); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no reviewer %q", pos[0])
			}
			return err
		}
		fmt.Fprintf(stdout, "reviewer %s removed; their sessions are logged out\n", pos[0])
	case "list":
		rs, err := db.Reviewers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tCREATED")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\n", r.Username, r.CreatedAt.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	}
	return nil
}

// resolveDataDir: flag, then environment, then the config file's data_dir, then the default.
func resolveDataDir(config, flagDir string, getenv func(string) string) (string, error) {
	if flagDir != "" {
		return flagDir, nil
	}
	if v := getenv("POWDO_DVM_DATA_DIR"); v != "" {
		return v, nil
	}
	if config == "" {
		config = getenv("POWDO_DVM_CONFIG")
	}
	if config != "" {
		f, err := os.Open(config)
		if err != nil {
			return "", fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		var c struct {
			DataDir string `json:"data_dir"`
		}
		if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&c); err != nil {
			return "", fmt.Errorf("config %s: %w", config, err)
		}
		if c.DataDir != "" {
			return c.DataDir, nil
		}
	}
	return daemon.DefaultConfig().DataDir, nil
}

func checkUsername(u string) error {
	if u == "" || len(u) > 64 {
		return errors.New("a username has 1 to 64 characters")
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._@-", c)) {
			return fmt.Errorf("username %q: use letters, digits and . _ @ - only", u)
		}
	}
	return nil
}

// readNewPassword reads the password: on a terminal it prompts twice with echo off;
// otherwise it takes the first line of in. It never comes from a flag, so it stays out
// of the process list and the shell history.
func readNewPassword(in *os.File, user string) (string, error) {
	if isTerminal(in) {
		pw, err := promptHidden(in, fmt.Sprintf("Password for %s: ", user))
		if err != nil {
			return "", err
		}
		if err := password.CheckPolicy(pw); err != nil {
			return "", err
		}
		again, err := promptHidden(in, "Repeat it: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords differ")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, password.MaxLength+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	if errors.Is(err, io.EOF) && line == "" {
		return "", errors.New("no password on standard input (pipe one line, or run on a terminal to be asked)")
	}
	pw := strings.TrimRight(line, "\r\n")
	if err := password.CheckPolicy(pw); err != nil {
		return "", err
	}
	return pw, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// promptHidden asks on stderr and reads one line from the terminal with echo off.
func promptHidden(in *os.File, prompt string) (string, error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReader(io.LimitReader(in, password.MaxLength+2)).ReadString('\n')
	fmt.Fprintln(stderr)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
