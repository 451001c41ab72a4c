package strfry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// recorded reads testdata/input.jsonl: strfry plugin input lines recorded from real signed
// events (see the expectations below for what each line is).
func recorded(t *testing.T) ([]byte, []string) {
	t.Helper()
	b, err := os.ReadFile("testdata/input.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var in struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
		}
		json.Unmarshal([]byte(l), &in)
		ids = append(ids, in.Event.ID)
	}
	return b, ids
}

func run(t *testing.T, p *Policy, input []byte) []Output {
	t.Helper()
	var out bytes.Buffer
	if err := p.Run(bytes.NewReader(input), &out, nil); err != nil {
		t.Fatal(err)
	}
	var outs []Output
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var o Output
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("output line %q is not JSON: %v", sc.Text(), err)
		}
		outs = append(outs, o)
	}
	return outs
}

func TestRecordedLines(t *testing.T) {
	input, ids := recorded(t)
	list := &AllowList{Path: "testdata/allowed.txt"}
	if err := list.Load(); err != nil {
		t.Fatal(err)
	}
	type want struct{ action, prefix string }
	withPoW := []want{
		{"accept", ""},           // wrap to the allowed recipient, PoW 8 committed 8
		{"reject", "restricted"}, // wrap to a stranger
		{"reject", "blocked"},    // kind 1 note
		{"reject", "invalid"},    // two p tags
		{"reject", "pow"},        // no proof of work
		{"reject", "pow"},        // enough zeros, but committed to target 2
		{"reject", "invalid"},    // content changed after signing
		{"reject", "invalid"},    // not JSON
		{"reject", "error"},      // unknown input type
	}
	outs := run(t, &Policy{Allowed: list.Allowed, MinPoW: 8}, input)
	if len(outs) != len(withPoW) {
		t.Fatalf("%d answers for %d lines", len(outs), len(withPoW))
	}
	for i, w := range withPoW {
		o := outs[i]
		if o.ID != ids[i] {
			t.Errorf("line %d: id %q not echoed (got %q)", i+1, ids[i], o.ID)
		}
		if o.Action != w.action || !strings.HasPrefix(o.Msg, w.prefix) {
			t.Errorf("line %d: got %s %q, want %s %s:", i+1, o.Action, o.Msg, w.action, w.prefix)
		}
	}
	// Without a PoW requirement the two PoW refusals become accepts.
	outs = run(t, &Policy{Allowed: list.Allowed}, input)
	if outs[4].Action != "accept" || outs[5].Action != "accept" || outs[1].Action != "reject" {
		t.Fatalf("without PoW: %+v", outs)
	}
	// A size limit below the wrap's size refuses it.
	outs = run(t, &Policy{Allowed: list.Allowed, MaxEventBytes: 100}, input)
	if outs[0].Action != "reject" || !strings.Contains(outs[0].Msg, "too big") {
		t.Fatalf("size limit: %+v", outs[0])
	}
}

func TestAllowListFromAccessFileReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.json")
	a, b := nostr.GeneratePrivateKey(), nostr.GeneratePrivateKey()
	pa, _ := nostr.GetPublicKey(a)
	pb, _ := nostr.GetPublicKey(b)
	write := func(allowed, banned []string, mod time.Time) {
		st := map[string]any{"v": 1, "allowed": map[string]any{}, "banned": map[string]any{}}
		for _, k := range allowed {
			st["allowed"].(map[string]any)[k] = map[string]any{"pubkey": k}
		}
		for _, k := range banned {
			st["banned"].(map[string]any)[k] = map[string]any{"pubkey": k}
		}
		js, _ := json.Marshal(st)
		if err := os.WriteFile(path, js, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, mod, mod)
	}
	write([]string{pa, pb}, []string{pb}, time.Unix(1000, 0))
	l := &AllowList{Path: path}
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if !l.Allowed(pa) || l.Allowed(pb) {
		t.Fatalf("allowed a=%v b=%v, want true false (b is banned)", l.Allowed(pa), l.Allowed(pb))
	}
	write([]string{pb}, nil, time.Unix(2000, 0))
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if l.Allowed(pa) || !l.Allowed(pb) {
		t.Fatal("the changed file was not picked up")
	}
	os.WriteFile(path, []byte("{broken"), 0o600)
	os.Chtimes(path, time.Unix(3000, 0), time.Unix(3000, 0))
	if err := l.Load(); err == nil {
		t.Fatal("a broken file loaded without error")
	}
	if !l.Allowed(pb) {
		t.Fatal("a broken file replaced the last good list")
	}
}

func TestOverlongLineIsAnsweredAndRunContinues(t *testing.T) {
	input, _ := recorded(t)
	long := append(bytes.Repeat([]byte("x"), maxLine+10), '\n')
	list := &AllowList{Path: "testdata/allowed.txt"}
	outs := run(t, &Policy{Allowed: list.Allowed}, append(long, input...))
	if len(outs) != 10 || outs[0].Action != "reject" || outs[1].Action != "accept" {
		t.Fatalf("got %d answers, first %+v", len(outs), outs[0])
	}
}
