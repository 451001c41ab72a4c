package proto

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

type keypair struct{ sk, pub string }

func newKey(t testing.TB) keypair {
	t.Helper()
	sk := nostr.GeneratePrivateKey()
	pub, err := PublicKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return keypair{sk, pub}
}

// mutation changes a valid rumor into a broken one.
type mutation func(ev *nostr.Event)

func setTag(name string, value ...string) mutation {
	return func(ev *nostr.Event) {
		for i, t := range ev.Tags {
			if len(t) > 0 && t[0] == name {
				ev.Tags[i] = append(nostr.Tag{name}, value...)
				return
			}
		}
		panic("test bug: no tag " + name)
	}
}

func delTag(name string) mutation {
	return func(ev *nostr.Event) {
		out := ev.Tags[:0]
		found := false
		for _, t := range ev.Tags {
			if len(t) > 0 && t[0] == name {
				found = true
				continue
			}
			out = append(out, t)
		}
		if !found {
			panic("test bug: no tag " + name)
		}
		ev.Tags = out
	}
}

func dupTag(name string) mutation {
	return func(ev *nostr.Event) {
		for _, t := range ev.Tags {
			if len(t) > 0 && t[0] == name {
				ev.Tags = append(ev.Tags, append(nostr.Tag{}, t...))
				return
			}
		}
		panic("test bug: no tag " + name)
	}
}

func addTag(tag ...string) mutation {
	return func(ev *nostr.Event) { ev.Tags = append(ev.Tags, tag) }
}

func setContent(c string) mutation { return func(ev *nostr.Event) { ev.Content = c } }
func setKind(k int) mutation       { return func(ev *nostr.Event) { ev.Kind = k } }
func chain(ms ...mutation) mutation {
	return func(ev *nostr.Event) {
		for _, m := range ms {
			m(ev)
		}
	}
}

type refusal struct {
	name  string
	mut   mutation
	field string // the FieldError.Field the parser must name
}

// runRefusals applies each mutation to a fresh copy of the valid rumor and checks that
// parse refuses it with a *FieldError naming the expected field. The unmutated rumor must
// parse, so a refusal cannot come from a broken fixture.
func runRefusals[T any](t *testing.T, valid nostr.Event, parse func(nostr.Event) (T, error), cases []refusal) {
	t.Helper()
	if _, err := parse(cloneEvent(valid)); err != nil {
		t.Fatalf("fixture does not parse: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := cloneEvent(valid)
			c.mut(&ev)
			ev.ID = ev.GetID()
			_, err := parse(ev)
			if err == nil {
				t.Fatalf("accepted: %s", ev.String())
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			if fe.Field != c.field {
				t.Fatalf("error names %q, want %q: %v", fe.Field, c.field, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("message does not name %q: %v", c.field, err)
			}
		})
	}
}

func cloneEvent(ev nostr.Event) nostr.Event {
	c := ev
	c.Tags = make(nostr.Tags, len(ev.Tags))
	for i, t := range ev.Tags {
		c.Tags[i] = append(nostr.Tag(nil), t...)
	}
	return c
}

// checkRumor checks what every built rumor must satisfy.
func checkRumor(t *testing.T, ev nostr.Event, kind int, sender, to string) {
	t.Helper()
	if ev.Kind != kind {
		t.Errorf("kind %d, want %d", ev.Kind, kind)
	}
	if ev.PubKey != sender {
		t.Errorf("pubkey %s, want %s", ev.PubKey, sender)
	}
	if ev.Sig != "" {
		t.Errorf("rumor is signed")
	}
	if !ev.CheckID() {
		t.Errorf("rumor id %q is not the hash of the rumor", ev.ID)
	}
	if len(ev.Tags) < 2 || len(ev.Tags[0]) != 2 || ev.Tags[0][0] != "p" || ev.Tags[0][1] != to {
		t.Errorf("first tag is %v, want [p %s]", ev.Tags[0], to)
	}
	if d := time.Since(ev.CreatedAt.Time()); d < -2*time.Second || d > time.Minute {
		t.Errorf("created_at %v is not now", ev.CreatedAt.Time())
	}
	if n := len(ev.String()); n > MaxRumorBytes {
		t.Errorf("rumor of %d bytes exceeds MaxRumorBytes", n)
	}
}

func hex64(c byte) string { return strings.Repeat(string(c), 64) }
