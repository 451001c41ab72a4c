package kimaiemu

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// The structs below reproduce Kimai's serialisation groups field for field
// (tests/API/APIControllerBaseTestCase::getExpectedResponseStructure).
// Nullable fields are pointers without omitempty: Kimai sends them as null.

type userCollectionJSON struct {
	ID            int64   `json:"id"`
	Username      string  `json:"username"`
	Enabled       bool    `json:"enabled"`
	APIToken      bool    `json:"apiToken"`
	Color         *string `json:"color"`
	Alias         *string `json:"alias"`
	AccountNumber *string `json:"accountNumber"`
	Initials      string  `json:"initials"`
	Title         *string `json:"title"`
}

type userEntityJSON struct {
	ID            int64    `json:"id"`
	Username      string   `json:"username"`
	Enabled       bool     `json:"enabled"`
	APIToken      bool     `json:"apiToken"`
	Alias         *string  `json:"alias"`
	Title         *string  `json:"title"`
	Supervisor    *int64   `json:"supervisor"`
	Avatar        *string  `json:"avatar"`
	Color         *string  `json:"color"`
	Teams         []any    `json:"teams"`
	Roles         []string `json:"roles"`
	Initials      string   `json:"initials"`
	Language      string   `json:"language"`
	Locale        string   `json:"locale"`
	Timezone      string   `json:"timezone"`
	AccountNumber *string  `json:"accountNumber"`
	Memberships   []any    `json:"memberships"`
	Preferences   []any    `json:"preferences"`
}

type customerJSON struct {
	ID       int64   `json:"id"`
	Name     string  `json:"name"`
	Visible  bool    `json:"visible"`
	Billable bool    `json:"billable"`
	Color    *string `json:"color"`
	Number   *string `json:"number"`
	Comment  *string `json:"comment"`
}

type customerCollectionJSON struct {
	customerJSON
	MetaFields []any  `json:"metaFields"`
	Teams      []any  `json:"teams"`
	Currency   string `json:"currency"`
}

type projectCollectionJSON struct {
	ID               int64   `json:"id"`
	Name             string  `json:"name"`
	Visible          bool    `json:"visible"`
	Billable         bool    `json:"billable"`
	Customer         int64   `json:"customer"`
	Number           *string `json:"number"`
	Color            *string `json:"color"`
	MetaFields       []any   `json:"metaFields"`
	ParentTitle      string  `json:"parentTitle"`
	Start            *string `json:"start"`
	End              *string `json:"end"`
	GlobalActivities bool    `json:"globalActivities"`
	Teams            []any   `json:"teams"`
	Comment          *string `json:"comment"`
}

type projectExpandedJSON struct {
	ID               int64        `json:"id"`
	Name             string       `json:"name"`
	Visible          bool         `json:"visible"`
	Billable         bool         `json:"billable"`
	Color            *string      `json:"color"`
	Customer         customerJSON `json:"customer"`
	Number           *string      `json:"number"`
	GlobalActivities bool         `json:"globalActivities"`
	Comment          *string      `json:"comment"`
}

type activityJSON struct {
	ID       int64   `json:"id"`
	Name     string  `json:"name"`
	Visible  bool    `json:"visible"`
	Billable bool    `json:"billable"`
	Project  *int64  `json:"project"`
	Number   *string `json:"number"`
	Color    *string `json:"color"`
	Comment  *string `json:"comment"`
}

type activityCollectionJSON struct {
	activityJSON
	MetaFields  []any   `json:"metaFields"`
	ParentTitle *string `json:"parentTitle"`
	Teams       []any   `json:"teams"`
}

type metaJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type timesheetCollectionJSON struct {
	ID           int64      `json:"id"`
	Begin        string     `json:"begin"`
	End          *string    `json:"end"`
	Duration     int64      `json:"duration"`
	Description  *string    `json:"description"`
	Rate         float64    `json:"rate"`
	InternalRate float64    `json:"internalRate"`
	Activity     any        `json:"activity"`
	Project      any        `json:"project"`
	User         any        `json:"user"`
	Tags         []string   `json:"tags"`
	MetaFields   []metaJSON `json:"metaFields"`
	Exported     bool       `json:"exported"`
	Billable     bool       `json:"billable"`
}

type timesheetEntityJSON struct {
	timesheetCollectionJSON
	FixedRate  *float64 `json:"fixedRate"`
	HourlyRate *float64 `json:"hourlyRate"`
}

type tagJSON struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	Color     *string `json:"color"`
	ColorSafe string  `json:"color-safe"`
	Visible   bool    `json:"visible"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func empty() []any { return []any{} }

// initials follows Kimai's User::getInitials: first letters of the first
// two words of the display name, else its first two characters.
func initials(u *User) string {
	name := u.Alias
	if name == "" {
		name = u.Username
	}
	words := strings.Fields(name)
	var out string
	if len(words) >= 2 {
		for _, w := range words[:2] {
			r, _ := utf8.DecodeRuneInString(w)
			out += string(r)
		}
	} else {
		rs := []rune(name)
		if len(rs) > 2 {
			rs = rs[:2]
		}
		out = string(rs)
	}
	return strings.ToUpper(out)
}

func userCollection(u *User, hasToken bool) userCollectionJSON {
	return userCollectionJSON{
		ID: u.ID, Username: u.Username, Enabled: !u.Disabled, APIToken: hasToken,
		Alias: strPtr(u.Alias), Initials: initials(u), Title: strPtr(u.Title),
	}
}

func (s *Server) userEntity(u *User) userEntityJSON {
	lang := u.Language
	if lang == "" {
		lang = "en"
	}
	_, hasToken := s.tokenHash[u.ID]
	roles := append([]string{}, u.Roles...)
	return userEntityJSON{
		ID: u.ID, Username: u.Username, Enabled: !u.Disabled, APIToken: hasToken,
		Alias: strPtr(u.Alias), Title: strPtr(u.Title), Teams: empty(), Roles: roles,
		Initials: initials(u), Language: lang, Locale: lang, Timezone: u.Timezone,
		Memberships: empty(), Preferences: empty(),
	}
}

func customerOf(c *Customer) customerJSON {
	return customerJSON{ID: c.ID, Name: c.Name, Visible: !c.Hidden, Billable: !c.NotBillable}
}

func (s *Server) projectCollection(p *Project, loc *time.Location) projectCollectionJSON {
	out := projectCollectionJSON{
		ID: p.ID, Name: p.Name, Visible: !p.Hidden, Billable: !p.NotBillable, Customer: p.Customer,
		MetaFields: empty(), GlobalActivities: !p.NoGlobalActivities, Teams: empty(),
	}
	if c := s.customers[p.Customer]; c != nil {
		out.ParentTitle = c.Name
	}
	if p.Start != nil {
		v := formatTime(*p.Start, loc)
		out.Start = &v
	}
	if p.End != nil {
		v := formatTime(*p.End, loc)
		out.End = &v
	}
	return out
}

func (s *Server) projectExpanded(p *Project) projectExpandedJSON {
	out := projectExpandedJSON{
		ID: p.ID, Name: p.Name, Visible: !p.Hidden, Billable: !p.NotBillable,
		GlobalActivities: !p.NoGlobalActivities,
	}
	if c := s.customers[p.Customer]; c != nil {
		out.Customer = customerOf(c)
	}
	return out
}

func activityOf(a *Activity) activityJSON {
	return activityJSON{ID: a.ID, Name: a.Name, Visible: !a.Hidden, Billable: !a.NotBillable, Project: a.Project}
}

func (s *Server) activityCollection(a *Activity) activityCollectionJSON {
	out := activityCollectionJSON{activityJSON: activityOf(a), MetaFields: empty(), Teams: empty()}
	if a.Project != nil {
		if p := s.projects[*a.Project]; p != nil {
			out.ParentTitle = &p.Name
		}
	}
	return out
}

// billable resolves Kimai's "automatic" billable mode.
func (s *Server) billable(t *timesheet) bool {
	if t.Billable != nil {
		return *t.Billable
	}
	b := true
	if p := s.projects[t.Project]; p != nil {
		b = b && !p.NotBillable
		if c := s.customers[p.Customer]; c != nil {
			b = b && !c.NotBillable
		}
	}
	if a := s.activities[t.Activity]; a != nil {
		b = b && !a.NotBillable
	}
	return b
}

func rate(t *timesheet) float64 {
	switch {
	case t.FixedRate != nil:
		return *t.FixedRate
	case t.HourlyRate != nil:
		return math.Round(*t.HourlyRate*float64(t.duration())/3600*100) / 100
	}
	return 0
}

func (s *Server) timesheetCollection(t *timesheet, expanded bool) timesheetCollectionJSON {
	loc := loadZone(t.Timezone)
	out := timesheetCollectionJSON{
		ID: t.ID, Begin: formatTime(t.Begin, loc), Duration: t.duration(),
		Description: t.Description, Rate: rate(t), InternalRate: rate(t),
		Activity: t.Activity, Project: t.Project, User: t.User,
		Tags: append([]string{}, t.Tags...), MetaFields: []metaJSON{},
		Exported: t.Exported, Billable: s.billable(t),
	}
	if t.End != nil {
		v := formatTime(*t.End, loc)
		out.End = &v
	}
	for _, name := range sortedKeys(t.Meta) {
		out.MetaFields = append(out.MetaFields, metaJSON{Name: name, Value: t.Meta[name]})
	}
	if expanded {
		if a := s.activities[t.Activity]; a != nil {
			out.Activity = activityOf(a)
		}
		if p := s.projects[t.Project]; p != nil {
			out.Project = s.projectExpanded(p)
		}
		if u := s.userByID[t.User]; u != nil {
			_, has := s.tokenHash[u.ID]
			out.User = userCollection(u, has)
		}
	}
	return out
}

func (s *Server) timesheetEntity(t *timesheet) timesheetEntityJSON {
	return timesheetEntityJSON{
		timesheetCollectionJSON: s.timesheetCollection(t, false),
		FixedRate:               t.FixedRate,
		HourlyRate:              t.HourlyRate,
	}
}

func tagOf(t *tag) tagJSON {
	safe := "#6b7280"
	if t.Color != nil {
		safe = *t.Color
	}
	return tagJSON{ID: t.ID, Name: t.Name, Color: t.Color, ColorSafe: safe, Visible: t.Visible}
}
