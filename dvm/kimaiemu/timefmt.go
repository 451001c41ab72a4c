package kimaiemu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// outputLayout is how Kimai serialises date-times: local time of the
// record's time zone with an offset without a colon.
const outputLayout = "2006-01-02T15:04:05-0700"

// queryLayout is the strict HTML5 local format of query filters
// (Symfony's DateTime constraint with format Y-m-d\TH:i:s).
const queryLayout = "2006-01-02T15:04:05"

// formDateTime is Symfony's DateTimeToHtml5LocalDateTimeTransformer check:
// it is anchored only at the start (kept loose upstream for backwards
// compatibility), so PHP's DateTime parser gets whatever follows. PHP then
// honours an offset in the string, which is how a client that sends one
// silently books a record in another zone.
var formDateTime = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(.*)$`)

var formDateTimeRest = regexp.MustCompile(`^(\.\d{1,9})?(Z|[+-]\d{2}(?::?\d{2})?)?$`)

// parseFormDateTime reads a form date-time. Without an offset it is local
// time in loc; with one the returned zone is that fixed offset, as PHP does.
func parseFormDateTime(s string, loc *time.Location) (time.Time, *time.Location, bool) {
	m := formDateTime.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, nil, false
	}
	num := func(i int) int { n, _ := strconv.Atoi(m[i]); return n }
	year, month, day, hour, minute := num(1), num(2), num(3), num(4), num(5)
	sec := 0
	if m[6] != "" {
		sec = num(6)
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, nil, false
	}
	// checkdate(): reject 2024-02-30 instead of normalising it.
	if d := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC); d.Day() != day {
		return time.Time{}, nil, false
	}
	rest := formDateTimeRest.FindStringSubmatch(m[7])
	if rest == nil {
		return time.Time{}, nil, false
	}
	nsec := 0
	if rest[1] != "" {
		frac := (rest[1][1:] + "000000000")[:9]
		nsec, _ = strconv.Atoi(frac)
	}
	zone := loc
	if rest[2] != "" {
		z, ok := fixedZone(rest[2])
		if !ok {
			return time.Time{}, nil, false
		}
		zone = z
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, zone), zone, true
}

// fixedZone turns "Z", "+05", "+0530" or "+05:30" into a zone named like
// PHP names offset zones ("+05:30").
func fixedZone(s string) (*time.Location, bool) {
	if s == "Z" {
		return time.FixedZone("+00:00", 0), true
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	digits := strings.ReplaceAll(s[1:], ":", "")
	h, err := strconv.Atoi(digits[:2])
	if err != nil || h > 14 {
		return nil, false
	}
	mins := 0
	if len(digits) == 4 {
		mins, err = strconv.Atoi(digits[2:])
		if err != nil || mins > 59 {
			return nil, false
		}
	}
	off := sign * (h*3600 + mins*60)
	return time.FixedZone(offsetName(off), off), true
}

func offsetName(off int) string {
	sign := '+'
	if off < 0 {
		sign = '-'
		off = -off
	}
	return fmt.Sprintf("%c%02d:%02d", sign, off/3600, off%3600/60)
}

var (
	locMu    sync.Mutex
	locCache = map[string]*time.Location{}
)

// loadZone resolves a stored zone name: an IANA name or a PHP-style offset.
func loadZone(name string) *time.Location {
	locMu.Lock()
	defer locMu.Unlock()
	if l, ok := locCache[name]; ok {
		return l
	}
	var l *time.Location
	if strings.HasPrefix(name, "+") || strings.HasPrefix(name, "-") {
		if z, ok := fixedZone(name); ok {
			l = z
		}
	} else if z, err := time.LoadLocation(name); err == nil {
		l = z
	}
	if l == nil {
		l = time.UTC
	}
	locCache[name] = l
	return l
}

func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format(outputLayout)
}

// floorMinute and ceilMinute are Kimai's default rounding (1 minute, begin
// down, end up).
func floorMinute(t time.Time) time.Time { return t.Truncate(time.Minute) }

func ceilMinute(t time.Time) time.Time {
	f := t.Truncate(time.Minute)
	if f.Equal(t) {
		return t
	}
	return f.Add(time.Minute)
}
