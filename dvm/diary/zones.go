package diary

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the zone database goes with the binary: servers may lack /usr/share/zoneinfo
)

// zoneStore keeps the time zone reviewers set for each worker, in a small JSON file,
// and, in memory only, the zones learnt from the workers' Kimai users (fed again at every
// start and catalogue poll). A reviewer's explicit choice wins over Kimai's.
type zoneStore struct {
	path   string
	mu     sync.Mutex
	m      map[string]string // worker pubkey -> IANA zone name, set by reviewers
	learnt map[string]string // worker pubkey -> IANA zone name, from Kimai
}

func openZones(path string) (*zoneStore, error) {
	z := &zoneStore{path: path, m: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return z, nil
	}
	if err != nil {
		return nil, fmt.Errorf("diary: worker zones: %w", err)
	}
	if err := json.Unmarshal(b, &z.m); err != nil {
		return nil, fmt.Errorf("diary: worker zones %s: %w", path, err)
	}
	for pk, name := range z.m {
		if _, err := loadZone(name); err != nil {
			delete(z.m, pk) // a zone the database no longer knows: fall back to the default
		}
	}
	return z, nil
}

// get returns the worker's zone name, or "".
func (z *zoneStore) get(worker string) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.m[worker]
}

// getLearnt returns the zone learnt from the worker's Kimai user, or "".
func (z *zoneStore) getLearnt(worker string) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.learnt[worker]
}

// setLearnt replaces every learnt zone.
func (z *zoneStore) setLearnt(m map[string]string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.learnt = m
}

// set records the worker's zone ("" forgets it) and writes the file atomically, mode 0600.
func (z *zoneStore) set(worker, name string) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	old, had := z.m[worker]
	if name == "" {
		delete(z.m, worker)
	} else {
		z.m[worker] = name
	}
	if err := writePrivate(z.path, func(f *os.File) error { return json.NewEncoder(f).Encode(z.m) }); err != nil {
		if had {
			z.m[worker] = old
		} else {
			delete(z.m, worker)
		}
		return fmt.Errorf("diary: save worker zone: %w", err)
	}
	return nil
}

// writePrivate writes a file through a temp file and a rename, mode 0600.
func writePrivate(path string, fill func(f *os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	name := tmp.Name()
	err = fill(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// loadZone reads an IANA zone name, refusing "Local" (the server's zone means nothing to
// a reviewer) and anything that does not look like a zone name.
func loadZone(name string) (*time.Location, error) {
	if name == "" || len(name) > 64 || name == "Local" {
		return nil, fmt.Errorf("time zone %q: not an IANA zone name", name)
	}
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("/_+-", c)) {
			return nil, fmt.Errorf("time zone %q: not an IANA zone name", name)
		}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return loc, nil
}

// zone is the time zone a page or API answer is shown in.
type zone struct {
	Loc   *time.Location
	Param string // what goes into ?tz= to get this zone again: "worker", "UTC" or a name
	Name  string // the zone's IANA name
	Kind  string // "worker", "utc" or "named"
}

// Query is the query string selecting this zone ("tz=…").
func (z zone) Query() string { return "tz=" + url.QueryEscape(z.Param) }

// zoneFor reads the tz query parameter: "worker" (default), "UTC" or an IANA name. The
// worker's zone is the one a reviewer set, else their Kimai user's, else DefaultZone.
func (d *Diary) zoneFor(param, worker string) (zone, error) {
	switch {
	case param == "" || param == "worker":
		for _, name := range []string{d.zones.get(worker), d.zones.getLearnt(worker)} {
			if loc, err := loadZone(name); err == nil {
				return zone{Loc: loc, Param: "worker", Name: name, Kind: "worker"}, nil
			}
		}
		return zone{Loc: d.opt.DefaultZone, Param: "worker", Name: d.opt.DefaultZone.String(), Kind: "worker"}, nil
	case strings.EqualFold(param, "UTC"):
		return zone{Loc: time.UTC, Param: "UTC", Name: "UTC", Kind: "utc"}, nil
	}
	loc, err := loadZone(param)
	if err != nil {
		return zone{}, err
	}
	return zone{Loc: loc, Param: param, Name: param, Kind: "named"}, nil
}
