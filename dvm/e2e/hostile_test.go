package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"

	"pow.do/dvm/store"
	"pow.do/shared/bundle"
	"pow.do/shared/proto"
)

// craft builds a gift wrap by hand so that a test can break one rule at a time.
type craft struct {
	rumor   nostr.Event // complete, id set
	sealSK  string      // signs the seal and encrypts the rumor
	sealPub string      // if set, replaces the seal's pubkey after signing (a forgery)
	to      string      // whose key the seal and wrap are encrypted to
	pTag    string      // the wrap's p tag
	// createdAt of the wrap; zero: up to an hour in the past
	createdAt nostr.Timestamp
}

func craftWrap(t *testing.T, c craft) nostr.Event {
	t.Helper()
	ck, err := nip44.GenerateConversationKey(c.to, c.sealSK)
	if err != nil {
		t.Fatal(err)
	}
	content, err := nip44.Encrypt(c.rumor.String(), ck)
	if err != nil {
		t.Fatal(err)
	}
	sl := nostr.Event{Kind: proto.KindSeal, CreatedAt: nostr.Now(), Tags: nostr.Tags{}, Content: content}
	if err := sl.Sign(c.sealSK); err != nil {
		t.Fatal(err)
	}
	if c.sealPub != "" {
		sl.PubKey = c.sealPub
		sl.ID = sl.GetID() // the signature no longer matches
	}
	eph := NewKey()
	ck2, err := nip44.GenerateConversationKey(c.to, eph.SK)
	if err != nil {
		t.Fatal(err)
	}
	wcontent, err := nip44.Encrypt(sl.String(), ck2)
	if err != nil {
		t.Fatal(err)
	}
	at := c.createdAt
	if at == 0 {
		at = nostr.Now() - nostr.Timestamp(rand.IntN(3600))
	}
	w := nostr.Event{Kind: proto.KindGiftWrap, CreatedAt: at,
		Tags: nostr.Tags{{"p", c.pTag}}, Content: wcontent}
	if err := w.Sign(eph.SK); err != nil {
		t.Fatal(err)
	}
	return w
}

type zipEntry struct {
	name   string
	data   []byte
	method uint16
}

func unpack(t *testing.T, z []byte) []zipEntry {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	var out []zipEntry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out = append(out, zipEntry{f.Name, b, f.Method})
	}
	return out
}

func pack(t *testing.T, es []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range es {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sendRaw seals plaintext zip bytes as a bundle for s and sends the kind-15 message,
// after letting mutate change the message; it returns the rumor id.
func (w *world) sendRaw(t *testing.T, plain []byte, s Segment, mutate func(*proto.SegmentFile)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := SealAndDescribe(bundle.Built{ZIP: plain}, w.dvm.PK, s, w.relay.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tracker.Upload(ctx, w.relay.HTTP, p.Sealed.Ciphertext); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&p.File)
	}
	rumor := p.File.Rumor(w.tracker.PK)
	if _, err := w.tracker.Send(ctx, rumor); err != nil {
		t.Fatal(err)
	}
	return rumor.ID
}

// Every hostile message is refused with its own reason and leaves nothing in the store.
func TestHostileCorpus(t *testing.T) {
	outsider, other := NewKey(), NewKey()
	w := newWorldWith(t, worldOptions{allow: []string{outsider.PK}})
	ctx := context.Background()
	worker := w.tracker.Key
	good := func() Segment { return segmentNow(RandomSession(), 0, "") }
	build := func(s Segment) []byte {
		b, err := BuildBundle(worker.PK, s)
		if err != nil {
			t.Fatal(err)
		}
		return b.ZIP
	}

	// Messages from roster workers that fail a check get a rejected receipt with the reason.
	type receiptCase struct {
		name, label, reason string
		permanent           bool
		send                func() string
	}
	cases := []receiptCase{
		{"hash mismatch", "hash_mismatch", "sha256 mismatch", true, func() string {
			// The URL serves real bytes, but not the ones x names.
			decoy := []byte(strings.Repeat("not the bundle you are looking for ", 100))
			if err := w.tracker.Upload(ctx, w.relay.HTTP, decoy); err != nil {
				t.Fatal(err)
			}
			s := good()
			return w.sendRaw(t, build(s), s, func(f *proto.SegmentFile) { f.URL = w.relay.HTTP + "/" + store.HashHex(decoy) })
		}},
		{"wrong key", "decrypt", "wrong key", true, func() string {
			s := good()
			return w.sendRaw(t, build(s), s, func(f *proto.SegmentFile) { f.Key[0] ^= 0xff })
		}},
		{"ox mismatch", "ox_mismatch", "plaintext sha256 differs from ox", true, func() string {
			s := good()
			return w.sendRaw(t, build(s), s, func(f *proto.SegmentFile) { f.OX = strings.Repeat("ab", 32) })
		}},
		{"zip bomb", "bundle", "compression ratio too high", true, func() string {
			s := good()
			es := unpack(t, build(s))
			bomb := make([]byte, 4<<20-1)
			for i := range es {
				if es[i].name == bundle.ActivityName {
					es[i].data = bomb
				}
			}
			es = withManifestFile(t, es, bundle.ActivityName, bomb)
			return w.sendRaw(t, pack(t, es), s, nil)
		}},
		{"zip slip", "bundle", "entry name contains ..", true, func() string {
			s := good()
			es := append(unpack(t, build(s)), zipEntry{"../../.ssh/authorized_keys", []byte("ssh-ed25519 AAAA evil"), zip.Store})
			return w.sendRaw(t, pack(t, es), s, nil)
		}},
		{"manifest naming another worker", "worker_mismatch", "manifest names worker " + other.PK, true, func() string {
			s := good()
			s.Worker = other.PK
			b, err := BuildBundle(other.PK, s)
			if err != nil {
				t.Fatal(err)
			}
			return w.sendRaw(t, b.ZIP, s, nil)
		}},
		{"segment in the future", "future", "in the future", false, func() string {
			s := good()
			s.Start, s.End = s.Start.Add(time.Hour), s.End.Add(time.Hour)
			return w.sendRaw(t, build(s), s, nil)
		}},
		{"project not allowed", "project_not_allowed", "project 99 is not in this worker's catalogue", false, func() string {
			s := good()
			s.Project = 99
			return w.sendRaw(t, build(s), s, nil)
		}},
		{"activity of another project", "project_not_allowed", "activity 6 belongs to project 2, not 1", false, func() string {
			s := good()
			s.Activity = 6
			return w.sendRaw(t, build(s), s, nil)
		}},
		{"malformed message", "bad_message", "encryption-algorithm", true, func() string {
			s := good()
			p, err := w.tracker.Prepare(s, w.relay.HTTP)
			if err != nil {
				t.Fatal(err)
			}
			r := p.Rumor(worker.PK)
			for i, tag := range r.Tags {
				if tag[0] == proto.TagEncryption {
					r.Tags[i] = nostr.Tag{proto.TagEncryption, "rot13"}
				}
			}
			r.ID = r.GetID()
			if _, err := w.tracker.Send(ctx, r); err != nil {
				t.Fatal(err)
			}
			return r.ID
		}},
		{"manifest differs from tags", "tag_mismatch", "differs from tag", true, func() string {
			s := good()
			plain := build(s)
			s.Index = 7 // the tags say 7, the manifest 0
			return w.sendRaw(t, plain, s, nil)
		}},
	}
	for _, c := range cases {
		id := c.send()
		rc := w.tracker.WaitReceipt(t, id, 20*time.Second)
		if rc.Status != proto.StatusRejected || !strings.Contains(rc.Reason, c.reason) || rc.Permanent != c.permanent {
			t.Errorf("%s: receipt %s permanent=%v reason %q; want rejected permanent=%v with %q", c.name, rc.Status, rc.Permanent, rc.Reason, c.permanent, c.reason)
		}
	}

	// Wraps that cannot be trusted get no answer; they are marked processed with a reason.
	seg := good()
	sf, err := w.tracker.Prepare(seg, w.relay.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	rumor := sf.Rumor(worker.PK)
	wrongTo := sf.File
	wrongTo.To = other.PK
	wrongToRumor := wrongTo.Rumor(worker.PK)
	outsiderRumor := sf.File.Rumor(outsider.PK)
	untrusted := []struct {
		name, label string
		wrap        nostr.Event
	}{
		{"forged seal", "bad_seal", craftWrap(t, craft{rumor: rumor, sealSK: outsider.SK, sealPub: worker.PK, to: w.dvm.PK, pTag: w.dvm.PK})},
		{"rumor/seal pubkey mismatch", "pubkey_mismatch", craftWrap(t, craft{rumor: rumor, sealSK: outsider.SK, to: w.dvm.PK, pTag: w.dvm.PK})},
		{"rumor for another recipient", "wrong_recipient", craftWrap(t, craft{rumor: wrongToRumor, sealSK: worker.SK, to: w.dvm.PK, pTag: w.dvm.PK})},
		{"wrap encrypted to another key", "decrypt", craftWrap(t, craft{rumor: rumor, sealSK: worker.SK, to: other.PK, pTag: w.dvm.PK})},
		{"sender not on the roster", "not_on_roster", craftWrap(t, craft{rumor: outsiderRumor, sealSK: outsider.SK, to: w.dvm.PK, pTag: w.dvm.PK})},
	}
	for _, u := range untrusted {
		if err := w.tracker.Publish(ctx, u.wrap); err != nil {
			t.Fatalf("%s: publish: %v", u.name, err)
		}
	}
	for _, u := range untrusted {
		if err := Eventually(20*time.Second, func() error {
			ok, err := w.d.st.WrapProcessed(ctx, u.wrap.ID)
			if err != nil || !ok {
				return fmt.Errorf("%s: wrap not processed yet (%v)", u.name, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	m := metricsText(t, w.d.url)
	counts := map[string]int{}
	for _, u := range untrusted {
		counts[u.label]++
	}
	for label, n := range counts {
		want := fmt.Sprintf(`powdo_dvm_wraps_handled_total{kind="0",reason=%q,status="rejected"} %d`, label, n)
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	labels := map[string]int{}
	for _, c := range cases {
		labels[c.label]++
	}
	for label, n := range labels {
		want := fmt.Sprintf(`powdo_dvm_bundles_rejected_total{reason=%q} %d`, label, n)
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// No answer went to anyone for the untrusted wraps: only the receipt cases were answered.
	if n := w.tracker.receiptCount(); n != len(cases) {
		t.Errorf("%d receipts, want %d (one per roster case, none for untrusted wraps)", n, len(cases))
	}

	// Nothing was stored.
	totals, err := w.d.st.DayTotals(ctx, "", time.UTC, store.Day{}, store.Day{})
	if err != nil || len(totals) != 0 {
		t.Errorf("segments stored: %+v (err %v)", totals, err)
	}
	if open, _ := w.d.st.OpenSessions(ctx); len(open) != 0 {
		t.Errorf("sessions created: %+v", open)
	}
	if ws, _ := w.d.st.Workers(ctx, true); len(ws) != 1 {
		t.Errorf("roster changed: %+v", ws)
	}
	for _, dir := range []string{"screenshots", "bundles"} {
		if n := countFiles(t, filepath.Join(w.dataDir, dir)); n != 0 {
			t.Errorf("%d files in %s", n, dir)
		}
	}
}

func (t *Tracker) receiptCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, rs := range t.receipts {
		n += len(rs)
	}
	return n
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// withManifestFile rewrites manifest.json so that its entry for name declares data.
func withManifestFile(t *testing.T, es []zipEntry, name string, data []byte) []zipEntry {
	t.Helper()
	for i := range es {
		if es[i].name != bundle.ManifestName {
			continue
		}
		var m bundle.Manifest
		if err := json.Unmarshal(es[i].data, &m); err != nil {
			t.Fatal(err)
		}
		for j := range m.Files {
			if m.Files[j].Name == name {
				m.Files[j].SHA256, m.Files[j].Size = store.HashHex(data), int64(len(data))
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		es[i].data = b
	}
	return es
}
