// Package blobstore keeps Blossom blobs on disk, named by their sha256. Uploads stream into
// a temporary file while being hashed and are renamed into place only when complete and
// verified, so a failed upload never leaves a partial blob; nothing is held whole in memory.
// A small JSON sidecar per blob records its owners, type and upload time; the index of all
// sidecars lives in memory for listing, expiry and quota.
package blobstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"
)

// Errors returned (wrapped) by Put.
var (
	ErrTooLarge     = errors.New("blob too large")
	ErrShort        = errors.New("body shorter than declared")
	ErrHashMismatch = errors.New("body sha256 differs from the expected hash")
	ErrRejected     = errors.New("blob refused")
	ErrNotFound     = errors.New("blob not found")
)

// Meta describes a stored blob.
type Meta struct {
	SHA256   string   `json:"sha256"`
	Size     int64    `json:"size"`
	Type     string   `json:"type,omitempty"`
	Uploaded int64    `json:"uploaded"`
	Owners   []string `json:"owners"`
}

// Store is safe for concurrent use.
type Store struct {
	dir string

	mu    sync.Mutex
	index map[string]*Meta
	total int64
}

// IsHash reports whether s is a lowercase hex sha256.
func IsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Open loads the index from dir, creating it if needed. Leftover temporary files and blobs
// whose sidecar was never written (a crash mid-commit) are removed.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, index: map[string]*Meta{}}
	for _, d := range []string{s.tmpDir(), filepath.Join(dir, "data"), filepath.Join(dir, "meta")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open blob store: %w", err)
		}
	}
	tmps, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	for _, e := range tmps {
		os.Remove(filepath.Join(s.tmpDir(), e.Name()))
	}
	metas, _ := filepath.Glob(filepath.Join(dir, "meta", "*", "*.json"))
	for _, p := range metas {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("open blob store: read %s: %w", p, err)
		}
		var m Meta
		if err := json.Unmarshal(b, &m); err != nil || !IsHash(m.SHA256) {
			// A sidecar that cannot be read is useless; drop it and its blob.
			os.Remove(p)
			continue
		}
		st, err := os.Stat(s.dataPath(m.SHA256))
		if err != nil || st.Size() != m.Size {
			os.Remove(p)
			os.Remove(s.dataPath(m.SHA256))
			continue
		}
		s.index[m.SHA256] = &m
		s.total += m.Size
	}
	datas, _ := filepath.Glob(filepath.Join(dir, "data", "*", "*"))
	for _, p := range datas {
		if _, ok := s.index[filepath.Base(p)]; !ok {
			os.Remove(p)
		}
	}
	return s, nil
}

func (s *Store) tmpDir() string { return filepath.Join(s.dir, "tmp") }

func (s *Store) dataPath(h string) string { return filepath.Join(s.dir, "data", h[:2], h) }

func (s *Store) metaPath(h string) string { return filepath.Join(s.dir, "meta", h[:2], h+".json") }

// PutOptions describe one upload.
type PutOptions struct {
	Size     int64                   // exact body size (Content-Length); -1 when unknown
	MaxSize  int64                   // hard cap; the reader is never read past MaxSize+1 bytes
	Expect   string                  // if set, the body's sha256 must equal it
	Check    func(hash string) error // if set, called with the body's hash before commit
	Owner    string                  // uploader pubkey
	Type     string                  // MIME type
	Uploaded time.Time
}

// Put streams r into the store. It returns the blob's metadata and whether the blob is new.
func (s *Store) Put(r io.Reader, o PutOptions) (Meta, bool, error) {
	if o.MaxSize > 0 && o.Size > o.MaxSize {
		return Meta{}, false, fmt.Errorf("put: %d bytes: %w (limit %d)", o.Size, ErrTooLarge, o.MaxSize)
	}
	f, err := os.CreateTemp(s.tmpDir(), "up-*")
	if err != nil {
		return Meta{}, false, fmt.Errorf("put: %w", err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	var limit int64 // read one byte past what may be stored, to detect overruns
	switch {
	case o.Size < 0 && o.MaxSize <= 0:
		return Meta{}, false, fmt.Errorf("put: neither size nor limit known: %w", ErrTooLarge)
	case o.Size < 0:
		limit = o.MaxSize + 1
	default:
		limit = o.Size + 1
		if o.MaxSize > 0 && o.MaxSize < o.Size {
			limit = o.MaxSize + 1
		}
	}
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit))
	if err != nil {
		return Meta{}, false, fmt.Errorf("put: after %d bytes: %w", n, err)
	}
	if o.MaxSize > 0 && n > o.MaxSize {
		return Meta{}, false, fmt.Errorf("put: %w (limit %d)", ErrTooLarge, o.MaxSize)
	}
	if n == 0 {
		return Meta{}, false, fmt.Errorf("put: empty body: %w", ErrShort)
	}
	if o.Size >= 0 && n < o.Size {
		return Meta{}, false, fmt.Errorf("put: %d of %d bytes: %w", n, o.Size, ErrShort)
	}
	if o.Size >= 0 && n > o.Size {
		return Meta{}, false, fmt.Errorf("put: body longer than the declared %d bytes: %w", o.Size, ErrTooLarge)
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if o.Expect != "" && hash != o.Expect {
		return Meta{}, false, fmt.Errorf("put: %w: got %s, expected %s", ErrHashMismatch, hash, o.Expect)
	}
	if o.Check != nil {
		if err := o.Check(hash); err != nil {
			return Meta{}, false, fmt.Errorf("put %s: %w: %w", hash, ErrRejected, err)
		}
	}
	if err := f.Sync(); err != nil {
		return Meta{}, false, fmt.Errorf("put %s: %w", hash, err)
	}
	if err := f.Close(); err != nil {
		return Meta{}, false, fmt.Errorf("put %s: %w", hash, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.index[hash]; ok {
		// Someone stored it meanwhile: keep theirs, add the owner.
		if err := s.addOwnerLocked(m, o.Owner); err != nil {
			return Meta{}, false, err
		}
		return cloneMeta(m), false, nil
	}
	if err := os.MkdirAll(filepath.Dir(s.dataPath(hash)), 0o700); err != nil {
		return Meta{}, false, fmt.Errorf("put %s: %w", hash, err)
	}
	if err := os.MkdirAll(filepath.Dir(s.metaPath(hash)), 0o700); err != nil {
		return Meta{}, false, fmt.Errorf("put %s: %w", hash, err)
	}
	if err := os.Rename(tmp, s.dataPath(hash)); err != nil {
		return Meta{}, false, fmt.Errorf("put %s: %w", hash, err)
	}
	committed = true
	m := &Meta{SHA256: hash, Size: n, Type: o.Type, Uploaded: o.Uploaded.Unix()}
	if o.Owner != "" {
		m.Owners = []string{o.Owner}
	}
	if err := writeMeta(s.metaPath(hash), m); err != nil {
		os.Remove(s.dataPath(hash))
		return Meta{}, false, fmt.Errorf("put %s: %w", hash, err)
	}
	s.index[hash] = m
	s.total += n
	return cloneMeta(m), true, nil
}

func writeMeta(path string, m *Meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".meta-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

func cloneMeta(m *Meta) Meta {
	c := *m
	c.Owners = slices.Clone(m.Owners)
	return c
}

func (s *Store) addOwnerLocked(m *Meta, owner string) error {
	if owner == "" || slices.Contains(m.Owners, owner) {
		return nil
	}
	next := cloneMeta(m)
	next.Owners = append(next.Owners, owner)
	if err := writeMeta(s.metaPath(m.SHA256), &next); err != nil {
		return fmt.Errorf("add owner to %s: %w", m.SHA256, err)
	}
	m.Owners = next.Owners
	return nil
}

// AddOwner records owner for an existing blob (an upload of a blob already stored).
func (s *Store) AddOwner(hash, owner string) (Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.index[hash]
	if !ok {
		return Meta{}, fmt.Errorf("add owner to %s: %w", hash, ErrNotFound)
	}
	if err := s.addOwnerLocked(m, owner); err != nil {
		return Meta{}, err
	}
	return cloneMeta(m), nil
}

// Stat returns a blob's metadata.
func (s *Store) Stat(hash string) (Meta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.index[hash]
	if !ok {
		return Meta{}, false
	}
	return cloneMeta(m), true
}

// Open opens a blob for reading. The file stays readable even if the blob is deleted meanwhile.
func (s *Store) Open(hash string) (*os.File, Meta, error) {
	m, ok := s.Stat(hash)
	if !ok {
		return nil, Meta{}, fmt.Errorf("open %s: %w", hash, ErrNotFound)
	}
	f, err := os.Open(s.dataPath(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil, Meta{}, fmt.Errorf("open %s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return nil, Meta{}, fmt.Errorf("open %s: %w", hash, err)
	}
	return f, m, nil
}

// RemoveOwner drops owner from a blob and deletes the blob when nobody owns it any more.
// It reports whether the blob itself was deleted.
func (s *Store) RemoveOwner(hash, owner string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.index[hash]
	if !ok {
		return false, fmt.Errorf("remove owner from %s: %w", hash, ErrNotFound)
	}
	if !slices.Contains(m.Owners, owner) {
		return false, fmt.Errorf("remove owner from %s: %w: not an owner", hash, ErrNotFound)
	}
	if len(m.Owners) == 1 {
		return true, s.deleteLocked(hash)
	}
	next := cloneMeta(m)
	next.Owners = slices.DeleteFunc(next.Owners, func(o string) bool { return o == owner })
	if err := writeMeta(s.metaPath(hash), &next); err != nil {
		return false, fmt.Errorf("remove owner from %s: %w", hash, err)
	}
	m.Owners = next.Owners
	return false, nil
}

// Delete removes a blob whatever its owners.
func (s *Store) Delete(hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.index[hash]; !ok {
		return fmt.Errorf("delete %s: %w", hash, ErrNotFound)
	}
	return s.deleteLocked(hash)
}

func (s *Store) deleteLocked(hash string) error {
	m := s.index[hash]
	// Sidecar first: a blob without a sidecar is cleaned on the next start.
	if err := os.Remove(s.metaPath(hash)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", hash, err)
	}
	delete(s.index, hash)
	s.total -= m.Size
	if err := os.Remove(s.dataPath(hash)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", hash, err)
	}
	return nil
}

// List returns owner's blobs uploaded in [since, until] (zero values: unbounded), newest first.
func (s *Store) List(owner string, since, until int64) []Meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Meta
	for _, m := range s.index {
		if !slices.Contains(m.Owners, owner) {
			continue
		}
		if since > 0 && m.Uploaded < since || until > 0 && m.Uploaded > until {
			continue
		}
		out = append(out, cloneMeta(m))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Uploaded != out[j].Uploaded {
			return out[i].Uploaded > out[j].Uploaded
		}
		return out[i].SHA256 < out[j].SHA256
	})
	return out
}

// Usage returns the number of blobs and their total size.
func (s *Store) Usage() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index), s.total
}

// Expire deletes every blob uploaded before cutoff and returns them.
func (s *Store) Expire(cutoff time.Time) ([]Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []Meta
	for h, m := range s.index {
		if m.Uploaded < cutoff.Unix() {
			c := cloneMeta(m)
			if err := s.deleteLocked(h); err != nil {
				return gone, err
			}
			gone = append(gone, c)
		}
	}
	return gone, nil
}

// Evict deletes the oldest blobs until the total size is at most quota, and returns them.
func (s *Store) Evict(quota int64) ([]Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total <= quota {
		return nil, nil
	}
	all := make([]*Meta, 0, len(s.index))
	for _, m := range s.index {
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Uploaded != all[j].Uploaded {
			return all[i].Uploaded < all[j].Uploaded
		}
		return all[i].SHA256 < all[j].SHA256
	})
	var gone []Meta
	for _, m := range all {
		if s.total <= quota {
			break
		}
		c := cloneMeta(m)
		if err := s.deleteLocked(m.SHA256); err != nil {
			return gone, err
		}
		gone = append(gone, c)
	}
	return gone, nil
}
