package password

import (
	"errors"
	"strings"
	"testing"
)

// cheap keeps the tests fast; the parameters are read back from the hash either way.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	ok, err := Verify("correct horse battery", h)
	if err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	ok, err = Verify("correct horse batterY", h)
	if err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v", ok, err)
	}
	h2, err := Hash("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if h2 == h {
		t.Fatal("two hashes of the same password are equal: salt not random")
	}
}

func TestDefaultParamsRoundTrip(t *testing.T) {
	h, err := Hash("a long enough password", Default)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _, err := Decode(h)
	if err != nil || p != Default {
		t.Fatalf("decoded %+v (err %v), want %+v", p, err, Default)
	}
}

func TestMalformedHashes(t *testing.T) {
	good, err := Hash("whatever password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":         "",
		"bcrypt":        "$2a$10$abcdefghijklmnopqrstuv",
		"argon2i":       strings.Replace(good, "argon2id", "argon2i", 1),
		"version":       strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":   strings.Replace(good, "m=64", "m=4194304", 1),
		"zero time":     strings.Replace(good, "t=1", "t=0", 1),
		"zero threads":  strings.Replace(good, "p=1", "p=0", 1),
		"bad salt":      strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"short key":     strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"extra field":   good + "$x",
		"unknown param": strings.Replace(good, "p=1", "p=1,x=2", 1),
	} {
		ok, err := Verify("whatever password", h)
		if ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ok=%v err=%v, want ErrMalformed", name, ok, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	if err := CheckPolicy("short"); !errors.Is(err, ErrPolicy) {
		t.Fatalf("short password: %v", err)
	}
	if err := CheckPolicy(strings.Repeat("x", MaxLength+1)); !errors.Is(err, ErrPolicy) {
		t.Fatalf("long password: %v", err)
	}
	if err := CheckPolicy("ten chars!"); err != nil {
		t.Fatalf("ten bytes: %v", err)
	}
}
