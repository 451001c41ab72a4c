package kimaiemu

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

func (s *Server) handlePing(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	writeJSON(w, http.StatusOK, map[string]string{"message": "pong"})
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	id := 0
	for _, part := range strings.SplitN(s.version, ".", 3) {
		n, _ := strconv.Atoi(strings.TrimFunc(part, func(r rune) bool { return r < '0' || r > '9' }))
		id = id*100 + n
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version":   s.version,
		"versionId": id,
		"copyright": "Kimai " + s.version + " by Kevin Papst. (emulated by pow.do)",
	})
}

func (s *Server) handleMe(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	writeJSON(w, http.StatusOK, s.userEntity(rc.user))
}

// handleUserGet is Kimai's profile view: one's own entity always, anyone else's only
// with view_user; an unknown id is 404 only to those who may look.
func (s *Server) handleUserGet(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	if rc.id != rc.user.ID && !s.can(rc.user, PermViewUser) {
		forbidden(w)
		return
	}
	for _, u := range s.users {
		if u.ID == rc.id {
			writeJSON(w, http.StatusOK, s.userEntity(u))
			return
		}
	}
	notFound(w)
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.can(rc.user, PermViewUser) {
		forbidden(w)
		return
	}
	q := newQuery(w, r)
	vis := q.visibility("visible")
	orderBy, _ := q.regex("orderBy", "id|username|alias|email", "id", "username", "alias", "email")
	order, _ := q.regex("order", "ASC|DESC", "ASC", "DESC")
	term, _ := q.get("term")
	if q.bad {
		return
	}
	var list []*User
	for _, u := range s.users {
		if !matchVisibility(vis, !u.Disabled) {
			continue
		}
		if term != "" && !containsFold(u.Username+" "+u.Alias+" "+u.Email, term) {
			continue
		}
		list = append(list, u)
	}
	key := func(u *User) string {
		switch orderBy {
		case "alias":
			return strings.ToLower(u.Alias)
		case "email":
			return strings.ToLower(u.Email)
		default:
			return strings.ToLower(u.Username)
		}
	}
	sortOrdered(list, order, func(a, b *User) bool {
		if orderBy == "id" {
			return a.ID < b.ID
		}
		return key(a) < key(b) || (key(a) == key(b) && a.ID < b.ID)
	})
	out := make([]userCollectionJSON, 0, len(list))
	for _, u := range list {
		_, has := s.tokenHash[u.ID]
		out = append(out, userCollection(u, has))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleTimesheetConfig(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	writeJSON(w, http.StatusOK, map[string]any{
		"trackingMode":           s.settings.TrackingMode,
		"defaultBeginTime":       s.settings.DefaultBeginTime,
		"activeEntriesHardLimit": s.settings.ActiveEntriesHardLimit,
		"isAllowFutureTimes":     s.settings.AllowFutureTimes,
		"isAllowOverlapping":     s.settings.AllowOverlapping,
	})
}

func (s *Server) handleCustomers(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	q := newQuery(w, r)
	vis := q.visibility("visible")
	order, _ := q.regex("order", "ASC|DESC", "ASC", "DESC")
	orderBy, _ := q.regex("orderBy", "id|name", "id", "name")
	term, _ := q.get("term")
	if q.bad {
		return
	}
	var list []*Customer
	for _, c := range s.customers {
		if matchVisibility(vis, !c.Hidden) && (term == "" || containsFold(c.Name, term)) {
			list = append(list, c)
		}
	}
	sortOrdered(list, order, func(a, b *Customer) bool {
		if orderBy == "id" {
			return a.ID < b.ID
		}
		return a.Name < b.Name || (a.Name == b.Name && a.ID < b.ID)
	})
	out := make([]customerCollectionJSON, 0, len(list))
	for _, c := range list {
		cur := c.Currency
		if cur == "" {
			cur = "EUR"
		}
		out = append(out, customerCollectionJSON{customerJSON: customerOf(c), MetaFields: empty(), Teams: empty(), Currency: cur})
	}
	writeJSON(w, http.StatusOK, out)
}

// projectVisible is Kimai's visible=1 meaning: the project and its customer.
func (s *Server) projectVisible(p *Project) bool {
	c := s.customers[p.Customer]
	return !p.Hidden && c != nil && !c.Hidden
}

func (s *Server) handleProjects(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := newQuery(w, r)
	customers := q.ids("customers", "customer")
	vis := q.visibility("visible")
	start, hasStart := q.localTime("start", rc.loc)
	end, hasEnd := q.localTime("end", rc.loc)
	ignore, _ := q.regex("ignoreDates", "1", "1")
	globals, hasGlobals := q.regex("globalActivities", "0|1", "0", "1")
	order, _ := q.regex("order", "ASC|DESC", "ASC", "DESC")
	orderBy, _ := q.regex("orderBy", "id|name|customer", "id", "name", "customer")
	term, _ := q.get("term")
	if q.bad {
		return
	}
	custSet, ok := knownIDs(s.customers, customers)
	if !ok {
		notFound(w)
		return
	}
	// Without ignoreDates only projects running at the given dates (by
	// default: now) are listed.
	if ignore == "" && !hasStart && !hasEnd {
		start, end, hasStart, hasEnd = s.now(), s.now(), true, true
	}
	var list []*Project
	for _, p := range s.projects {
		if len(custSet) > 0 && !custSet[p.Customer] {
			continue
		}
		if !matchVisibility(vis, s.projectVisible(p)) {
			continue
		}
		if hasGlobals && (globals == "1") != !p.NoGlobalActivities {
			continue
		}
		if ignore == "" {
			if hasStart && p.Start != nil && p.Start.After(start) {
				continue
			}
			if hasEnd && p.End != nil && p.End.Before(end) {
				continue
			}
		}
		if term != "" && !containsFold(p.Name, term) {
			continue
		}
		list = append(list, p)
	}
	sortOrdered(list, order, func(a, b *Project) bool {
		switch orderBy {
		case "id":
			return a.ID < b.ID
		case "customer":
			ca, cb := s.customers[a.Customer].Name, s.customers[b.Customer].Name
			if ca != cb {
				return ca < cb
			}
		}
		return a.Name < b.Name || (a.Name == b.Name && a.ID < b.ID)
	})
	out := make([]projectCollectionJSON, 0, len(list))
	for _, p := range list {
		out = append(out, s.projectCollection(p, rc.loc))
	}
	writeJSON(w, http.StatusOK, out)
}

// activityVisible: the activity, and for project activities the project and
// customer too.
func (s *Server) activityVisible(a *Activity) bool {
	if a.Hidden {
		return false
	}
	if a.Project == nil {
		return true
	}
	p := s.projects[*a.Project]
	return p != nil && s.projectVisible(p)
}

func (s *Server) handleActivities(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	q := newQuery(w, r)
	projects := q.ids("projects", "project")
	vis := q.visibility("visible")
	_, globalsOnly := q.get("globals")
	order, _ := q.regex("order", "ASC|DESC", "ASC", "DESC")
	orderBy, _ := q.regex("orderBy", "id|name|project", "id", "name", "project")
	term, _ := q.get("term")
	if q.bad {
		return
	}
	projSet := map[int64]bool{}
	globalsAllowed := false
	for _, id := range projects {
		p := s.projects[id]
		if p == nil {
			notFound(w)
			return
		}
		projSet[id] = true
		globalsAllowed = globalsAllowed || !p.NoGlobalActivities
	}
	var list []*Activity
	for _, a := range s.activities {
		if !matchVisibility(vis, s.activityVisible(a)) {
			continue
		}
		switch {
		case globalsOnly:
			if a.Project != nil {
				continue
			}
		case len(projSet) > 0:
			// A project filter lists that project's activities plus the
			// global ones, if the project accepts global activities.
			if a.Project == nil && !globalsAllowed {
				continue
			}
			if a.Project != nil && !projSet[*a.Project] {
				continue
			}
		}
		if term != "" && !containsFold(a.Name, term) {
			continue
		}
		list = append(list, a)
	}
	sortOrdered(list, order, func(a, b *Activity) bool {
		switch orderBy {
		case "id":
			return a.ID < b.ID
		case "project":
			pa, pb := int64(0), int64(0)
			if a.Project != nil {
				pa = *a.Project
			}
			if b.Project != nil {
				pb = *b.Project
			}
			if pa != pb {
				return pa < pb
			}
		}
		return a.Name < b.Name || (a.Name == b.Name && a.ID < b.ID)
	})
	out := make([]activityCollectionJSON, 0, len(list))
	for _, a := range list {
		out = append(out, s.activityCollection(a))
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- tags --------------------------------------------------------------

// findTag looks a tag up case-insensitively (Kimai's MySQL collation).
// Caller holds s.mu or is in New.
func (s *Server) findTag(name string) *tag {
	for _, t := range s.st.Tags {
		if strings.EqualFold(t.Name, name) {
			return t
		}
	}
	return nil
}

func (s *Server) addTag(name string) *tag {
	t := &tag{ID: s.st.NextTagID, Name: name, Visible: true}
	s.st.NextTagID++
	s.st.Tags = append(s.st.Tags, t)
	return t
}

func (s *Server) handleTagList(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	q := newQuery(w, r)
	name, _ := q.get("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{}
	for _, t := range s.st.Tags {
		if name == "" || containsFold(t.Name, name) {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleTagCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if !s.can(rc.user, PermCreateTag) {
		forbidden(w)
		return
	}
	body, ok := readJSONObject(w, r)
	if !ok {
		return
	}
	v := newValidationTree([]string{"name", "color", "visible"})
	for k := range body {
		if k != "name" && k != "color" && k != "visible" {
			v.addGlobal(msgExtraFields)
			break
		}
	}
	var name string
	if raw, ok := body["name"]; ok {
		n, ok := scalarString(raw)
		if !ok {
			v.add("name", msgInvalid)
		}
		name = strings.TrimSpace(n)
	}
	var color *string
	if raw, ok := body["color"]; ok && !isNull(raw) {
		c, ok := scalarString(raw)
		if !ok || !hexColor.MatchString(c) {
			v.add("color", "The given value is not a valid hexadecimal color.")
		} else {
			color = &c
		}
	}
	visible := true
	if raw, ok := body["visible"]; ok {
		b, ok := parseBool(raw)
		if !ok {
			v.add("visible", msgInvalid)
		}
		visible = b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !v.has("name") {
		switch {
		case name == "":
			v.add("name", "This value should not be blank.")
		case len([]rune(name)) > 100:
			v.add("name", "This value is too long. It should have 100 characters or less.")
		case s.findTag(name) != nil:
			v.add("name", "This value is already used.")
		}
	}
	if !v.empty() {
		v.write(w)
		return
	}
	t := s.addTag(name)
	t.Color = color
	t.Visible = visible
	if err := s.commit(); err != nil {
		s.log.Error("kimai emulator: save tag", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeJSON(w, http.StatusOK, tagOf(t))
}

// ---- helpers -----------------------------------------------------------

func containsFold(haystack, needle string) bool {
	return strings.Contains(strings.ToLower(haystack), strings.ToLower(needle))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortOrdered sorts by less, reversed for DESC.
func sortOrdered[T any](list []T, order string, less func(a, b T) bool) {
	sort.SliceStable(list, func(i, j int) bool {
		if order == "DESC" {
			return less(list[j], list[i])
		}
		return less(list[i], list[j])
	})
}
