package diary_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/diary"
	seed "pow.do/dvm/diary/diarytest"
	"pow.do/dvm/diary/evidence"
	"pow.do/dvm/store"
)

func verify(t *testing.T, zipBytes []byte, opt evidence.Options) *evidence.Report {
	t.Helper()
	rep, err := evidence.Verify(bytes.NewReader(zipBytes), int64(len(zipBytes)), opt)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// findings returns the findings of level l as text.
func findings(rep *evidence.Report, l evidence.Level) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		if f.Level == l {
			b.WriteString(f.String() + "\n")
		}
	}
	return b.String()
}

func wantFail(t *testing.T, rep *evidence.Report, parts ...string) {
	t.Helper()
	fails := findings(rep, evidence.Fail)
	if rep.OK() || fails == "" {
		t.Fatalf("verify passed; findings:\n%v", rep.Findings)
	}
	for _, p := range parts {
		if !strings.Contains(fails, p) {
			t.Errorf("no failure mentions %q; failures:\n%s", p, fails)
		}
	}
}

func export(t *testing.T, d *diary.Diary, worker string, day store.Day, tz string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := d.ExportEvidence(context.Background(), &buf, worker, day, day, tz); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEvidenceExportVerifies(t *testing.T) {
	f := fixture(t)
	srv, d := f.server(t, nil)
	dvm, _ := nostr.GetPublicKey(f.dvmSK)
	alice := f.data.Alice.Pub
	tuesday := f.data.Monday.AddDays(1)

	// A clean day: every segment verified, nothing but information.
	good := export(t, d, alice, tuesday, "America/New_York")
	rep := verify(t, good, evidence.Options{DVM: dvm})
	if !rep.OK() || rep.Segments != 6 || rep.Verified != 6 || rep.DVM != dvm || findings(rep, evidence.Warn) != "" {
		t.Fatalf("clean day: ok %v, %d/%d verified, DVM %q\n%v", rep.OK(), rep.Verified, rep.Segments, rep.DVM, rep.Findings)
	}
	// The export's bundle is the worker's: same bytes as the scenario built.
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	must(t, err)
	var sent seed.Sent
	for _, s := range f.data.Sent[alice] {
		if store.DayOf(s.Start, f.data.AliceZone) == tuesday && s.Index == 2 {
			sent = s
		}
	}
	rc, err := zr.Open(evidence.SegmentDir(sent.Session, 2) + "/bundle.zip")
	must(t, err)
	var b bytes.Buffer
	b.ReadFrom(rc)
	rc.Close()
	if !bytes.Equal(b.Bytes(), sent.ZIP) {
		t.Fatal("exported bundle.zip differs from the bundle the worker sent")
	}

	// Monday has a segment that never arrived: a warning, not a failure.
	rep = verify(t, export(t, d, alice, f.data.Monday, "America/New_York"), evidence.Options{})
	if !rep.OK() || rep.Verified != 29 || !strings.Contains(findings(rep, evidence.Warn), "segment 7 never reached the DVM") {
		t.Fatalf("Monday: ok %v, %d verified\n%v", rep.OK(), rep.Verified, rep.Findings)
	}
	// Bob's broken link fails the chain check, naming the segment.
	rep = verify(t, export(t, d, f.data.Bob.Pub, f.data.Monday, "Europe/Berlin"), evidence.Options{})
	wantFail(t, rep, "chain broken: segment 3 names prev")

	// The same through HTTP, for a week.
	c := login(t, srv.URL)
	resp, body := get(t, c, srv.URL+"/api/v1/workers/"+alice+"/weeks/"+tuesday.String()+"/export.zip?tz=America/New_York")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("week export: %d %s", resp.StatusCode, body)
	}
	rep = verify(t, body, evidence.Options{DVM: dvm})
	var week struct {
		Totals struct{ Segments int } `json:"totals"`
	}
	getJSON(t, c, srv.URL+"/api/v1/workers/"+alice+"/weeks/"+tuesday.String()+"?tz=America/New_York", http.StatusOK, &week)
	if !rep.OK() || rep.Segments != week.Totals.Segments || rep.Verified != rep.Segments {
		t.Fatalf("week export: ok %v, %d/%d verified, API says %d\n%v", rep.OK(), rep.Verified, rep.Segments, week.Totals.Segments, rep.Findings)
	}

	// Someone expecting another DVM is told so.
	other, _ := nostr.GetPublicKey(nostr.GeneratePrivateKey())
	wantFail(t, verify(t, good, evidence.Options{DVM: other}), "not by the expected DVM")
}

func TestEvidenceTampering(t *testing.T) {
	f := fixture(t)
	_, d := f.server(t, nil)
	alice := f.data.Alice.Pub
	tuesday := f.data.Monday.AddDays(1)
	good := export(t, d, alice, tuesday, "America/New_York")
	var session string
	for _, s := range f.data.Sent[alice] {
		if store.DayOf(s.Start, f.data.AliceZone) == tuesday {
			session = s.Session
		}
	}
	dir := func(i int) string { return evidence.SegmentDir(session, i) }

	t.Run("one byte of a screenshot", func(t *testing.T) {
		bad, err := seed.FlipScreenshotByte(good, dir(2))
		must(t, err)
		rep := verify(t, bad, evidence.Options{})
		wantFail(t, rep, fmt.Sprintf("segment %s/2: bundle.zip hashes to", session), "but the worker signed ox",
			"screenshots/001.jpg has sha256")
		if rep.Verified != 5 {
			t.Errorf("%d segments verified, want the 5 untouched", rep.Verified)
		}
		if !strings.Contains(findings(rep, evidence.Fail), "cannot check the link 2→3") {
			t.Errorf("the chain after the broken segment is not flagged:\n%s", findings(rep, evidence.Fail))
		}
	})
	t.Run("a removed segment", func(t *testing.T) {
		bad, err := seed.RemoveSegment(good, dir(3), false)
		must(t, err)
		wantFail(t, verify(t, bad, evidence.Options{}), fmt.Sprintf("segment %s/3: segments/%s-3/seal.json is missing from the archive", session, session),
			"cannot check the link 3→4")
	})
	t.Run("a removed segment, listing edited too", func(t *testing.T) {
		bad, err := seed.RemoveSegment(good, dir(3), true)
		must(t, err)
		wantFail(t, verify(t, bad, evidence.Options{}), "export.json was changed after signing",
			"segment 3 missing from this export although the DVM had linked segment 4 to it")
	})
	t.Run("swapped signatures", func(t *testing.T) {
		bad, err := seed.SwapSealSignatures(good, dir(1), dir(4))
		must(t, err)
		rep := verify(t, bad, evidence.Options{})
		wantFail(t, rep, fmt.Sprintf("segment %s/1: seal.json: the worker's signature does not verify", session),
			fmt.Sprintf("segment %s/4: seal.json: the worker's signature does not verify", session))
		if rep.Verified != 4 {
			t.Errorf("%d verified, want 4", rep.Verified)
		}
	})
	t.Run("a flipped byte without fixing the ZIP", func(t *testing.T) {
		bad := bytes.Clone(good)
		i := bytes.Index(bad, []byte("segments/"+session+"-5/rumor.json"))
		if i < 0 {
			t.Fatal("entry not found")
		}
		// The local header is followed by the deflated data; flip a byte well inside it.
		bad[i+len("segments/"+session+"-5/rumor.json")+40] ^= 0xff
		wantFail(t, verify(t, bad, evidence.Options{}), "rumor.json")
	})
	t.Run("an added file", func(t *testing.T) {
		bad, err := seed.RewriteZip(good, func(name string, data []byte) ([]byte, bool, error) { return data, true, nil })
		must(t, err)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		zr, _ := zip.NewReader(bytes.NewReader(bad), int64(len(bad)))
		for _, fl := range zr.File {
			zw.Copy(fl)
		}
		w, _ := zw.Create(dir(0) + "/screenshots/extra.jpg")
		w.Write([]byte{0xff, 0xd8, 0xff})
		zw.Close()
		wantFail(t, verify(t, buf.Bytes(), evidence.Options{}), "unexpected file")
	})
	t.Run("an unsigned export", func(t *testing.T) {
		_, plain := f.server(t, func(o *diary.Options) { o.SecretKey = "" })
		rep := verify(t, export(t, plain, alice, tuesday, "America/New_York"), evidence.Options{})
		wantFail(t, rep, "not signed by a DVM", "no conversation key for worker")
	})
}
