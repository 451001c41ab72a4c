package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/dvm/daemon"
	"pow.do/dvm/roster"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/invite"
	"pow.do/shared/proto"
)

func init() {
	register(command{
		name:    "workers",
		summary: "list the roster, remove a worker (also from the relays, with everyone they invited), or map a worker to a Kimai user",
		run:     runWorkers,
	})
}

const workersUsage = `subcommands:
  workers list [--all]             workers with their pairing words (--all: removed ones too)
  workers remove PUBKEY            take a worker off the roster and the relays
  workers map PUBKEY KIMAI_USER_ID book the worker's time as this Kimai user (0 unmaps)
PUBKEY is 64 hex characters or an npub.`

func runWorkers(ctx context.Context, args []string) error {
	fs := newFlagSet("workers")
	flags := daemon.RegisterFlags(fs, false)
	all := fs.Bool("all", false, "list: include removed workers")
	appendUsage(fs, workersUsage)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"name a subcommand: list, remove or map"}
	}
	sub := pos[0]
	pos = pos[1:]
	cfg, err := flags.Resolve(os.Getenv)
	if err != nil {
		return usageError{err.Error()}
	}
	db, err := sqlite.Open(cfg.DataDir, sqlite.WithLogger(cfg.Logger(stderr)))
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "list":
		if len(pos) != 0 {
			return usageError{"workers list takes no arguments"}
		}
		sk, err := daemon.ReadKey(cfg.KeyFile)
		if err != nil {
			return err
		}
		return listWorkers(ctx, db, sk, *all)
	case "remove":
		if len(pos) != 1 {
			return usageError{"workers remove PUBKEY"}
		}
		pk, err := parsePubkey(pos[0])
		if err != nil {
			return usageError{err.Error()}
		}
		sk, err := daemon.ReadKey(cfg.KeyFile)
		if err != nil {
			return err
		}
		m := &roster.Manager{Store: db, Relays: cfg.Relays, SecretKey: sk, Log: cfg.Logger(stderr)}
		res, err := m.Remove(ctx, pk)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s (%s)\n", pk, res.Worker.Name)
		for _, c := range res.Chain {
			fmt.Fprintf(stdout, "removed %s too: invited by it\n", c)
		}
		if len(res.RelayErrors) > 0 {
			for _, e := range res.RelayErrors {
				fmt.Fprintf(stderr, "relay not updated: %v\n", e)
			}
			return errors.New("the roster was updated but some relays were not: run the command again when they are reachable")
		}
		return nil
	case "map":
		if len(pos) != 2 {
			return usageError{"workers map PUBKEY KIMAI_USER_ID"}
		}
		pk, err := parsePubkey(pos[0])
		if err != nil {
			return usageError{err.Error()}
		}
		id, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil || id < 0 {
			return usageError{fmt.Sprintf("Kimai user id %q: want a number ≥ 0", pos[1])}
		}
		if err := db.MapWorker(ctx, pk, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mapped %s to Kimai user %d\n", pk, id)
		return nil
	}
	return usageError{fmt.Sprintf("unknown subcommand %q: want list, remove or map", sub)}
}

func listWorkers(ctx context.Context, st store.Store, sk string, all bool) error {
	ws, err := st.Workers(ctx, all)
	if err != nil {
		return err
	}
	dvm, _ := proto.PublicKey(sk)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPUBKEY\tKIMAI USER\tJOINED\tSTATE\tPAIRING WORDS")
	for _, w := range ws {
		kimaiUser, state := "-", "active"
		if w.KimaiUserID > 0 {
			kimaiUser = strconv.FormatInt(w.KimaiUserID, 10)
		}
		if !w.RemovedAt.IsZero() {
			state = "removed " + w.RemovedAt.Local().Format(time.DateOnly)
		}
		fp, _ := invite.Fingerprint(dvm, w.Pubkey)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.Name, w.Pubkey, kimaiUser, w.JoinedAt.Local().Format(time.DateTime), state, fp)
	}
	return tw.Flush()
}

func parsePubkey(s string) (string, error) {
	if len(s) > 5 && s[:5] == "npub1" {
		prefix, v, err := nip19.Decode(s)
		if err != nil || prefix != "npub" {
			return "", fmt.Errorf("%q is not a valid npub", s)
		}
		return v.(string), nil
	}
	if !proto.ValidPubkey(s) {
		return "", fmt.Errorf("%q is not a pubkey (64 lowercase hex characters or an npub)", s)
	}
	return s, nil
}
