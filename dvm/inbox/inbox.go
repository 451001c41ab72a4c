package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nbd-wtf/go-nostr"
)

// Inbox runs one loop per relay and publishes through their authenticated connections.
type Inbox struct {
	relays []*Relay
}

// New builds one Relay per config (each config names its own URL).
func New(cfgs []Config) (*Inbox, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("inbox: at least one relay is required")
	}
	in := &Inbox{}
	seen := map[string]bool{}
	for _, c := range cfgs {
		r, err := NewRelay(c)
		if err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
		if seen[r.URL()] {
			return nil, fmt.Errorf("inbox: relay %s given twice", r.URL())
		}
		seen[r.URL()] = true
		in.relays = append(in.relays, r)
	}
	return in, nil
}

// Relays lists the relay loops in configuration order.
func (in *Inbox) Relays() []*Relay { return in.relays }

// Run runs every loop until ctx ends.
func (in *Inbox) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range in.relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Run(ctx)
		}()
	}
	wg.Wait()
}

// Status reports every loop's state.
func (in *Inbox) Status() []Status {
	out := make([]Status, len(in.relays))
	for i, r := range in.relays {
		out[i] = r.Status()
	}
	return out
}

// Publish sends ev to every relay at once (all of them when urls is empty, else those
// named) and returns the relays that accepted it. It fails only if none did.
func (in *Inbox) Publish(ctx context.Context, ev nostr.Event, urls ...string) ([]string, error) {
	var (
		mu   sync.Mutex
		ok   []string
		errs []error
		wg   sync.WaitGroup
	)
	for _, r := range in.relays {
		if len(urls) > 0 && !slices.Contains(urls, r.URL()) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.Publish(ctx, ev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ok = append(ok, r.URL())
		}()
	}
	wg.Wait()
	if len(ok) == 0 {
		if len(errs) == 0 {
			return nil, fmt.Errorf("publish %s: no relay among %v: %w", ev.ID, urls, ErrNotConnected)
		}
		return nil, fmt.Errorf("publish %s: %w", ev.ID, errors.Join(errs...))
	}
	slices.Sort(ok)
	return ok, nil
}
