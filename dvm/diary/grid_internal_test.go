package diary

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"pow.do/dvm/store"
)

func seg(id int64, start time.Time) store.SegmentDetail {
	return store.SegmentDetail{Segment: store.Segment{ID: id, Start: start, End: start.Add(10 * time.Minute), ActiveSeconds: 300}}
}

func simpleView(s store.SegmentDetail) cellSeg { return cellSeg{ID: s.ID} }

func TestGridRowsAndCells(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	day := store.Day{Year: 2026, Month: time.November, Day: 16}
	segs := []store.SegmentDetail{
		seg(1, time.Date(2026, 11, 16, 9, 0, 0, 0, ny)),
		seg(2, time.Date(2026, 11, 16, 9, 50, 0, 0, ny)),
		seg(3, time.Date(2026, 11, 16, 9, 55, 0, 0, ny)), // a partial segment in the same cell
		seg(4, time.Date(2026, 11, 16, 11, 20, 0, 0, ny)),
	}
	rows := buildGrid(segs, day, ny, simpleView)
	if len(rows) != 3 || rows[0].Label != "09:00" || rows[2].Label != "11:00" {
		t.Fatalf("rows %v", labels(rows))
	}
	if c := rows[0].Cells[0]; len(c.Segs) != 1 || c.Segs[0].ID != 1 || c.Label != "09:00" {
		t.Fatalf("09:00 cell %+v", c)
	}
	if c := rows[0].Cells[5]; len(c.Segs) != 2 || c.First().ID != 2 || c.Label != "09:50" {
		t.Fatalf("09:50 cell %+v", c)
	}
	if len(rows[1].Cells[0].Segs) != 0 || rows[1].Cells[0].First() != nil {
		t.Fatal("10:00 should be empty")
	}
	if c := rows[2].Cells[2]; len(c.Segs) != 1 || c.Segs[0].ID != 4 {
		t.Fatalf("11:20 cell %+v", c)
	}
	if buildGrid(nil, day, ny, simpleView) != nil {
		t.Fatal("a day without segments has no rows")
	}
}

func TestGridDST(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	// 2026-11-01: clocks go back at 02:00 EDT to 01:00 EST: the day has 25 hours.
	end := store.Day{Year: 2026, Month: time.November, Day: 1}
	first := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	var segs []store.SegmentDetail
	for h := 0; h < 25; h++ {
		segs = append(segs, seg(int64(h), first.Add(time.Duration(h)*time.Hour+10*time.Minute)))
	}
	rows := buildGrid(segs, end, ny, simpleView)
	if len(rows) != 25 {
		t.Fatalf("%d rows on the day DST ends, want 25: %v", len(rows), labels(rows))
	}
	if rows[1].Label != "01:00" || !strings.HasPrefix(rows[2].Label, "01:00 ") || rows[3].Label != "02:00" {
		t.Fatalf("repeated hour labels %v", labels(rows)[:4])
	}
	for i, r := range rows {
		if len(r.Cells[1].Segs) != 1 || r.Cells[1].Segs[0].ID != int64(i) {
			t.Fatalf("row %s: cell :10 holds %+v", r.Label, r.Cells[1].Segs)
		}
	}
	// 2026-03-08: clocks jump from 02:00 to 03:00: 23 hours, no 02:00 row.
	start := store.Day{Year: 2026, Month: time.March, Day: 8}
	s0 := time.Date(2026, 3, 8, 0, 0, 0, 0, ny)
	rows = buildGrid([]store.SegmentDetail{seg(1, s0), seg(2, s0.Add(22*time.Hour+50*time.Minute))}, start, ny, simpleView)
	if len(rows) != 23 || rows[2].Label != "03:00" {
		t.Fatalf("spring-forward rows: %d %v", len(rows), labels(rows))
	}
	if rows[22].Cells[5].First() == nil || rows[22].Cells[5].First().ID != 2 {
		t.Fatal("the last segment of a 23-hour day is not in the last cell")
	}
}

func TestGridQuarterHourZone(t *testing.T) {
	// Nepal is UTC+5:45: rows still start on the local hour, cells on local 10 minutes.
	np, _ := time.LoadLocation("Asia/Kathmandu")
	day := store.Day{Year: 2026, Month: time.November, Day: 16}
	s := time.Date(2026, 11, 16, 4, 0, 0, 0, time.UTC) // 09:45 local
	rows := buildGrid([]store.SegmentDetail{seg(7, s)}, day, np, simpleView)
	if len(rows) != 1 || rows[0].Label != "09:00" || rows[0].Cells[4].First() == nil || rows[0].Cells[4].Label != "09:40" {
		t.Fatalf("rows %v, cells %+v", labels(rows), rows)
	}
}

func labels(rows []hourRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Label)
	}
	return out
}

func TestBars(t *testing.T) {
	m := []store.Minute{{Active: false}, {Active: true, Keys: 5}, {Active: true, Keys: 30, Clicks: 10}, {Active: true, Keys: 100}, {Active: true, Keys: 500}, {Active: true}}
	want := []int{0, 1, 2, 3, 4, 0}
	for i, b := range bars(m, time.UTC) {
		if b.Level != want[i] || b.Active != m[i].Active {
			t.Errorf("minute %d: level %d active %v, want %d", i, b.Level, b.Active, want[i])
		}
	}
}

func TestThumbnail(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 1000, 500))
	for y := 0; y < 500; y++ {
		for x := 0; x < 1000; x++ {
			c := color.RGBA{200, 10, 10, 255}
			if x >= 500 {
				c = color.RGBA{10, 10, 200, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var src bytes.Buffer
	if err := jpeg.Encode(&src, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	out, err := Thumbnail(bytes.NewReader(src.Bytes()), 320)
	if err != nil {
		t.Fatal(err)
	}
	th, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if th.Bounds().Dx() != 320 || th.Bounds().Dy() != 160 {
		t.Fatalf("thumbnail %v", th.Bounds())
	}
	// The halves keep their colours (JPEG is lossy: compare roughly).
	r, _, b, _ := th.At(40, 80).RGBA()
	r2, _, b2, _ := th.At(280, 80).RGBA()
	if r>>8 < 150 || b>>8 > 60 || b2>>8 < 150 || r2>>8 > 60 {
		t.Fatalf("colours lost: left %d/%d, right %d/%d", r>>8, b>>8, r2>>8, b2>>8)
	}
	// A small image is not scaled up.
	small := image.NewRGBA(image.Rect(0, 0, 100, 50))
	src.Reset()
	jpeg.Encode(&src, small, nil)
	out, err = Thumbnail(bytes.NewReader(src.Bytes()), 320)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := jpeg.DecodeConfig(bytes.NewReader(out)); cfg.Width != 100 {
		t.Fatalf("small image became %d wide", cfg.Width)
	}
	if _, err := Thumbnail(strings.NewReader("not a jpeg"), 320); err == nil {
		t.Fatal("garbage thumbnailed")
	}
	// A header claiming 65000×65000 pixels is refused before anything is decoded.
	huge := bytes.Clone(src.Bytes())
	sof := bytes.Index(huge, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("no SOF0 marker")
	}
	binary.BigEndian.PutUint16(huge[sof+5:], 65000)
	binary.BigEndian.PutUint16(huge[sof+7:], 65000)
	if _, err := Thumbnail(bytes.NewReader(huge), 320); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("huge JPEG: %v", err)
	}
}
