// Command e2eserver runs the work diary over a store filled through the real ingest path
// (diarytest's standard scenario), for the browser test in dvm/diary/e2e. It reads the
// reviewer password from the first line of standard input, prints one JSON line with the
// URL and the scenario's facts, and serves until standard input closes or it is signalled.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/diary"
	seed "pow.do/dvm/diary/diarytest"
	"pow.do/dvm/diary/password"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2eserver:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (loopback only)")
	user := flag.String("user", "e2e", "reviewer username to create")
	flag.Parse()
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		return fmt.Errorf("listen %q: loopback only", *listen)
	}
	pw, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the reviewer password from stdin: %w", err)
	}
	pw = strings.TrimRight(pw, "\r\n")

	dir, err := os.MkdirTemp("", "powdo-diary-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	clock := seed.NewClock(seed.StandardNow)
	now := clock.Now
	db, err := sqlite.Open(dir+"/data", sqlite.WithClock(now), sqlite.WithLogger(log))
	if err != nil {
		return err
	}
	defer db.Close()
	sk := nostr.GeneratePrivateKey()
	env, err := seed.Start(db, sk, now)
	if err != nil {
		return err
	}
	ctx := context.Background()
	env.Clock = clock
	data, err := seed.Standard(ctx, env)
	env.Close()
	if err != nil {
		return err
	}
	clock.Set(seed.StandardNow)
	h, err := password.Hash(pw, password.Default)
	if err != nil {
		return err
	}
	if err := db.AddReviewer(ctx, store.Reviewer{Username: *user, PasswordHash: h}); err != nil {
		return err
	}
	d, err := diary.Open(db, diary.Options{CacheDir: dir + "/diary", SecretKey: sk, Log: log, Now: now})
	if err != nil {
		return err
	}
	if err := d.SetWorkerZone(data.Alice.Pub, data.AliceZone.String()); err != nil {
		return err
	}
	if err := d.SetWorkerZone(data.Bob.Pub, data.BobZone.String()); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	info := map[string]any{
		"url": "http://" + ln.Addr().String(), "user": *user,
		"worker": data.Alice.Pub, "worker_name": data.Alice.Name, "worker_zone": data.AliceZone.String(),
		"day": data.Monday.String(), "timesheet": seed.TimesheetAlice,
	}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return err
	}

	stop, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	eof := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(eof)
				return
			}
		}
	}()
	select {
	case <-stop.Done():
	case <-eof:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
