package giftwrap

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/proto"
)

// These tests check the Go gift wraps against nostr-tools, an independent NIP-59/NIP-44
// implementation, in both directions. They need node and interop/node_modules; CI has
// both (make setup runs npm ci), so a missing one is a failure, not a skip.

const interopDir = "../../interop"

func runNode(t *testing.T, op string, req any, resp any) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (needed for the nostr-tools interop test): %v", err)
	}
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "nostr-tools", "package.json")); err != nil {
		t.Fatalf("nostr-tools is not installed: run npm ci in interop/ (%v)", err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "interop.mjs", op)
	cmd.Dir = interopDir
	cmd.Stdin = bytes.NewReader(in) // keys go over stdin, not argv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("node interop.mjs %s did not finish in 60 s", op)
	}
	if err != nil {
		t.Fatalf("node interop.mjs %s: %v\n%s", op, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), resp); err != nil {
		t.Fatalf("node interop.mjs %s printed %q: %v", op, stdout.String(), err)
	}
}

// (a) Go wraps a kind-15 message; nostr-tools unwraps it and sees the same rumor.
func TestInteropGoWrapsNostrToolsUnwraps(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	seg := sampleSegment(t, dvm.pub)
	rumor := seg.Rumor(worker.pub)
	wrap, err := Wrap(rumor, worker.sk, dvm.pub)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Rumor     nostr.Event `json:"rumor"`
		Sender    string      `json:"sender"`
		WrapSigOK bool        `json:"wrap_sig_ok"`
		RumorIDOK bool        `json:"rumor_id_ok"`
	}
	runNode(t, "unwrap", map[string]any{"sk": dvm.sk, "wrap": wrap}, &out)
	if !out.WrapSigOK {
		t.Error("nostr-tools says the wrap signature is invalid")
	}
	if !out.RumorIDOK {
		t.Error("nostr-tools computes a different rumor id")
	}
	if out.Sender != worker.pub {
		t.Errorf("nostr-tools sees sender %s, want %s", out.Sender, worker.pub)
	}
	if out.Rumor.ID != rumor.ID || out.Rumor.Kind != 15 || out.Rumor.CreatedAt != rumor.CreatedAt {
		t.Errorf("rumor header differs: %+v", out.Rumor)
	}
	if out.Rumor.Content != seg.URL {
		t.Errorf("content %q, want %q", out.Rumor.Content, seg.URL)
	}
	if !reflect.DeepEqual(out.Rumor.Tags, rumor.Tags) {
		t.Errorf("tags differ\n node %v\n   go %v", out.Rumor.Tags, rumor.Tags)
	}
	// And what node printed is still a segment message our parser reads back identically.
	back, err := proto.ParseSegmentFile(out.Rumor)
	if err != nil || !reflect.DeepEqual(back, seg) {
		t.Errorf("parse of node's rumor: %+v, %v", back, err)
	}

	// Hostile variant: a Go wrap with a broken signature must be refused by nostr-tools
	// as well (proves the check above can fail).
	bad := wrap
	bad.Sig = flip(bad.Sig)
	runNode(t, "unwrap", map[string]any{"sk": dvm.sk, "wrap": bad}, &out)
	if out.WrapSigOK {
		t.Error("nostr-tools accepted a flipped wrap signature: the interop check is blind")
	}
}

// (b) nostr-tools builds and wraps a kind-15 message on its own; Go unwraps and parses it.
func TestInteropNostrToolsWrapsGoUnwraps(t *testing.T) {
	dvm := newKey(t)
	seg := sampleSegment(t, dvm.pub)
	req := map[string]any{
		"recipient": dvm.pub,
		"segment": map[string]any{
			"url": seg.URL, "fallbacks": seg.Fallbacks,
			"key": hex.EncodeToString(seg.Key[:]), "nonce": hex.EncodeToString(seg.Nonce[:]),
			"x": seg.X, "ox": seg.OX, "size": seg.Size,
			"session": seg.Session, "index": seg.Index,
			"start": seg.Start.Unix(), "end": seg.End.Unix(),
		},
	}
	var out struct {
		Sender  string      `json:"sender"`
		RumorID string      `json:"rumor_id"`
		Wrap    nostr.Event `json:"wrap"`
	}
	runNode(t, "wrap-segment", req, &out)

	if out.Wrap.Kind != 1059 || !reflect.DeepEqual(out.Wrap.Tags, nostr.Tags{{"p", dvm.pub}}) {
		t.Fatalf("nostr-tools wrap: kind %d tags %v", out.Wrap.Kind, out.Wrap.Tags)
	}
	rumor, sender, err := Unwrap(out.Wrap, dvm.sk)
	if err != nil {
		t.Fatalf("Unwrap refused nostr-tools' wrap: %v", err)
	}
	if sender != out.Sender || rumor.PubKey != out.Sender {
		t.Fatalf("sender %s / rumor pubkey %s, nostr-tools used %s", sender, rumor.PubKey, out.Sender)
	}
	if rumor.ID != out.RumorID {
		t.Fatalf("rumor id %s, nostr-tools computed %s", rumor.ID, out.RumorID)
	}
	got, err := proto.ParseSegmentFile(rumor)
	if err != nil {
		t.Fatalf("ParseSegmentFile refused nostr-tools' rumor: %v", err)
	}
	if !reflect.DeepEqual(got, seg) {
		t.Fatalf("parsed\n got %+v\nwant %+v", got, seg)
	}

	// Tampering with nostr-tools' wrap is caught here too.
	bad := out.Wrap
	bad.Content = flip(bad.Content)
	if _, _, err := Unwrap(bad, dvm.sk); !errors.Is(err, ErrBadWrapSig) {
		t.Fatalf("tampered nostr-tools wrap: %v", err)
	}
}

// Text that JSON escapes differently in Go and JavaScript (quotes, newlines, <>&, emoji,
// U+2028) must hash to the same rumor id both ways.
func TestInteropEscapingBothWays(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	memo := "Fixing the \"login\" bug\n\tand <tests> & more: ünïcødé 🦄 \u2028 \\ end"
	start := proto.SessionStart{To: dvm.pub, Session: "00112233445566778899aabbccddeeff", Project: 12, Activity: 5,
		Start: time.Date(2026, 11, 21, 9, 58, 13, 0, time.UTC), Memo: memo}

	// Go → node.
	rumor := start.Rumor(worker.pub)
	wrap, err := Wrap(rumor, worker.sk, dvm.pub)
	if err != nil {
		t.Fatal(err)
	}
	var un struct {
		Rumor     nostr.Event `json:"rumor"`
		RumorIDOK bool        `json:"rumor_id_ok"`
	}
	runNode(t, "unwrap", map[string]any{"sk": dvm.sk, "wrap": wrap}, &un)
	if !un.RumorIDOK || un.Rumor.ID != rumor.ID || un.Rumor.Content != memo {
		t.Fatalf("node read id %s (ok=%v) content %q", un.Rumor.ID, un.RumorIDOK, un.Rumor.Content)
	}

	// node → Go.
	tmpl := map[string]any{"kind": rumor.Kind, "content": rumor.Content, "tags": rumor.Tags, "created_at": rumor.CreatedAt}
	var w struct {
		Sender  string      `json:"sender"`
		RumorID string      `json:"rumor_id"`
		Wrap    nostr.Event `json:"wrap"`
	}
	runNode(t, "wrap", map[string]any{"recipient": dvm.pub, "template": tmpl}, &w)
	got, sender, err := Unwrap(w.Wrap, dvm.sk)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != w.RumorID || sender != w.Sender {
		t.Fatalf("rumor id %s vs node's %s", got.ID, w.RumorID)
	}
	parsed, err := proto.ParseSessionStart(got)
	if err != nil || parsed != start {
		t.Fatalf("parsed %+v, %v", parsed, err)
	}
}
