package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"pow.do/relay/strfry"
)

const strfrySynopsis = `powdo-relay strfry-policy: a write-policy plugin for strfry.

It reads strfry's plugin input on stdin (one JSON object per line) and answers one line each
on stdout, echoing the event id. It accepts only kind-1059 gift wraps whose single p tag is
an allowed recipient and, with --pow, that carry NIP-13 proof of work of that difficulty.

strfry does not pass the NIP-42 AUTHed key of the sender to plugins, and a wrap's author is
a one-time key, so this mode cannot check who sent a wrap, only to whom. Use powdo-relay
itself to also restrict senders.

In strfry.conf:  relay.writePolicy.plugin = "/usr/bin/powdo-relay strfry-policy --allowed-file /var/lib/powdo/allowed.txt"
(a command with spaces is run through the shell; a changed --allowed-file is re-read within a second).

Usage:
  powdo-relay strfry-policy [options]`

func runStrfry(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	var (
		file      string
		static    []string
		pow       int
		maxBytes  int
		logLevel  string
		logFormat string
	)
	fs := flag.NewFlagSet("powdo-relay strfry-policy", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by the caller
	fs.String("config", "", "optional config file of \"name = value\" lines")
	fs.StringVar(&file, "allowed-file", "", "allowed recipients: powdo-relay's access.json, or a text file of hex pubkeys/npubs, one per line")
	fs.Var(listValue{&static}, "allow", "allowed recipients, hex or npub (comma-separated, repeatable), e.g. the DVM")
	fs.IntVar(&pow, "pow", 0, "NIP-13 difficulty a wrap must carry (0: none)")
	fs.IntVar(&maxBytes, "max-event-bytes", 0, "largest event accepted, in bytes of JSON (0: strfry's own limit)")
	fs.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error (logs go to stderr, which strfry shows)")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	fs.Usage = func() {}
	if err := parseLayered(fs, args, getenv); err != nil {
		if err == flag.ErrHelp {
			printUsage(stdout, fs, strfrySynopsis)
			return 0
		}
		fmt.Fprintf(stderr, "powdo-relay strfry-policy: %v (see powdo-relay strfry-policy --help)\n", err)
		return 2
	}
	log, err := newLogger(stderr, logLevel, logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "powdo-relay strfry-policy: %v\n", err)
		return 2
	}
	slog.SetDefault(log)
	if file == "" && len(static) == 0 {
		fmt.Fprintln(stderr, "powdo-relay strfry-policy: give --allowed-file or --allow: with neither, every wrap would be refused")
		return 2
	}
	if pow < 0 || pow > 64 {
		fmt.Fprintln(stderr, "powdo-relay strfry-policy: --pow must be 0..64")
		return 2
	}
	list := &strfry.AllowList{Static: static, Path: file}
	if err := list.Load(); err != nil {
		fmt.Fprintf(stderr, "powdo-relay strfry-policy: %v\n", err)
		return 2
	}
	p := &strfry.Policy{Allowed: list.Allowed, MinPoW: pow, MaxEventBytes: maxBytes}
	if err := p.Run(stdin, stdout, log); err != nil {
		log.Error("strfry policy stopped", "err", err)
		return 1
	}
	return 0
}
