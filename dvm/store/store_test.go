package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin without relying on the system zoneinfo
)

func TestDayOfAndSpan(t *testing.T) {
	plus13 := time.FixedZone("UTC+13", 13*3600)
	late := time.Date(2026, 11, 21, 23, 55, 0, 0, time.UTC)
	if got := DayOf(late, time.UTC); got.String() != "2026-11-21" {
		t.Fatalf("UTC day = %s", got)
	}
	if got := DayOf(late, plus13); got.String() != "2026-11-22" {
		t.Fatalf("UTC+13 day = %s", got)
	}
	d, err := ParseDay("2026-11-22")
	if err != nil || d != (Day{2026, 11, 22}) {
		t.Fatalf("parse = %v, %v", d, err)
	}
	if _, err := ParseDay("2026-13-01"); err == nil {
		t.Fatal("month 13 parsed")
	}
	start, end := Span(d, d, plus13)
	if !start.Equal(time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)) || end.Sub(start) != 24*time.Hour {
		t.Fatalf("span = %s .. %s", start, end)
	}
	// A day with a DST change lasts 23 or 25 hours, not 24.
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s, e := Span(Day{2026, 3, 29}, Day{2026, 3, 29}, berlin)
	if e.Sub(s) != 23*time.Hour {
		t.Fatalf("DST spring day lasts %s", e.Sub(s))
	}
	if lo, hi := Span(Day{}, Day{}, time.UTC); !lo.IsZero() || !hi.IsZero() {
		t.Fatal("zero days should give an open span")
	}
}

func TestWeekAndAddDays(t *testing.T) {
	cases := map[Day]Day{
		{2026, 11, 21}: {2026, 11, 16}, // Saturday
		{2026, 11, 22}: {2026, 11, 16}, // Sunday belongs to the week before (ISO)
		{2026, 11, 23}: {2026, 11, 23}, // Monday
		{2027, 1, 1}:   {2026, 12, 28}, // across a year
	}
	for d, want := range cases {
		if got := d.Week(); got != want {
			t.Errorf("week of %s = %s, want %s", d, got, want)
		}
	}
	if got := (Day{2026, 2, 28}).AddDays(1); got != (Day{2026, 3, 1}) {
		t.Fatalf("AddDays = %s", got)
	}
	if !(Day{2026, 2, 28}).Before(Day{2026, 3, 1}) || (Day{2026, 3, 1}).Before(Day{2026, 3, 1}) {
		t.Fatal("Before")
	}
}

func TestChainFor(t *testing.T) {
	a, b := HashHex([]byte("a")), HashHex([]byte("b"))
	cases := []struct {
		index  int
		prev   string
		prevOX string
		found  bool
		want   ChainStatus
	}{
		{0, "", "", false, ChainVerified},
		{0, a, "", false, ChainBroken},
		{3, a, "", false, ChainGap},
		{3, a, a, true, ChainVerified},
		{3, a, b, true, ChainBroken},
		{3, "", a, true, ChainBroken},
	}
	for _, c := range cases {
		if got := ChainFor(c.index, c.prev, c.prevOX, c.found); got != c.want {
			t.Errorf("ChainFor(%d, %.6s, %.6s, %v) = %s, want %s", c.index, c.prev, c.prevOX, c.found, got, c.want)
		}
	}
}

func TestTops(t *testing.T) {
	ev := func(b Bucket, dur float64, data string) Event {
		return Event{Bucket: b, Timestamp: time.Unix(1, 0), Duration: dur, Data: json.RawMessage(data)}
	}
	events := []Event{
		ev(BucketWindow, 10, `{"app":"b","title":"t1"}`),
		ev(BucketWindow, 10, `{"app":"a","title":"t1"}`),
		ev(BucketWindow, 5, `{"app":"c"}`),
		ev(BucketWindow, 1, `[1,2]`), // not an object: ignored
		ev(BucketWeb, 7, `{"url":"https://x/"}`),
		ev(BucketAFK, 100, `{"app":"afk-is-not-an-app"}`),
	}
	apps, titles, urls := Tops(events, 2)
	if len(apps) != 2 || apps[0] != (Usage{"a", 10}) || apps[1] != (Usage{"b", 10}) {
		t.Fatalf("apps = %+v (want the two largest, ties by name)", apps)
	}
	if len(titles) != 1 || titles[0] != (Usage{"t1", 20}) {
		t.Fatalf("titles = %+v", titles)
	}
	if len(urls) != 1 || urls[0].Name != "https://x/" {
		t.Fatalf("urls = %+v", urls)
	}
}

func TestValidate(t *testing.T) {
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	good := func() *SegmentRecord {
		return &SegmentRecord{
			Worker: HashHex([]byte("w")), Session: HashHex([]byte("s"))[:32], Index: 1, Start: start, End: start.Add(10 * time.Minute),
			RumorID: HashHex([]byte("r")), X: HashHex([]byte("x")), OX: HashHex([]byte("ox")), Prev: HashHex([]byte("p")),
			ActiveSeconds: 600,
			Events:        []Event{{Bucket: BucketWindow, Timestamp: start, Duration: 1, Data: json.RawMessage(`{}`)}},
			Screenshots:   []Screenshot{{Name: "screenshots/001.jpg", SHA256: HashHex([]byte("jpg")), Data: []byte("jpg")}},
		}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good record: %v", err)
	}
	r := good()
	r.Index = 0
	r.Prev = ""
	if err := r.Validate(); err != nil {
		t.Fatalf("index 0 without prev: %v", err)
	}
	bad := map[string]func(*SegmentRecord){
		"upper-case hex":   func(r *SegmentRecord) { r.X = "AB" + r.X[2:] },
		"no start":         func(r *SegmentRecord) { r.Start = time.Time{} },
		"a day and more":   func(r *SegmentRecord) { r.End = r.Start.Add(25 * time.Hour) },
		"NaN duration":     func(r *SegmentRecord) { r.Events[0].Duration = nanF() },
		"event no time":    func(r *SegmentRecord) { r.Events[0].Timestamp = time.Time{} },
		"negative keys":    func(r *SegmentRecord) { r.Minutes = []Minute{{T: start, Keys: -1}} },
		"skipped no time":  func(r *SegmentRecord) { r.Skipped = []SkippedCapture{{Reason: "x"}} },
		"deleted no name":  func(r *SegmentRecord) { r.Deleted = []DeletedScreenshot{{}} },
		"negative active":  func(r *SegmentRecord) { r.ActiveSeconds = -1 },
		"long app version": func(r *SegmentRecord) { r.AppVersion = string(make([]byte, MaxNameBytes+1)) },
	}
	for name, mutate := range bad {
		r := good()
		mutate(r)
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func nanF() float64 {
	zero := 0.0
	return zero / zero
}
