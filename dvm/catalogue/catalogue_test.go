package catalogue_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/catalogue"
	"pow.do/dvm/daemon"
	"pow.do/dvm/kimai"
	"pow.do/dvm/kimaiemu"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/clocktest"
	"pow.do/shared/proto"
)

var _ daemon.CatalogueSource = (*catalogue.Service)(nil)

var t0 = time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)

// key derives a real public key (a point on secp256k1) from a name.
func key(s string) string {
	h := sha256.Sum256([]byte(s))
	pk, err := nostr.GetPublicKey(hex.EncodeToString(h[:]))
	if err != nil {
		panic(err)
	}
	return pk
}

var (
	alice = key("alice") // Kimai user 3, every visible project
	bob   = key("bob")   // Kimai user 4, restricted to project 1
	carol = key("carol") // not mapped to a Kimai user
)

type clock = clocktest.Clock

// kimaiSwitch serves one emulator or another, so a test can change Kimai's data, or
// answer 503 while "down".
type kimaiSwitch struct {
	cur  atomic.Pointer[kimaiemu.Server]
	down atomic.Bool
}

func (k *kimaiSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if k.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"code":503,"message":"Service Unavailable"}`)
		return
	}
	k.cur.Load().ServeHTTP(w, r)
}

func emulator(t *testing.T, seed kimaiemu.Seed) *kimaiemu.Server {
	t.Helper()
	s, err := kimaiemu.New(kimaiemu.Options{Seed: seed, Now: func() time.Time { return t0 }, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedWithDocs is the demo seed after someone added a project with its own activity.
func seedWithDocs() kimaiemu.Seed {
	s := kimaiemu.DemoSeed()
	p := int64(6)
	s.Projects = append(s.Projects, kimaiemu.Project{ID: 6, Customer: 1, Name: "Docs"})
	s.Activities = append(s.Activities, kimaiemu.Activity{ID: 7, Project: &p, Name: "Writing"})
	return s
}

type notices struct {
	mu   sync.Mutex
	got  map[string]proto.Catalogue
	fail map[string]int // worker -> failures still to return
}

func (n *notices) notify(_ context.Context, w string, c proto.Catalogue) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail[w] > 0 {
		n.fail[w]--
		return errors.New("relay unreachable")
	}
	n.got[w] = c
	return nil
}

// take returns and clears what was notified.
func (n *notices) take() map[string]proto.Catalogue {
	n.mu.Lock()
	defer n.mu.Unlock()
	got := n.got
	n.got = map[string]proto.Catalogue{}
	return got
}

type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *clock
	kimai  *kimaiSwitch
	url    string
	st     *sqlite.DB
	n      *notices
	cfg    catalogue.Config
	policy proto.Policy
}

func newEnv(t *testing.T, token string) *env {
	t.Helper()
	ks := &kimaiSwitch{}
	ks.cur.Store(emulator(t, kimaiemu.DemoSeed()))
	hs := httptest.NewServer(ks)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "db"), sqlite.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, w := range []store.Worker{
		{Pubkey: alice, Name: "Alice", KimaiUserID: 3, JoinedAt: t0},
		{Pubkey: bob, Name: "Bob", KimaiUserID: 4, JoinedAt: t0},
		{Pubkey: carol, Name: "Carol", JoinedAt: t0},
	} {
		if err := st.AddWorker(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	k, err := kimai.New(kimai.Config{BaseURL: hs.URL, Token: token, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, clock: clocktest.New(t0), kimai: ks, url: hs.URL, st: st,
		n: &notices{got: map[string]proto.Catalogue{}, fail: map[string]int{}}}
	e.policy = proto.Policy{SegmentSeconds: 300, Screenshots: 3, Blur: true, ReviewSeconds: 60, IdleSeconds: 120,
		JPEGQuality: 70, MaxWidth: 1280}
	e.cfg = catalogue.Config{Kimai: k, Roster: st, Policy: e.policy, Restrict: map[string][]int64{bob: {1}},
		StatePath: filepath.Join(dir, "catalogue.json"), Notify: e.n.notify, Now: e.clock.Now, Logger: testLogger(t)}
	return e
}

func (e *env) service() *catalogue.Service {
	e.t.Helper()
	s, err := catalogue.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func ids[T any](list []T, id func(T) int64) []int64 {
	out := []int64{}
	for _, x := range list {
		out = append(out, id(x))
	}
	return out
}

func projectIDs(c proto.Catalogue) []int64 {
	return ids(c.Projects, func(p proto.Project) int64 { return p.ID })
}

func activityIDs(c proto.Catalogue) []int64 {
	return ids(c.Activities, func(a proto.Activity) int64 { return a.ID })
}

func wantIDs(t *testing.T, what string, got, want []int64) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func TestRefreshSendsOnlyChangedCatalogues(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	svc := e.service()
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	got := e.n.take()
	if len(got) != 3 {
		t.Fatalf("first poll notified %d workers, want all 3", len(got))
	}
	a := got[alice]
	// Visible projects bookable now: not the hidden one, not the one that ended in 2020,
	// not the hidden customer's; activities: visible globals and those of listed projects.
	wantIDs(t, "alice's projects", projectIDs(a), []int64{1, 2})
	wantIDs(t, "alice's activities", activityIDs(a), []int64{1, 2, 3, 4})
	if a.Projects[0].Name != "Website" || a.Projects[0].Customer != "Acme" {
		t.Errorf("project 1: %+v", a.Projects[0])
	}
	if a.Activities[0].Project != nil || a.Activities[2].Project == nil || *a.Activities[2].Project != 1 {
		t.Errorf("activities: %+v", a.Activities)
	}
	if a.Policy != e.policy || a.WorkerName != "Alice" || a.To != alice || !a.UpdatedAt.Equal(t0) {
		t.Errorf("alice's catalogue header: %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("catalogue does not validate: %v", err)
	}
	wantIDs(t, "bob's projects (restricted)", projectIDs(got[bob]), []int64{1})
	wantIDs(t, "bob's activities", activityIDs(got[bob]), []int64{1, 2, 3})
	wantIDs(t, "unmapped carol's projects", projectIDs(got[carol]), []int64{})

	e.clock.Advance(time.Minute)
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.n.take(); len(got) != 0 {
		t.Errorf("unchanged Kimai re-sent catalogues to %d workers", len(got))
	}

	// A restarted DVM remembers what it sent.
	e.clock.Advance(time.Minute)
	svc = e.service()
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.n.take(); len(got) != 0 {
		t.Errorf("after a restart, catalogues were re-sent to %d workers", len(got))
	}
	c, err := svc.CatalogueFor(e.ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if !c.UpdatedAt.Equal(t0) {
		t.Errorf("updated_at %s after restart, want the time of the last change %s", c.UpdatedAt, t0)
	}

	// Kimai gains a project: only workers who may see it hear about it.
	e.kimai.cur.Store(emulator(t, seedWithDocs()))
	e.clock.Advance(time.Minute)
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	got = e.n.take()
	if len(got) != 1 {
		t.Fatalf("notified %d workers about the new project, want only alice", len(got))
	}
	wantIDs(t, "alice's new projects", projectIDs(got[alice]), []int64{1, 2, 6})
	wantIDs(t, "alice's new activities", activityIDs(got[alice]), []int64{1, 2, 3, 4, 7})
	if !got[alice].UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("updated_at %s, want the poll time %s", got[alice].UpdatedAt, e.clock.Now())
	}

	// Carol is mapped to a Kimai user: her catalogue fills and is sent.
	if err := e.st.MapWorker(e.ctx, carol, 3); err != nil {
		t.Fatal(err)
	}
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	got = e.n.take()
	if len(got) != 1 {
		t.Fatalf("notified %d workers after mapping carol, want 1", len(got))
	}
	wantIDs(t, "carol's projects", projectIDs(got[carol]), []int64{1, 2, 6})

	info, err := os.Stat(e.cfg.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", info.Mode().Perm())
	}
}

func TestFailedNoticeIsRetried(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	e.n.fail[alice] = 1
	svc := e.service()
	err := svc.Refresh(e.ctx)
	if err == nil || !strings.Contains(err.Error(), "relay unreachable") {
		t.Fatalf("Refresh: %v, want the notify failure", err)
	}
	if got := e.n.take(); len(got) != 2 || got[alice].To != "" {
		t.Fatalf("notified %v; want bob and carol only", keys(got))
	}
	// Also across a restart.
	svc = e.service()
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	got := e.n.take()
	if len(got) != 1 || got[alice].To != alice {
		t.Fatalf("retry notified %v, want alice", keys(got))
	}
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.n.take(); len(got) != 0 {
		t.Errorf("notified %v after a successful retry", keys(got))
	}
}

func keys(m map[string]proto.Catalogue) []string {
	var out []string
	for k := range m {
		out = append(out, k[:8])
	}
	return out
}

func TestJoinedWorkerIsNotSentTwice(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	svc := e.service()
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.n.take()
	dave := key("dave")
	if err := e.st.AddWorker(e.ctx, store.Worker{Pubkey: dave, Name: "Dave", KimaiUserID: 4, JoinedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// The daemon sends the catalogue on join.
	c, err := svc.CatalogueFor(e.ctx, dave)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "dave's projects", projectIDs(c), []int64{1, 2})
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.n.take(); len(got) != 0 {
		t.Errorf("the poll after the join re-sent to %v", keys(got))
	}
	// Someone not on the roster gets nothing to book to.
	c, err = svc.CatalogueFor(e.ctx, key("stranger"))
	if err != nil || len(c.Projects) != 0 {
		t.Errorf("stranger's catalogue: %d projects, err %v; want none", len(c.Projects), err)
	}
}

func TestAllowed(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	svc := e.service()
	if svc.Allowed(alice, 1, 1) {
		t.Fatal("Allowed before Kimai was read")
	}
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name              string
		worker            string
		project, activity int64
		want              bool
	}{
		{"global activity on a project that takes globals", alice, 1, 1, true},
		{"the project's own activity", alice, 1, 3, true},
		{"other project's own activity", alice, 2, 4, true},
		{"global activity on a project without globals", alice, 2, 1, false},
		{"activity of another project", alice, 1, 4, false},
		{"hidden project", alice, 3, 5, false},
		{"ended project", alice, 4, 1, false},
		{"project of a hidden customer", alice, 5, 1, false},
		{"hidden activity", alice, 1, 6, false},
		{"unknown activity", alice, 1, 99, false},
		{"restricted worker, allowed project", bob, 1, 3, true},
		{"restricted worker, other project", bob, 2, 4, false},
		{"unmapped worker", carol, 1, 1, false},
		{"stranger", key("stranger"), 1, 1, false},
	} {
		if got := svc.Allowed(tc.worker, tc.project, tc.activity); got != tc.want {
			t.Errorf("%s: Allowed(%d, %d) = %v, want %v", tc.name, tc.project, tc.activity, got, tc.want)
		}
	}
	if err := e.st.RemoveWorker(e.ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	if svc.Allowed(alice, 1, 1) {
		t.Error("a removed worker may still book")
	}
}

func TestCatalogueForWhileKimaiIsDown(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	svc := e.service()
	e.kimai.down.Store(true)
	_, err := svc.CatalogueFor(e.ctx, alice)
	if !kimai.IsTemporary(err) {
		t.Fatalf("CatalogueFor with Kimai down: %v, want a temporary Kimai error", err)
	}
	if err := svc.Refresh(e.ctx); err == nil {
		t.Fatal("Refresh with Kimai down succeeded")
	}
	if got := e.n.take(); len(got) != 0 {
		t.Fatalf("notified %v while Kimai was down", keys(got))
	}
	e.kimai.down.Store(false)
	c, err := svc.CatalogueFor(e.ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "projects", projectIDs(c), []int64{1, 2})
	// Down again: the last catalogue read is still served.
	e.kimai.down.Store(true)
	if _, err := svc.CatalogueFor(e.ctx, bob); err != nil {
		t.Errorf("CatalogueFor after a successful read, Kimai down: %v", err)
	}
}

func TestDisabledKimaiUserGetsNothing(t *testing.T) {
	e := newEnv(t, "demo-admin-token")                      // an admin may list users
	if err := e.st.MapWorker(e.ctx, carol, 5); err != nil { // Kimai's carol is disabled
		t.Fatal(err)
	}
	svc := e.service()
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	got := e.n.take()
	wantIDs(t, "disabled user's projects", projectIDs(got[carol]), []int64{})
	wantIDs(t, "enabled user's projects", projectIDs(got[alice]), []int64{1, 2})
	if svc.Allowed(carol, 1, 1) {
		t.Error("a worker mapped to a disabled Kimai user may book")
	}
}

func TestPolicyChangeIsAnnounced(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	if err := e.service().Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.n.take()
	e.cfg.Policy.Screenshots = 1
	if err := e.service().Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	got := e.n.take()
	if len(got) != 3 || got[alice].Policy.Screenshots != 1 {
		t.Errorf("a new capture policy reached %d workers (alice's: %+v), want all 3", len(got), got[alice].Policy)
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	bad := e.cfg
	bad.Policy.SegmentSeconds = 1
	if _, err := catalogue.New(bad); err == nil || !strings.Contains(err.Error(), "segment_seconds") {
		t.Errorf("bad policy: %v", err)
	}
	bad = e.cfg
	bad.Restrict = map[string][]int64{"bob": {1}}
	if _, err := catalogue.New(bad); err == nil {
		t.Error("a restriction keyed by a non-pubkey was accepted")
	}
	if err := os.WriteFile(e.cfg.StatePath, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := catalogue.New(e.cfg); err == nil || !strings.Contains(err.Error(), "catalogue.json") {
		t.Errorf("corrupt state file: %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
