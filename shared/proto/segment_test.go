package proto

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sampleSegment(t testing.TB, to string) SegmentFile {
	t.Helper()
	s := SegmentFile{
		To:        to,
		Fallbacks: []string{"https://mirror-one.example/abc", "http://127.0.0.1:8080/abc"},
		Size:      734_112,
		Index:     3,
		Start:     time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		End:       time.Date(2026, 11, 21, 10, 10, 0, 0, time.UTC),
	}
	rand.Read(s.Key[:])
	rand.Read(s.Nonce[:])
	ct, pt := sha256.Sum256([]byte("ciphertext")), sha256.Sum256([]byte("zip"))
	s.X, s.OX = hex.EncodeToString(ct[:]), hex.EncodeToString(pt[:])
	var sess [16]byte
	rand.Read(sess[:])
	s.Session = hex.EncodeToString(sess[:])
	s.URL = "https://blossom.example/" + s.X
	return s
}

func TestSegmentFileRoundTrip(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	for _, tc := range []struct {
		name string
		edit func(*SegmentFile)
	}{
		{"with mirrors", func(*SegmentFile) {}},
		{"no mirrors", func(s *SegmentFile) { s.Fallbacks = nil }},
		{"first segment", func(s *SegmentFile) { s.Index = 0 }},
		{"largest blob", func(s *SegmentFile) { s.Size = MaxBlobBytes }},
		{"hour-long segment", func(s *SegmentFile) { s.End = s.Start.Add(time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleSegment(t, dvm.pub)
			tc.edit(&s)
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			ev := s.Rumor(worker.pub)
			checkRumor(t, ev, KindSegmentFile, worker.pub, dvm.pub)
			if ev.Content != s.URL {
				t.Errorf("content %q, want the URL", ev.Content)
			}
			got, err := ParseSegmentFile(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, s) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, s)
			}
			// Tag values are the ones PROTOCOL.md names, not only self-consistent.
			want := map[string]string{
				"file-type": "application/zip", "encryption-algorithm": "aes-gcm",
				"decryption-key": hex.EncodeToString(s.Key[:]), "decryption-nonce": hex.EncodeToString(s.Nonce[:]),
				"x": s.X, "ox": s.OX, "size": strconv.FormatInt(s.Size, 10), "powdo-v": "1",
				"powdo-session": s.Session, "powdo-segment": strconv.Itoa(s.Index),
				"powdo-start": strconv.FormatInt(s.Start.Unix(), 10), "powdo-end": strconv.FormatInt(s.End.Unix(), 10),
			}
			for name, v := range want {
				if tag := ev.Tags.Find(name); len(tag) < 2 || tag[1] != v {
					t.Errorf("tag %s = %v, want %q", name, tag, v)
				}
			}
			var fb []string
			for tag := range ev.Tags.FindAll("fallback") {
				fb = append(fb, tag[1])
			}
			if !reflect.DeepEqual(fb, s.Fallbacks) {
				t.Errorf("fallback tags %v, want %v", fb, s.Fallbacks)
			}
			m, err := Parse(ev)
			if err != nil || !reflect.DeepEqual(m, Message(s)) {
				t.Fatalf("Parse gave %#v, %v", m, err)
			}
		})
	}
}

func TestSegmentFileUnknownTagIgnored(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	s := sampleSegment(t, dvm.pub)
	ev := s.Rumor(worker.pub)
	ev.Tags = append(ev.Tags, []string{"client", "pow.do"})
	if _, err := ParseSegmentFile(ev); err != nil {
		t.Fatalf("an unknown tag made the parser refuse: %v", err)
	}
}

func TestParseSegmentFileRefusals(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	s := sampleSegment(t, dvm.pub)
	valid := s.Rumor(worker.pub)
	start := s.Start.Unix()
	unix := func(n int64) string { return strconv.FormatInt(n, 10) }
	var manyMirrors []mutation
	for i := 0; i <= MaxFallbacks; i++ {
		manyMirrors = append(manyMirrors, addTag("fallback", "https://m"+strconv.Itoa(i)+".example/x"))
	}
	runRefusals(t, valid, ParseSegmentFile, []refusal{
		{"wrong kind", setKind(14), "kind"},
		{"missing p", delTag("p"), "p"},
		{"duplicated p", dupTag("p"), "p"},
		{"p not hex", setTag("p", strings.Repeat("z", 64)), "p"},
		{"p uppercase", setTag("p", strings.ToUpper(dvm.pub)), "p"},
		{"p short", setTag("p", dvm.pub[:62]), "p"},
		{"p not on the curve", setTag("p", hex64('f')), "p"},
		{"p without value", setTag("p"), "p"},
		{"missing version", delTag("powdo-v"), "powdo-v"},
		{"unknown version", setTag("powdo-v", "2"), "powdo-v"},
		{"duplicated version", dupTag("powdo-v"), "powdo-v"},
		{"missing file-type", delTag("file-type"), "file-type"},
		{"wrong file-type", setTag("file-type", "image/jpeg"), "file-type"},
		{"wrong algorithm", setTag("encryption-algorithm", "aes-cbc"), "encryption-algorithm"},
		{"missing algorithm", delTag("encryption-algorithm"), "encryption-algorithm"},
		{"missing key", delTag("decryption-key"), "decryption-key"},
		{"duplicated key", dupTag("decryption-key"), "decryption-key"},
		{"short key", setTag("decryption-key", hex64('a')[:62]), "decryption-key"},
		{"uppercase key", setTag("decryption-key", hex64('A')), "decryption-key"},
		{"zero key", setTag("decryption-key", hex64('0')), "decryption-key"},
		{"nonce too long", setTag("decryption-nonce", hex64('1')[:32]), "decryption-nonce"},
		{"missing nonce", delTag("decryption-nonce"), "decryption-nonce"},
		{"missing x", delTag("x"), "x"},
		{"x short", setTag("x", hex64('1')[:63]), "x"},
		{"x not hex", setTag("x", hex64('g')), "x"},
		{"x without value", setTag("x"), "x"},
		{"duplicated ox", dupTag("ox"), "ox"},
		{"ox uppercase", setTag("ox", hex64('B')), "ox"},
		{"missing size", delTag("size"), "size"},
		{"size not a number", setTag("size", "12kB"), "size"},
		{"size negative", setTag("size", "-5"), "size"},
		{"size with plus", setTag("size", "+5"), "size"},
		{"size leading zero", setTag("size", "0734112"), "size"},
		{"size empty", setTag("size", ""), "size"},
		{"size float", setTag("size", "1e6"), "size"},
		{"size overflows", setTag("size", "99999999999999999999999"), "size"},
		{"size zero", setTag("size", "0"), "size"},
		{"size above limit", setTag("size", unix(MaxBlobBytes+1)), "size"},
		{"fallback ftp", addTag("fallback", "ftp://mirror.example/x"), "fallback"},
		{"fallback relative", addTag("fallback", "/x"), "fallback"},
		{"fallback without value", addTag("fallback"), "fallback"},
		{"too many fallbacks", chain(manyMirrors...), "fallback"},
		{"missing session", delTag("powdo-session"), "powdo-session"},
		{"session short", setTag("powdo-session", s.Session[:30]), "powdo-session"},
		{"missing segment", delTag("powdo-segment"), "powdo-segment"},
		{"segment fraction", setTag("powdo-segment", "1.5"), "powdo-segment"},
		{"segment negative", setTag("powdo-segment", "-1"), "powdo-segment"},
		{"segment too large", setTag("powdo-segment", unix(MaxSegmentIndex+1)), "powdo-segment"},
		{"duplicated segment", dupTag("powdo-segment"), "powdo-segment"},
		{"start not a number", setTag("powdo-start", "2026-11-21T10:00:00Z"), "powdo-start"},
		{"missing end", delTag("powdo-end"), "powdo-end"},
		{"end before start", setTag("powdo-end", unix(start-1)), "powdo-end"},
		{"empty segment", setTag("powdo-end", unix(start)), "powdo-end"},
		{"segment over an hour", setTag("powdo-end", unix(start+MaxSegmentSeconds+1)), "powdo-end"},
		{"end past year 9999", setTag("powdo-end", "253402300800"), "powdo-end"},
		{"empty content", setContent(""), "content"},
		{"content not a URL", setContent("see attached"), "content"},
		{"content with credentials", setContent("https://user:secret@blossom.example/x"), "content"},
		{"content javascript", setContent("javascript:alert(1)"), "content"},
		{"content URL too long", setContent("https://blossom.example/" + strings.Repeat("a", MaxURLBytes)), "content"},
		{"content oversize", setContent(strings.Repeat("a", MaxRumorBytes+1)), "content"},
	})
}

func TestSegmentFileErrorsKeepKeysSecret(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	ev := sampleSegment(t, dvm.pub).Rumor(worker.pub)
	secret := hex64('c')[:63] // almost a key: must not be echoed
	setTag("decryption-key", secret)(&ev)
	_, err := ParseSegmentFile(ev)
	if err == nil {
		t.Fatal("accepted a 63-character key")
	}
	if strings.Contains(err.Error(), secret[:16]) {
		t.Fatalf("error repeats the key material: %v", err)
	}
	ev = sampleSegment(t, dvm.pub).Rumor(worker.pub)
	ev.Content = "https://alice:hunter2@blossom.example/x"
	if _, err := ParseSegmentFile(ev); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("credentials in URL: err = %v", err)
	}
}

func TestSegmentFileValidateRefusesBadFields(t *testing.T) {
	dvm := newKey(t)
	for _, tc := range []struct {
		name  string
		edit  func(*SegmentFile)
		field string
	}{
		{"no recipient", func(s *SegmentFile) { s.To = "" }, "p"},
		{"zero key", func(s *SegmentFile) { s.Key = [32]byte{} }, "decryption-key"},
		{"zero start", func(s *SegmentFile) { s.Start = time.Time{} }, "powdo-start"},
		{"negative index", func(s *SegmentFile) { s.Index = -1 }, "powdo-segment"},
		{"tiny size", func(s *SegmentFile) { s.Size = 16 }, "size"},
		{"mirror with credentials", func(s *SegmentFile) { s.Fallbacks = []string{"https://u:p@m.example/x"} }, "fallback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleSegment(t, dvm.pub)
			tc.edit(&s)
			var fe *FieldError
			if err := s.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate() = %v, want a FieldError on %q", err, tc.field)
			}
		})
	}
}
