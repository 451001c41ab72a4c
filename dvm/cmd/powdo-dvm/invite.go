package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"pow.do/dvm/daemon"
	"pow.do/dvm/roster"
	"pow.do/dvm/store/sqlite"
)

func init() {
	register(command{
		name:    "invite",
		summary: "create a one-time invite for a new worker: registers it on the relays and prints the join link and a QR code",
		run:     runInvite,
	})
}

func runInvite(ctx context.Context, args []string) error {
	fs := newFlagSet("invite")
	flags := daemon.RegisterFlags(fs, false)
	name := fs.String("name", "", "the worker's `name` (shown in the roster and the tracker)")
	kimaiUser := fs.Int64("kimai-user", 0, "Kimai user `id` the worker books as (0: map later with `workers map`)")
	quota := fs.Int("quota", 0, "how many invites the new worker may issue on the relays in turn")
	expires := fs.Duration("expires", 72*time.Hour, "how long the invite stays valid")
	httpsHost := fs.String("https-host", "", "also print the https://`host`/join#… form of the link")
	noQR := fs.Bool("no-qr", false, "do not print the QR code")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || fs.NArg() > 0 {
		return usageError{"--name is required (and no other arguments)"}
	}
	cfg, err := flags.Resolve(os.Getenv)
	if err != nil {
		return usageError{err.Error()}
	}
	sk, err := daemon.ReadKey(cfg.KeyFile)
	if err != nil {
		return err
	}
	db, err := sqlite.Open(cfg.DataDir, sqlite.WithLogger(cfg.Logger(stderr)))
	if err != nil {
		return err
	}
	defer db.Close()
	m := &roster.Manager{Store: db, Relays: cfg.Relays, Blossoms: cfg.Blossoms, SecretKey: sk, Log: cfg.Logger(stderr)}
	c, err := m.CreateInvite(ctx, roster.InviteRequest{Name: *name, KimaiUserID: *kimaiUser, Quota: *quota, Expires: *expires})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Invite for %q, valid until %s (one use).\n", *name, c.Invite.ExpiresAt.Local().Format(time.RFC1123))
	fmt.Fprintln(stdout, "The link holds a secret key: hand it over privately, like a password.")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, c.Link.String())
	if *httpsHost != "" {
		fmt.Fprintln(stdout, c.Link.HTTPS(*httpsHost))
	}
	if !*noQR {
		qr, err := roster.QR(c.Link.String())
		if err != nil {
			fmt.Fprintf(stderr, "no QR code: %v\n", err)
		} else {
			fmt.Fprintln(stdout)
			fmt.Fprint(stdout, qr)
		}
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "Invite key %s. Once the worker joined, compare the six pairing words:\n  powdo-dvm workers list\n", c.Invite.Pubkey)
	return nil
}
