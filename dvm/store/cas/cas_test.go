package cas

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPutOpenAndModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "files")
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a screenshot")
	sum, created, err := d.Put(data)
	if err != nil || !created {
		t.Fatalf("first put = %v, %v", created, err)
	}
	p, _ := d.Path(sum)
	if p != filepath.Join(root, sum[:2], sum[2:]) {
		t.Fatalf("path %s", p)
	}
	for path, want := range map[string]fs.FileMode{root: 0o700, filepath.Dir(p): 0o700, p: 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	again, created, err := d.Put(data)
	if err != nil || created || again != sum {
		t.Fatalf("second put = %s, %v, %v", again, created, err)
	}
	f, err := d.Open(sum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("%d entries in the shard dir: temp files left behind", len(entries))
	}
	// A truncated file (size differs) is replaced on the next put.
	if err := os.WriteFile(p, data[:3], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, created, err := d.Put(data); err != nil || !created {
		t.Fatalf("put over a truncated file = %v, %v", created, err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
		t.Fatal("truncated file not repaired")
	}
}

func TestPathRefusesNonHashes(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../../etc/passwd", "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde/"} {
		if _, err := d.Path(bad); err == nil {
			t.Errorf("Path(%q) accepted", bad)
		}
		if _, err := d.Open(bad); err == nil {
			t.Errorf("Open(%q) accepted", bad)
		}
	}
	missing := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := d.Open(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if ok, err := d.Has(missing); ok || err != nil {
		t.Fatalf("Has(missing) = %v, %v", ok, err)
	}
}

func TestSweep(t *testing.T) {
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	keep, _, _ := d.Put([]byte("keep"))
	drop, _, _ := d.Put([]byte("drop"))
	young, _, _ := d.Put([]byte("young"))
	old := time.Now().Add(-2 * time.Hour)
	for _, s := range []string{keep, drop} {
		p, _ := d.Path(s)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	stray := filepath.Join(root, keep[:2], ".tmp-123")
	if err := os.WriteFile(stray, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(stray, old, old)
	foreign := filepath.Join(root, "README")
	os.WriteFile(foreign, []byte("not ours"), 0o600)
	os.Chtimes(foreign, old, old)

	n, err := d.Sweep(time.Now().Add(-time.Hour), func(s string) (bool, error) { return s == keep, nil })
	if err != nil || n != 2 {
		t.Fatalf("sweep removed %d, %v; want the unreferenced old file and the stray temp file", n, err)
	}
	for s, want := range map[string]bool{keep: true, drop: false, young: true} {
		if ok, _ := d.Has(s); ok != want {
			t.Errorf("after sweep, has %.8s = %v, want %v", s, ok, want)
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatal("sweep removed a file that is not content-addressed")
	}
	// Put touches an existing file so a sweep racing an insert leaves it alone.
	p, _ := d.Path(keep)
	d.Put([]byte("keep"))
	if fi, _ := os.Stat(p); time.Since(fi.ModTime()) > time.Minute {
		t.Fatal("Put of existing content did not refresh its time")
	}
}
