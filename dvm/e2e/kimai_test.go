package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"pow.do/dvm/daemon"
	"pow.do/dvm/kimaiemu"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/proto"
)

// `powdo-dvm run --kimai-url`: the worker's catalogue comes from Kimai, and a session with
// a segment becomes a Kimai timesheet (against the Kimai API emulator).
func TestRunWithKimai(t *testing.T) {
	opts := kimaiemu.DefaultOptions()
	opts.LegacyDelayMin, opts.LegacyDelayMax = 0, 0
	opts.Logger = Quiet()
	emu, err := kimaiemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	kimai := httptest.NewServer(emu)
	defer kimai.Close()

	dvmBin := DVMBinary(t)
	dvm, worker := NewKey(), NewKey()
	relay := StartRelayProcess(t, RelayOptions{Admins: []string{dvm.PK}, Allow: []string{worker.PK}})
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	db, err := sqlite.Open(dataDir, sqlite.WithLogger(Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddWorker(context.Background(), store.Worker{Pubkey: worker.PK, Name: "Alice", KimaiUserID: 3}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	tokenFile := filepath.Join(dir, "kimai-token")
	os.WriteFile(tokenFile, []byte("demo-dvm-token\n"), 0o600)

	cfg := daemon.DefaultConfig()
	cfg.DataDir, cfg.Relays = dataDir, []string{relay.WS}
	cfg.KeyFile = WriteKeyFile(t, dir, dvm)
	cfg.Listen = freeAddr(t)
	cfg.KimaiURL, cfg.KimaiTokenFile = kimai.URL, tokenFile
	cfg.Policy.SegmentSeconds = 60
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "dvm.json")
	os.WriteFile(cfgPath, b, 0o600)
	logPath := filepath.Join(dir, "dvm.log")
	proc := startDVMProcess(t, dvmBin, cfgPath, cfg.Listen, logPath)
	defer proc.kill()

	tr := NewTracker(t, relay, worker, dvm.PK)
	ctx := context.Background()
	if _, err := tr.Send(ctx, proto.CatalogueRequest{To: dvm.PK}.Rumor(worker.PK)); err != nil {
		t.Fatal(err)
	}
	if !tr.WaitFor(30*time.Second, func() bool { return len(tr.Catalogues()) > 0 }) {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("no catalogue from Kimai\n%s", tail(b))
	}
	cat := tr.Catalogues()[0]
	if !hasProject(cat, 1, "Website") || hasProject(cat, 5, "Secret") {
		t.Fatalf("catalogue from Kimai: %+v", cat.Projects)
	}

	session := RandomSession()
	start := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	st := proto.SessionStart{To: dvm.PK, Session: session, Project: 1, Activity: 1, Start: start, Memo: "homepage"}
	if _, err := tr.Send(ctx, st.Rumor(worker.PK)); err != nil {
		t.Fatal(err)
	}
	w := &world{relay: relay, dvm: dvm, tracker: tr}
	seg := Segment{Session: session, Index: 0, Start: start, End: start.Add(time.Minute), Project: 1, Activity: 1, Events: 100, JPEG: ScreenshotJPEG()}
	_, id := w.sendSegment(t, seg)
	if rc := tr.WaitReceipt(t, id, 30*time.Second); rc.Status != proto.StatusAccepted {
		t.Fatalf("segment: %+v", rc)
	}
	if err := Eventually(30*time.Second, func() error {
		if n := emu.TimesheetCount(); n < 1 {
			return errors.New("no timesheet in Kimai yet")
		}
		return nil
	}); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%v\n%s", err, tail(b))
	}
	if n := emu.TimesheetCount(); n != 1 {
		t.Fatal(fmt.Sprintf("%d timesheets, want 1", n))
	}
}

func hasProject(c proto.Catalogue, id int64, name string) bool {
	for _, p := range c.Projects {
		if p.ID == id && p.Name == name {
			return true
		}
	}
	return false
}
