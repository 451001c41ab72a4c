package kimaiemu

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

func (s *Server) findTimesheet(id int64) (int, *timesheet) {
	for i, t := range s.st.Timesheets {
		if t.ID == id {
			return i, t
		}
	}
	return -1, nil
}

func (s *Server) mayView(u *User, t *timesheet) bool {
	if t.User == u.ID {
		return s.can(u, PermViewOwnTimesheet)
	}
	return s.can(u, PermViewOtherTimesheet)
}

// mayEdit is Kimai's "edit" (and "stop") voter: own or other records, and
// exported records only with edit_exported_timesheet.
func (s *Server) mayEdit(u *User, t *timesheet) bool {
	return s.mayChange(u, t, PermEditOwnTimesheet, PermEditOtherTimesheet)
}

func (s *Server) mayDelete(u *User, t *timesheet) bool {
	return s.mayChange(u, t, PermDeleteOwnTimesheet, PermDeleteOtherTimesheet)
}

// mayChange is what the edit and delete voters share: an exported record needs
// edit_exported_timesheet on top of the own or other permission.
func (s *Server) mayChange(u *User, t *timesheet, own, other string) bool {
	if t.Exported && !s.can(u, PermEditExportedTimesht) {
		return false
	}
	if t.User == u.ID {
		return s.can(u, own)
	}
	return s.can(u, other)
}

// lookup finds rc.id's record for a handler holding s.mu, answering 404 when
// there is none and 403 when may refuses; ok is false once it has answered.
func (s *Server) lookup(w http.ResponseWriter, rc *reqCtx, may func(*User, *timesheet) bool) (int, *timesheet, bool) {
	i, t := s.findTimesheet(rc.id)
	if t == nil {
		notFound(w)
		return -1, nil, false
	}
	if !may(rc.user, t) {
		forbidden(w)
		return -1, nil, false
	}
	return i, t, true
}

// stopRecord ends a running record at the server's now, rounded up.
func stopRecord(t *timesheet, now time.Time) {
	e := ceilMinute(now)
	if e.Before(t.Begin) {
		e = t.Begin
	}
	t.End = &e
	t.ModifiedAt = now
}

func (s *Server) saveFailed(w http.ResponseWriter, err error) {
	s.log.Error("kimai emulator: save state", "err", err)
	writeError(w, http.StatusInternalServerError, "Internal Server Error")
}

func (s *Server) handleTimesheetList(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	u := rc.user
	if !s.can(u, PermViewOwnTimesheet) && !s.can(u, PermViewOtherTimesheet) {
		forbidden(w)
		return
	}
	q := newQuery(w, r)
	userParam, _ := q.regex("user", `\d+|all`, `\d+`, "all")
	customers := q.ids("customers", "customer")
	projects := q.ids("projects", "project")
	activities := q.ids("activities", "activity")
	page, _ := q.id("page")
	size, _ := q.id("size")
	tagNames := q.vals["tags[]"]
	if v, ok := q.get("tags"); ok {
		tagNames = append(tagNames, strings.Split(v, ",")...)
	}
	order, _ := q.regex("order", "ASC|DESC", "ASC", "DESC")
	orderBy, _ := q.regex("orderBy", "id|begin|end|rate", "id", "begin", "end", "rate")
	begin, hasBegin := q.localTime("begin", rc.loc)
	end, hasEnd := q.localTime("end", rc.loc)
	exported, _ := q.regex("exported", "0|1", "0", "1")
	active, _ := q.regex("active", "0|1", "0", "1")
	billable, _ := q.regex("billable", "0|1", "0", "1")
	_, full := q.get("full")
	term, _ := q.get("term")
	modifiedAfter, hasModified := q.localTime("modified_after", time.UTC)
	if q.bad {
		return
	}

	scopeAll, scopeUser := false, u.ID
	if s.can(u, PermViewOtherTimesheet) && userParam != "" {
		if userParam == "all" {
			scopeAll = true
		} else {
			id, _ := strconv.ParseInt(userParam, 10, 64)
			if s.userByID[id] == nil {
				notFound(w)
				return
			}
			scopeUser = id
		}
	}
	custSet, ok1 := knownIDs(s.customers, customers)
	projSet, ok2 := knownIDs(s.projects, projects)
	actSet, ok3 := knownIDs(s.activities, activities)
	if !ok1 || !ok2 || !ok3 {
		notFound(w)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Only tags that exist filter; if none of the names exists the filter
	// is ignored, as in Kimai.
	tagSet := map[string]bool{}
	for _, n := range tagNames {
		if t := s.findTag(strings.TrimSpace(n)); t != nil {
			tagSet[t.Name] = true
		}
	}
	var list []*timesheet
	for _, t := range s.st.Timesheets {
		if !scopeAll && t.User != scopeUser {
			continue
		}
		if len(custSet) > 0 {
			p := s.projects[t.Project]
			if p == nil || !custSet[p.Customer] {
				continue
			}
		}
		if len(projSet) > 0 && !projSet[t.Project] {
			continue
		}
		if len(actSet) > 0 && !actSet[t.Activity] {
			continue
		}
		if len(tagSet) > 0 && !hasAnyTag(t, tagSet) {
			continue
		}
		if hasBegin && t.Begin.Before(begin) {
			continue
		}
		if hasEnd && t.Begin.After(end) {
			continue
		}
		if exported != "" && t.Exported != (exported == "1") {
			continue
		}
		if active != "" && (t.End == nil) != (active == "1") {
			continue
		}
		if billable != "" && s.billable(t) != (billable == "1") {
			continue
		}
		if hasModified && t.ModifiedAt.Before(modifiedAfter) {
			continue
		}
		if term != "" && (t.Description == nil || !containsFold(*t.Description, term)) {
			continue
		}
		list = append(list, t)
	}
	sortOrdered(list, orderOrDefault(order), func(a, b *timesheet) bool {
		switch orderBy {
		case "id":
			return a.ID < b.ID
		case "end":
			// MySQL sorts NULL (running) first in ascending order.
			ea, eb := a.End, b.End
			switch {
			case ea == nil && eb == nil:
			case ea == nil:
				return true
			case eb == nil:
				return false
			case !ea.Equal(*eb):
				return ea.Before(*eb)
			}
		case "rate":
			if ra, rb := rate(a), rate(b); ra != rb {
				return ra < rb
			}
		default:
			if !a.Begin.Equal(b.Begin) {
				return a.Begin.Before(b.Begin)
			}
		}
		return a.ID < b.ID
	})

	if size <= 0 {
		size = defaultPageSize
	}
	if size > maxPageSize {
		size = maxPageSize
	}
	if page <= 0 {
		page = 1
	}
	total := int64(len(list))
	pages := (total + size - 1) / size
	if pages < 1 {
		pages = 1
	}
	if page > pages {
		notFound(w)
		return
	}
	from := (page - 1) * size
	to := min(from+size, total)
	out := make([]timesheetCollectionJSON, 0, to-from)
	for _, t := range list[from:to] {
		out = append(out, s.timesheetCollection(t, full))
	}
	h := w.Header()
	h.Set("X-Page", strconv.FormatInt(page, 10))
	h.Set("X-Total-Count", strconv.FormatInt(total, 10))
	h.Set("X-Total-Pages", strconv.FormatInt(pages, 10))
	h.Set("X-Per-Page", strconv.FormatInt(size, 10))
	writeJSON(w, http.StatusOK, out)
}

func orderOrDefault(o string) string {
	if o == "" {
		return "DESC"
	}
	return o
}

// knownIDs is the set of ids, or false when one of them is not in known
// (a filter naming a missing customer, project or activity is a 404).
func knownIDs[V any](known map[int64]*V, ids []int64) (map[int64]bool, bool) {
	set := map[int64]bool{}
	for _, id := range ids {
		if known[id] == nil {
			return nil, false
		}
		set[id] = true
	}
	return set, true
}

func hasAnyTag(t *timesheet, set map[string]bool) bool {
	for _, n := range t.Tags {
		if set[n] {
			return true
		}
	}
	return false
}

func (s *Server) handleTimesheetActive(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	if !s.can(rc.user, PermViewOwnTimesheet) {
		forbidden(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []*timesheet
	for _, t := range s.st.Timesheets {
		if t.User == rc.user.ID && t.End == nil {
			list = append(list, t)
		}
	}
	sortOrdered(list, "DESC", func(a, b *timesheet) bool {
		return a.Begin.Before(b.Begin) || (a.Begin.Equal(b.Begin) && a.ID < b.ID)
	})
	out := make([]timesheetCollectionJSON, 0, len(list))
	for _, t := range list {
		out = append(out, s.timesheetCollection(t, true))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleTimesheetGet(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t, ok := s.lookup(w, rc, s.mayView)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.timesheetEntity(t))
}

func (s *Server) entityResponse(t *timesheet, r *http.Request) any {
	e := s.timesheetEntity(t)
	if _, full := r.URL.Query()["full"]; full {
		e.timesheetCollectionJSON = s.timesheetCollection(t, true)
	}
	return e
}

func (s *Server) handleTimesheetCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	if !s.can(rc.user, PermCreateOwnTimesheet) {
		forbidden(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := &timesheet{User: rc.user.ID, Timezone: rc.user.Timezone}
	tree, autoStop := s.applyTimesheetForm(rc, body, ts, nil)
	if tree != nil {
		tree.write(w)
		return
	}
	now := s.now()
	// activeEntriesHardLimit: starting a running record stops the user's
	// oldest running ones.
	for _, o := range autoStop {
		stopRecord(o, now)
	}
	ts.ID = s.st.NextTimesheetID
	s.st.NextTimesheetID++
	ts.ModifiedAt = now
	s.st.Timesheets = append(s.st.Timesheets, ts)
	if err := s.commit(); err != nil {
		s.saveFailed(w, err)
		return
	}
	s.log.Debug("kimai emulator: timesheet created", "id", ts.ID, "user", ts.User, "running", ts.End == nil)
	writeJSON(w, http.StatusOK, s.entityResponse(ts, r))
}

func (s *Server) handleTimesheetUpdate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, old, ok := s.lookup(w, rc, s.mayEdit)
	if !ok {
		return
	}
	ts := old.clone()
	if tree, _ := s.applyTimesheetForm(rc, body, ts, old); tree != nil {
		tree.write(w)
		return
	}
	ts.ModifiedAt = s.now()
	s.st.Timesheets[i] = ts
	if err := s.commit(); err != nil {
		s.saveFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.timesheetEntity(ts))
}

func (s *Server) handleTimesheetDelete(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _, ok := s.lookup(w, rc, s.mayDelete)
	if !ok {
		return
	}
	s.st.Timesheets = append(s.st.Timesheets[:i:i], s.st.Timesheets[i+1:]...)
	if err := s.commit(); err != nil {
		s.saveFailed(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleTimesheetStop ends a running record; stopping a stopped record is
// a no-op that answers 200 with the record.
func (s *Server) handleTimesheetStop(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t, ok := s.lookup(w, rc, s.mayEdit)
	if !ok {
		return
	}
	if t.End == nil {
		stopRecord(t, s.now())
		if err := s.commit(); err != nil {
			s.saveFailed(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.timesheetEntity(t))
}

// handleTimesheetMeta sets a meta field a plugin registered; any other name
// is 404, since Kimai refuses to create meta fields on the fly.
func (s *Server) handleTimesheetMeta(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, t, ok := s.lookup(w, rc, s.mayEdit)
	if !ok {
		return
	}
	param := func(name string) (string, bool) {
		raw, ok := body[name]
		if !ok || isNull(raw) {
			writeError(w, http.StatusBadRequest,
				fmt.Sprintf(`Parameter %q of value "NULL" violated a constraint "This value should not be null."`, name))
			return "", false
		}
		v, ok := scalarString(raw)
		if !ok {
			writeError(w, http.StatusBadRequest,
				fmt.Sprintf(`Parameter %q of value %q violated a constraint "This value should be of type scalar."`, name, string(raw)))
			return "", false
		}
		return v, true
	}
	name, ok := param("name")
	if !ok {
		return
	}
	if !s.metaFields[name] {
		notFound(w)
		return
	}
	value, ok := param("value")
	if !ok {
		return
	}
	if t.Meta == nil {
		t.Meta = map[string]string{}
	}
	t.Meta[name] = value
	t.ModifiedAt = s.now()
	if err := s.commit(); err != nil {
		s.saveFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.timesheetEntity(t))
}
