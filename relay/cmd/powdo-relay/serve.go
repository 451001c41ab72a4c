package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"pow.do/relay/server"
)

type serveOptions struct {
	cfg       server.Config
	logLevel  string
	logFormat string
	addrFile  string
	config    string
}

func serveFlags(o *serveOptions, stderr io.Writer) *flag.FlagSet {
	d := server.Defaults()
	o.cfg = d
	c := &o.cfg
	fs := flag.NewFlagSet("powdo-relay", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by the caller
	fs.StringVar(&o.config, "config", "", "optional config file of \"name = value\" lines")
	fs.StringVar(&c.Listen, "listen", d.Listen, "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&c.DataDir, "data-dir", "", "directory for events, blobs and the whitelist (default: $STATE_DIRECTORY under systemd, else ./powdo-relay-data)")
	fs.StringVar(&c.PublicURL, "public-url", "", "public URL clients use, e.g. wss://relay.example.com behind a TLS proxy (needed for NIP-42 and NIP-98 checks and blob URLs)")
	fs.StringVar(&c.Name, "name", d.Name, "relay name (NIP-11)")
	fs.StringVar(&c.Description, "description", d.Description, "relay description (NIP-11)")
	fs.StringVar(&c.Contact, "contact", "", "operator contact (NIP-11)")
	fs.Var(listValue{&c.Admins}, "admin", "admin pubkeys, hex or npub (comma-separated, repeatable): every management method, delete any blob")
	fs.Var(listValue{&c.Allow}, "allow", "pubkeys always allowed, hex or npub (comma-separated, repeatable), e.g. the DVM")
	fs.IntVar(&c.MaxEventBytes, "max-event-bytes", d.MaxEventBytes, "largest event accepted, in bytes of JSON")
	fs.Var(sizeValue{&c.MaxBlobBytes}, "max-blob-size", "largest blob accepted (bytes, or with KiB/MiB/GiB)")
	fs.Var(sizeValue{&c.BlobQuotaBytes}, "blob-quota", "storage quota for blobs; above it the oldest are deleted first (-1: none)")
	fs.Var(durationValue{&c.BlobTTL}, "blob-ttl", "blobs are deleted this long after upload (e.g. 7d, 36h)")
	fs.Var(durationValue{&c.WrapTTL}, "wrap-ttl", "wraps and deletion requests are deleted this long after their created_at (wraps may be backdated up to 2 days)")
	fs.Var(durationValue{&c.SweepInterval}, "sweep-interval", "how often the sweeper runs")
	fs.Var(durationValue{&c.MaxInviteTTL}, "max-invite-ttl", "longest lifetime of an invite key")
	fs.IntVar(&c.MinPoW, "min-pow", 0, "NIP-13 proof-of-work difficulty required on wraps (0: none)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", d.MaxConnsPerIP, "websocket connections allowed per client IP (-1: unlimited)")
	fs.IntVar(&c.EventsPerMinutePubkey, "events-per-minute-pubkey", d.EventsPerMinutePubkey, "events (and REQs) per minute per AUTHed pubkey (-1: unlimited)")
	fs.IntVar(&c.EventsPerMinuteIP, "events-per-minute-ip", d.EventsPerMinuteIP, "events per minute per client IP (-1: unlimited)")
	fs.IntVar(&c.UploadsPerMinutePubkey, "uploads-per-minute-pubkey", d.UploadsPerMinutePubkey, "blob uploads per minute per pubkey (-1: unlimited)")
	fs.IntVar(&c.UploadsPerMinuteIP, "uploads-per-minute-ip", d.UploadsPerMinuteIP, "blob uploads per minute per client IP (-1: unlimited)")
	fs.IntVar(&c.ManagePerMinuteIP, "manage-per-minute-ip", d.ManagePerMinuteIP, "NIP-86 management calls per minute per client IP (-1: unlimited)")
	fs.StringVar(&c.BlossomList, "blossom-list", d.BlossomList, "GET /list/<pubkey>: own (a key lists only its own blobs) or off")
	fs.BoolVar(&c.BlossomGetAuth, "blossom-get-auth", false, "require a BUD-11 get token from an allowed key to download blobs (tokens are always checked when sent)")
	fs.Var(listValue{&c.MirrorHosts}, "mirror-hosts", "hosts (host or host:port) PUT /mirror may fetch from, comma-separated; empty: mirroring off")
	fs.Var(durationValue{&c.UploadTimeout}, "upload-timeout", "longest time one upload body may take")
	fs.Var(durationValue{&c.ShutdownTimeout}, "shutdown-timeout", "on SIGTERM, how long to wait for in-flight uploads")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", false, "take the client IP from X-Forwarded-For (only behind your own proxy)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.addrFile, "addr-file", "", "write the bound address (host:port) to this file once listening")
	return fs
}

const serveSynopsis = `powdo-relay: the pow.do public server, a whitelisted Nostr relay and Blossom store on one port.

Usage:
  powdo-relay [serve] [options]        run the server
  powdo-relay strfry-policy [options]  strfry write-policy plugin (see: powdo-relay strfry-policy --help)
  powdo-relay version`

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// runServe returns the process exit code.
func runServe(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var o serveOptions
	fs := serveFlags(&o, stderr)
	fs.Usage = func() {} // --help prints to stdout below; errors print one line
	if err := parseLayered(fs, args, getenv); err != nil {
		if err == flag.ErrHelp {
			printUsage(stdout, fs, serveSynopsis)
			return 0
		}
		fmt.Fprintf(stderr, "powdo-relay: %v (see powdo-relay --help)\n", err)
		return 2
	}
	log, err := newLogger(stderr, o.logLevel, o.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "powdo-relay: %v\n", err)
		return 2
	}
	if o.cfg.DataDir == "" {
		if sd := getenv("STATE_DIRECTORY"); sd != "" {
			o.cfg.DataDir = strings.Split(sd, ":")[0]
		} else {
			o.cfg.DataDir = "powdo-relay-data"
		}
	}
	o.cfg.Logger = log
	slog.SetDefault(log) // the log package's output (badger's migrations, khatru) goes to slog too
	srv, err := server.New(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "powdo-relay: %v\n", err)
		return 2
	}
	addr, err := srv.Start()
	if err != nil {
		fmt.Fprintf(stderr, "powdo-relay: %v\n", err)
		srv.Shutdown(context.Background())
		return 1
	}
	if o.addrFile != "" {
		if err := writeFileAtomic(o.addrFile, []byte(addr+"\n")); err != nil {
			log.Error("addr file", "err", err)
		}
	}
	fmt.Fprintf(stdout, "powdo-relay listening on %s\n", addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	log.Info("shutting down", "signal", s.String(), "grace", o.cfg.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
