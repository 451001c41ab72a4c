package giftwrap

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"

	"pow.do/shared/proto"
)

// Fixed keys so the seed corpus in testdata/fuzz stays addressed to the fuzzed recipient.
// Test keys only.
const (
	fuzzRecipientSK = "7f0c5dd44ee4fd2e2ea5c6b1d5cb2d3a2b7cde6e4bb5b3e3c7bb9d9f1f2e3a41"
	fuzzSenderSK    = "3a1b6c0d2e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	fuzzOneTimeSK   = "5c5e5a56d2b1c0f9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6c5b4a392817"
)

// Fuzz layers: the fuzzer's bytes are the wrap JSON (layer 0), the seal JSON wrapped
// properly (layer 1), or the rumor JSON sealed and wrapped properly (layer 2). Without
// layers 1 and 2 almost every input would stop at the wrap signature.
const (
	layerWrap byte = iota
	layerSeal
	layerRumor
)

var genCorpus = flag.Bool("gen-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzUnwrap from fresh wraps")

// FuzzUnwrap feeds hostile wraps, seals and rumors to Unwrap. It must never panic, and
// whatever it accepts must satisfy PROTOCOL.md section 1.
func FuzzUnwrap(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.layer, s.data)
	}
	recipient := fixedKey(f, fuzzRecipientSK)
	sender := fixedKey(f, fuzzSenderSK)
	f.Fuzz(func(t *testing.T, layer byte, data []byte) {
		var wrap nostr.Event
		switch layer % 3 {
		case layerWrap:
			if json.Unmarshal(data, &wrap) != nil {
				return
			}
		case layerSeal:
			w, ok := encryptTo(string(data), fuzzOneTimeSK, recipient.pub)
			if !ok {
				return
			}
			wrap = nostr.Event{Kind: 1059, CreatedAt: 1700000000, Tags: nostr.Tags{{"p", recipient.pub}}, Content: w}
			if wrap.Sign(fuzzOneTimeSK) != nil {
				t.Fatal("sign wrap")
			}
		case layerRumor:
			c, ok := encryptTo(string(data), fuzzSenderSK, recipient.pub)
			if !ok {
				return
			}
			seal := nostr.Event{Kind: 13, CreatedAt: 1700000000, Tags: nostr.Tags{}, Content: c}
			if seal.Sign(fuzzSenderSK) != nil {
				t.Fatal("sign seal")
			}
			w, ok := encryptTo(seal.String(), fuzzOneTimeSK, recipient.pub)
			if !ok {
				return
			}
			wrap = nostr.Event{Kind: 1059, CreatedAt: 1700000000, Tags: nostr.Tags{{"p", recipient.pub}}, Content: w}
			if wrap.Sign(fuzzOneTimeSK) != nil {
				t.Fatal("sign wrap")
			}
		}
		rumor, from, err := Unwrap(wrap, fuzzRecipientSK)
		if err != nil {
			known := false
			for _, s := range sentinels {
				known = known || errors.Is(err, s)
			}
			if !known {
				t.Fatalf("refusal without a sentinel: %v", err)
			}
			return
		}
		// Accepted: it must really be a valid rumor to us from the seal's signer.
		if !rumor.CheckID() || rumor.PubKey != from || !proto.ValidPubkey(from) || !namesRecipient(rumor.Tags, recipient.pub) {
			t.Fatalf("accepted an invalid rumor %v from %s", rumor, from)
		}
		if layer%3 == layerRumor && from != sender.pub {
			t.Fatalf("sender %s, want %s", from, sender.pub)
		}
		_, _ = proto.Parse(rumor) // parsers face the same input: must not panic either
	})
}

func encryptTo(plaintext, sk, pub string) (string, bool) {
	ck, err := nip44.GenerateConversationKey(pub, sk)
	if err != nil {
		return "", false
	}
	c, err := nip44.Encrypt(plaintext, ck)
	return c, err == nil
}

type seed struct {
	layer byte
	data  []byte
}

// fuzzSeeds builds a valid kind-15 wrap for the fuzz recipient plus mutations of it at
// each layer; with -gen-fuzz-corpus it also writes them to testdata/fuzz/FuzzUnwrap.
func fuzzSeeds(tb testing.TB) []seed {
	recipient := fixedKey(tb, fuzzRecipientSK)
	sender := fixedKey(tb, fuzzSenderSK)
	seg := sampleSegment(tb, recipient.pub)
	rumor := seg.Rumor(sender.pub)
	wrap, err := Wrap(rumor, sender.sk, recipient.pub)
	if err != nil {
		tb.Fatal(err)
	}
	sealJSON := sealOf(tb, rumor.String(), sender.sk, recipient.pub, 13, nostr.Tags{}).String()
	wrapJSON := wrap.String()
	rumorJSON := rumor.String()

	seeds := []seed{
		{layerWrap, []byte(wrapJSON)},
		{layerWrap, []byte(strings.Replace(wrapJSON, `"kind":1059`, `"kind":13`, 1))},
		{layerWrap, []byte(strings.Replace(wrapJSON, `"tags":[[`, `"tags":[null,[`, 1))},
		{layerWrap, []byte(wrapJSON[:len(wrapJSON)/2])},
		{layerWrap, []byte(`{"kind":1059,"content":"` + strings.Repeat("A", 132) + `"}`)},
		{layerSeal, []byte(sealJSON)},
		{layerSeal, []byte(strings.Replace(sealJSON, `"kind":13`, `"kind":14`, 1))},
		{layerSeal, []byte(strings.Replace(sealJSON, `"tags":[]`, `"tags":[["p"]]`, 1))},
		{layerSeal, []byte(`{"kind":13,"pubkey":"` + sender.pub + `","content":"#"}`)},
		{layerRumor, []byte(rumorJSON)},
		{layerRumor, []byte(strings.Replace(rumorJSON, sender.pub, recipient.pub, 1))},
		{layerRumor, []byte(strings.Replace(rumorJSON, `"kind":15`, `"kind":7702`, 1))},
		{layerRumor, []byte(`{"kind":15,"tags":[[],["p"],null],"content":"\ud800"}`)},
		{layerRumor, []byte(`[]`)},
	}
	if *genCorpus {
		dir := filepath.Join("testdata", "fuzz", "FuzzUnwrap")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", s.layer, s.data)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return seeds
}
