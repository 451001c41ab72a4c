package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip42"

	"pow.do/relay/relaytest"
	"pow.do/shared/blossom"
)

func TestHelpDocumentsEveryOption(t *testing.T) {
	for _, c := range []struct {
		args []string
		fs   *flag.FlagSet
	}{
		{[]string{"--help"}, serveFlags(&serveOptions{}, io.Discard)},
		{[]string{"strfry-policy", "--help"}, nil},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, nil, &out, &errOut, func(string) string { return "" }); code != 0 {
			t.Fatalf("%v: exit %d, stderr %s", c.args, code, errOut.String())
		}
		help := out.String()
		if c.fs == nil {
			for _, name := range []string{"allowed-file", "allow", "pow", "max-event-bytes", "does not pass the NIP-42 AUTHed key"} {
				if !strings.Contains(help, name) {
					t.Errorf("strfry-policy --help lacks %q", name)
				}
			}
			continue
		}
		n := 0
		c.fs.VisitAll(func(f *flag.Flag) {
			n++
			if !strings.Contains(help, "--"+f.Name+"\n") || !strings.Contains(help, envName(f.Name)) {
				t.Errorf("--help does not document --%s and %s", f.Name, envName(f.Name))
			}
		})
		if n < 30 {
			t.Fatalf("only %d options defined", n)
		}
	}
}

func TestFlagsOverEnvOverFile(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "relay.conf")
	os.WriteFile(cfgFile, []byte("# test\nname = from file\ndescription = \"file desc\"\nblob-ttl = 2d\nmax-blob-size = 5MiB\nmin-pow = 3\n"), 0o600)
	env := map[string]string{"POWDO_RELAY_CONFIG": cfgFile, "POWDO_RELAY_NAME": "from env", "POWDO_RELAY_MIN_POW": "4", "POWDO_RELAY_ADMIN": "a,b"}
	var o serveOptions
	fs := serveFlags(&o, io.Discard)
	if err := parseLayered(fs, []string{"--min-pow", "5"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Name != "from env" || c.Description != "file desc" || c.BlobTTL != 48*time.Hour || c.MaxBlobBytes != 5<<20 || c.MinPoW != 5 || len(c.Admins) != 2 {
		t.Fatalf("layered config: name=%q desc=%q ttl=%v max=%d pow=%d admins=%v", c.Name, c.Description, c.BlobTTL, c.MaxBlobBytes, c.MinPoW, c.Admins)
	}
	os.WriteFile(cfgFile, []byte("no-such-option = 1\n"), 0o600)
	if err := parseLayered(serveFlags(&serveOptions{}, io.Discard), nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "unknown option") {
		t.Fatalf("unknown option in the file: %v", err)
	}
	if err := parseLayered(serveFlags(&serveOptions{}, io.Discard), nil, func(k string) string {
		return map[string]string{"POWDO_RELAY_BLOB_TTL": "soon"}[k]
	}); err == nil || !strings.Contains(err.Error(), "POWDO_RELAY_BLOB_TTL") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestBadOptionsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"--data-dir", t.TempDir(), "--admin", "nothex"},
		{"--data-dir", t.TempDir(), "--blossom-list", "everyone"},
		{"strfry-policy"},
	} {
		var errOut bytes.Buffer
		if code := run(args, strings.NewReader(""), io.Discard, &errOut, func(string) string { return "" }); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}

type key struct{ sk, pk string }

func newKey(t *testing.T) key {
	sk := nostr.GeneratePrivateKey()
	pk, _ := nostr.GetPublicKey(sk)
	return key{sk, pk}
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func manage(t *testing.T, r *relaytest.Relay, k key, method string, params ...any) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"method": method, "params": params})
	ev := nostr.Event{Kind: 27235, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"u", r.URL + "/"}, {"method", "POST"}, {"payload", sum(body)}}}
	ev.Sign(k.sk)
	js, _ := json.Marshal(ev)
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/nostr+json+rpc")
	req.Header.Set("Authorization", "Nostr "+base64.StdEncoding.EncodeToString(js))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// session opens a websocket, AUTHs as k and returns a function that sends one envelope
// and waits for the first answer matching want.
func session(t *testing.T, r *relaytest.Relay, k key) func(env nostr.Envelope, want func(nostr.Envelope) bool) nostr.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	conn, err := nostr.NewConnection(ctx, r.WSURL, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	read := func(want func(nostr.Envelope) bool) nostr.Envelope {
		for {
			var buf bytes.Buffer
			if err := conn.ReadMessage(ctx, &buf); err != nil {
				t.Fatal(err)
			}
			if env := nostr.ParseMessage(buf.String()); env != nil && want(env) {
				return env
			}
		}
	}
	send := func(env nostr.Envelope, want func(nostr.Envelope) bool) nostr.Envelope {
		b, _ := env.MarshalJSON()
		if err := conn.WriteMessage(ctx, b); err != nil {
			t.Fatal(err)
		}
		return read(want)
	}
	ch := read(func(e nostr.Envelope) bool { _, ok := e.(*nostr.AuthEnvelope); return ok }).(*nostr.AuthEnvelope)
	auth := nip42.CreateUnsignedAuthEvent(*ch.Challenge, k.pk, r.WSURL)
	auth.Sign(k.sk)
	ok := send(&nostr.AuthEnvelope{Event: auth}, isOK).(*nostr.OKEnvelope)
	if !ok.OK {
		t.Fatalf("AUTH refused: %s", ok.Reason)
	}
	return send
}

func isOK(e nostr.Envelope) bool { _, ok := e.(*nostr.OKEnvelope); return ok }

// TestBinaryRestartKeepsEverything runs the real binary: whitelist over NIP-86, a wrap over
// the websocket and a blob over HTTP; SIGTERM (a clean exit is asserted); start again on
// the same directory; everything is still there.
func TestBinaryRestartKeepsEverything(t *testing.T) {
	admin, dvm, worker := newKey(t), newKey(t), newKey(t)
	r := relaytest.Start(t, relaytest.Options{Admins: []string{admin.pk}})
	for _, k := range []key{dvm, worker} {
		if st := manage(t, r, admin, "allowpubkey", k.pk); st != 200 {
			t.Fatalf("allowpubkey: %d", st)
		}
	}
	wrap := nostr.Event{Kind: 1059, CreatedAt: nostr.Now(), Tags: nostr.Tags{{"p", dvm.pk}}, Content: "ciphertext"}
	wrap.Sign(nostr.GeneratePrivateKey())
	if ok := session(t, r, worker)(&nostr.EventEnvelope{Event: wrap}, isOK).(*nostr.OKEnvelope); !ok.OK {
		t.Fatalf("publish: %s", ok.Reason)
	}
	blob := make([]byte, 5000)
	rand.Read(blob)
	tok, _ := blossom.NewToken(worker.sk, "upload", []string{sum(blob)}, time.Minute, "")
	req, _ := http.NewRequest(http.MethodPut, r.URL+"/upload", bytes.NewReader(blob))
	req.Header.Set("Authorization", blossom.AuthHeader(tok))
	req.Header.Set("X-SHA-256", sum(blob))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload: %v %v", resp, err)
	}
	resp.Body.Close()

	r.Restart()

	sub := nostr.ReqEnvelope{SubscriptionID: "x", Filters: nostr.Filters{{Kinds: []int{1059}, Tags: nostr.TagMap{"p": {dvm.pk}}}}}
	got := session(t, r, dvm)(&sub, func(e nostr.Envelope) bool {
		switch e.(type) {
		case *nostr.EventEnvelope, *nostr.EOSEEnvelope, *nostr.ClosedEnvelope:
			return true
		}
		return false
	})
	if ev, ok := got.(*nostr.EventEnvelope); !ok || ev.Event.ID != wrap.ID {
		t.Fatalf("after restart the DVM got %T %v, want the wrap", got, got)
	}
	resp, err = http.Get(r.URL + "/" + sum(blob))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, blob) {
		t.Fatalf("blob after restart: %d", resp.StatusCode)
	}
	// The whitelist survived: the worker may still publish; a stranger may not.
	if ok := session(t, r, worker)(&nostr.EventEnvelope{Event: wrap}, isOK).(*nostr.OKEnvelope); !ok.OK {
		t.Fatalf("worker after restart: %s", ok.Reason)
	}
	if ok := session(t, r, newKey(t))(&nostr.EventEnvelope{Event: wrap}, isOK).(*nostr.OKEnvelope); ok.OK || !strings.HasPrefix(ok.Reason, "restricted:") {
		t.Fatalf("stranger after restart: %+v", ok)
	}
	if !strings.Contains(r.Logs(), "stopped") {
		t.Fatal("the first process did not log a clean shutdown")
	}
}

// TestStrfryPolicyBinary feeds the recorded strfry plugin lines to the real binary.
func TestStrfryPolicyBinary(t *testing.T) {
	input, err := os.ReadFile("../../strfry/testdata/input.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(relaytest.Binary(t), "strfry-policy", "--allowed-file", "../../strfry/testdata/allowed.txt", "--pow", "8")
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("strfry-policy: %v\n%s", err, stderr.String())
	}
	var actions []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	in := bufio.NewScanner(bytes.NewReader(input))
	for sc.Scan() {
		var o struct{ ID, Action, Msg string }
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("output %q: %v", sc.Text(), err)
		}
		in.Scan()
		var line struct {
			Event struct{ ID string } `json:"event"`
		}
		json.Unmarshal(in.Bytes(), &line)
		if o.ID != line.Event.ID {
			t.Errorf("id %q not echoed (got %q)", line.Event.ID, o.ID)
		}
		actions = append(actions, o.Action)
	}
	want := "accept reject reject reject reject reject reject reject reject"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("actions %q, want %q", got, want)
	}
}
