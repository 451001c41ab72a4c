package engineapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Memory is the preview engine: it keeps the session state machine in memory so the
// window can be built and tried before the real engine exists. It captures nothing,
// connects to nothing, makes no key and sends nothing; State.Preview says so, and the
// UI labels it. The real engine replaces it in the root package's newEngine.
type Memory struct {
	now func() time.Time

	pubMu sync.Mutex // serialises publishing so subscribers see states in order
	mu    sync.Mutex
	subs  map[int]func(Event)
	next  int

	onboarded  bool
	workerName string
	settings   Settings
	catalogue  Catalogue

	session   *Session
	paused    bool
	runStart  time.Time     // session start or last resume
	banked    time.Duration // recorded time before runStart
	baseIndex int           // segments closed before runStart
}

// NewMemory returns a preview engine reading time from now.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{
		now:  now,
		subs: make(map[int]func(Event)),
		settings: Settings{
			ActivityWatchURL: "http://localhost:5600",
			JPEGQuality:      80,
			DataDir:          "(preview: nothing is stored)",
		},
	}
}

var _ Engine = (*Memory)(nil)

func unsupported(what string) *Problem {
	return Fail(ProblemUnsupported, "The preview engine cannot "+what+".",
		"This build runs the preview engine, which records nothing. Install a full pow.do build to track real work.", nil)
}

func (m *Memory) State(ctx context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stateLocked(), nil
}

func (m *Memory) stateLocked() State {
	now := m.now().UTC()
	st := State{
		Preview:    true,
		Onboarded:  m.onboarded,
		WorkerName: m.workerName,
		Running:    m.session != nil,
		Paused:     m.paused,
		Source:     SourceNone,
		At:         now,
		Network: Network{
			Relays:   endpoints(m.settings.Relays),
			Blossoms: endpoints(m.settings.Blossoms),
		},
	}
	if m.session == nil {
		return st
	}
	s := *m.session
	st.Session = &s
	elapsed := m.banked
	if !m.paused {
		elapsed += now.Sub(m.runStart)
		st.Segment = m.segmentLocked(now)
	}
	st.ElapsedSeconds = int64(elapsed / time.Second)
	return st
}

// segmentLocked computes the clock-aligned segment containing now.
func (m *Memory) segmentLocked(now time.Time) *Segment {
	length := time.Duration(m.policyLocked().SegmentSeconds) * time.Second
	first := AlignSegment(m.runStart, length)
	n := int(now.Sub(first) / length)
	start := first.Add(time.Duration(n) * length)
	end := start.Add(length)
	if start.Before(m.runStart) {
		start = m.runStart
	}
	return &Segment{
		Index:            m.baseIndex + n,
		Start:            start,
		End:              end,
		RemainingSeconds: int64(end.Sub(now) / time.Second),
	}
}

func (m *Memory) policyLocked() Policy {
	if m.catalogue.Policy.SegmentSeconds >= 10 {
		return m.catalogue.Policy
	}
	return DefaultPolicy()
}

func endpoints(urls []string) []Endpoint {
	out := make([]Endpoint, 0, len(urls))
	for _, u := range urls {
		out = append(out, Endpoint{URL: u, Status: EndpointDisabled})
	}
	return out
}

// Join checks the link's shape and the passphrase, then marks the device onboarded.
// No key is made and nothing is sent, so there is no fingerprint.
func (m *Memory) Join(ctx context.Context, link, passphrase string) (JoinResult, error) {
	inv, err := parsePreviewInvite(link)
	if err != nil {
		return JoinResult{}, err
	}
	if err := CheckPassphrase(passphrase); err != nil {
		return JoinResult{}, err
	}
	m.mu.Lock()
	if m.onboarded {
		m.mu.Unlock()
		return JoinResult{}, Fail(ProblemNotReady, "This device has already joined.", "Restart pow.do to use the preview again.", nil)
	}
	m.onboarded = true
	m.workerName = inv.name
	m.settings.Relays = inv.relays
	m.settings.Blossoms = inv.blossoms
	m.settings.DVMNpub = inv.dvm
	m.catalogue = previewCatalogue(m.now().UTC(), inv.name)
	cat := m.catalogue
	m.mu.Unlock()
	m.publish(Event{Kind: EventCatalogue, Catalogue: &cat})
	m.publishState()
	return JoinResult{DVMNpub: inv.dvm, WorkerName: inv.name}, nil
}

func (m *Memory) Unlock(ctx context.Context, passphrase string) error {
	return Fail(ProblemNotReady, "There is no stored key to unlock.", "The preview engine keeps no key; join with an invite link instead.", nil)
}

func (m *Memory) Catalogue(ctx context.Context) (Catalogue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.onboarded {
		return Catalogue{}, notJoined()
	}
	return m.catalogue, nil
}

func (m *Memory) RefreshCatalogue(ctx context.Context) error {
	m.mu.Lock()
	if !m.onboarded {
		m.mu.Unlock()
		return notJoined()
	}
	cat := m.catalogue
	m.mu.Unlock()
	m.publish(Event{Kind: EventCatalogue, Catalogue: &cat})
	return nil
}

func notJoined() *Problem {
	return Fail(ProblemNotReady, "This device has not joined an employer yet.", "Paste the invite link your employer sent you.", nil)
}

func (m *Memory) Start(ctx context.Context, projectID, activityID int, memo string) error {
	if len(memo) > 1000 {
		return Fail(ProblemInvalidInput, "The memo is longer than 1000 bytes.", "Shorten the memo.", nil)
	}
	m.mu.Lock()
	if !m.onboarded {
		m.mu.Unlock()
		return notJoined()
	}
	if m.session != nil {
		m.mu.Unlock()
		return Fail(ProblemNotReady, "The timer is already running.", "Stop it before starting a new session.", nil)
	}
	project, activity, err := m.catalogue.lookup(projectID, activityID)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	now := m.now().UTC()
	m.session = &Session{
		ID: newSessionID(), ProjectID: project.ID, ProjectName: project.Name,
		ActivityID: activity.ID, ActivityName: activity.Name, Memo: memo, StartedAt: now,
	}
	m.paused, m.runStart, m.banked, m.baseIndex = false, now, 0, 0
	m.mu.Unlock()
	m.publishState()
	return nil
}

// lookup finds a project and an activity usable with it.
func (c Catalogue) lookup(projectID, activityID int) (Project, Activity, error) {
	var project *Project
	for i := range c.Projects {
		if c.Projects[i].ID == projectID {
			project = &c.Projects[i]
		}
	}
	if project == nil {
		return Project{}, Activity{}, Fail(ProblemInvalidInput, fmt.Sprintf("Project %d is not in your catalogue.", projectID), "Pick a project from the list.", nil)
	}
	for _, a := range c.Activities {
		if a.ID == activityID && (a.Project == nil || *a.Project == projectID) {
			return *project, a, nil
		}
	}
	return Project{}, Activity{}, Fail(ProblemInvalidInput, fmt.Sprintf("Activity %d cannot be booked to %s.", activityID, project.Name), "Pick an activity from the list.", nil)
}

func (m *Memory) Pause(ctx context.Context) error {
	m.mu.Lock()
	if m.session == nil || m.paused {
		m.mu.Unlock()
		return Fail(ProblemNotReady, "The timer is not running.", "Start the timer first.", nil)
	}
	now := m.now().UTC()
	m.baseIndex = m.segmentLocked(now).Index + 1
	m.banked += now.Sub(m.runStart)
	m.paused = true
	m.mu.Unlock()
	m.publishState()
	return nil
}

func (m *Memory) Resume(ctx context.Context) error {
	m.mu.Lock()
	if m.session == nil || !m.paused {
		m.mu.Unlock()
		return Fail(ProblemNotReady, "The timer is not paused.", "Nothing to resume.", nil)
	}
	m.paused = false
	m.runStart = m.now().UTC()
	m.mu.Unlock()
	m.publishState()
	return nil
}

func (m *Memory) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.session == nil {
		m.mu.Unlock()
		return Fail(ProblemNotReady, "The timer is not running.", "Nothing to stop.", nil)
	}
	m.session, m.paused = nil, false
	m.mu.Unlock()
	m.publishState()
	return nil
}

// Today is empty: the preview records no segments.
func (m *Memory) Today(ctx context.Context) ([]SegmentView, error) {
	return []SegmentView{}, nil
}

func (m *Memory) Screenshots(ctx context.Context, segmentID string) ([]Screenshot, error) {
	return nil, Fail(ProblemInvalidInput, fmt.Sprintf("There is no segment %q.", segmentID), "The preview engine records no segments.", nil)
}

func (m *Memory) DeleteScreenshot(ctx context.Context, segmentID, name string) error {
	return Fail(ProblemInvalidInput, fmt.Sprintf("There is no segment %q.", segmentID), "The preview engine records no segments.", nil)
}

func (m *Memory) IdleDecision(ctx context.Context, choice IdleChoice) error {
	if !choice.Valid() {
		return Fail(ProblemInvalidInput, fmt.Sprintf("Unknown idle choice %q.", choice), "Choose keep, discard or stop.", nil)
	}
	return Fail(ProblemNotReady, "pow.do is not asking about idle time.", "Nothing to decide.", nil)
}

func (m *Memory) Settings(ctx context.Context) (Settings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settings, nil
}

func (m *Memory) SaveSettings(ctx context.Context, in Settings) (Settings, error) {
	m.mu.Lock()
	next := m.settings.WithEditable(in)
	if err := next.Validate(); err != nil {
		m.mu.Unlock()
		return Settings{}, err
	}
	m.settings = next
	m.mu.Unlock()
	m.publishState() // relays may have changed
	return next, nil
}

func (m *Memory) ExportKey(ctx context.Context, passphrase string) (string, error) {
	return "", unsupported("export a key (it never made one)")
}

func (m *Memory) Subscribe(fn func(Event)) func() {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.next
	m.next++
	m.subs[id] = fn
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.subs, id)
	}
}

func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.subs)
	return nil
}

func (m *Memory) publishState() {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	m.mu.Lock()
	st := m.stateLocked()
	m.mu.Unlock()
	m.deliverLocked(Event{Kind: EventState, State: &st})
}

func (m *Memory) publish(ev Event) {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	m.deliverLocked(ev)
}

// deliverLocked calls subscribers with pubMu held (for order) and mu released (so a
// subscriber may read State).
func (m *Memory) deliverLocked(ev Event) {
	m.mu.Lock()
	fns := make([]func(Event), 0, len(m.subs))
	for _, fn := range m.subs {
		fns = append(fns, fn)
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

func previewCatalogue(now time.Time, name string) Catalogue {
	website := 1
	return Catalogue{
		UpdatedAt:  now,
		WorkerName: name,
		Projects: []Project{
			{ID: 1, Name: "Preview website", Customer: "Preview customer"},
			{ID: 2, Name: "Preview support", Customer: "Preview customer"},
		},
		Activities: []Activity{
			{ID: 1, Name: "Development", Project: &website},
			{ID: 2, Name: "Meetings", Project: nil},
			{ID: 3, Name: "Support calls", Project: nil},
		},
		Policy: DefaultPolicy(),
	}
}

type previewInvite struct {
	dvm, name        string
	relays, blossoms []string
}

// parsePreviewInvite checks an invite link's shape (PROTOCOL.md §7) without
// decoding keys; the real engine parses it with pow.do/shared.
func parsePreviewInvite(link string) (previewInvite, error) {
	link = strings.TrimSpace(link)
	bad := func(why string) (previewInvite, error) {
		return previewInvite{}, Fail(ProblemInviteInvalid, "This is not a pow.do invite link: "+why+".",
			"Copy the whole link from your employer's message; it starts with powdo://join or https://…/join#.", nil)
	}
	u, err := url.Parse(link)
	if err != nil {
		return bad("it cannot be read as a link")
	}
	var q url.Values
	switch {
	case u.Scheme == "powdo" && (u.Host == "join" || u.Opaque == "join"):
		q = u.Query()
	case u.Scheme == "https" && strings.HasSuffix(u.Path, "/join"):
		q, err = url.ParseQuery(u.Fragment)
		if err != nil {
			return bad("its fragment cannot be read")
		}
	default:
		return bad("it does not start with powdo://join or https://…/join#")
	}
	inv := previewInvite{dvm: q.Get("dvm"), name: q.Get("name"), relays: q["relay"], blossoms: q["blossom"]}
	switch {
	case !strings.HasPrefix(inv.dvm, "npub1"):
		return bad("the employer's key (dvm=npub1…) is missing")
	case !strings.HasPrefix(q.Get("secret"), "nsec1"):
		return bad("the invite secret (secret=nsec1…) is missing")
	case len(inv.relays) == 0:
		return bad("no relay is named")
	case len(inv.blossoms) == 0:
		return bad("no Blossom server is named")
	}
	s := Settings{Relays: inv.relays, Blossoms: inv.blossoms, JPEGQuality: 80}
	if err := s.Validate(); err != nil {
		return bad(strings.TrimSuffix(AsProblem(err).Message, "."))
	}
	return inv, nil
}
