package bundle

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	shots := testShots(t)
	act := testActivity(100)
	built, err := Build(testManifest(), act, shots)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(built.ZIP)
	if built.OX != hex.EncodeToString(sum[:]) {
		t.Errorf("OX %s is not the sha256 of the ZIP", built.OX)
	}

	b, err := OpenBytes(built.ZIP, DefaultLimits())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !reflect.DeepEqual(b.Manifest, built.Manifest) {
		t.Errorf("manifest differs:\n got %+v\nwant %+v", b.Manifest, built.Manifest)
	}
	if !reflect.DeepEqual(b.Activity, act.normalized()) {
		t.Errorf("activity differs:\n got %+v\nwant %+v", b.Activity, act)
	}
	if len(b.Activity.Window) != 100 {
		t.Errorf("got %d window events, want 100", len(b.Activity.Window))
	}
	for i, s := range shots {
		name := ScreenshotName(i + 1)
		got, ok := b.Screenshot(name)
		if !ok || !bytes.Equal(got, s.JPEG) {
			t.Errorf("%s: ok=%v, bytes equal=%v", name, ok, bytes.Equal(got, s.JPEG))
		}
		fe := b.Manifest.Files[i+1]
		if fe.Name != name || !fe.TakenAt.Equal(s.TakenAt) || fe.Size != int64(len(s.JPEG)) || fe.Type != TypeJPEG {
			t.Errorf("files[%d] = %+v", i+1, fe)
		}
	}
	if _, ok := b.Screenshot(ActivityName); ok {
		t.Error("Screenshot returned activity.json")
	}
	if _, ok := b.File(ActivityName); !ok {
		t.Error("File(activity.json) missing")
	}
	if !bytes.Contains(b.ManifestJSON(), []byte(`"worker":"`+testManifest().Worker)) {
		t.Errorf("ManifestJSON lacks the worker: %s", b.ManifestJSON())
	}
}

func TestWriteLayout(t *testing.T) {
	built := validBundle(t)
	zr, err := zip.NewReader(bytes.NewReader(built.ZIP), int64(len(built.ZIP)))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   string
		method uint16
	}{{ManifestName, zip.Deflate}, {ActivityName, zip.Deflate}, {"screenshots/001.jpg", zip.Store}, {"screenshots/002.jpg", zip.Store}}
	if len(zr.File) != len(want) {
		t.Fatalf("got %d entries, want %d", len(zr.File), len(want))
	}
	for i, f := range zr.File {
		if f.Name != want[i].name || f.Method != want[i].method {
			t.Errorf("entry %d = %s method %d, want %s method %d", i, f.Name, f.Method, want[i].name, want[i].method)
		}
	}
	// JSON shape: empty lists are [] so readers in other languages need no null checks.
	for _, key := range []string{`"deleted":[]`, `"skipped":[]`, `"v":1`, `"prev":"`, `"app_version":"0.1.0"`} {
		rc, _ := zr.File[0].Open()
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		if !bytes.Contains(buf.Bytes(), []byte(key)) {
			t.Errorf("manifest.json lacks %s: %s", key, buf.Bytes())
		}
	}
}

func TestWriteDeterministic(t *testing.T) {
	a, b := validBundle(t), validBundle(t)
	if !bytes.Equal(a.ZIP, b.ZIP) {
		t.Fatal("same input gave different bytes")
	}
	m := testManifest()
	m.Memo = "another memo"
	c, err := Build(m, testActivity(20), testShots(t))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.ZIP, c.ZIP) || a.OX == c.OX {
		t.Fatal("different memo gave the same bytes")
	}
}

func TestWriteNamesAndOrder(t *testing.T) {
	shots := testShots(t)
	shots[0].Name, shots[1].Name = "screenshots/003.jpg", "screenshots/001.jpg"
	m := testManifest()
	m.Deleted = []Deleted{{Name: "screenshots/002.jpg", TakenAt: segStart.Add(5 * time.Minute), DeletedAt: segEnd.Add(time.Minute)}}
	m.Skipped = []Skipped{{At: segStart.Add(8 * time.Minute), Reason: "excluded app: keepassxc"}}
	// TakenAt with a fraction and a non-UTC zone is recorded as a UTC second.
	shots[0].TakenAt = shots[0].TakenAt.Add(400 * time.Millisecond).In(time.FixedZone("CET", 3600))
	before := shots[0].Name

	built, err := Build(m, testActivity(5), shots)
	if err != nil {
		t.Fatal(err)
	}
	if shots[0].Name != before {
		t.Error("Build modified the caller's slice")
	}
	names := []string{}
	for _, f := range built.Manifest.Files {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "activity.json,screenshots/001.jpg,screenshots/003.jpg" {
		t.Errorf("files = %s", got)
	}
	if got := built.Manifest.Files[2].TakenAt; got != segStart.Add(3*time.Minute+17*time.Second) {
		t.Errorf("taken_at = %s", got)
	}
	b, err := OpenBytes(built.ZIP, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Screenshot("screenshots/003.jpg"); !bytes.Equal(got, shots[0].JPEG) {
		t.Error("screenshots/003.jpg does not hold the first screenshot")
	}
	if len(b.Manifest.Deleted) != 1 || len(b.Manifest.Skipped) != 1 {
		t.Errorf("deleted/skipped lost: %+v %+v", b.Manifest.Deleted, b.Manifest.Skipped)
	}
}

func TestWriteRefusesBeforeWriting(t *testing.T) {
	bad := testManifest()
	bad.Session = "xyz"
	notJPEG := testShots(t)
	notJPEG[1].JPEG = []byte("\x89PNG\r\n\x1a\n")
	lateShot := testShots(t)
	lateShot[0].TakenAt = segEnd.Add(time.Second)
	badAct := testActivity(3)
	badAct.Window[0].Timestamp = segStart.Add(-time.Minute)
	dup := testShots(t)
	dup[0].Name, dup[1].Name = "screenshots/001.jpg", "screenshots/001.jpg"

	for _, tc := range []struct {
		name  string
		m     Manifest
		a     Activity
		shots []Screenshot
		want  error
	}{
		{"invalid manifest", bad, testActivity(3), testShots(t), ErrInvalidManifest},
		{"not a JPEG", testManifest(), testActivity(3), notJPEG, ErrNotJPEG},
		{"screenshot after the end", testManifest(), testActivity(3), lateShot, ErrInvalidManifest},
		{"duplicate screenshot name", testManifest(), testActivity(3), dup, ErrInvalidManifest},
		{"event before the start", testManifest(), badAct, testShots(t), ErrInvalidActivity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Write(&buf, tc.m, tc.a, tc.shots)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written despite the refusal", buf.Len())
			}
		})
	}
}

func TestManifestValidate(t *testing.T) {
	ok := validBundle(t).Manifest
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	cases := map[string]func(m *Manifest){
		"v 2":                  func(m *Manifest) { m.V = 2 },
		"worker short":         func(m *Manifest) { m.Worker = m.Worker[:62] },
		"worker uppercase":     func(m *Manifest) { m.Worker = strings.ToUpper(m.Worker) },
		"session 64 hex":       func(m *Manifest) { m.Session = m.Worker },
		"negative index":       func(m *Manifest) { m.Index = -1 },
		"start == end":         func(m *Manifest) { m.Start = m.End },
		"start after end":      func(m *Manifest) { m.Start = m.End.Add(time.Second) },
		"start not UTC":        func(m *Manifest) { m.Start = m.Start.In(time.FixedZone("CET", 3600)) },
		"end with fraction":    func(m *Manifest) { m.End = m.End.Add(time.Millisecond) },
		"zero start":           func(m *Manifest) { m.Start = time.Time{} },
		"project 0":            func(m *Manifest) { m.Project = 0 },
		"activity negative":    func(m *Manifest) { m.Activity = -5 },
		"memo 1001 bytes":      func(m *Manifest) { m.Memo = strings.Repeat("x", 1001) },
		"memo not UTF-8":       func(m *Manifest) { m.Memo = "\xff" },
		"app_version empty":    func(m *Manifest) { m.AppVersion = "" },
		"app_version newline":  func(m *Manifest) { m.AppVersion = "1\n2" },
		"prev at index 0":      func(m *Manifest) { m.Index = 0 },
		"prev missing":         func(m *Manifest) { m.Prev = "" },
		"prev malformed":       func(m *Manifest) { m.Prev = "zz" + m.Prev[2:] },
		"segment_seconds 5":    func(m *Manifest) { m.Policy.SegmentSeconds = 5 },
		"screenshots 11":       func(m *Manifest) { m.Policy.Screenshots = 11 },
		"jpeg_quality 0":       func(m *Manifest) { m.Policy.JPEGQuality = 0 },
		"no activity.json":     func(m *Manifest) { m.Files = m.Files[1:] },
		"file listed twice":    func(m *Manifest) { m.Files = append(m.Files, m.Files[1]) },
		"file ../x":            func(m *Manifest) { m.Files[1].Name = "screenshots/../x.jpg" },
		"file 000":             func(m *Manifest) { m.Files[1].Name = "screenshots/000.jpg" },
		"manifest.json listed": func(m *Manifest) { m.Files[1].Name = ManifestName },
		"file bad hash":        func(m *Manifest) { m.Files[1].SHA256 = "abc" },
		"file negative size":   func(m *Manifest) { m.Files[1].Size = -1 },
		"jpeg typed json":      func(m *Manifest) { m.Files[1].Type = TypeJSON },
		"activity typed jpeg":  func(m *Manifest) { m.Files[0].Type = TypeJPEG },
		"activity taken_at":    func(m *Manifest) { m.Files[0].TakenAt = segStart },
		"shot without time":    func(m *Manifest) { m.Files[1].TakenAt = time.Time{} },
		"shot before start":    func(m *Manifest) { m.Files[1].TakenAt = segStart.Add(-time.Second) },
		"deleted bad name":     func(m *Manifest) { m.Deleted = []Deleted{{Name: "x", TakenAt: segStart, DeletedAt: segEnd}} },
		"deleted also in files": func(m *Manifest) {
			m.Deleted = []Deleted{{Name: m.Files[1].Name, TakenAt: segStart, DeletedAt: segEnd}}
		},
		"deleted before taken": func(m *Manifest) {
			m.Deleted = []Deleted{{Name: "screenshots/009.jpg", TakenAt: segEnd, DeletedAt: segStart}}
		},
		"skipped no reason":  func(m *Manifest) { m.Skipped = []Skipped{{At: segStart}} },
		"skipped after end":  func(m *Manifest) { m.Skipped = []Skipped{{At: segEnd.Add(time.Second), Reason: "x"}} },
		"skipped reason 501": func(m *Manifest) { m.Skipped = []Skipped{{At: segStart, Reason: strings.Repeat("r", 501)}} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := validBundle(t).Manifest
			mutate(&m)
			err := m.Validate()
			if !errors.Is(err, ErrInvalidManifest) || !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrInvalidManifest", err)
			}
		})
	}
	// Boundaries that are allowed.
	m := validBundle(t).Manifest
	m.Memo = strings.Repeat("é", 500) // 1000 bytes
	m.Index, m.Prev = 0, ""
	m.Start = m.Start.In(time.FixedZone("", 0)) // "+00:00" is UTC too
	if err := m.Validate(); err != nil {
		t.Fatalf("boundary manifest refused: %v", err)
	}
}

func TestActivityValidate(t *testing.T) {
	if a := testActivity(30).normalized(); a.Validate(segStart, segEnd) != nil {
		t.Fatalf("valid activity refused: %v", a.Validate(segStart, segEnd))
	}
	cases := map[string]func(a *Activity){
		"v 0":                  func(a *Activity) { a.V = 0 },
		"unknown source":       func(a *Activity) { a.Source = "keylogger" },
		"event not UTC":        func(a *Activity) { a.Window[1].Timestamp = a.Window[1].Timestamp.In(time.FixedZone("CET", 3600)) },
		"event zero time":      func(a *Activity) { a.AFK[0].Timestamp = time.Time{} },
		"event past the end":   func(a *Activity) { a.Web[0].Duration = 600 },
		"negative duration":    func(a *Activity) { a.Input[0].Duration = -1 },
		"huge duration":        func(a *Activity) { a.Input[0].Duration = 1e300 },
		"events newest first":  func(a *Activity) { a.Window[0], a.Window[1] = a.Window[1], a.Window[0] },
		"minute not aligned":   func(a *Activity) { a.Minutes[2].T = a.Minutes[2].T.Add(time.Second) },
		"minute twice":         func(a *Activity) { a.Minutes[2].T = a.Minutes[1].T },
		"minute at the end":    func(a *Activity) { a.Minutes[9].T = segEnd },
		"negative keys":        func(a *Activity) { a.Minutes[0].Keys = -1 },
		"active beyond length": func(a *Activity) { a.ActiveSeconds = 601 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := testActivity(30).normalized()
			mutate(&a)
			if err := a.Validate(segStart, segEnd); !errors.Is(err, ErrInvalidActivity) {
				t.Fatalf("err = %v, want ErrInvalidActivity", err)
			}
		})
	}
}
