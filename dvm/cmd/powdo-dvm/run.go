package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"pow.do/dvm/catalogue"
	"pow.do/dvm/daemon"
	"pow.do/dvm/kimai"
	"pow.do/dvm/kimaisync"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/proto"
)

func init() {
	register(command{
		name:    "run",
		summary: "run the DVM: receive gift wraps from the relays, verify and store work proofs, send receipts, sync Kimai",
		run:     runDaemon,
	})
}

func runDaemon(ctx context.Context, args []string) error {
	fs := newFlagSet("run")
	flags := daemon.RegisterFlags(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	cfg, err := flags.Resolve(os.Getenv)
	if err != nil {
		return usageError{err.Error()}
	}
	log := cfg.Logger(stderr)
	slog.SetDefault(log)
	// Refuse a bad key before touching the data directory.
	sk, err := daemon.ReadKey(cfg.KeyFile)
	if err != nil {
		return err
	}
	db, err := sqlite.Open(cfg.DataDir, sqlite.WithLogger(log))
	if err != nil {
		return err
	}
	defer db.Close()
	dia, err := openDiary(cfg, sk, db)
	if err != nil {
		return err
	}

	opts := daemon.Options{Store: db, Logger: log}
	var d *daemon.Daemon
	if cfg.KimaiURL != "" {
		secret, err := daemon.ReadSecretFile(cfg.KimaiTokenFile)
		if err != nil {
			return fmt.Errorf("Kimai token: %w", err)
		}
		kc := kimai.Config{BaseURL: cfg.KimaiURL, Logger: log, UserAgent: "powdo-dvm"}
		if cfg.KimaiLegacyUser != "" {
			kc.Username, kc.Password = cfg.KimaiLegacyUser, secret
		} else {
			kc.Token = secret
		}
		client, err := kimai.New(kc)
		if err != nil {
			return fmt.Errorf("Kimai client: %w", err)
		}
		syncer, err := kimaisync.New(kimaisync.Config{
			Store: db, Kimai: client, DiaryBaseURL: cfg.DiaryURL, Logger: log,
			SegmentLength: time.Duration(cfg.Policy.SegmentSeconds) * time.Second,
			Grace:         time.Duration(cfg.Policy.ReviewSeconds) * time.Second,
		})
		if err != nil {
			return err
		}
		cat, err := catalogue.New(catalogue.Config{
			Kimai: client, Roster: db, Policy: cfg.Policy, Logger: log,
			StatePath: filepath.Join(cfg.DataDir, "catalogue.json"),
			Notify: func(ctx context.Context, worker string, c proto.Catalogue) error {
				if d == nil {
					return errors.New("daemon not started yet")
				}
				return d.NotifyCatalogue(ctx, worker, c)
			},
			// Every poll (the first at start-up) tells the work diary each worker's Kimai zone.
			WorkerZones: func(_ context.Context, zones map[string]string) { dia.SetKimaiZones(zones) },
		})
		if err != nil {
			return err
		}
		opts.Segments, opts.Sessions, opts.Catalogue = syncer, syncer, cat
		opts.Background = append(opts.Background, syncer.Run, cat.Run)
	} else {
		log.Warn("no --kimai-url: Kimai sync is off; workers get the static catalogue from the config file",
			"projects", len(cfg.Projects), "activities", len(cfg.Activities))
	}
	d, err = daemon.New(cfg, opts)
	if err != nil {
		return err
	}
	// The work diary rides on the daemon's HTTP server (--listen), at its root; /healthz,
	// /readyz and /metrics keep their own, more specific, routes.
	d.Mux().Handle("/", dia)
	return d.Run(ctx)
}
