package kimaiemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Messages exactly as Kimai (Symfony forms and Kimai's validators, English
// translation) returns them.
const (
	msgExtraFields       = "This form should not contain extra fields."
	msgInvalid           = "This value is not valid."
	msgInvalidDateTime   = "Please enter a valid date and time."
	msgInvalidNumber     = "Please enter a number."
	msgNegative          = "This value should be greater than or equal to 0."
	msgMissingBegin      = "You must submit a begin date."
	msgMissingActivity   = "An activity needs to be selected."
	msgMissingProject    = "A project needs to be selected."
	msgEndBeforeBegin    = "The end date must not be earlier than the start date."
	msgProjectMismatch   = "Project mismatch, project specific activity and timesheet project are different."
	msgGlobalForbidden   = "Global activities are forbidden for the selected project."
	msgProjectNotStarted = "The project has not started at that time."
	msgProjectEnded      = "The project is finished at that time."
	msgBeginInFuture     = "The begin date cannot be in the future."
	msgOverlapping       = "You already have an entry for this time."
)

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

const maxBodyBytes = 1 << 20

var errBadJSON = errors.New("invalid json")

// readJSONObject reads the request body the way FOSRest's body listener
// does: JSON objects only; an empty body is an empty submission.
func readJSONObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid json message received")
		return nil, false
	}
	body := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(data)) == 0 {
		return body, true
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "" && !strings.Contains(ct, "json") {
		// Not a JSON request: Symfony would not decode it either.
		return body, true
	}
	if err := decodeObject(data, &body); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid json message received")
		return nil, false
	}
	return body, true
}

func decodeObject(data []byte, into *map[string]json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(into); err != nil || *into == nil {
		return errBadJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return errBadJSON
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// scalarString converts a JSON scalar to the string PHP would see; arrays
// and objects are not scalars.
func scalarString(raw json.RawMessage) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "1", true
		}
		return "", true
	}
	return "", false
}

func parseBool(raw json.RawMessage) (bool, bool) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, false
	}
	switch x := v.(type) {
	case nil:
		return false, true
	case bool:
		return x, true
	case float64:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	case string:
		switch strings.ToLower(x) {
		case "1", "true":
			return true, true
		case "0", "false", "":
			return false, true
		}
	}
	return false, false
}

// parseID reads an entity id choice: a number or a numeric string.
func parseID(raw json.RawMessage) (id int64, null, ok bool) {
	s, ok := scalarString(raw)
	if !ok {
		return 0, false, false
	}
	if s == "" {
		return 0, true, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, false
	}
	return n, false, true
}

func parseNumber(raw json.RawMessage) (*float64, bool) {
	s, ok := scalarString(raw)
	if !ok {
		return nil, false
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, false
	}
	return &f, true
}

// parseTags accepts Kimai's comma-separated string or an array of names.
func parseTags(raw json.RawMessage) ([]string, bool) {
	var list []string
	if s, ok := scalarString(raw); ok {
		list = strings.Split(s, ",")
	} else {
		var arr []any
		if err := json.Unmarshal(raw, &arr); err != nil {
			return nil, false
		}
		for _, e := range arr {
			str, ok := e.(string)
			if !ok {
				return nil, false
			}
			list = append(list, str)
		}
	}
	var out []string
	for _, t := range list {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out, true
}

// timesheetFormFields lists the TimesheetApiEditForm children the user's
// permissions include, in Kimai's order. A key outside this list is an
// extra field.
func (s *Server) timesheetFormFields(u *User, creating bool) []string {
	var f []string
	if s.settings.TrackingMode == "default" {
		f = append(f, "begin", "end")
	}
	f = append(f, "project", "activity", "description", "tags")
	if s.can(u, PermEditRate) {
		f = append(f, "fixedRate", "hourlyRate")
	}
	// POST needs create_other_timesheet for "user"; PATCH includes it for
	// anyone who may edit the record (choices then limit it).
	if !creating || s.can(u, PermCreateOtherTimesheet) {
		f = append(f, "user")
	}
	if s.can(u, PermEditExport) {
		f = append(f, "exported")
	}
	if s.can(u, PermEditBillable) {
		f = append(f, "billable")
	}
	return f
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func endOrFar(t *timesheet) time.Time {
	if t.End != nil {
		return *t.End
	}
	return farFuture
}

// applyTimesheetForm submits body to ts (a fresh record or a copy of the
// stored one) with clearMissing=false, then runs Kimai's timesheet
// constraints. It returns the validation tree when the submission is
// refused, and for a new running record the user's running records that
// the active-entries hard limit will stop. Caller holds s.mu.
func (s *Server) applyTimesheetForm(rc *reqCtx, body map[string]json.RawMessage, ts, old *timesheet) (*validationTree, []*timesheet) {
	creating := old == nil
	fields := s.timesheetFormFields(rc.user, creating)
	v := newValidationTree(fields)
	allowed := map[string]bool{}
	for _, f := range fields {
		allowed[f] = true
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !allowed[k] {
			v.addGlobal(msgExtraFields)
			break
		}
	}
	field := func(name string) (json.RawMessage, bool) {
		raw, ok := body[name]
		return raw, ok && allowed[name]
	}
	now := s.now()

	beginNull := false
	if raw, ok := field("begin"); ok {
		str, isStr := scalarString(raw)
		switch {
		case isNull(raw) || (isStr && str == ""):
			beginNull = true
		case !isStr:
			v.add("begin", msgInvalidDateTime)
		default:
			t, zone, ok := parseFormDateTime(str, rc.loc)
			if !ok {
				v.add("begin", msgInvalidDateTime)
			} else {
				ts.Begin, ts.Timezone = t, zone.String()
			}
		}
	}
	if creating && (beginNull || ts.Begin.IsZero()) {
		// "If no begin date-time is set, the users current timestamp will be used".
		ts.Begin, ts.Timezone, beginNull = now, rc.user.Timezone, false
	}
	if raw, ok := field("end"); ok {
		str, isStr := scalarString(raw)
		switch {
		case isNull(raw) || (isStr && str == ""):
			ts.End = nil
		case !isStr:
			v.add("end", msgInvalidDateTime)
		default:
			t, _, ok := parseFormDateTime(str, rc.loc)
			if !ok {
				v.add("end", msgInvalidDateTime)
			} else {
				ts.End = &t
			}
		}
	}

	if raw, ok := field("project"); ok {
		id, null, ok := parseID(raw)
		switch {
		case !ok:
			v.add("project", msgInvalid)
		case null:
			ts.Project = 0
		default:
			p := s.projects[id]
			current := old != nil && old.Project == id
			if p == nil || (!s.projectVisible(p) && !current) {
				v.add("project", msgInvalid)
			} else {
				ts.Project = id
			}
		}
	}
	if raw, ok := field("activity"); ok {
		id, null, ok := parseID(raw)
		switch {
		case !ok:
			v.add("activity", msgInvalid)
		case null:
			ts.Activity = 0
		default:
			a := s.activities[id]
			current := old != nil && old.Activity == id
			choice := a != nil && s.activityVisible(a) &&
				(a.Project == nil || ts.Project == 0 || v.has("project") || *a.Project == ts.Project)
			if a == nil || !(choice || current) {
				v.add("activity", msgInvalid)
			} else {
				ts.Activity = id
			}
		}
	}
	if raw, ok := field("description"); ok {
		str, isStr := scalarString(raw)
		switch {
		case !isStr:
			v.add("description", msgInvalid)
		case str == "":
			ts.Description = nil
		default:
			ts.Description = &str
		}
	}
	if raw, ok := field("tags"); ok {
		names, ok := parseTags(raw)
		if !ok {
			v.add("tags", msgInvalid)
		} else {
			// Tags unknown to Kimai are silently dropped.
			ts.Tags = ts.Tags[:0]
			seen := map[string]bool{}
			for _, n := range names {
				if t := s.findTag(n); t != nil && !seen[t.Name] {
					seen[t.Name] = true
					ts.Tags = append(ts.Tags, t.Name)
				}
			}
		}
	}
	for _, name := range []string{"fixedRate", "hourlyRate"} {
		raw, ok := field(name)
		if !ok {
			continue
		}
		f, ok := parseNumber(raw)
		switch {
		case !ok:
			v.add(name, msgInvalidNumber)
		case f != nil && *f < 0:
			v.add(name, msgNegative)
		case name == "fixedRate":
			ts.FixedRate = f
		default:
			ts.HourlyRate = f
		}
	}
	if raw, ok := field("user"); ok && !isNull(raw) {
		id, _, ok := parseID(raw)
		u := s.userByID[id]
		mayOther := s.can(rc.user, PermCreateOtherTimesheet) || (!creating && s.can(rc.user, PermEditOtherTimesheet))
		if !ok || u == nil || u.Disabled || (!mayOther && id != rc.user.ID) {
			v.add("user", msgInvalid)
		} else {
			ts.User = id
		}
	}
	if raw, ok := field("exported"); ok {
		b, ok := parseBool(raw)
		if !ok {
			v.add("exported", msgInvalid)
		} else {
			ts.Exported = b
		}
	}
	if raw, ok := field("billable"); ok {
		b, ok := parseBool(raw)
		if !ok {
			v.add("billable", msgInvalid)
		} else {
			ts.Billable = &b
		}
	}

	// Class constraints of the Timesheet entity (TimesheetBasic,
	// TimesheetFutureTimes, TimesheetOverlapping). Violations at paths the
	// API form does not have (begin_date, end_date) surface as global
	// errors; violations on a field that failed to transform are dropped.
	timesOK := !v.has("begin") && !v.has("end")
	if beginNull {
		v.addGlobal(msgMissingBegin)
		timesOK = false
	}
	if ts.Activity == 0 && !v.has("activity") {
		v.add("activity", msgMissingActivity)
	}
	if ts.Project == 0 && !v.has("project") {
		v.add("project", msgMissingProject)
	}
	if timesOK && ts.End != nil && ts.End.Before(ts.Begin) {
		v.addGlobal(msgEndBeforeBegin)
		timesOK = false
	}
	p, a := s.projects[ts.Project], s.activities[ts.Activity]
	if p != nil && a != nil && !v.has("project") && !v.has("activity") {
		if a.Project != nil && *a.Project != p.ID {
			v.add("project", msgProjectMismatch)
		} else if a.Project == nil && p.NoGlobalActivities {
			v.add("activity", msgGlobalForbidden)
		}
	}
	if p != nil && timesOK {
		if p.Start != nil && ts.Begin.Before(*p.Start) {
			v.addGlobal(msgProjectNotStarted)
		} else if p.End != nil && ts.Begin.After(*p.End) {
			v.addGlobal(msgProjectEnded)
		}
		if ts.End != nil {
			if p.End != nil && ts.End.After(*p.End) {
				v.addGlobal(msgProjectEnded)
			} else if p.Start != nil && ts.End.Before(*p.Start) {
				v.addGlobal(msgProjectNotStarted)
			}
		}
	}

	// Kimai rounds on save: begin down and end up to the minute.
	ts.Begin = floorMinute(ts.Begin)
	if ts.End != nil {
		e := ceilMinute(*ts.End)
		ts.End = &e
	}

	var autoStop []*timesheet
	if creating && ts.End == nil {
		var running []*timesheet
		for _, o := range s.st.Timesheets {
			if o.User == ts.User && o.End == nil {
				running = append(running, o)
			}
		}
		sort.Slice(running, func(i, j int) bool { return running[i].Begin.Before(running[j].Begin) })
		if n := len(running) + 1 - s.settings.ActiveEntriesHardLimit; n > 0 {
			autoStop = running[:n]
		}
	}
	if timesOK && !s.settings.AllowFutureTimes && ts.Begin.After(now) {
		v.addGlobal(msgBeginInFuture)
	}
	if timesOK && !s.settings.AllowOverlapping {
		skip := map[int64]bool{ts.ID: true}
		for _, o := range autoStop {
			skip[o.ID] = true
		}
		for _, o := range s.st.Timesheets {
			if skip[o.ID] || o.User != ts.User {
				continue
			}
			if ts.Begin.Before(endOrFar(o)) && o.Begin.Before(endOrFar(ts)) {
				v.addGlobal(msgOverlapping)
				break
			}
		}
	}
	if !v.empty() {
		return v, nil
	}
	return nil, autoStop
}
