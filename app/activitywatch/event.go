// Package activitywatch reads what the worker did during a segment: from a
// local ActivityWatch server when one runs, otherwise from a built-in watcher
// that records the same event shapes itself. It also computes active time the
// way ActivityWatch's own views do.
package activitywatch

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"
)

// Event is ActivityWatch's event: a start, a duration in seconds and a
// watcher-specific data object.
type Event struct {
	ID        int64          `json:"id,omitempty"`
	Timestamp time.Time      `json:"timestamp"`
	Duration  float64        `json:"duration"` // seconds
	Data      map[string]any `json:"data"`
}

// End is the event's end time.
func (e Event) End() time.Time { return e.Timestamp.Add(seconds(e.Duration)) }

// MarshalJSON writes the timestamp as RFC 3339 in UTC, as ActivityWatch does.
func (e Event) MarshalJSON() ([]byte, error) {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	return json.Marshal(struct {
		ID        int64          `json:"id,omitempty"`
		Timestamp string         `json:"timestamp"`
		Duration  float64        `json:"duration"`
		Data      map[string]any `json:"data"`
	}{e.ID, e.Timestamp.UTC().Format(time.RFC3339Nano), e.Duration, data})
}

// seconds converts ActivityWatch's float seconds to a Duration.
func seconds(s float64) time.Duration {
	if math.IsNaN(s) || s <= 0 {
		return 0
	}
	if s > float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Round(s * float64(time.Second)))
}

// durationSeconds converts a Duration to float seconds.
func durationSeconds(d time.Duration) float64 { return d.Seconds() }

// validate rejects events no watcher can produce.
func (e Event) validate() error {
	if e.Timestamp.IsZero() {
		return fmt.Errorf("event %d: missing timestamp", e.ID)
	}
	if math.IsNaN(e.Duration) || math.IsInf(e.Duration, 0) || e.Duration < 0 {
		return fmt.Errorf("event %d: invalid duration %v", e.ID, e.Duration)
	}
	return nil
}

// Clip keeps the parts of events that fall inside [start, end), trimming
// events that cross a boundary, and returns them oldest first. A zero-length
// event is kept when start <= timestamp < end.
func Clip(events []Event, start, end time.Time) []Event {
	out := make([]Event, 0, len(events))
	for _, e := range events {
		s, f := e.Timestamp, e.End()
		if e.Duration == 0 {
			if !s.Before(start) && s.Before(end) {
				e.Timestamp = s.UTC()
				out = append(out, e)
			}
			continue
		}
		if s.Before(start) {
			s = start
		}
		if f.After(end) {
			f = end
		}
		if !f.After(s) {
			continue
		}
		e.Timestamp = s.UTC()
		e.Duration = durationSeconds(f.Sub(s))
		out = append(out, e)
	}
	SortOldestFirst(out)
	return out
}

// SortOldestFirst orders events by timestamp (then id), in place.
func SortOldestFirst(events []Event) {
	sort.SliceStable(events, func(i, j int) bool {
		if !events[i].Timestamp.Equal(events[j].Timestamp) {
			return events[i].Timestamp.Before(events[j].Timestamp)
		}
		return events[i].ID < events[j].ID
	})
}

func sameData(a, b Event) bool { return reflect.DeepEqual(a.Data, b.Data) }
