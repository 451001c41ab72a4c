package proto

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

func TestJoinRequestRoundTrip(t *testing.T) {
	invite, worker, dvm := newKey(t), newKey(t), newKey(t)
	proof, err := NewInviteProof(invite.sk, dvm.pub, worker.pub)
	if err != nil {
		t.Fatal(err)
	}
	j := JoinRequest{To: dvm.pub, Proof: proof, AppVersion: "0.1.0", Host: "laptop"}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	ev := j.Rumor(worker.pub)
	checkRumor(t, ev, KindJoinRequest, worker.pub, dvm.pub)
	got, err := ParseJoinRequest(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, j) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, j)
	}
	if err := VerifyInviteProof(got.Proof, dvm.pub, ev.PubKey, ev.CreatedAt.Time()); err != nil {
		t.Fatalf("the proof from a parsed join request does not verify: %v", err)
	}
	if got.Proof.PubKey != invite.pub {
		t.Fatalf("proof signed by %s, want the invite key %s", got.Proof.PubKey, invite.pub)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ev.Content), &doc); err != nil || string(doc["v"]) != "1" || string(doc["app_version"]) != `"0.1.0"` {
		t.Fatalf("content %s is not the JSON of PROTOCOL.md section 7 (%v)", ev.Content, err)
	}
}

func TestParseJoinRequestRefusals(t *testing.T) {
	invite, worker, dvm, other := newKey(t), newKey(t), newKey(t), newKey(t)
	proof, err := NewInviteProof(invite.sk, dvm.pub, worker.pub)
	if err != nil {
		t.Fatal(err)
	}
	valid := JoinRequest{To: dvm.pub, Proof: proof, AppVersion: "0.1.0", Host: "laptop"}.Rumor(worker.pub)
	edit := func(f func(doc map[string]any)) mutation {
		return func(ev *nostr.Event) {
			var doc map[string]any
			if err := json.Unmarshal([]byte(ev.Content), &doc); err != nil {
				panic(err)
			}
			f(doc)
			b, _ := json.Marshal(doc)
			ev.Content = string(b)
		}
	}
	// withProof replaces the proof by one made by mk.
	withProof := func(mk func() nostr.Event) mutation {
		return edit(func(doc map[string]any) {
			b, _ := json.Marshal(mk())
			var p any
			_ = json.Unmarshal(b, &p)
			doc["proof"] = p
		})
	}
	signed := func(kind int, content string, tags nostr.Tags) func() nostr.Event {
		return func() nostr.Event {
			ev := nostr.Event{Kind: kind, CreatedAt: nostr.Now(), Tags: tags, Content: content}
			if err := ev.Sign(invite.sk); err != nil {
				panic(err)
			}
			return ev
		}
	}
	runRefusals(t, valid, ParseJoinRequest, []refusal{
		{"wrong kind", setKind(KindInviteProof), "kind"},
		{"missing p", delTag("p"), "p"},
		{"unknown version", setTag("powdo-v", "3"), "powdo-v"},
		{"not JSON", setContent("join me"), "content"},
		{"oversize", setContent(strings.Repeat(" ", MaxJoinBytes+1)), "content"},
		{"wrong v", edit(func(doc map[string]any) { doc["v"] = 2 }), "content.v"},
		{"no proof", edit(func(doc map[string]any) { delete(doc, "proof") }), "content.proof"},
		{"proof not an event", edit(func(doc map[string]any) { doc["proof"] = "signed" }), "content"},
		{"no app_version", edit(func(doc map[string]any) { delete(doc, "app_version") }), "content.app_version"},
		{"host too long", edit(func(doc map[string]any) { doc["host"] = strings.Repeat("h", MaxHostBytes+1) }), "content.host"},
		{"proof of wrong kind", withProof(signed(1, worker.pub, nostr.Tags{{"p", dvm.pub}})), "content.proof"},
		{"proof for another DVM", withProof(signed(KindInviteProof, worker.pub, nostr.Tags{{"p", other.pub}})), "content.proof"},
		{"proof without p", withProof(signed(KindInviteProof, worker.pub, nostr.Tags{})), "content.proof"},
		{"proof with two p", withProof(signed(KindInviteProof, worker.pub, nostr.Tags{{"p", dvm.pub}, {"p", other.pub}})), "content.proof"},
		{"proof for another worker", withProof(signed(KindInviteProof, other.pub, nostr.Tags{{"p", dvm.pub}})), "content.proof"},
		{"proof tampered", withProof(func() nostr.Event {
			p := signed(KindInviteProof, worker.pub, nostr.Tags{{"p", dvm.pub}})()
			p.CreatedAt++ // id and signature no longer match
			return p
		}), "content.proof"},
		{"proof with forged signature", withProof(func() nostr.Event {
			p := signed(KindInviteProof, worker.pub, nostr.Tags{{"p", dvm.pub}})()
			p.Sig = strings.Repeat("0", 128)
			return p
		}), "content.proof"},
	})
}

func TestVerifyInviteProof(t *testing.T) {
	invite, worker, dvm, other := newKey(t), newKey(t), newKey(t), newKey(t)
	proof, err := NewInviteProof(invite.sk, dvm.pub, worker.pub)
	if err != nil {
		t.Fatal(err)
	}
	made := proof.CreatedAt.Time()
	resigned := func(edit func(*nostr.Event)) nostr.Event {
		p := proof
		p.Tags = nostr.Tags{{"p", dvm.pub}}
		edit(&p)
		if err := p.Sign(invite.sk); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		proof    nostr.Event
		dvm, wkr string
		at       time.Time
		wantErr  string // "" = valid
	}{
		{"valid now", proof, dvm.pub, worker.pub, made, ""},
		{"valid 10 minutes later", proof, dvm.pub, worker.pub, made.Add(InviteProofMaxSkew), ""},
		{"valid 10 minutes earlier", proof, dvm.pub, worker.pub, made.Add(-InviteProofMaxSkew), ""},
		{"stale", proof, dvm.pub, worker.pub, made.Add(InviteProofMaxSkew + time.Second), "away from"},
		{"from the future", proof, dvm.pub, worker.pub, made.Add(-InviteProofMaxSkew - time.Second), "away from"},
		{"another worker", proof, dvm.pub, other.pub, made, "names worker"},
		{"another DVM", proof, other.pub, worker.pub, made, "exactly DVM"},
		{"wrong kind", resigned(func(p *nostr.Event) { p.Kind = KindJoinRequest }), dvm.pub, worker.pub, made, "kind"},
		{"tampered content", func() nostr.Event { p := proof; p.Content = other.pub; return p }(), dvm.pub, other.pub, made, "id does not match"},
		{"bad signature", func() nostr.Event { p := proof; p.Sig = strings.Repeat("1", 128); return p }(), dvm.pub, worker.pub, made, "signature"},
		{"signed by someone else", func() nostr.Event { p := proof; p.PubKey = other.pub; p.ID = p.GetID(); return p }(), dvm.pub, worker.pub, made, "signature"},
		{"bad pubkey", func() nostr.Event { p := proof; p.PubKey = "xyz"; return p }(), dvm.pub, worker.pub, made, "pubkey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyInviteProof(tc.proof, tc.dvm, tc.wkr, tc.at)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewInviteProofRefusesBadInput(t *testing.T) {
	invite, worker, dvm := newKey(t), newKey(t), newKey(t)
	badSK := strings.Repeat("f", 64) // above the curve order
	for name, args := range map[string][3]string{
		"short key":      {invite.sk[:60], dvm.pub, worker.pub},
		"key above n":    {badSK, dvm.pub, worker.pub},
		"zero key":       {strings.Repeat("0", 64), dvm.pub, worker.pub},
		"bad DVM":        {invite.sk, "dvm", worker.pub},
		"bad worker":     {invite.sk, dvm.pub, strings.Repeat("f", 64)},
		"uppercase key ": {strings.ToUpper(invite.sk), dvm.pub, worker.pub},
	} {
		_, err := NewInviteProof(args[0], args[1], args[2])
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), args[0][:16]) || strings.Contains(strings.ToLower(err.Error()), invite.sk[:16]) {
			t.Errorf("%s: error repeats the secret key: %v", name, err)
		}
	}
}

func TestParseDispatch(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	msgs := []Message{
		sampleSegment(t, dvm.pub),
		SessionStart{To: dvm.pub, Session: testSession, Project: 1, Activity: 2, Start: time.Unix(1795341493, 0).UTC()},
		SessionStop{To: dvm.pub, Session: testSession, End: time.Unix(1795341493, 0).UTC(), Segments: 1},
		Receipt{To: worker.pub, Answers: hex64('b'), Session: testSession, Status: StatusAccepted},
		sampleCatalogue(worker.pub),
		CatalogueRequest{To: dvm.pub},
	}
	for _, m := range msgs {
		got, err := Parse(m.Rumor(worker.pub))
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T: got %#v", m, got)
		}
	}
	bad := msgs[0].Rumor(worker.pub)
	bad.Kind = 1
	if m, err := Parse(bad); err == nil || m != nil {
		t.Fatalf("Parse(kind 1) = %v, %v", m, err)
	}
	bad.Kind = KindSessionStart // a segment's tags under the session-start kind
	if m, err := Parse(bad); err == nil || m != nil {
		t.Fatalf("Parse(mislabelled) = %v, %v; want nil and an error", m, err)
	}
}
