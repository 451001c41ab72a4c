// Package cas keeps files named by the sha256 of their content under a root directory:
// <root>/ab/cdef… (the first two hex characters as a sub-directory). Writing the same
// content twice is harmless; a file appears only complete (temp file, fsync, rename).
// Directories are 0700 and files 0600: screenshots are private.
package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	dirMode  = 0o700
	fileMode = 0o600
)

// Dir is a content-addressed directory.
type Dir struct {
	root string
}

// Open makes sure root exists with mode 0700 and returns it as a Dir.
func Open(root string) (*Dir, error) {
	if err := os.MkdirAll(root, dirMode); err != nil {
		return nil, fmt.Errorf("create %s: %w", root, err)
	}
	if err := os.Chmod(root, dirMode); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", root, err)
	}
	return &Dir{root: root}, nil
}

// Root is the directory's path.
func (d *Dir) Root() string { return d.root }

// Path is where the file with this hash lives. It refuses anything but 64 lowercase hex
// characters, so a hash from the network can never name another path.
func (d *Dir) Path(sum string) (string, error) {
	if !isHex64(sum) {
		return "", fmt.Errorf("content hash %q: not 64 lowercase hex characters", sum)
	}
	return filepath.Join(d.root, sum[:2], sum[2:]), nil
}

// Put stores data and returns its sha256 (hex). If a complete file with that hash already
// exists it is kept (created=false).
func (d *Dir) Put(data []byte) (sum string, created bool, err error) {
	h := sha256.Sum256(data)
	sum = hex.EncodeToString(h[:])
	p, _ := d.Path(sum)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(data)) {
		// Touch it so Sweep's grace period covers the insert that is about to use it.
		now := time.Now()
		if err := os.Chtimes(p, now, now); err != nil {
			return "", false, fmt.Errorf("touch %s: %w", sum, err)
		}
		return sum, false, nil
	}
	sub := filepath.Dir(p)
	if err := os.Mkdir(sub, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", false, fmt.Errorf("create %s: %w", sub, err)
	}
	tmp, err := os.CreateTemp(sub, ".tmp-*") // CreateTemp uses mode 0600
	if err != nil {
		return "", false, fmt.Errorf("create temp file for %s: %w", sum, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return "", false, fmt.Errorf("write %s: %w", sum, err)
	}
	if err = tmp.Sync(); err != nil {
		return "", false, fmt.Errorf("fsync %s: %w", sum, err)
	}
	if err = tmp.Close(); err != nil {
		return "", false, fmt.Errorf("close %s: %w", sum, err)
	}
	if err = os.Rename(tmpName, p); err != nil {
		return "", false, fmt.Errorf("rename %s: %w", sum, err)
	}
	if err = syncDir(sub); err != nil {
		return "", false, err
	}
	return sum, true, nil
}

// Open opens the file with this hash; a missing one gives an error wrapping fs.ErrNotExist.
func (d *Dir) Open(sum string) (*os.File, error) {
	p, err := d.Path(sum)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", sum, err)
	}
	return f, nil
}

// Has reports whether a file with this hash exists.
func (d *Dir) Has(sum string) (bool, error) {
	p, err := d.Path(sum)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", sum, err)
	}
	return true, nil
}

// Sweep removes files for which keep returns false and that were last modified before
// olderThan, and temp files left by a crash older than olderThan. It returns how many files
// it removed. keep is asked about each candidate, so it should be cheap.
func (d *Dir) Sweep(olderThan time.Time, keep func(sum string) (bool, error)) (int, error) {
	removed := 0
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if !info.ModTime().Before(olderThan) {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		name := filepath.Base(p)
		if !strings.HasPrefix(name, ".tmp-") {
			sum := strings.ReplaceAll(filepath.ToSlash(rel), "/", "")
			if !isHex64(sum) {
				return nil // not ours: leave it alone
			}
			ok, err := keep(sum)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("sweep %s: %w", d.root, err)
	}
	return removed, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
