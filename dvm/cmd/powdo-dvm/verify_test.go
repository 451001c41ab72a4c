package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip19"

	"pow.do/dvm/diary"
	"pow.do/dvm/diary/diarytest"
	"pow.do/dvm/diary/evidence"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
)

// exportFile stores one session of four segments through the real ingest path and writes
// its evidence export to a file.
func exportFile(t *testing.T) (path, session, dvm string) {
	t.Helper()
	dir := t.TempDir()
	now := func() time.Time { return diarytest.StandardNow }
	db, err := sqlite.Open(filepath.Join(dir, "data"), sqlite.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sk := nostr.GeneratePrivateKey()
	env, err := diarytest.Start(db, sk, now)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ctx := context.Background()
	w, err := env.AddWorker(ctx, "Vera")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)
	sent, err := env.Run(ctx, w, diarytest.SessionPlan{Start: start, Count: 4, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	d, err := diary.Open(db, diary.Options{CacheDir: filepath.Join(dir, "cache"), SecretKey: sk, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	day := store.DayOf(start, time.UTC)
	if n, err := d.ExportEvidence(ctx, &buf, w.Pub, day, day, "UTC"); err != nil || n != 4 {
		t.Fatalf("export: %d segments, %v", n, err)
	}
	path = filepath.Join(dir, "export.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := nostr.GetPublicKey(sk)
	return path, sent[0].Session, pub
}

func writeTampered(t *testing.T, orig string, tamper func([]byte) ([]byte, error)) string {
	t.Helper()
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := tamper(b)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tampered.zip")
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyCommand(t *testing.T) {
	file, session, dvm := exportFile(t)
	npub, _ := nip19.EncodePublicKey(dvm)
	dir := func(i int) string { return evidence.SegmentDir(session, i) }

	out, errOut, code := runCLI(t, "verify", "--dvm", npub, file)
	if code != 0 || !strings.Contains(out, "OK: 4 of 4 segments verified, 0 failures, 0 warnings") ||
		!strings.Contains(out, "INFO export: signed by DVM "+dvm) {
		t.Fatalf("good export: exit %d\n%s%s", code, out, errOut)
	}
	other, _ := nostr.GetPublicKey(nostr.GeneratePrivateKey())
	out, _, code = runCLI(t, "verify", "--dvm", other, file)
	if code != 1 || !strings.Contains(out, "not by the expected DVM "+other) {
		t.Fatalf("wrong DVM: exit %d\n%s", code, out)
	}

	for _, tc := range []struct {
		name   string
		tamper func([]byte) ([]byte, error)
		want   []string
	}{
		{"one byte of a screenshot", func(b []byte) ([]byte, error) { return diarytest.FlipScreenshotByte(b, dir(1)) },
			[]string{"FAIL segment " + session + "/1: bundle.zip hashes to", "but the worker signed ox",
				"screenshots/001.jpg has sha256", "FAILED: 3 of 4 segments verified"}},
		{"a removed segment", func(b []byte) ([]byte, error) { return diarytest.RemoveSegment(b, dir(2), true) },
			[]string{"FAIL export: export.json was changed after signing", "FAIL chain " + session + ": segment 2 missing from this export"}},
		{"a swapped signature", func(b []byte) ([]byte, error) { return diarytest.SwapSealSignatures(b, dir(0), dir(3)) },
			[]string{"FAIL segment " + session + "/0: seal.json: the worker's signature does not verify",
				"FAIL segment " + session + "/3: seal.json: the worker's signature does not verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, "verify", writeTampered(t, file, tc.tamper))
			if code != 1 || !strings.Contains(errOut, "does not verify") {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	junk := filepath.Join(t.TempDir(), "junk.zip")
	os.WriteFile(junk, []byte("not a zip at all"), 0o600)
	if _, errOut, code := runCLI(t, "verify", junk); code != 1 || !strings.Contains(errOut, "not a readable ZIP") {
		t.Fatalf("junk: exit %d, %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "verify", filepath.Join(t.TempDir(), "missing.zip")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing file: exit %d, %s", code, errOut)
	}
	if _, _, code := runCLI(t, "verify"); code != 2 {
		t.Fatalf("no file: exit %d, want 2", code)
	}
	if _, _, code := runCLI(t, "verify", "--dvm", "npub1nope", file); code != 2 {
		t.Fatalf("bad --dvm: exit %d, want 2", code)
	}
}
