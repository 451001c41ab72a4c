// Command powdo-dvm is pow.do's private daemon and its operator CLI.
//
// Every subcommand lives in its own file and registers itself from an
// init function:
//
//	func init() {
//		register(command{name: "workers", summary: "…", run: runWorkers})
//	}
//
// run receives the arguments after the command name and a context that is
// cancelled on SIGINT/SIGTERM. Parse flags with newFlagSet/parseFlags so
// "powdo-dvm NAME --help" works the same everywhere.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

// register adds a subcommand; names are unique.
func register(c command) {
	if c.name == "" || c.run == nil {
		panic("powdo-dvm: command without name or run")
	}
	if _, dup := commands[c.name]; dup {
		panic("powdo-dvm: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// Output streams; variables so in-process tests can capture them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// usageError marks bad invocations (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(stdout)
		return 0
	case "help":
		if len(args) > 1 {
			return dispatch(ctx, []string{args[1], "--help"})
		}
		printUsage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "powdo-dvm: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	err := c.run(ctx, args[1:])
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "powdo-dvm %s: %v (see powdo-dvm %s --help)\n", c.name, err, c.name)
		return 2
	default:
		fmt.Fprintf(stderr, "powdo-dvm %s: %v\n", c.name, err)
		return 1
	}
}

func printUsage(w io.Writer) {
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: powdo-dvm COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "pow.do's private daemon (DVM) and its operator tools.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "powdo-dvm COMMAND --help" for a command's flags.`)
}

// newFlagSet returns the flag set of a registered command; its usage text
// starts with the command's summary.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("powdo-dvm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: powdo-dvm %s [flags]\n\n%s\n\nFlags:\n", name, commands[name].summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args. An explicit --help prints the usage to stdout
// and returns flag.ErrHelp; a bad flag returns a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	fs.SetOutput(io.Discard) // report the error once, through dispatch
	if err := fs.Parse(args); err != nil {
		return usageError{strings.TrimSpace(err.Error())}
	}
	return nil
}

// parseInterspersed parses args whose flags may come before, between or after the
// positional arguments (a subcommand and its operands), and returns those in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return nil, err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
}

// appendUsage makes the flag set's usage end with text (the subcommands).
func appendUsage(fs *flag.FlagSet, text string) {
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), text)
	}
}
