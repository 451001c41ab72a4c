package kimaiemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Kimai's role names.
const (
	RoleUser       = "ROLE_USER"
	RoleTeamlead   = "ROLE_TEAMLEAD"
	RoleAdmin      = "ROLE_ADMIN"
	RoleSuperAdmin = "ROLE_SUPER_ADMIN"
)

// Permission names the emulator checks. Kimai splits several of them into
// *_own_* and *_other_* variants; the emulator only needs this coarser set.
const (
	PermViewOwnTimesheet     = "view_own_timesheet"
	PermViewOtherTimesheet   = "view_other_timesheet"
	PermCreateOwnTimesheet   = "create_own_timesheet"
	PermCreateOtherTimesheet = "create_other_timesheet"
	PermEditOwnTimesheet     = "edit_own_timesheet"
	PermEditOtherTimesheet   = "edit_other_timesheet"
	PermDeleteOwnTimesheet   = "delete_own_timesheet"
	PermDeleteOtherTimesheet = "delete_other_timesheet"
	PermEditExportedTimesht  = "edit_exported_timesheet"
	PermEditExport           = "edit_export"
	PermEditBillable         = "edit_billable"
	PermEditRate             = "edit_rate"
	PermViewUser             = "view_user"
	PermCreateTag            = "create_tag"
)

// rolePermissions mirrors Kimai's default permission sets: ROLE_USER books
// its own time only, ROLE_TEAMLEAD may also book for others and set
// user/billable/exported, rates and user administration are ADMIN only.
var rolePermissions = func() map[string][]string {
	user := []string{PermViewOwnTimesheet, PermCreateOwnTimesheet, PermEditOwnTimesheet, PermDeleteOwnTimesheet}
	teamlead := append(append([]string{}, user...),
		PermViewOtherTimesheet, PermCreateOtherTimesheet, PermEditOtherTimesheet, PermDeleteOtherTimesheet,
		PermEditExportedTimesht, PermEditExport, PermEditBillable, PermCreateTag)
	admin := append(append([]string{}, teamlead...), PermEditRate, PermViewUser)
	return map[string][]string{
		RoleUser:       user,
		RoleTeamlead:   teamlead,
		RoleAdmin:      admin,
		RoleSuperAdmin: admin,
	}
}()

// User is a Kimai account. APIToken is the Bearer token (Kimai ≥ 2.14),
// APIPassword the legacy X-AUTH-TOKEN secret. Both are demo data of the
// emulator; a real Kimai stores them hashed.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
	Alias    string `json:"alias,omitempty"`
	Title    string `json:"title,omitempty"`
	// Timezone is an IANA name; every local date-time the user sends or
	// filters by is read in it.
	Timezone string   `json:"timezone"`
	Language string   `json:"language,omitempty"`
	Roles    []string `json:"roles"`
	Disabled bool     `json:"disabled,omitempty"`
	APIToken string   `json:"apiToken,omitempty"`
	// APITokenExpires, when set, makes the token invalid from that instant.
	APITokenExpires *time.Time `json:"apiTokenExpires,omitempty"`
	APIPassword     string     `json:"apiPassword,omitempty"`
	// Permissions are granted on top of the roles' defaults (e.g. view_user
	// for a teamlead).
	Permissions []string `json:"permissions,omitempty"`
}

// Customer is a Kimai customer.
type Customer struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Hidden      bool   `json:"hidden,omitempty"`
	NotBillable bool   `json:"notBillable,omitempty"`
	Currency    string `json:"currency,omitempty"`
}

// Project is a Kimai project. Start and End bound the time a project may be
// booked and listed (see ignoreDates).
type Project struct {
	ID                 int64      `json:"id"`
	Customer           int64      `json:"customer"`
	Name               string     `json:"name"`
	Hidden             bool       `json:"hidden,omitempty"`
	NotBillable        bool       `json:"notBillable,omitempty"`
	NoGlobalActivities bool       `json:"noGlobalActivities,omitempty"`
	Start              *time.Time `json:"start,omitempty"`
	End                *time.Time `json:"end,omitempty"`
}

// Activity is a Kimai activity; Project nil means a global activity.
type Activity struct {
	ID          int64  `json:"id"`
	Project     *int64 `json:"project"`
	Name        string `json:"name"`
	Hidden      bool   `json:"hidden,omitempty"`
	NotBillable bool   `json:"notBillable,omitempty"`
}

// Settings are Kimai's server-side timesheet rules.
type Settings struct {
	// TrackingMode "default" lets the API set begin/end; any punch mode
	// refuses both fields.
	TrackingMode           string `json:"trackingMode"`
	DefaultBeginTime       string `json:"defaultBeginTime"`
	ActiveEntriesHardLimit int    `json:"activeEntriesHardLimit"`
	AllowOverlapping       bool   `json:"allowOverlapping"`
	AllowFutureTimes       bool   `json:"allowFutureTimes"`
}

// DefaultSettings returns Kimai's defaults.
func DefaultSettings() Settings {
	return Settings{
		TrackingMode:           "default",
		DefaultBeginTime:       "now",
		ActiveEntriesHardLimit: 1,
		AllowOverlapping:       true,
		AllowFutureTimes:       true,
	}
}

// Seed is the emulated instance's fixed data: accounts, catalogue, the tags
// that exist from the start, the timesheet meta fields a plugin registered,
// and the timesheet rules.
type Seed struct {
	Users      []User     `json:"users"`
	Customers  []Customer `json:"customers"`
	Projects   []Project  `json:"projects"`
	Activities []Activity `json:"activities"`
	Tags       []string   `json:"tags,omitempty"`
	MetaFields []string   `json:"metaFields,omitempty"`
	Settings   Settings   `json:"settings"`
}

const maxSeedBytes = 8 << 20

// LoadSeed reads a JSON seed file. Settings absent from the file keep
// Kimai's defaults; unknown keys are refused so a typo cannot silently
// change the emulated rules.
func LoadSeed(path string) (Seed, error) {
	f, err := os.Open(path)
	if err != nil {
		return Seed{}, fmt.Errorf("open seed: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSeedBytes+1))
	if err != nil {
		return Seed{}, fmt.Errorf("read seed %s: %w", path, err)
	}
	if len(data) > maxSeedBytes {
		return Seed{}, fmt.Errorf("seed %s: larger than %d bytes", path, maxSeedBytes)
	}
	s, err := ParseSeed(data)
	if err != nil {
		return Seed{}, fmt.Errorf("seed %s: %w", path, err)
	}
	return s, nil
}

// ParseSeed decodes and validates a JSON seed.
func ParseSeed(data []byte) (Seed, error) {
	s := Seed{Settings: DefaultSettings()}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Seed{}, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return Seed{}, errors.New("decode: trailing data after the seed object")
	}
	if err := s.Validate(); err != nil {
		return Seed{}, err
	}
	return s, nil
}

// Validate checks the seed's internal consistency.
func (s Seed) Validate() error {
	if len(s.Users) == 0 {
		return errors.New("seed has no users")
	}
	ids := map[int64]bool{}
	names := map[string]bool{}
	tokens := map[string]bool{}
	for i, u := range s.Users {
		if u.ID <= 0 || ids[u.ID] {
			return fmt.Errorf("user #%d: id %d is not a unique positive number", i, u.ID)
		}
		ids[u.ID] = true
		lname := strings.ToLower(u.Username)
		if u.Username == "" || names[lname] {
			return fmt.Errorf("user %d: username %q is empty or not unique", u.ID, u.Username)
		}
		names[lname] = true
		if u.Email != "" {
			le := strings.ToLower(u.Email)
			if names[le] {
				return fmt.Errorf("user %d: email %q clashes with another login name", u.ID, u.Email)
			}
			names[le] = true
		}
		if _, err := time.LoadLocation(u.Timezone); err != nil || u.Timezone == "" {
			return fmt.Errorf("user %d: timezone %q: unknown", u.ID, u.Timezone)
		}
		for _, r := range u.Roles {
			if _, ok := rolePermissions[r]; !ok {
				return fmt.Errorf("user %d: unknown role %q", u.ID, r)
			}
		}
		if u.APIToken != "" {
			if tokens[u.APIToken] {
				return fmt.Errorf("user %d: api token shared with another user", u.ID)
			}
			if !tokenPattern.MatchString(u.APIToken) {
				return fmt.Errorf("user %d: api token has characters a Bearer header cannot carry", u.ID)
			}
			tokens[u.APIToken] = true
		}
	}
	customers := map[int64]bool{}
	for _, c := range s.Customers {
		if c.ID <= 0 || customers[c.ID] {
			return fmt.Errorf("customer id %d is not a unique positive number", c.ID)
		}
		if c.Name == "" {
			return fmt.Errorf("customer %d has no name", c.ID)
		}
		customers[c.ID] = true
	}
	projects := map[int64]bool{}
	for _, p := range s.Projects {
		if p.ID <= 0 || projects[p.ID] {
			return fmt.Errorf("project id %d is not a unique positive number", p.ID)
		}
		if !customers[p.Customer] {
			return fmt.Errorf("project %d: unknown customer %d", p.ID, p.Customer)
		}
		if p.Name == "" {
			return fmt.Errorf("project %d has no name", p.ID)
		}
		if p.Start != nil && p.End != nil && p.End.Before(*p.Start) {
			return fmt.Errorf("project %d ends before it starts", p.ID)
		}
		projects[p.ID] = true
	}
	activities := map[int64]bool{}
	for _, a := range s.Activities {
		if a.ID <= 0 || activities[a.ID] {
			return fmt.Errorf("activity id %d is not a unique positive number", a.ID)
		}
		if a.Project != nil && !projects[*a.Project] {
			return fmt.Errorf("activity %d: unknown project %d", a.ID, *a.Project)
		}
		if a.Name == "" {
			return fmt.Errorf("activity %d has no name", a.ID)
		}
		activities[a.ID] = true
	}
	for _, t := range s.Tags {
		if strings.TrimSpace(t) == "" || strings.Contains(t, ",") {
			return fmt.Errorf("tag %q: empty or contains a comma", t)
		}
	}
	if s.Settings.ActiveEntriesHardLimit < 1 {
		return fmt.Errorf("settings: activeEntriesHardLimit %d must be at least 1", s.Settings.ActiveEntriesHardLimit)
	}
	if s.Settings.TrackingMode == "" {
		return errors.New("settings: trackingMode is empty")
	}
	return nil
}

// DemoSeed is a small instance with users in the time zones the tests care
// about (UTC+13 in the southern summer, UTC−5 without DST), a hidden
// customer, a hidden and an ended project, global and project activities.
func DemoSeed() Seed {
	p1, p2, p3 := int64(1), int64(2), int64(3)
	ended := time.Date(2020, 12, 31, 23, 59, 59, 0, time.UTC)
	started := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	return Seed{
		Users: []User{
			{ID: 1, Username: "admin", Email: "admin@example.invalid", Alias: "Ada Admin", Timezone: "UTC",
				Roles: []string{RoleAdmin}, APIToken: "demo-admin-token", APIPassword: "demo-admin-password"},
			{ID: 2, Username: "dvm", Email: "dvm@example.invalid", Alias: "pow.do DVM", Timezone: "Pacific/Auckland",
				Roles: []string{RoleTeamlead}, APIToken: "demo-dvm-token", APIPassword: "demo-dvm-password",
				// Kimai admins can grant view_user to teamleads; the DVM needs
				// it to map workers to Kimai users.
				Permissions: []string{PermViewUser}},
			{ID: 3, Username: "alice", Email: "alice@example.invalid", Alias: "Alice Tonga", Timezone: "Pacific/Tongatapu",
				Roles: []string{RoleUser}, APIToken: "demo-alice-token", APIPassword: "demo-alice-password"},
			{ID: 4, Username: "bob", Email: "bob@example.invalid", Alias: "Bob Bogota", Timezone: "America/Bogota",
				Roles: []string{RoleUser}, APIToken: "demo-bob-token", APIPassword: "demo-bob-password"},
			{ID: 5, Username: "carol", Alias: "Carol Gone", Timezone: "Europe/Berlin",
				Roles: []string{RoleUser}, Disabled: true, APIToken: "demo-carol-token"},
		},
		Customers: []Customer{
			{ID: 1, Name: "Acme"},
			{ID: 2, Name: "Hidden Corp", Hidden: true},
		},
		Projects: []Project{
			{ID: 1, Customer: 1, Name: "Website", Start: &started},
			{ID: 2, Customer: 1, Name: "Mobile App", NoGlobalActivities: true},
			{ID: 3, Customer: 1, Name: "Archive", Hidden: true},
			{ID: 4, Customer: 1, Name: "Legacy Migration", Start: &started, End: &ended},
			{ID: 5, Customer: 2, Name: "Secret"},
		},
		Activities: []Activity{
			{ID: 1, Name: "Development"},
			{ID: 2, Name: "Meetings", NotBillable: true},
			{ID: 3, Project: &p1, Name: "Design"},
			{ID: 4, Project: &p2, Name: "Testing"},
			{ID: 5, Project: &p3, Name: "Filing"},
			{ID: 6, Name: "Retired", Hidden: true},
		},
		Tags:     []string{"pow.do"},
		Settings: DefaultSettings(),
	}
}
