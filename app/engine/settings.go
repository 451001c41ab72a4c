package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"pow.do/app/engineapi"
	"pow.do/shared/proto"
)

// File names inside the data directory.
const (
	SettingsName  = "settings.json"
	CatalogueName = "catalogue.json"
)

// Defaults for settings never saved.
const (
	DefaultActivityWatchURL = "http://localhost:5600"
	DefaultDiskQuotaMB      = 2048
)

func defaultSettings() engineapi.Settings {
	return engineapi.Settings{
		ActivityWatchURL: DefaultActivityWatchURL,
		JPEGQuality:      proto.DefaultPolicy().JPEGQuality,
		ExcludedApps:     []string{},
		DiskQuotaMB:      DefaultDiskQuotaMB,
		Relays:           []string{},
		Blossoms:         []string{},
	}
}

// loadSettings reads settings.json, or the defaults when there is none.
func loadSettings(dir string) (engineapi.Settings, error) {
	s := defaultSettings()
	b, err := os.ReadFile(filepath.Join(dir, SettingsName))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read settings: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return defaultSettings(), fmt.Errorf("read settings %s: %w", filepath.Join(dir, SettingsName), err)
	}
	return s, nil
}

// writeJSON writes v atomically with mode 0600 (settings hold the ActivityWatch key).
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", name, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return nil
}

// saveSettings stores the editable fields only: read-only ones are derived at start.
func saveSettings(dir string, s engineapi.Settings) error {
	s.DVMNpub, s.Fingerprint, s.OwnNpub, s.DataDir, s.DiskUsedMB = "", "", "", "", 0
	return writeJSON(dir, SettingsName, s)
}

func loadCatalogue(dir string) (*engineapi.Catalogue, error) {
	b, err := os.ReadFile(filepath.Join(dir, CatalogueName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	var c engineapi.Catalogue
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	return &c, nil
}

// fromProto converts the DVM's catalogue for the UI.
func fromProto(c proto.Catalogue) engineapi.Catalogue {
	out := engineapi.Catalogue{
		UpdatedAt: c.UpdatedAt.UTC(), WorkerName: c.WorkerName,
		Projects: make([]engineapi.Project, 0, len(c.Projects)), Activities: make([]engineapi.Activity, 0, len(c.Activities)),
		Policy: engineapi.Policy{
			SegmentSeconds: c.Policy.SegmentSeconds, Screenshots: c.Policy.Screenshots, Blur: c.Policy.Blur,
			ReviewSeconds: c.Policy.ReviewSeconds, IdleSeconds: c.Policy.IdleSeconds,
			JPEGQuality: c.Policy.JPEGQuality, MaxWidth: c.Policy.MaxWidth,
		},
	}
	for _, p := range c.Projects {
		out.Projects = append(out.Projects, engineapi.Project{ID: int(p.ID), Name: p.Name, Customer: p.Customer})
	}
	for _, a := range c.Activities {
		act := engineapi.Activity{ID: int(a.ID), Name: a.Name}
		if a.Project != nil {
			p := int(*a.Project)
			act.Project = &p
		}
		out.Activities = append(out.Activities, act)
	}
	return out
}

// toProtoPolicy is the policy the scheduler applies.
func toProtoPolicy(p engineapi.Policy) proto.Policy {
	return proto.Policy{
		SegmentSeconds: p.SegmentSeconds, Screenshots: p.Screenshots, Blur: p.Blur,
		ReviewSeconds: p.ReviewSeconds, IdleSeconds: p.IdleSeconds, JPEGQuality: p.JPEGQuality, MaxWidth: p.MaxWidth,
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
