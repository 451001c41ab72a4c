package blobstore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// entries lists every file under dir (tmp files included), so tests can prove nothing is left.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestPutGetOwnersDelete(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := random(t, 100_000)
	now := time.Unix(1_800_000_000, 0)
	m, created, err := s.Put(bytes.NewReader(data), PutOptions{Size: int64(len(data)), MaxSize: 1 << 20, Expect: hashOf(data), Owner: "alice", Type: "application/octet-stream", Uploaded: now})
	if err != nil || !created || m.SHA256 != hashOf(data) || m.Size != int64(len(data)) {
		t.Fatalf("put: %+v created=%v err=%v", m, created, err)
	}
	_, created, err = s.Put(bytes.NewReader(data), PutOptions{Size: int64(len(data)), Owner: "bob", Uploaded: now.Add(time.Hour)})
	if err != nil || created {
		t.Fatalf("second put of the same bytes: created=%v err=%v", created, err)
	}
	f, meta, err := s.Open(m.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) || len(meta.Owners) != 2 || meta.Uploaded != now.Unix() {
		t.Fatalf("read back %d bytes, meta %+v", len(got), meta)
	}
	if l := s.List("bob", 0, 0); len(l) != 1 || l[0].SHA256 != m.SHA256 {
		t.Fatalf("bob's list %+v", l)
	}
	if l := s.List("carol", 0, 0); len(l) != 0 {
		t.Fatalf("carol's list %+v", l)
	}
	if l := s.List("alice", now.Unix()+1, 0); len(l) != 0 {
		t.Fatalf("since filter ignored: %+v", l)
	}
	// Reopen: index rebuilt from sidecars.
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, total := s.Usage(); n != 1 || total != int64(len(data)) {
		t.Fatalf("usage after reopen %d %d", n, total)
	}
	if gone, err := s.RemoveOwner(m.SHA256, "alice"); err != nil || gone {
		t.Fatalf("removing one of two owners: gone=%v err=%v", gone, err)
	}
	if _, err := s.RemoveOwner(m.SHA256, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing a non-owner: %v", err)
	}
	if gone, err := s.RemoveOwner(m.SHA256, "bob"); err != nil || !gone {
		t.Fatalf("removing the last owner: gone=%v err=%v", gone, err)
	}
	if _, _, err := s.Open(m.SHA256); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Fatalf("files left after delete: %v", left)
	}
}

type failingReader struct {
	r     io.Reader
	after int
	n     int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, errors.New("connection reset")
	}
	if len(p) > f.after-f.n {
		p = p[:f.after-f.n]
	}
	n, err := f.r.Read(p)
	f.n += n
	return n, err
}

func TestFailedPutsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := random(t, 50_000)
	cases := []struct {
		name string
		r    io.Reader
		o    PutOptions
		want error
	}{
		{"declared too big", bytes.NewReader(data), PutOptions{Size: 1 << 40, MaxSize: 1 << 20}, ErrTooLarge},
		{"body over the cap", bytes.NewReader(data), PutOptions{Size: 10_000, MaxSize: 10_000}, ErrTooLarge},
		{"body longer than declared", bytes.NewReader(data), PutOptions{Size: 10_000, MaxSize: 1 << 20}, ErrTooLarge},
		{"body shorter than declared", bytes.NewReader(data), PutOptions{Size: 60_000, MaxSize: 1 << 20}, ErrShort},
		{"hash mismatch", bytes.NewReader(data), PutOptions{Size: int64(len(data)), Expect: hashOf([]byte("other"))}, ErrHashMismatch},
		{"check refuses", bytes.NewReader(data), PutOptions{Size: int64(len(data)), Check: func(string) error { return errors.New("token does not cover it") }}, ErrRejected},
		{"reader fails", &failingReader{r: bytes.NewReader(data), after: 20_000}, PutOptions{Size: int64(len(data))}, nil},
	}
	for _, c := range cases {
		_, _, err := s.Put(c.r, c.o)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: err=%v, want %v", c.name, err, c.want)
		}
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Fatalf("failed uploads left files: %v", left)
	}
	if n, total := s.Usage(); n != 0 || total != 0 {
		t.Fatalf("usage %d %d after failures", n, total)
	}
}

func TestExpireEvictAndCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1_800_000_000, 0)
	var hashes []string
	for i := 0; i < 4; i++ {
		d := random(t, 1000)
		m, _, err := s.Put(bytes.NewReader(d), PutOptions{Size: 1000, Owner: "o", Uploaded: base.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, m.SHA256)
	}
	gone, err := s.Evict(2500)
	if err != nil || len(gone) != 2 || gone[0].SHA256 != hashes[0] || gone[1].SHA256 != hashes[1] {
		t.Fatalf("evict: %v %v", gone, err)
	}
	gone, err = s.Expire(base.Add(150 * time.Minute))
	if err != nil || len(gone) != 1 || gone[0].SHA256 != hashes[2] {
		t.Fatalf("expire: %v %v", gone, err)
	}
	if _, ok := s.Stat(hashes[3]); !ok {
		t.Fatal("the newest blob was removed")
	}
	// Simulate a crash: a stray temp file and a blob without sidecar.
	os.WriteFile(filepath.Join(dir, "tmp", "up-123"), []byte("partial"), 0o600)
	orphan := hashOf([]byte("orphan"))
	os.MkdirAll(filepath.Join(dir, "data", orphan[:2]), 0o700)
	os.WriteFile(filepath.Join(dir, "data", orphan[:2], orphan), []byte("orphan"), 0o600)
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if left := entries(t, dir); len(left) != 2 { // the newest blob and its sidecar
		t.Fatalf("after reopen: %v", left)
	}
}
