package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"pow.do/dvm/kimaiemu"
)

func init() {
	register(command{
		name:    "kimai-emulator",
		summary: "serve an emulator of Kimai 2.x's REST API for tests and demos (a stand-in, not Kimai)",
		run:     runKimaiEmulator,
	})
}

func runKimaiEmulator(ctx context.Context, args []string) error {
	fs := newFlagSet("kimai-emulator")
	listen := fs.String("listen", "127.0.0.1:8001", "address to listen on (host:port; port 0 picks a free port)")
	statePath := fs.String("state", "", "JSON `file` keeping timesheets and tags across restarts (default: memory only)")
	seedPath := fs.String("seed", "", "JSON `file` with users, customers, projects, activities, tags and timesheet settings\n(default: built-in demo data)")
	legacyDelay := fs.Bool("legacy-delay", true, "slow every X-AUTH (legacy) request by 200–500 ms, as Kimai does")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}

	opts := kimaiemu.DefaultOptions()
	if *seedPath != "" {
		seed, err := kimaiemu.LoadSeed(*seedPath)
		if err != nil {
			return err
		}
		opts.Seed = seed
	}
	opts.StatePath = *statePath
	if !*legacyDelay {
		opts.LegacyDelayMin, opts.LegacyDelayMax = 0, 0
	}
	opts.Logger = slog.Default()
	emu, err := kimaiemu.New(opts)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		slog.Warn("kimai emulator listens beyond loopback; its demo credentials are public", "addr", ln.Addr().String())
	}
	srv := &http.Server{
		Handler:           emu,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}

	fmt.Fprintf(stdout, "Kimai API emulator (a stand-in for tests and demos, not Kimai) listening on http://%s\n", ln.Addr())
	fmt.Fprintln(stdout, "Demo accounts (Authorization: Bearer TOKEN, or X-AUTH-USER/X-AUTH-TOKEN):")
	for _, u := range emu.Users() {
		if u.Disabled {
			continue
		}
		fmt.Fprintf(stdout, "  %-10s id=%-3d %-16s %-18s token=%s", u.Username, u.ID, rolesOf(u), u.Timezone, u.APIToken)
		if u.APIPassword != "" {
			fmt.Fprintf(stdout, " api-password=%s", u.APIPassword)
		}
		fmt.Fprintln(stdout)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	slog.Info("kimai emulator stopped")
	return nil
}

func rolesOf(u kimaiemu.User) string {
	if len(u.Roles) == 0 {
		return kimaiemu.RoleUser
	}
	s := u.Roles[0]
	for _, r := range u.Roles[1:] {
		s += "," + r
	}
	return s
}
