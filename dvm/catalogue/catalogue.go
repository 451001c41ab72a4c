// Package catalogue tells each worker what they may book to and how to capture: it reads
// customers, projects and activities from Kimai, maps each worker to their Kimai user
// through the roster, and builds the worker's proto.Catalogue with the DVM's capture
// policy. It polls Kimai and calls Notify for the workers whose catalogue changed; what
// was announced is kept in a small JSON file, so a restart does not announce it again.
package catalogue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"pow.do/dvm/kimai"
	"pow.do/dvm/store"
	"pow.do/shared/proto"
)

// Kimai is the part of the Kimai client the catalogue reads (*kimai.Client has it).
type Kimai interface {
	Customers(ctx context.Context, vis kimai.Visibility) ([]kimai.Customer, error)
	Projects(ctx context.Context, f kimai.ProjectFilter) ([]kimai.Project, error)
	Activities(ctx context.Context, f kimai.ActivityFilter) ([]kimai.Activity, error)
	Users(ctx context.Context, vis kimai.Visibility) ([]kimai.User, error)
	// User reads one user in full: Kimai's user list leaves the time zone out.
	User(ctx context.Context, id int64) (kimai.User, error)
}

// Roster is the part of the store the catalogue reads.
type Roster interface {
	Worker(ctx context.Context, pubkey string) (store.Worker, error)
	Workers(ctx context.Context, includeRemoved bool) ([]store.Worker, error)
}

// NotifyFunc sends a worker its new catalogue (gift-wrapped, by the daemon). An error
// leaves the change unannounced: the next poll tries again.
type NotifyFunc func(ctx context.Context, worker string, c proto.Catalogue) error

// Config configures a Service.
type Config struct {
	Kimai  Kimai
	Roster Roster
	// Policy is the capture policy sent to every worker; zero means proto.DefaultPolicy().
	Policy proto.Policy
	// Restrict limits a worker (by pubkey) to these Kimai project ids. Workers not listed
	// may book to every visible project.
	Restrict map[string][]int64
	// StatePath is the JSON file recording what each worker was last given, written
	// atomically with mode 0600 (e.g. <data dir>/catalogue.json). Empty: memory only.
	StatePath string
	// Interval between polls of Kimai in Run (default 5 minutes).
	Interval time.Duration
	Notify   NotifyFunc
	// WorkerZones, if set, is given after every successful poll (so at start-up too) the
	// IANA time zone of each active worker's Kimai user, by worker pubkey (e.g. for the
	// work diary). Workers that are unmapped, or whose user Kimai did not list, are left
	// out; it is not called when the DVM's account may not list users.
	WorkerZones func(ctx context.Context, zones map[string]string)
	Now         func() time.Time
	Logger      *slog.Logger
}

// Service builds catalogues; it implements the daemon's CatalogueSource.
type Service struct {
	cfg    Config
	policy proto.Policy
	now    func() time.Time
	log    *slog.Logger

	refreshMu sync.Mutex // one poll at a time

	mu      sync.Mutex
	snap    *snapshot
	workers map[string]store.Worker // roster as last read, for Allowed
	state   *stateFile
}

// snapshot is Kimai's catalogue as last read: visible, bookable now.
type snapshot struct {
	projects   []project // by id
	activities []kimai.Activity
	users      map[int64]kimai.User // nil: the DVM's account may not list users
}

type project struct {
	proto.Project
	globals bool // accepts global activities
}

// ErrNotReady: Kimai has not been read yet, so nothing can be answered.
var ErrNotReady = errors.New("kimai catalogue not read yet")

// New checks cfg and loads the state file. It does not contact Kimai.
func New(cfg Config) (*Service, error) {
	if cfg.Kimai == nil || cfg.Roster == nil {
		return nil, errors.New("catalogue: Kimai client and roster are required")
	}
	pol := cfg.Policy
	if pol == (proto.Policy{}) {
		pol = proto.DefaultPolicy()
	}
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("catalogue: capture policy: %w", err)
	}
	for w, ids := range cfg.Restrict {
		if !store.IsHex(w, 64) {
			return nil, fmt.Errorf("catalogue: restriction for %q: not a 64-hex worker pubkey", w)
		}
		for _, id := range ids {
			if id <= 0 {
				return nil, fmt.Errorf("catalogue: restriction for %s: project id %d", w, id)
			}
		}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st, err := loadState(cfg.StatePath)
	if err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	return &Service{cfg: cfg, policy: pol, now: cfg.Now, log: cfg.Logger, workers: map[string]store.Worker{}, state: st}, nil
}

// Run polls Kimai every Interval until ctx ends, starting at once.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("catalogue: poll failed; keeping the last catalogue", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reads Kimai and the roster once, and calls Notify for each worker whose
// catalogue differs from what they were last given (or whose last notice failed).
func (s *Service) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	snap, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	// Removed workers too, so Allowed stops answering yes for them.
	workers, err := s.cfg.Roster.Workers(ctx, true)
	if err != nil {
		return fmt.Errorf("catalogue: read roster: %w", err)
	}
	type due struct {
		worker string
		c      proto.Catalogue
	}
	var todo []due
	var buildErrs []error
	s.mu.Lock()
	s.snap = snap
	fresh := map[string]store.Worker{}
	for _, w := range workers {
		fresh[w.Pubkey] = w
	}
	for k, w := range s.workers {
		if _, ok := fresh[k]; !ok {
			fresh[k] = w // joined (via CatalogueFor) after the roster was read
		}
	}
	s.workers = fresh
	now := s.now()
	for _, w := range workers {
		if !w.RemovedAt.IsZero() {
			continue
		}
		c, err := s.build(snap, w)
		if err != nil {
			buildErrs = append(buildErrs, err)
			continue
		}
		e, changed := s.state.observe(w.Pubkey, hashOf(c), now, false)
		c.UpdatedAt = e.UpdatedAt
		if changed || !e.Sent {
			todo = append(todo, due{w.Pubkey, c})
		}
	}
	saveErr := s.state.save()
	s.mu.Unlock()
	if saveErr != nil {
		return fmt.Errorf("catalogue: %w", saveErr)
	}
	if s.cfg.WorkerZones != nil && snap.users != nil {
		s.cfg.WorkerZones(ctx, s.workerZones(ctx, snap, workers))
	}

	var notifyErrs []error
	for _, d := range todo {
		if s.cfg.Notify == nil {
			break
		}
		if err := s.cfg.Notify(ctx, d.worker, d.c); err != nil {
			notifyErrs = append(notifyErrs, fmt.Errorf("notify %s: %w", d.worker, err))
			continue
		}
		s.log.Info("catalogue: sent changed catalogue", "worker", d.worker, "projects", len(d.c.Projects))
		s.mu.Lock()
		s.state.markSent(d.worker, hashOf(d.c))
		s.mu.Unlock()
	}
	if len(todo) > 0 && s.cfg.Notify != nil {
		s.mu.Lock()
		err := s.state.save()
		s.mu.Unlock()
		if err != nil {
			notifyErrs = append(notifyErrs, fmt.Errorf("catalogue: %w", err))
		}
	}
	return errors.Join(append(buildErrs, notifyErrs...)...)
}

// workerZones maps each active, mapped worker to their Kimai user's time zone.
func (s *Service) workerZones(ctx context.Context, snap *snapshot, workers []store.Worker) map[string]string {
	zones := map[string]string{}
	for _, w := range workers {
		if !w.RemovedAt.IsZero() || w.KimaiUserID == 0 {
			continue
		}
		u, ok := snap.users[w.KimaiUserID]
		if !ok {
			continue
		}
		if u.Timezone == "" {
			full, err := s.cfg.Kimai.User(ctx, w.KimaiUserID)
			if err != nil {
				s.log.Warn("catalogue: read Kimai user's time zone", "user", w.KimaiUserID, "err", err)
				continue
			}
			u = full
		}
		if u.Timezone != "" {
			zones[w.Pubkey] = u.Timezone
		}
	}
	return zones
}

// fetch reads what workers may book to: visible customers, their visible projects that
// are bookable now (projects are listed with ignoreDates=1 and their dates checked here),
// and visible activities, global ones included.
func (s *Service) fetch(ctx context.Context) (*snapshot, error) {
	customers, err := s.cfg.Kimai.Customers(ctx, kimai.VisibleOnly)
	if err != nil {
		return nil, fmt.Errorf("catalogue: read Kimai customers: %w", err)
	}
	projects, err := s.cfg.Kimai.Projects(ctx, kimai.ProjectFilter{Visibility: kimai.VisibleOnly})
	if err != nil {
		return nil, fmt.Errorf("catalogue: read Kimai projects: %w", err)
	}
	activities, err := s.cfg.Kimai.Activities(ctx, kimai.ActivityFilter{Visibility: kimai.VisibleOnly})
	if err != nil {
		return nil, fmt.Errorf("catalogue: read Kimai activities: %w", err)
	}
	snap := &snapshot{}
	// Listing users needs Kimai's view_user permission, which a teamlead lacks: without
	// it the roster's mapping is trusted as it stands.
	if users, err := s.cfg.Kimai.Users(ctx, kimai.AnyVisibility); err == nil {
		snap.users = map[int64]kimai.User{}
		for _, u := range users {
			snap.users[u.ID] = u
		}
	} else if kimai.IsTemporary(err) {
		return nil, fmt.Errorf("catalogue: read Kimai users: %w", err)
	}

	custName := map[int64]string{}
	for _, c := range customers {
		if c.Visible {
			custName[c.ID] = c.Name
		}
	}
	now := s.now()
	included := map[int64]bool{}
	for _, p := range projects {
		name, ok := custName[p.Customer]
		switch {
		case !ok || !p.Visible || p.ID <= 0:
			continue
		case p.Start != nil && now.Before(*p.Start), p.End != nil && now.After(*p.End):
			continue // outside the dates Kimai lets it be booked
		}
		included[p.ID] = true
		snap.projects = append(snap.projects, project{
			Project: proto.Project{ID: p.ID, Name: clipText(p.Name, proto.MaxNameBytes), Customer: clipText(name, proto.MaxNameBytes)},
			globals: p.GlobalActivities,
		})
	}
	sort.Slice(snap.projects, func(i, j int) bool { return snap.projects[i].ID < snap.projects[j].ID })
	for _, a := range activities {
		if a.ID <= 0 || !a.Visible || (a.Project != 0 && !included[a.Project]) {
			continue
		}
		a.Name = clipText(a.Name, proto.MaxNameBytes)
		snap.activities = append(snap.activities, a)
	}
	sort.Slice(snap.activities, func(i, j int) bool { return snap.activities[i].ID < snap.activities[j].ID })
	return snap, nil
}

// clipText makes a Kimai name fit the catalogue: valid UTF-8, at most max bytes.
func clipText(s string, max int) string {
	s = string([]rune(s)) // replaces invalid bytes
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// bookable reports whether the worker's mapping lets them book at all.
func (snap *snapshot) bookable(w store.Worker) bool {
	if w.KimaiUserID == 0 || !w.RemovedAt.IsZero() {
		return false
	}
	if snap.users == nil {
		return true
	}
	u, ok := snap.users[w.KimaiUserID]
	return ok && u.Enabled
}

// projectsFor lists the projects a worker may book to.
func (s *Service) projectsFor(snap *snapshot, w store.Worker) []project {
	if !snap.bookable(w) {
		return nil
	}
	only, restricted := s.cfg.Restrict[w.Pubkey]
	if !restricted {
		return snap.projects
	}
	set := map[int64]bool{}
	for _, id := range only {
		set[id] = true
	}
	var out []project
	for _, p := range snap.projects {
		if set[p.ID] {
			out = append(out, p)
		}
	}
	return out
}

// build makes a worker's catalogue (UpdatedAt left to the caller). A worker without a
// (usable) Kimai user gets no projects, so their tracker cannot start a session that
// could never be booked; the catalogue changes, and is sent, once they are mapped.
func (s *Service) build(snap *snapshot, w store.Worker) (proto.Catalogue, error) {
	c := proto.Catalogue{To: w.Pubkey, WorkerName: clipText(w.Name, proto.MaxNameBytes), Policy: s.policy,
		UpdatedAt: time.Unix(1, 0).UTC()} // a placeholder that passes Validate
	if c.WorkerName == "" && snap.users != nil {
		if u, ok := snap.users[w.KimaiUserID]; ok {
			c.WorkerName = clipText(firstNonEmpty(u.Alias, u.Username), proto.MaxNameBytes)
		}
	}
	projects := s.projectsFor(snap, w)
	ids := map[int64]bool{}
	anyGlobals := false
	for _, p := range projects {
		c.Projects = append(c.Projects, p.Project)
		ids[p.ID] = true
		anyGlobals = anyGlobals || p.globals
	}
	for _, a := range snap.activities {
		switch {
		case a.Global() && anyGlobals:
			c.Activities = append(c.Activities, proto.Activity{ID: a.ID, Name: a.Name})
		case !a.Global() && ids[a.Project]:
			pid := a.Project
			c.Activities = append(c.Activities, proto.Activity{ID: a.ID, Name: a.Name, Project: &pid})
		}
	}
	if err := c.Validate(); err != nil {
		// E.g. too many projects for one message: restrict the worker's projects.
		return proto.Catalogue{}, fmt.Errorf("catalogue for worker %s: %w", w.Pubkey, err)
	}
	return c, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// hashOf fingerprints what a worker sees, without the recipient and the time stamp.
func hashOf(c proto.Catalogue) string {
	b, _ := json.Marshal(struct {
		Name       string
		Projects   []proto.Project
		Activities []proto.Activity
		Policy     proto.Policy
	}{c.WorkerName, c.Projects, c.Activities, c.Policy})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ensure reads Kimai once if nothing has been read yet.
func (s *Service) ensure(ctx context.Context) (*snapshot, error) {
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	if snap != nil {
		return snap, nil
	}
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	s.mu.Lock()
	snap = s.snap
	s.mu.Unlock()
	if snap != nil {
		return snap, nil
	}
	snap, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.snap == nil {
		s.snap = snap
	}
	snap = s.snap
	s.mu.Unlock()
	return snap, nil
}

// CatalogueFor returns the worker's current catalogue (daemon.CatalogueSource). An error
// means temporary trouble (Kimai not read yet and unreachable, the store failing).
//
// A worker seen for the first time (just joined) is recorded as having been given this
// catalogue, since the daemon sends it; later changes are announced by Refresh.
func (s *Service) CatalogueFor(ctx context.Context, worker string) (proto.Catalogue, error) {
	snap, err := s.ensure(ctx)
	if err != nil {
		return proto.Catalogue{}, err
	}
	w, err := s.cfg.Roster.Worker(ctx, worker)
	if errors.Is(err, store.ErrNotFound) {
		w = store.Worker{Pubkey: worker} // not on the roster: nothing to book to
	} else if err != nil {
		return proto.Catalogue{}, fmt.Errorf("catalogue for %s: %w", worker, err)
	}
	c, err := s.build(snap, w)
	if err != nil {
		return proto.Catalogue{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.JoinedAt.IsZero() || !w.RemovedAt.IsZero() {
		c.UpdatedAt = s.now().UTC().Truncate(time.Second)
		return c, nil
	}
	s.workers[w.Pubkey] = w
	e, ok := s.state.get(worker)
	if !ok {
		e, _ = s.state.observe(worker, hashOf(c), s.now(), true)
		if err := s.state.save(); err != nil {
			s.log.Warn("catalogue: cannot save state", "err", err)
		}
	}
	c.UpdatedAt = e.UpdatedAt
	if e.Hash != hashOf(c) {
		// Changed since the last poll (e.g. the worker was just mapped): the next poll
		// announces it; until then this is still the newest catalogue.
		c.UpdatedAt = s.now().UTC().Truncate(time.Second)
	}
	return c, nil
}

// Allowed reports whether the worker may book to project with activity, by the Kimai
// data and roster as last read. Before the first successful read it says false: use
// CatalogueFor (which can report temporary trouble) where that matters.
func (s *Service) Allowed(worker string, projectID, activityID int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		return false
	}
	w, ok := s.workers[worker]
	if !ok {
		return false
	}
	var proj *project
	for _, p := range s.projectsFor(s.snap, w) {
		if p.ID == projectID {
			proj = &p
			break
		}
	}
	if proj == nil {
		return false
	}
	for _, a := range s.snap.activities {
		if a.ID != activityID {
			continue
		}
		if a.Global() {
			return proj.globals
		}
		return a.Project == projectID
	}
	return false
}
