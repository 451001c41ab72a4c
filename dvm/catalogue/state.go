package catalogue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// entry is what a worker was last given (or is about to be).
type entry struct {
	Hash      string    `json:"hash"`
	UpdatedAt time.Time `json:"updated_at"` // when this catalogue content first appeared
	Sent      bool      `json:"sent"`       // announced to the worker
}

// stateFile persists the entries. Callers hold Service.mu.
type stateFile struct {
	path    string
	entries map[string]entry
	dirty   bool
}

type stateJSON struct {
	V       int              `json:"v"`
	Workers map[string]entry `json:"workers"`
}

const maxStateBytes = 64 << 20

func loadState(path string) (*stateFile, error) {
	st := &stateFile{path: path, entries: map[string]entry{}}
	if path == "" {
		return st, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("state %s: larger than %d bytes", path, maxStateBytes)
	}
	var sj stateJSON
	if err := json.Unmarshal(data, &sj); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if sj.V != 1 {
		return nil, fmt.Errorf("state %s: unknown version %d", path, sj.V)
	}
	for w, e := range sj.Workers {
		st.entries[w] = e
	}
	return st, nil
}

func (st *stateFile) get(worker string) (entry, bool) {
	e, ok := st.entries[worker]
	return e, ok
}

// observe records the worker's current hash. A new hash starts a new entry (UpdatedAt
// now, Sent as given) and reports changed.
func (st *stateFile) observe(worker, hash string, now time.Time, sent bool) (entry, bool) {
	if e, ok := st.entries[worker]; ok && e.Hash == hash {
		return e, false
	}
	e := entry{Hash: hash, UpdatedAt: now.UTC().Truncate(time.Second), Sent: sent}
	st.entries[worker] = e
	st.dirty = true
	return e, true
}

// markSent records that the worker was given the catalogue with this hash.
func (st *stateFile) markSent(worker, hash string) {
	if e, ok := st.entries[worker]; ok && e.Hash == hash && !e.Sent {
		e.Sent = true
		st.entries[worker] = e
		st.dirty = true
	}
}

// save writes the file atomically (temporary file, fsync, rename) if anything changed.
func (st *stateFile) save() error {
	if st.path == "" || !st.dirty {
		return nil
	}
	data, err := json.Marshal(stateJSON{V: 1, Workers: st.entries})
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := writeFileAtomic(st.path, data); err != nil {
		return err
	}
	st.dirty = false
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("write state %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("write state %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("write state %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the rename durable; best effort on filesystems that refuse it
		d.Close()
	}
	return nil
}
