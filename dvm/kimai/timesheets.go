package kimai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// NewTimesheet is a record to create. Times are instants; the client sends
// them as wall-clock time in the Kimai user's zone, without an offset.
type NewTimesheet struct {
	Project  int64
	Activity int64
	// Begin zero lets Kimai use its own now.
	Begin time.Time
	// End zero creates a running record (with activeEntriesHardLimit 1,
	// Kimai then stops the user's previous running record).
	End         time.Time
	Description string
	// Tags must exist in Kimai (see EnsureTag) or Kimai drops them.
	Tags []string
	// User books for another Kimai user (Kimai permission
	// create_other_timesheet: teamlead or admin); 0 books for oneself.
	User int64
	// Billable and Exported need teamlead rights, the rates admin rights;
	// nil leaves Kimai's default and sends nothing.
	Billable, Exported    *bool
	FixedRate, HourlyRate *float64
}

// TimesheetUpdate is a partial update: nil fields are not sent.
type TimesheetUpdate struct {
	Begin, End        *time.Time
	Project, Activity *int64
	Description       *string
	// Tags nil leaves the tags; an empty non-nil slice removes them all.
	Tags                  []string
	User                  *int64
	Billable, Exported    *bool
	FixedRate, HourlyRate *float64
}

// CreateTimesheet creates a running (End zero) or closed record.
func (c *Client) CreateTimesheet(ctx context.Context, n NewTimesheet) (Timesheet, error) {
	if n.Project <= 0 || n.Activity <= 0 {
		return Timesheet{}, errors.New("kimai timesheet: project and activity are required")
	}
	body := map[string]any{"project": n.Project, "activity": n.Activity}
	if !n.Begin.IsZero() || !n.End.IsZero() {
		loc, err := c.Location(ctx)
		if err != nil {
			return Timesheet{}, err
		}
		if !n.Begin.IsZero() {
			body["begin"] = FormatLocal(n.Begin, loc)
		}
		if !n.End.IsZero() {
			body["end"] = FormatLocal(n.End, loc)
		}
	}
	if n.Description != "" {
		body["description"] = n.Description
	}
	if len(n.Tags) > 0 {
		tags, err := joinTags(n.Tags)
		if err != nil {
			return Timesheet{}, err
		}
		body["tags"] = tags
	}
	if n.User != 0 {
		body["user"] = n.User
	}
	putOptional(body, n.Billable, n.Exported, n.FixedRate, n.HourlyRate)
	return c.timesheetCall(ctx, http.MethodPost, "/api/timesheets", body)
}

// UpdateTimesheet changes the given fields of record id.
func (c *Client) UpdateTimesheet(ctx context.Context, id int64, u TimesheetUpdate) (Timesheet, error) {
	body := map[string]any{}
	if u.Begin != nil || u.End != nil {
		loc, err := c.Location(ctx)
		if err != nil {
			return Timesheet{}, err
		}
		if u.Begin != nil {
			body["begin"] = FormatLocal(*u.Begin, loc)
		}
		if u.End != nil {
			body["end"] = FormatLocal(*u.End, loc)
		}
	}
	if u.Project != nil {
		body["project"] = *u.Project
	}
	if u.Activity != nil {
		body["activity"] = *u.Activity
	}
	if u.Description != nil {
		body["description"] = *u.Description
	}
	if u.Tags != nil {
		tags, err := joinTags(u.Tags)
		if err != nil {
			return Timesheet{}, err
		}
		body["tags"] = tags
	}
	if u.User != nil {
		body["user"] = *u.User
	}
	putOptional(body, u.Billable, u.Exported, u.FixedRate, u.HourlyRate)
	return c.timesheetCall(ctx, http.MethodPatch, timesheetPath(id, ""), body)
}

// StopTimesheet ends a running record at Kimai's now. Stopping a stopped
// record is a no-op that returns it unchanged.
func (c *Client) StopTimesheet(ctx context.Context, id int64) (Timesheet, error) {
	return c.timesheetCall(ctx, http.MethodPatch, timesheetPath(id, "/stop"), nil)
}

// DeleteTimesheet removes record id.
func (c *Client) DeleteTimesheet(ctx context.Context, id int64) error {
	_, err := c.call(ctx, http.MethodDelete, timesheetPath(id, ""), nil, nil, nil)
	return err
}

// ActiveTimesheets lists the authenticated user's running records.
func (c *Client) ActiveTimesheets(ctx context.Context) ([]Timesheet, error) {
	var ws []timesheetWire
	if _, err := c.call(ctx, http.MethodGet, "/api/timesheets/active", nil, nil, &ws); err != nil {
		return nil, err
	}
	return convertAll(http.MethodGet, "/api/timesheets/active", ws)
}

// TimesheetFilter narrows ListTimesheets. Zero values do not filter.
type TimesheetFilter struct {
	// User lists another user's records, AllUsers everyone's (both need
	// view_other_timesheet; without it Kimai silently lists one's own).
	User     int64
	AllUsers bool
	// Customers, Projects, Activities: records in any of them.
	Customers, Projects, Activities []int64
	// Tags: records with any of these tags (names unknown to Kimai are
	// ignored by Kimai; if none is known, nothing is filtered).
	Tags []string
	// Begin and End bound the records' begin; sent in the user's zone.
	Begin, End time.Time
	// Active: true running only, false stopped only.
	Active *bool
	// ModifiedAfter: records changed since (sent as UTC).
	ModifiedAfter time.Time
	// OrderBy is id, begin (Kimai's default), end or rate; Order ASC or
	// DESC (default).
	OrderBy, Order string
	// PageSize per request (default 100, Kimai's maximum 500).
	PageSize int
}

// ListTimesheets returns every record matching f, following Kimai's
// pagination to the last page. A record that moves between pages while
// paging is returned once.
func (c *Client) ListTimesheets(ctx context.Context, f TimesheetFilter) ([]Timesheet, error) {
	q, err := c.timesheetQuery(ctx, f)
	if err != nil {
		return nil, err
	}
	size := f.PageSize
	if size <= 0 {
		size = 100
	}
	if size > 500 {
		size = 500
	}
	q.Set("size", strconv.Itoa(size))
	var out []Timesheet
	seen := map[int64]bool{}
	for page := 1; page <= c.pageLimit; page++ {
		q.Set("page", strconv.Itoa(page))
		var ws []timesheetWire
		h, err := c.call(ctx, http.MethodGet, "/api/timesheets", q, nil, &ws)
		if err != nil {
			// Records deleted while paging can shrink the last page away.
			if page > 1 && IsNotFound(err) {
				break
			}
			return nil, fmt.Errorf("list timesheets page %d: %w", page, err)
		}
		items, err := convertAll(http.MethodGet, "/api/timesheets", ws)
		if err != nil {
			return nil, err
		}
		for _, t := range items {
			if !seen[t.ID] {
				seen[t.ID] = true
				out = append(out, t)
			}
		}
		pages, perr := strconv.Atoi(h.Get("X-Total-Pages"))
		if perr != nil {
			// No pagination headers: stop at a short page.
			if len(ws) < size {
				break
			}
			continue
		}
		if page >= pages || len(ws) == 0 {
			break
		}
	}
	return out, nil
}

func (c *Client) timesheetQuery(ctx context.Context, f TimesheetFilter) (url.Values, error) {
	q := url.Values{}
	switch {
	case f.AllUsers && f.User != 0:
		return nil, errors.New("kimai timesheet filter: User and AllUsers are exclusive")
	case f.AllUsers:
		q.Set("user", "all")
	case f.User != 0:
		q.Set("user", strconv.FormatInt(f.User, 10))
	}
	addIDs(q, "customers[]", f.Customers)
	addIDs(q, "projects[]", f.Projects)
	addIDs(q, "activities[]", f.Activities)
	for _, t := range f.Tags {
		q.Add("tags[]", t)
	}
	if !f.Begin.IsZero() || !f.End.IsZero() {
		loc, err := c.Location(ctx)
		if err != nil {
			return nil, err
		}
		if !f.Begin.IsZero() {
			q.Set("begin", FormatLocal(f.Begin, loc))
		}
		if !f.End.IsZero() {
			q.Set("end", FormatLocal(f.End, loc))
		}
	}
	if f.Active != nil {
		q.Set("active", map[bool]string{true: "1", false: "0"}[*f.Active])
	}
	if !f.ModifiedAfter.IsZero() {
		q.Set("modified_after", FormatLocal(f.ModifiedAfter, time.UTC))
	}
	switch f.OrderBy {
	case "", "id", "begin", "end", "rate":
	default:
		return nil, fmt.Errorf("kimai timesheet filter: cannot order by %q", f.OrderBy)
	}
	switch f.Order {
	case "", "ASC", "DESC":
	default:
		return nil, fmt.Errorf("kimai timesheet filter: order %q is not ASC or DESC", f.Order)
	}
	if f.OrderBy != "" {
		q.Set("orderBy", f.OrderBy)
	}
	if f.Order != "" {
		q.Set("order", f.Order)
	}
	return q, nil
}

func (c *Client) timesheetCall(ctx context.Context, method, path string, body map[string]any) (Timesheet, error) {
	var w timesheetWire
	var in any
	if body != nil {
		in = body
	}
	if _, err := c.call(ctx, method, path, nil, in, &w); err != nil {
		return Timesheet{}, err
	}
	t, err := w.timesheet()
	if err != nil {
		return Timesheet{}, &APIError{Method: method, Path: path, Status: http.StatusOK, Message: "undecodable answer", Err: err}
	}
	return t, nil
}

func convertAll(method, path string, ws []timesheetWire) ([]Timesheet, error) {
	out := make([]Timesheet, 0, len(ws))
	for _, w := range ws {
		t, err := w.timesheet()
		if err != nil {
			return nil, &APIError{Method: method, Path: path, Status: http.StatusOK, Message: "undecodable answer", Err: err}
		}
		out = append(out, t)
	}
	return out, nil
}

func timesheetPath(id int64, suffix string) string {
	return "/api/timesheets/" + strconv.FormatInt(id, 10) + suffix
}

func joinTags(tags []string) (string, error) {
	for _, t := range tags {
		if err := checkTagName(t); err != nil {
			return "", err
		}
	}
	return strings.Join(tags, ","), nil
}

func putOptional(body map[string]any, billable, exported *bool, fixed, hourly *float64) {
	if billable != nil {
		body["billable"] = *billable
	}
	if exported != nil {
		body["exported"] = *exported
	}
	if fixed != nil {
		body["fixedRate"] = *fixed
	}
	if hourly != nil {
		body["hourlyRate"] = *hourly
	}
}
