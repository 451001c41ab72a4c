package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/daemon"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/proto"
)

// dvmProcess is powdo-dvm run as a child process.
type dvmProcess struct {
	cmd  *exec.Cmd
	done chan error
	url  string
	log  string
}

func startDVMProcess(t *testing.T, bin, configPath, listen, logPath string) *dvmProcess {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", configPath, "--log-format", "json", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p := &dvmProcess{cmd: cmd, done: make(chan error, 1), url: "http://" + listen, log: logPath}
	go func() { p.done <- cmd.Wait() }()
	if err := Eventually(30*time.Second, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("powdo-dvm exited: %v", err)
		default:
		}
		code, err := httpGet(p.url + "/readyz")
		if err == nil && code != 200 {
			err = fmt.Errorf("readyz %d", code)
		}
		return err
	}); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("powdo-dvm not ready: %v\n%s", err, tail(b))
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *dvmProcess) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	}
}

// term stops the process with SIGTERM (graceful shutdown) and waits.
func (p *dvmProcess) term(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("powdo-dvm exit after SIGTERM: %v\n%s", err, tail(b))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("powdo-dvm ignored SIGTERM")
	}
}

func tail(b []byte) string {
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// kill -9 of the DVM in the middle of a stream of segments, a backdated wrap sent while it
// is down, then a restart: every segment stored exactly once, every message answered.
func TestKillNineMidStream(t *testing.T) {
	dvmBin := DVMBinary(t)
	dvm, worker := NewKey(), NewKey()
	relay := StartRelayProcess(t, RelayOptions{Admins: []string{dvm.PK}, Allow: []string{worker.PK}})
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	addWorker(t, dataDir, worker.PK, "Alice")

	cfg := daemon.DefaultConfig()
	cfg.DataDir, cfg.Relays = dataDir, []string{relay.WS}
	cfg.KeyFile = WriteKeyFile(t, dir, dvm)
	cfg.Listen = freeAddr(t)
	cfg.Workers = 2
	cfg.Projects, cfg.Activities = testProjects, testActivities
	cfg.RetryMin, cfg.RetryMax = daemon.Duration(100*time.Millisecond), daemon.Duration(time.Second)
	cfg.ReconnectMin, cfg.ReconnectMax = daemon.Duration(100*time.Millisecond), daemon.Duration(time.Second)
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "dvm.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "dvm.log")
	proc := startDVMProcess(t, dvmBin, cfgPath, cfg.Listen, logPath)
	tr := NewTracker(t, relay, worker, dvm.PK)
	ctx := context.Background()

	// Prepare and upload a chained session of segments, then send them all at once.
	const n = 12
	session := RandomSession()
	end := time.Now().UTC().Truncate(time.Second).Add(-time.Duration(n+2) * 20 * time.Second)
	var rumors []nostr.Event
	prev := ""
	for i := 0; i <= n; i++ { // segment n is sent later, backdated, while the DVM is down
		s := Segment{Session: session, Index: i, Start: end, End: end.Add(20 * time.Second), Project: 1, Activity: 5,
			Prev: prev, Events: 100, JPEG: ScreenshotJPEG()}
		end = s.End
		p, err := tr.Prepare(s, relay.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Upload(ctx, relay.HTTP, p.Sealed.Ciphertext); err != nil {
			t.Fatal(err)
		}
		prev = p.Sealed.OX
		rumors = append(rumors, p.Rumor(worker.PK))
	}
	for _, r := range rumors[:n] {
		if _, err := tr.Send(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Kill as soon as the first receipt is out: the rest are in flight or waiting.
	if !tr.WaitFor(30*time.Second, func() bool { return answered(tr, rumors[:n]) >= 1 }) {
		t.Fatal("no receipt before the kill")
	}
	proc.kill()
	before := answered(tr, rumors[:n])
	t.Logf("killed with %d of %d segments answered", before, n)

	old := craftWrap(t, craft{rumor: rumors[n], sealSK: worker.SK, to: dvm.PK, pTag: dvm.PK,
		createdAt: nostr.Timestamp(time.Now().Add(-47 * time.Hour).Unix())})
	if err := tr.Publish(ctx, old); err != nil {
		t.Fatal(err)
	}

	proc = startDVMProcess(t, dvmBin, cfgPath, cfg.Listen, logPath)
	if !tr.WaitFor(60*time.Second, func() bool { return answered(tr, rumors) == len(rumors) }) {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%d of %d messages answered after the restart\n%s", answered(tr, rumors), len(rumors), tail(b))
	}
	accepted := 0
	for _, r := range rumors {
		for _, rc := range tr.Receipts(r.ID) {
			if !rc.Status.Delivered() {
				t.Fatalf("segment %d: receipt %+v", rc.Index, rc)
			}
			if rc.Status == proto.StatusAccepted {
				accepted++
			}
		}
	}
	if accepted > len(rumors) {
		t.Fatalf("%d accepted receipts for %d segments", accepted, len(rumors))
	}
	proc.term(t)

	db, err := sqlite.Open(dataDir, sqlite.WithLogger(Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	segs, err := db.SessionSegments(ctx, session)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != len(rumors) {
		t.Fatalf("%d segments stored, want %d", len(segs), len(rumors))
	}
	for i, s := range segs {
		if s.Index != i || s.ChainStatus != store.ChainVerified || s.RumorID != rumors[i].ID || s.ScreenshotCount != 1 {
			t.Fatalf("segment %d: index %d chain %s rumor %s shots %d", i, s.Index, s.ChainStatus, s.RumorID, s.ScreenshotCount)
		}
	}
	if err := Eventually(10*time.Second, func() error {
		if err := noWrapsLeft(relay, dvm); err != nil {
			return errors.New("wraps left on the relay after the restart: " + err.Error())
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// answered counts the rumors with at least one receipt.
func answered(tr *Tracker, rumors []nostr.Event) int {
	n := 0
	for _, r := range rumors {
		if len(tr.Receipts(r.ID)) > 0 {
			n++
		}
	}
	return n
}
