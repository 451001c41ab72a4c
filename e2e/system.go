package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"pow.do/dvm/kimaiemu"
	"pow.do/shared/proto"
)

// SystemConfig shapes one pow.do installation on 127.0.0.1.
type SystemConfig struct {
	Dir    string       // everything lives below it: data dirs and logs/
	Policy proto.Policy // capture policy the DVM sends to trackers
	// Kimai runs the emulator and connects the DVM to it; KimaiWorkers extra seed users
	// (ids KimaiFirstWorkerID…) give every tracker its own Kimai account.
	Kimai        bool
	KimaiWorkers int
	// Static catalogue used without Kimai.
	Projects   []proto.Project
	Activities []proto.Activity
	// DVMWorkers is the DVM's ingest pool size (0: its default).
	DVMWorkers int
}

// KimaiFirstWorkerID is the Kimai user id of the first extra seed user.
const KimaiFirstWorkerID = 101

// KimaiAdminToken is the emulator's built-in admin token (its demo seed).
const KimaiAdminToken = "demo-admin-token"

// kimaiDVMToken is the emulator's built-in teamlead account the DVM books with.
const kimaiDVMToken = "demo-dvm-token"

// System is a running relay (with its Blossom store), DVM and optional Kimai emulator.
// Blossom is reached through Proxy, which the test can switch off.
type System struct {
	Cfg  SystemConfig
	Bins Binaries

	RelayPort, BlossomPort, DVMPort, KimaiPort int
	Relay, DVM, Kimai                          *Proc
	Blossom                                    *Proxy

	DVMPub                  string
	KeyFile, DVMConfig      string
	RelayDir, DVMDir        string
	KimaiState, KimaiSeed   string
	KimaiTokenFile, LogsDir string
}

// RelayURL is the relay's websocket URL.
func (s *System) RelayURL() string { return fmt.Sprintf("ws://127.0.0.1:%d", s.RelayPort) }

// RelayHTTP is the relay's HTTP base URL (health, metrics, direct Blossom).
func (s *System) RelayHTTP() string { return fmt.Sprintf("http://127.0.0.1:%d", s.RelayPort) }

// BlossomURL is the Blossom URL trackers and the DVM use: the switchable proxy.
func (s *System) BlossomURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.BlossomPort) }

// DVMHTTP is the DVM's health/metrics/diary base URL.
func (s *System) DVMHTTP() string { return fmt.Sprintf("http://127.0.0.1:%d", s.DVMPort) }

// KimaiURL is the emulator's base URL.
func (s *System) KimaiURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.KimaiPort) }

// DVMDB is the DVM's SQLite file.
func (s *System) DVMDB() string { return filepath.Join(s.DVMDir, "dvm.db") }

// dvmCommon are the flags run, invite and workers share.
func (s *System) dvmCommon() []string {
	return []string{"--config", s.DVMConfig, "--data-dir", s.DVMDir, "--key-file", s.KeyFile,
		"--relay", s.RelayURL(), "--blossom", s.BlossomURL()}
}

var pubkeyLine = regexp.MustCompile(`(?m)^pubkey ([0-9a-f]{64})$`)

// NewSystem prepares directories, the DVM key, configuration files and the processes;
// Start runs them.
func NewSystem(tb testing.TB, bins Binaries, cfg SystemConfig) *System {
	tb.Helper()
	s := &System{Cfg: cfg, Bins: bins}
	s.LogsDir = filepath.Join(cfg.Dir, "logs")
	s.RelayDir = filepath.Join(cfg.Dir, "relay")
	s.DVMDir = filepath.Join(cfg.Dir, "dvm")
	for _, d := range []string{s.LogsDir, s.RelayDir, s.DVMDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	s.RelayPort, s.BlossomPort, s.DVMPort, s.KimaiPort = FreePort(tb), FreePort(tb), FreePort(tb), FreePort(tb)

	s.KeyFile = filepath.Join(cfg.Dir, "dvm-key")
	out, err := RunCmd(context.Background(), nil, bins.DVM, "keygen", "--out", s.KeyFile)
	if err != nil {
		tb.Fatalf("dvm keygen: %v", err)
	}
	m := pubkeyLine.FindStringSubmatch(out)
	if m == nil {
		tb.Fatalf("dvm keygen printed no \"pubkey <hex>\" line:\n%s", out)
	}
	s.DVMPub = m[1]

	conf := map[string]any{
		"policy":         cfg.Policy,
		"retry_min":      "1s",
		"retry_max":      "8s",
		"reconnect_min":  "300ms",
		"reconnect_max":  "3s",
		"shutdown_grace": "5s",
	}
	if len(cfg.Projects) > 0 {
		conf["projects"], conf["activities"] = cfg.Projects, cfg.Activities
	}
	s.DVMConfig = filepath.Join(cfg.Dir, "dvm.json")
	writeJSON(tb, s.DVMConfig, conf, 0o600)

	s.Relay = &Proc{Name: "relay", Bin: bins.Relay, Log: filepath.Join(s.LogsDir, "relay.log"), Args: []string{
		"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", s.RelayPort), "--data-dir", s.RelayDir,
		"--admin", s.DVMPub, "--shutdown-timeout", "5s",
		// Every tracker connects from 127.0.0.1: the per-IP limits would throttle the test,
		// not an abuser.
		"--max-conns-per-ip", "-1", "--events-per-minute-ip", "-1", "--events-per-minute-pubkey", "-1",
		"--uploads-per-minute-ip", "-1", "--uploads-per-minute-pubkey", "-1", "--manage-per-minute-ip", "-1",
	}}
	s.Blossom = NewProxy(fmt.Sprintf("127.0.0.1:%d", s.BlossomPort), fmt.Sprintf("127.0.0.1:%d", s.RelayPort))

	dvmArgs := append([]string{"run"}, s.dvmCommon()...)
	dvmArgs = append(dvmArgs, "--listen", fmt.Sprintf("127.0.0.1:%d", s.DVMPort), "--diary-url", s.DVMHTTP())
	if cfg.DVMWorkers > 0 {
		dvmArgs = append(dvmArgs, "--workers", strconv.Itoa(cfg.DVMWorkers))
	}
	if cfg.Kimai {
		s.KimaiState = filepath.Join(cfg.Dir, "kimai-state.json")
		s.KimaiSeed = filepath.Join(cfg.Dir, "kimai-seed.json")
		seed := kimaiemu.DemoSeed()
		for i := 0; i < cfg.KimaiWorkers; i++ {
			id := int64(KimaiFirstWorkerID + i)
			seed.Users = append(seed.Users, kimaiemu.User{ID: id, Username: fmt.Sprintf("worker%d", id),
				Alias: fmt.Sprintf("Worker %d", id), Timezone: "UTC", Roles: []string{kimaiemu.RoleUser}})
		}
		writeJSON(tb, s.KimaiSeed, seed, 0o600)
		s.Kimai = &Proc{Name: "kimai", Bin: bins.DVM, Log: filepath.Join(s.LogsDir, "kimai.log"), Args: []string{
			"kimai-emulator", "--listen", fmt.Sprintf("127.0.0.1:%d", s.KimaiPort),
			"--state", s.KimaiState, "--seed", s.KimaiSeed, "--legacy-delay=false"}}
		s.KimaiTokenFile = filepath.Join(cfg.Dir, "kimai-token")
		if err := os.WriteFile(s.KimaiTokenFile, []byte(kimaiDVMToken+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
		dvmArgs = append(dvmArgs, "--kimai-url", s.KimaiURL(), "--kimai-token-file", s.KimaiTokenFile)
	}
	s.DVM = &Proc{Name: "dvm", Bin: bins.DVM, Log: filepath.Join(s.LogsDir, "dvm.log"), Args: dvmArgs}
	return s
}

func writeJSON(tb testing.TB, path string, v any, mode os.FileMode) {
	tb.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		tb.Fatal(err)
	}
}

// Start starts every service and waits until each answers its health check.
func (s *System) Start(ctx context.Context) error {
	if s.Kimai != nil {
		if err := s.StartKimai(ctx); err != nil {
			return err
		}
	}
	if err := s.StartRelay(ctx); err != nil {
		return err
	}
	if err := s.Blossom.Enable(); err != nil {
		return err
	}
	return s.StartDVM(ctx)
}

func (s *System) startAndWait(ctx context.Context, p *Proc, health string) error {
	if err := p.Start(); err != nil {
		return err
	}
	err := WaitFor(ctx, p.Name+" health", 30*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited: %v", p.Name, p.ExitErr())
		default:
		}
		return HTTPOK(health)()
	})
	if err != nil {
		return fmt.Errorf("%w\n--- %s (%s) ---\n%s", err, p.Name, p.Log, p.Tail(3000))
	}
	return nil
}

// StartRelay (re)starts the relay and waits for /healthz.
func (s *System) StartRelay(ctx context.Context) error {
	return s.startAndWait(ctx, s.Relay, s.RelayHTTP()+"/healthz")
}

// StartDVM (re)starts the DVM and waits for /healthz.
func (s *System) StartDVM(ctx context.Context) error {
	return s.startAndWait(ctx, s.DVM, s.DVMHTTP()+"/healthz")
}

// StartKimai (re)starts the emulator and waits for /api/ping.
func (s *System) StartKimai(ctx context.Context) error {
	if err := s.Kimai.Start(); err != nil {
		return err
	}
	err := WaitFor(ctx, "kimai ping", 30*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-s.Kimai.Exited():
			return fmt.Errorf("kimai exited: %v", s.Kimai.ExitErr())
		default:
		}
		_, err := s.KimaiGET(ctx, "/api/ping")
		return err
	})
	if err != nil {
		return fmt.Errorf("%w\n--- kimai (%s) ---\n%s", err, s.Kimai.Log, s.Kimai.Tail(3000))
	}
	return nil
}

// Stop stops every service gently (SIGTERM) and closes the proxy.
func (s *System) Stop() {
	for _, p := range []*Proc{s.DVM, s.Relay, s.Kimai} {
		if p != nil {
			p.Stop(15 * time.Second)
		}
	}
	s.Blossom.Close()
}

var inviteLink = regexp.MustCompile(`(?m)^(powdo://join\?\S+)$`)

// Invite creates a one-time invite with `powdo-dvm invite` and returns its link.
func (s *System) Invite(ctx context.Context, name string, kimaiUser int64) (string, error) {
	args := append([]string{"invite"}, s.dvmCommon()...)
	args = append(args, "--name", name, "--no-qr", "--expires", "2h")
	if kimaiUser > 0 {
		args = append(args, "--kimai-user", strconv.FormatInt(kimaiUser, 10))
	}
	out, err := RunCmd(ctx, nil, s.Bins.DVM, args...)
	if err != nil {
		return "", fmt.Errorf("invite %s: %w", name, err)
	}
	m := inviteLink.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("invite %s: no powdo://join link in the output (%d bytes)", name, len(out))
	}
	return strings.TrimSpace(m[1]), nil
}
