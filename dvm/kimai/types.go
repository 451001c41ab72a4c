package kimai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Layouts of Kimai's date-times. Kimai answers with a numeric offset
// without a colon; it reads local time without any offset.
const (
	// ResponseLayout is Kimai's output format, e.g. 2020-03-27T14:35:00+1300.
	ResponseLayout = "2006-01-02T15:04:05-0700"
	// LocalLayout is the only input format pow.do sends (HTML5 local
	// date-time, read by Kimai in the authenticated user's zone).
	LocalLayout = "2006-01-02T15:04:05"
)

// ParseTime reads a Kimai date-time. It accepts Kimai's +HHMM form and, to
// be lenient with proxies and future versions, RFC 3339.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(ResponseLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05Z0700", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("kimai time %q: %w", s, err)
	}
	return t, nil
}

// FormatLocal renders t as Kimai input: wall-clock time in loc, no offset.
func FormatLocal(t time.Time, loc *time.Location) string {
	return t.In(loc).Format(LocalLayout)
}

// kTime decodes a nullable Kimai date-time.
type kTime struct{ t *time.Time }

func (k *kTime) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		k.t = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("kimai time: %w", err)
	}
	if s == "" {
		k.t = nil
		return nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	k.t = &t
	return nil
}

// ref is an entity reference that Kimai sends as an id, or as an object
// with an id in expanded ("full") serialisations; null is 0.
type ref int64

func (r *ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*r = 0
		return nil
	case len(b) > 0 && b[0] == '{':
		var obj struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("kimai reference: %w", err)
		}
		*r = ref(obj.ID)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("kimai reference %s: %w", b, err)
	}
	*r = ref(n)
	return nil
}

// flexString takes strings, numbers and null (Kimai's "number" fields vary
// between versions).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("kimai text field %s: %w", b, err)
	}
	*f = flexString(n.String())
	return nil
}

// Version is GET /api/version.
type Version struct {
	Version   string `json:"version"`
	VersionID int    `json:"versionId"`
	Copyright string `json:"copyright"`
}

// User is a Kimai account. Timezone, Roles and Language are only filled by
// Me (Kimai's user collection omits them).
type User struct {
	ID            int64
	Username      string
	Alias         string
	Title         string
	AccountNumber string
	Initials      string
	Enabled       bool
	HasAPIToken   bool
	Timezone      string
	Language      string
	Roles         []string
}

type userWire struct {
	ID            int64      `json:"id"`
	Username      string     `json:"username"`
	Alias         flexString `json:"alias"`
	Title         flexString `json:"title"`
	AccountNumber flexString `json:"accountNumber"`
	Initials      flexString `json:"initials"`
	Enabled       bool       `json:"enabled"`
	APIToken      bool       `json:"apiToken"`
	Timezone      string     `json:"timezone"`
	Language      string     `json:"language"`
	Roles         []string   `json:"roles"`
}

func (w userWire) user() User {
	return User{ID: w.ID, Username: w.Username, Alias: string(w.Alias), Title: string(w.Title),
		AccountNumber: string(w.AccountNumber), Initials: string(w.Initials), Enabled: w.Enabled,
		HasAPIToken: w.APIToken, Timezone: w.Timezone, Language: w.Language, Roles: w.Roles}
}

// TimesheetConfig is GET /api/config/timesheet. TrackingMode must be
// "default" for pow.do: punch modes refuse begin and end.
type TimesheetConfig struct {
	TrackingMode           string `json:"trackingMode"`
	DefaultBeginTime       string `json:"defaultBeginTime"`
	ActiveEntriesHardLimit int    `json:"activeEntriesHardLimit"`
	AllowFutureTimes       bool   `json:"isAllowFutureTimes"`
	AllowOverlapping       bool   `json:"isAllowOverlapping"`
}

// Customer is an entry of GET /api/customers.
type Customer struct {
	ID       int64
	Name     string
	Number   string
	Comment  string
	Color    string
	Currency string
	Visible  bool
	Billable bool
}

type customerWire struct {
	ID       int64      `json:"id"`
	Name     string     `json:"name"`
	Number   flexString `json:"number"`
	Comment  flexString `json:"comment"`
	Color    flexString `json:"color"`
	Currency flexString `json:"currency"`
	Visible  bool       `json:"visible"`
	Billable bool       `json:"billable"`
}

// Project is an entry of GET /api/projects.
type Project struct {
	ID               int64
	Customer         int64
	Name             string
	ParentTitle      string // the customer's name
	Number           string
	Comment          string
	Color            string
	Visible          bool
	Billable         bool
	GlobalActivities bool
	// Start and End bound when the project may be booked; nil is open.
	Start, End *time.Time
}

type projectWire struct {
	ID               int64      `json:"id"`
	Customer         ref        `json:"customer"`
	Name             string     `json:"name"`
	ParentTitle      flexString `json:"parentTitle"`
	Number           flexString `json:"number"`
	Comment          flexString `json:"comment"`
	Color            flexString `json:"color"`
	Visible          bool       `json:"visible"`
	Billable         bool       `json:"billable"`
	GlobalActivities bool       `json:"globalActivities"`
	Start            kTime      `json:"start"`
	End              kTime      `json:"end"`
}

// Activity is an entry of GET /api/activities. Project 0 is a global
// activity (Kimai's project: null).
type Activity struct {
	ID          int64
	Project     int64
	Name        string
	ParentTitle string
	Number      string
	Comment     string
	Color       string
	Visible     bool
	Billable    bool
}

// Global reports whether the activity may be booked on any project that
// accepts global activities.
func (a Activity) Global() bool { return a.Project == 0 }

type activityWire struct {
	ID          int64      `json:"id"`
	Project     ref        `json:"project"`
	Name        string     `json:"name"`
	ParentTitle flexString `json:"parentTitle"`
	Number      flexString `json:"number"`
	Comment     flexString `json:"comment"`
	Color       flexString `json:"color"`
	Visible     bool       `json:"visible"`
	Billable    bool       `json:"billable"`
}

// Timesheet is a Kimai timesheet record as Kimai returned it (rounded;
// don't expect an exact round trip of what was sent). Begin and End carry
// the offset Kimai sent.
type Timesheet struct {
	ID          int64
	User        int64
	Project     int64
	Activity    int64
	Begin       time.Time
	End         *time.Time // nil while running
	Duration    time.Duration
	Description string
	Tags        []string
	Exported    bool
	Billable    bool
	Rate        float64
	// FixedRate and HourlyRate are only in single-record answers.
	FixedRate, HourlyRate *float64
	MetaFields            map[string]string
}

// Running reports whether the record has no end yet.
func (t Timesheet) Running() bool { return t.End == nil }

type timesheetWire struct {
	ID          int64      `json:"id"`
	User        ref        `json:"user"`
	Project     ref        `json:"project"`
	Activity    ref        `json:"activity"`
	Begin       kTime      `json:"begin"`
	End         kTime      `json:"end"`
	Duration    *int64     `json:"duration"`
	Description flexString `json:"description"`
	Tags        []string   `json:"tags"`
	Exported    bool       `json:"exported"`
	Billable    bool       `json:"billable"`
	Rate        float64    `json:"rate"`
	FixedRate   *float64   `json:"fixedRate"`
	HourlyRate  *float64   `json:"hourlyRate"`
	MetaFields  []struct {
		Name  string     `json:"name"`
		Value flexString `json:"value"`
	} `json:"metaFields"`
}

func (w timesheetWire) timesheet() (Timesheet, error) {
	if w.ID <= 0 || w.Begin.t == nil {
		return Timesheet{}, fmt.Errorf("kimai timesheet without id or begin (id %d)", w.ID)
	}
	t := Timesheet{
		ID: w.ID, User: int64(w.User), Project: int64(w.Project), Activity: int64(w.Activity),
		Begin: *w.Begin.t, End: w.End.t, Description: string(w.Description), Tags: w.Tags,
		Exported: w.Exported, Billable: w.Billable, Rate: w.Rate,
		FixedRate: w.FixedRate, HourlyRate: w.HourlyRate,
	}
	if w.Duration != nil {
		t.Duration = time.Duration(*w.Duration) * time.Second
	}
	if len(w.MetaFields) > 0 {
		t.MetaFields = map[string]string{}
		for _, m := range w.MetaFields {
			t.MetaFields[m.Name] = string(m.Value)
		}
	}
	return t, nil
}

// Visibility filters customers, projects, activities and users. The zero
// value leaves Kimai's default (visible only).
type Visibility int

const (
	VisibleOnly   Visibility = 1
	HiddenOnly    Visibility = 2
	AnyVisibility Visibility = 3
)

func (v Visibility) param() (string, error) {
	switch v {
	case 0:
		return "", nil
	case VisibleOnly, HiddenOnly, AnyVisibility:
		return strconv.Itoa(int(v)), nil
	}
	return "", fmt.Errorf("kimai: visibility %d is not 1, 2 or 3", int(v))
}
