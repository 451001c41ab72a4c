package kimaiemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// timesheet is one stored record. Times are kept as instants; Timezone is
// the zone the record was booked in (Kimai stores it per record and
// serialises begin/end in it).
type timesheet struct {
	ID          int64             `json:"id"`
	User        int64             `json:"user"`
	Project     int64             `json:"project"`
	Activity    int64             `json:"activity"`
	Begin       time.Time         `json:"begin"`
	End         *time.Time        `json:"end"`
	Timezone    string            `json:"timezone"`
	Description *string           `json:"description"`
	Tags        []string          `json:"tags"`
	Exported    bool              `json:"exported"`
	Billable    *bool             `json:"billable"` // nil: derived from customer/project/activity
	FixedRate   *float64          `json:"fixedRate"`
	HourlyRate  *float64          `json:"hourlyRate"`
	Meta        map[string]string `json:"meta,omitempty"`
	ModifiedAt  time.Time         `json:"modifiedAt"`
}

func (t *timesheet) clone() *timesheet {
	c := *t
	if t.End != nil {
		e := *t.End
		c.End = &e
	}
	if t.Description != nil {
		d := *t.Description
		c.Description = &d
	}
	c.Tags = append([]string{}, t.Tags...)
	if t.Billable != nil {
		b := *t.Billable
		c.Billable = &b
	}
	if t.FixedRate != nil {
		f := *t.FixedRate
		c.FixedRate = &f
	}
	if t.HourlyRate != nil {
		h := *t.HourlyRate
		c.HourlyRate = &h
	}
	if t.Meta != nil {
		c.Meta = make(map[string]string, len(t.Meta))
		for k, v := range t.Meta {
			c.Meta[k] = v
		}
	}
	return &c
}

func (t *timesheet) duration() int64 {
	if t.End == nil {
		return 0
	}
	d := int64(t.End.Sub(t.Begin) / time.Second)
	if d < 0 {
		return 0
	}
	return d
}

type tag struct {
	ID      int64   `json:"id"`
	Name    string  `json:"name"`
	Color   *string `json:"color"`
	Visible bool    `json:"visible"`
}

// state is everything the API can change; it is what the state file holds.
type state struct {
	Format          int          `json:"format"`
	NextTimesheetID int64        `json:"nextTimesheetId"`
	NextTagID       int64        `json:"nextTagId"`
	Timesheets      []*timesheet `json:"timesheets"`
	Tags            []*tag       `json:"tags"`
}

const stateFormat = 1

const maxStateBytes = 256 << 20

func loadState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("state %s: larger than %d bytes", path, maxStateBytes)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		// Refuse to start rather than overwrite a damaged file with an
		// empty state: the records in it would be lost.
		return nil, fmt.Errorf("state %s is damaged: %w", path, err)
	}
	if st.Format != stateFormat {
		return nil, fmt.Errorf("state %s: format %d, want %d", path, st.Format, stateFormat)
	}
	seen := map[int64]bool{}
	for _, t := range st.Timesheets {
		if t == nil || t.ID <= 0 || seen[t.ID] || t.ID >= st.NextTimesheetID {
			return nil, fmt.Errorf("state %s: bad timesheet ids", path)
		}
		seen[t.ID] = true
	}
	names := map[string]bool{}
	for _, tg := range st.Tags {
		if tg == nil || tg.ID <= 0 || tg.ID >= st.NextTagID || names[strings.ToLower(tg.Name)] {
			return nil, fmt.Errorf("state %s: bad tags", path)
		}
		names[strings.ToLower(tg.Name)] = true
	}
	return &st, nil
}

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create temp state: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write temp state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync temp state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close temp state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename state: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
