package catalogue_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"pow.do/dvm/kimaiemu"
)

// zoneFeed records what WorkerZones was given.
type zoneFeed struct {
	mu    sync.Mutex
	calls []map[string]string
}

func (z *zoneFeed) feed(_ context.Context, zones map[string]string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.calls = append(z.calls, zones)
}

func (z *zoneFeed) last(t *testing.T) map[string]string {
	t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.calls) == 0 {
		t.Fatal("WorkerZones was never called")
	}
	return z.calls[len(z.calls)-1]
}

func TestWorkerZonesFollowKimaiUsers(t *testing.T) {
	e := newEnv(t, "demo-dvm-token")
	zf := &zoneFeed{}
	e.cfg.WorkerZones = zf.feed
	svc := e.service()
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	// Bob is Kimai's user 4 (America/Bogota, UTC−5); carol is not mapped.
	want := map[string]string{alice: "Pacific/Tongatapu", bob: "America/Bogota"}
	if got := zf.last(t); !reflect.DeepEqual(got, want) {
		t.Errorf("zones after the first poll = %v, want %v", got, want)
	}

	// Bob moves in Kimai: the next poll passes his new zone on.
	seed := kimaiemu.DemoSeed()
	for i := range seed.Users {
		if seed.Users[i].ID == 4 {
			seed.Users[i].Timezone = "America/New_York"
		}
	}
	e.kimai.cur.Store(emulator(t, seed))
	if err := svc.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := zf.last(t)[bob]; got != "America/New_York" {
		t.Errorf("bob's zone after he moved in Kimai = %q, want America/New_York", got)
	}

	// A failed poll feeds nothing (the diary keeps the last zones).
	n := len(zf.calls)
	e.kimai.down.Store(true)
	if err := svc.Refresh(e.ctx); err == nil {
		t.Fatal("a poll of a Kimai that is down succeeded")
	}
	if len(zf.calls) != n {
		t.Errorf("WorkerZones called after a failed poll")
	}
}

func TestWorkerZonesNeedUserListing(t *testing.T) {
	// Alice's own token may not list users: no zones are invented.
	e := newEnv(t, "demo-alice-token")
	zf := &zoneFeed{}
	e.cfg.WorkerZones = zf.feed
	svc := e.service()
	svc.Refresh(e.ctx) // her catalogue may not build; only the zone feed matters here
	if len(zf.calls) != 0 {
		t.Errorf("WorkerZones called with %v although Kimai refused to list users", zf.calls)
	}
}
