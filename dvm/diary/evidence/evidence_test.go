package evidence

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"

	"pow.do/shared/bundle"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
	"pow.do/shared/seal"
)

// segment builds one real segment the way a tracker does and returns what a DVM keeps:
// the seal JSON (decrypted from the gift wrap with the DVM's key), the rumor and the bundle.
func segment(t *testing.T, workerSK, dvmSK string, session string, index int, prev string) (Segment, []byte, []byte, bundle.Built, bundle.Activity) {
	t.Helper()
	worker, _ := nostr.GetPublicKey(workerSK)
	dvm, _ := nostr.GetPublicKey(dvmSK)
	start := time.Date(2026, 11, 16, 9, 10*index, 0, 0, time.UTC)
	end := start.Add(10 * time.Minute)
	act := bundle.Activity{Source: bundle.SourceBuiltin, Minutes: []bundle.Minute{{T: start, Keys: 5, Active: true}}, ActiveSeconds: 60}
	shot := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte{byte(index)}, 100)...)
	m := bundle.Manifest{Worker: worker, Session: session, Index: index, Start: start, End: end, Project: 1, Activity: 1,
		AppVersion: "0.1.0", Policy: bundle.Policy{SegmentSeconds: 600, Screenshots: 1, JPEGQuality: 80, MaxWidth: 1920}, Prev: prev}
	b, err := bundle.Build(m, act, []bundle.Screenshot{{TakenAt: start.Add(time.Minute), JPEG: shot}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.Seal(b.ZIP)
	if err != nil {
		t.Fatal(err)
	}
	sf := proto.SegmentFile{To: dvm, URL: "http://127.0.0.1/" + s.X, Key: s.Key, Nonce: s.Nonce, X: s.X, OX: s.OX,
		Size: int64(len(s.Ciphertext)), Session: session, Index: index, Start: start, End: end}
	rumor := sf.Rumor(worker)
	wrap, err := giftwrap.Wrap(rumor, workerSK, dvm)
	if err != nil {
		t.Fatal(err)
	}
	ck, _ := nip44.GenerateConversationKey(wrap.PubKey, dvmSK)
	sealJSON, err := nip44.Decrypt(wrap.Content, ck)
	if err != nil {
		t.Fatal(err)
	}
	rumorJSON, _ := json.Marshal(rumor)
	return Segment{Worker: worker, Session: session, Index: index, Start: start, End: end, RumorID: rumor.ID, X: s.X, OX: s.OX,
		Prev: prev, ChainStatus: "verified", ReceivedAt: end, KimaiState: "pending"}, []byte(sealJSON), rumorJSON, b, act
}

func TestWriteVerifyRoundTrip(t *testing.T) {
	workerSK, dvmSK := nostr.GeneratePrivateKey(), nostr.GeneratePrivateKey()
	worker, _ := nostr.GetPublicKey(workerSK)
	dvm, _ := nostr.GetPublicKey(dvmSK)
	session := strings.Repeat("ab", 16)
	var buf bytes.Buffer
	ew, err := NewWriter(&buf, Range{From: "2026-11-16", To: "2026-11-16", TZ: "UTC"}, dvmSK, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ew.AddWorker(worker, "W"); err != nil {
		t.Fatal(err)
	}
	prev := ""
	for i := 0; i < 3; i++ {
		seg, sealJSON, rumorJSON, b, _ := segment(t, workerSK, dvmSK, session, i, prev)
		prev = b.OX
		parts := []Part{{Name: SealName, Data: sealJSON}, {Name: RumorName, Data: rumorJSON}}
		if i == 1 {
			// Bundle not kept: its parts instead; Verify rebuilds the ZIP to check the ox.
			zr, _ := zip.NewReader(bytes.NewReader(b.ZIP), int64(len(b.ZIP)))
			for _, f := range zr.File {
				rc, _ := f.Open()
				var d bytes.Buffer
				d.ReadFrom(rc)
				rc.Close()
				switch f.Name {
				case bundle.ManifestName:
					parts = append(parts, Part{Name: ManifestName, Data: d.Bytes()})
				case bundle.ActivityName:
					parts = append(parts, Part{Name: ActivityName, Data: d.Bytes()})
				default:
					parts = append(parts, Part{Name: f.Name, Data: d.Bytes(), Store: true})
				}
			}
		} else {
			parts = append(parts, Part{Name: BundleName, Data: b.ZIP, Store: true})
		}
		if err := ew.AddSegment(seg, parts); err != nil {
			t.Fatal(err)
		}
	}
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(bytes.NewReader(buf.Bytes()), int64(buf.Len()), Options{DVM: dvm})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Verified != 3 || rep.DVM != dvm {
		t.Fatalf("round trip: ok %v, %d verified\n%v", rep.OK(), rep.Verified, rep.Findings)
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	zw.Close()
	return buf.Bytes()
}

func TestVerifyHostileArchives(t *testing.T) {
	if _, err := Verify(bytes.NewReader([]byte("not a zip")), 9, Options{}); err == nil {
		t.Fatal("a non-ZIP was read")
	}
	for name, tc := range map[string]struct {
		files map[string][]byte
		want  string
	}{
		"no export.json":  {map[string][]byte{"README.txt": []byte("hi")}, "export.json is missing"},
		"bad JSON":        {map[string][]byte{"export.json": []byte("{")}, "not valid JSON"},
		"other version":   {map[string][]byte{"export.json": []byte(`{"v":2,"type":"powdo-evidence"}`)}, "want v=1"},
		"path traversal":  {map[string][]byte{"../evil": {1}, "export.json": []byte(`{"v":1,"type":"powdo-evidence"}`)}, "not a safe relative path"},
		"bomb":            {map[string][]byte{"export.json": bytes.Repeat([]byte{' '}, maxExportJSON+10)}, "more than"},
		"bad segment dir": {map[string][]byte{"export.json": []byte(`{"v":1,"type":"powdo-evidence","segments":[{"dir":"../x","session":"a","index":0}]}`)}, "does not match the segment"},
	} {
		z := zipOf(t, tc.files)
		rep, err := Verify(bytes.NewReader(z), int64(len(z)), Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var all strings.Builder
		for _, f := range rep.Findings {
			all.WriteString(f.String() + "\n")
		}
		if rep.OK() || !strings.Contains(all.String(), tc.want) {
			t.Errorf("%s: ok %v, findings:\n%s", name, rep.OK(), all.String())
		}
	}
}
