// Package fakedvm is a small stand-in for the employer's DVM, for tests of the tracker's
// network code against a real relay: it subscribes to wraps p-tagged to it, unwraps them
// with shared/giftwrap, downloads and verifies each segment's blob (sha256 = x, decrypt,
// sha256 = ox, bundle read safely, manifest = tags), keeps one copy per segment, and
// answers with gift-wrapped receipts (or catalogues) as the test decides.
package fakedvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/blossom"
	"pow.do/shared/bundle"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
	"pow.do/shared/seal"
)

// Verdict is what the DVM answers to one segment message. Send false drops the receipt
// (a receipt lost on the way).
type Verdict struct {
	Status    proto.ReceiptStatus
	Reason    string
	Permanent bool
	Send      bool
}

// Arrival is one segment message as it arrived.
type Arrival struct {
	Session string
	Index   int
	RumorID string
	Live    bool // arrived after EOSE (in publish order), not from storage
	Err     error
}

// Stored is a verified segment the DVM keeps.
type Stored struct {
	File   proto.SegmentFile
	Sender string
	Bundle *bundle.Bundle
}

// DVM is the fake.
type DVM struct {
	SK, PK string
	relay  string
	log    *slog.Logger

	mu        sync.Mutex
	decide    func(sf proto.SegmentFile, seen int) Verdict
	catalogue *proto.Catalogue
	wraps     map[string]bool
	stored    map[string]*Stored         // first copy by session/index
	copies    map[string]map[string]bool // distinct ciphertexts (x) stored per session/index: must stay 1
	rumors    map[string]map[string]bool // distinct rumor ids per session/index: resends reuse one
	seen      map[string]int             // segment messages per session/index
	arrivals  []Arrival
	messages  []proto.Message // every other pow.do message, in arrival order
	senders   []string
	changed   chan struct{}
}

// Start connects the DVM to relay and serves until ctx ends, reconnecting when the relay
// goes away.
func Start(ctx context.Context, relay, sk string, log *slog.Logger) (*DVM, error) {
	pk, err := nostr.GetPublicKey(sk)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	d := &DVM{SK: sk, PK: pk, relay: relay, log: log.With("who", "fakedvm"),
		wraps: map[string]bool{}, stored: map[string]*Stored{}, copies: map[string]map[string]bool{},
		rumors: map[string]map[string]bool{}, seen: map[string]int{},
		changed: make(chan struct{})}
	ready := make(chan error, 1)
	go d.run(ctx, ready)
	select {
	case err := <-ready:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return d, nil
}

// SetDecide sets how verified segments are answered; seen is how many messages for
// this segment arrived before (0 the first time). Nil (the default): accepted for a new
// ciphertext, duplicate for one already stored.
func (d *DVM) SetDecide(f func(sf proto.SegmentFile, seen int) Verdict) {
	d.mu.Lock()
	d.decide = f
	d.mu.Unlock()
}

// SetCatalogue sets the catalogue sent in answer to join and catalogue requests (none
// is sent while nil).
func (d *DVM) SetCatalogue(c *proto.Catalogue) {
	d.mu.Lock()
	d.catalogue = c
	d.mu.Unlock()
}

func key(session string, index int) string { return fmt.Sprintf("%s/%d", session, index) }

func (d *DVM) run(ctx context.Context, ready chan error) {
	since := nostr.Timestamp(time.Now().Add(-72 * time.Hour).Unix())
	first := true
	for ctx.Err() == nil {
		err := d.once(ctx, since, func() {
			if first {
				first = false
				ready <- nil
			}
		})
		if first {
			ready <- err
			return
		}
		if ctx.Err() != nil {
			return
		}
		d.log.Info("fake DVM reconnecting", "err", err)
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

func (d *DVM) once(ctx context.Context, since nostr.Timestamp, onLive func()) error {
	c, err := relayconn.Dial(ctx, d.relay, d.SK, relayconn.Options{Logger: d.log})
	if err != nil {
		return err
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, "fakedvm", nostr.Filter{Kinds: []int{proto.KindGiftWrap}, Tags: nostr.TagMap{"p": {d.PK}}, Since: &since})
	if err != nil {
		return err
	}
	live := false
	for {
		ev, eose, err := sub.Next(ctx)
		switch {
		case err != nil:
			return err
		case eose:
			if !live {
				live = true
				onLive()
			}
		default:
			d.handle(ctx, c, *ev, live)
		}
	}
}

func (d *DVM) notify() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// Wait polls cond after every change until it holds or ctx ends.
func (d *DVM) Wait(ctx context.Context, cond func(d *DVM) bool) error {
	for {
		d.mu.Lock()
		ch := d.changed
		d.mu.Unlock()
		if cond(d) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fake DVM: condition not met: %w", ctx.Err())
		}
	}
}

// Copies is how many distinct verified copies (ciphertexts) of a segment the DVM
// stored: 1 when the tracker never re-sealed or duplicated a segment.
func (d *DVM) Copies(session string, index int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.copies[key(session, index)])
}

// Rumors is how many distinct rumor ids announced this segment: 1 when resends reuse
// the stored rumor.
func (d *DVM) Rumors(session string, index int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.rumors[key(session, index)])
}

// Seen is how many segment messages for this segment arrived.
func (d *DVM) Seen(session string, index int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[key(session, index)]
}

// Stored returns a stored segment.
func (d *DVM) Stored(session string, index int) (*Stored, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.stored[key(session, index)]
	return s, ok
}

// Arrivals lists segment messages in arrival order.
func (d *DVM) Arrivals() []Arrival {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Arrival(nil), d.arrivals...)
}

// Messages lists the other pow.do messages in arrival order, with their senders.
func (d *DVM) Messages() ([]proto.Message, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]proto.Message(nil), d.messages...), append([]string(nil), d.senders...)
}

func (d *DVM) handle(ctx context.Context, c *relayconn.Conn, ev nostr.Event, live bool) {
	d.mu.Lock()
	if d.wraps[ev.ID] {
		d.mu.Unlock()
		return
	}
	d.wraps[ev.ID] = true
	d.mu.Unlock()
	defer d.notify()

	rumor, sender, err := giftwrap.Unwrap(ev, d.SK)
	if err != nil {
		d.log.Warn("fake DVM: unwrap refused", "err", err)
		return
	}
	msg, err := proto.Parse(rumor)
	if err != nil {
		d.log.Warn("fake DVM: message refused", "kind", rumor.Kind, "err", err)
		return
	}
	sf, ok := msg.(proto.SegmentFile)
	if !ok {
		d.mu.Lock()
		d.messages = append(d.messages, msg)
		d.senders = append(d.senders, sender)
		cat := d.catalogue
		d.mu.Unlock()
		switch msg.(type) {
		case proto.JoinRequest, proto.CatalogueRequest:
			if cat != nil {
				c2 := *cat
				c2.To = sender
				d.send(ctx, c, c2.Rumor(d.PK), sender)
			}
		}
		return
	}
	k := key(sf.Session, sf.Index)
	b, verr := d.verify(ctx, sf, sender)
	d.mu.Lock()
	n := d.seen[k]
	d.seen[k]++
	if d.rumors[k] == nil {
		d.rumors[k] = map[string]bool{}
	}
	d.rumors[k][rumor.ID] = true
	d.arrivals = append(d.arrivals, Arrival{Session: sf.Session, Index: sf.Index, RumorID: rumor.ID, Live: live, Err: verr})
	d.mu.Unlock()
	if verr != nil {
		d.log.Warn("fake DVM: segment refused", "err", verr)
		d.reply(ctx, c, rumor.ID, sf, sender, Verdict{Status: proto.StatusRejected, Reason: verr.Error(), Permanent: false, Send: true})
		return
	}
	d.mu.Lock()
	have := d.copies[k][sf.X]
	decide := d.decide
	d.mu.Unlock()
	v := Verdict{Status: proto.StatusAccepted, Send: true}
	if have {
		v.Status = proto.StatusDuplicate
	}
	if decide != nil {
		v = decide(sf, n)
	}
	if v.Status != proto.StatusRejected {
		d.mu.Lock()
		// Keyed by ciphertext: the same bundle again is a duplicate, a re-sealed one a
		// second copy (which a correct tracker never makes).
		if d.copies[k] == nil {
			d.copies[k] = map[string]bool{}
		}
		d.copies[k][sf.X] = true
		if d.stored[k] == nil {
			d.stored[k] = &Stored{File: sf, Sender: sender, Bundle: b}
		}
		d.mu.Unlock()
	}
	d.reply(ctx, c, rumor.ID, sf, sender, v)
}

// verify downloads the blob (primary, then fallbacks), checks it and reads the bundle.
func (d *DVM) verify(ctx context.Context, sf proto.SegmentFile, sender string) (*bundle.Bundle, error) {
	var ct bytes.Buffer
	var errs []error
	for _, u := range append([]string{sf.URL}, sf.Fallbacks...) {
		ct.Reset()
		cl := blossom.New(u, "")
		if err := cl.Download(ctx, u, sf.X, proto.MaxBlobBytes, &ct); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = nil
		break
	}
	if errs != nil {
		return nil, fmt.Errorf("download: %w", errors.Join(errs...))
	}
	plain, err := seal.Open(ct.Bytes(), sf.Key[:], sf.Nonce[:], sf.X, sf.OX)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	b, err := bundle.OpenBytes(plain, bundle.DefaultLimits())
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	m := b.Manifest
	if m.Worker != sender || m.Session != sf.Session || m.Index != sf.Index || !m.Start.Equal(sf.Start) || !m.End.Equal(sf.End) {
		return nil, errors.New("manifest does not match the message")
	}
	return b, nil
}

func (d *DVM) reply(ctx context.Context, c *relayconn.Conn, rumorID string, sf proto.SegmentFile, worker string, v Verdict) {
	if !v.Send {
		d.log.Info("fake DVM: dropping the receipt", "index", sf.Index)
		return
	}
	r := proto.Receipt{To: worker, Answers: rumorID, Session: sf.Session, Index: sf.Index, Status: v.Status, Reason: v.Reason, Permanent: v.Permanent}
	if v.Status != proto.StatusRejected {
		r.Reason, r.Permanent = "", false
	}
	if err := r.Validate(); err != nil {
		d.log.Error("fake DVM: bad receipt", "err", err)
		return
	}
	d.send(ctx, c, r.Rumor(d.PK), worker)
}

// SendTo wraps and publishes a rumor to a worker on a fresh connection (a catalogue
// pushed outside any request, for instance).
func (d *DVM) SendTo(ctx context.Context, rumor nostr.Event, worker string) error {
	c, err := relayconn.Dial(ctx, d.relay, d.SK, relayconn.Options{Logger: d.log})
	if err != nil {
		return err
	}
	defer c.Close()
	wrap, err := giftwrap.Wrap(rumor, d.SK, worker)
	if err != nil {
		return err
	}
	return c.Publish(ctx, wrap)
}

func (d *DVM) send(ctx context.Context, c *relayconn.Conn, rumor nostr.Event, to string) {
	wrap, err := giftwrap.Wrap(rumor, d.SK, to)
	if err != nil {
		d.log.Error("fake DVM: wrap", "err", err)
		return
	}
	if err := c.Publish(ctx, wrap); err != nil {
		// The connection broke: try once more on a fresh one.
		if err := d.SendTo(ctx, rumor, to); err != nil {
			d.log.Error("fake DVM: publish", "err", err)
		}
	}
}

// MakeSegment builds a real bundle for one segment of a worker and seals it.
func MakeSegment(worker, session string, index int, start, end time.Time, prev string) (bundle.Built, seal.Sealed, error) {
	m := bundle.Manifest{
		Worker: worker, Session: session, Index: index, Start: start.UTC(), End: end.UTC(),
		Project: 1, Activity: 1, Memo: fmt.Sprintf("segment %d", index), AppVersion: "0.1.0-test",
		Policy: bundle.Policy{SegmentSeconds: 600, Screenshots: 0, JPEGQuality: 80, MaxWidth: 1920},
		Prev:   prev, Deleted: []bundle.Deleted{}, Skipped: []bundle.Skipped{},
	}
	a := bundle.Activity{V: 1, Source: bundle.SourceBuiltin, Window: []bundle.Event{
		{Timestamp: start.UTC(), Duration: 30, Data: map[string]any{"app": "editor", "title": fmt.Sprintf("work %d", index)}},
	}, AFK: []bundle.Event{}, Web: []bundle.Event{}, Input: []bundle.Event{}, Minutes: []bundle.Minute{}, ActiveSeconds: 30}
	built, err := bundle.Build(m, a, nil)
	if err != nil {
		return bundle.Built{}, seal.Sealed{}, err
	}
	s, err := seal.Seal(built.ZIP)
	if err != nil {
		return bundle.Built{}, seal.Sealed{}, err
	}
	return built, s, nil
}
