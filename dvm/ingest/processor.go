// Package ingest turns the DVM's incoming gift wraps into stored evidence: a bounded pool
// of workers opens each wrap (inbox.Opener), fetches and verifies segment bundles, stores
// them in one transaction, answers with a gift-wrapped receipt, marks the wrap processed
// and asks the relay to delete it. Session, catalogue-request and join messages are
// handled here too. A transient failure leaves the wrap unmarked and retries it later,
// so killing the DVM at any point loses nothing.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/inbox"
	"pow.do/dvm/store"
	"pow.do/shared/bundle"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
)

// The hooks (same method sets as pow.do/dvm/daemon's SegmentSink, SessionSink,
// CatalogueSource; declared here so that this package does not import the daemon).
type (
	SegmentSink interface {
		SegmentAccepted(ctx context.Context, seg store.Segment)
	}
	SessionSink interface {
		SessionStarted(ctx context.Context, s store.Session)
		SessionStopped(ctx context.Context, s store.Session)
	}
	CatalogueSource interface {
		CatalogueFor(ctx context.Context, workerPubkey string) (proto.Catalogue, error)
	}
	// Joiner handles a join request (kind 7705). An error with a Permanent() method that
	// returns true refuses the request for good; any other error is retried.
	Joiner interface {
		Join(ctx context.Context, op inbox.Opened) (store.Worker, error)
	}
	// Publisher sends events to the relays (all of them, or those named) and returns the
	// relays that accepted; inbox.Inbox is one.
	Publisher interface {
		Publish(ctx context.Context, ev nostr.Event, relays ...string) ([]string, error)
	}
	// Observer receives figures for metrics.
	Observer interface {
		// Handled is called once per wrap finished: status accepted, duplicate, rejected
		// or ignored; label names the reason of a rejection ("" otherwise).
		Handled(kind int, status store.WrapOutcome, label string)
		// Ingested is the time from the first try to the stored segment.
		Ingested(d time.Duration)
		// Retry is called for each transient failure.
		Retry(label string)
	}
)

// Policy bounds what the DVM accepts. Zero fields take DefaultPolicy's values.
type Policy struct {
	MaxBlobBytes   int64         // ciphertext size limit
	Limits         bundle.Limits // the safe reader's limits
	FutureSkew     time.Duration // how far a segment's end may lie ahead of our clock
	MaxAge         time.Duration // how old a segment's start may be
	MaxScreenshots int
	KeepBundles    bool // keep the plaintext ZIP as evidence (PROTOCOL chain proofs)
	// GiveUpAfter: a wrap failing transiently for this long is rejected (not permanently,
	// so the tracker sends it again later).
	GiveUpAfter time.Duration
}

// DefaultPolicy is what `powdo-dvm run` uses unless configured otherwise.
func DefaultPolicy() Policy {
	return Policy{
		MaxBlobBytes:   proto.MaxBlobBytes,
		Limits:         bundle.DefaultLimits(),
		FutureSkew:     2 * time.Minute,
		MaxAge:         90 * 24 * time.Hour,
		MaxScreenshots: proto.MaxScreenshots,
		KeepBundles:    true,
		GiveUpAfter:    24 * time.Hour,
	}
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.MaxBlobBytes <= 0 {
		p.MaxBlobBytes = d.MaxBlobBytes
	}
	if p.FutureSkew <= 0 {
		p.FutureSkew = d.FutureSkew
	}
	if p.MaxAge <= 0 {
		p.MaxAge = d.MaxAge
	}
	if p.MaxScreenshots <= 0 {
		p.MaxScreenshots = d.MaxScreenshots
	}
	if p.GiveUpAfter <= 0 {
		p.GiveUpAfter = d.GiveUpAfter
	}
	return p
}

// Labels of rejections and retries, for logs and metrics.
const (
	LabelBadMessage        = "bad_message"
	LabelTagMismatch       = "tag_mismatch"
	LabelWorkerMismatch    = "worker_mismatch"
	LabelFuture            = "future"
	LabelTooOld            = "too_old"
	LabelTooLarge          = "too_large"
	LabelBlobNotFound      = "blob_not_found"
	LabelBlobUnavailable   = "blob_unavailable"
	LabelFetch             = "fetch"
	LabelDecrypt           = "decrypt"
	LabelHashMismatch      = "hash_mismatch"
	LabelOXMismatch        = "ox_mismatch"
	LabelBundle            = "bundle"
	LabelProjectNotAllowed = "project_not_allowed"
	LabelConflict          = "conflict"
	LabelInvalid           = "invalid"
	LabelNotAllowed        = "not_allowed"
	LabelJoin              = "join"
	LabelStore             = "store"
	LabelPublish           = "publish"
	LabelCatalogue         = "catalogue"
)

// Processor handles wraps; its Handle is the pool's HandlerFunc.
type Processor struct {
	SecretKey string // the DVM's, hex
	Store     store.Store
	Opener    *inbox.Opener
	Fetcher   *Fetcher
	Publisher Publisher
	Catalogue CatalogueSource
	Segments  SegmentSink
	Sessions  SessionSink
	Joiner    Joiner
	Observer  Observer
	Policy    Policy
	Log       *slog.Logger
	Now       func() time.Time
	// Backoff gives the delay before try n+1 after n tries failed transiently.
	Backoff func(n int) time.Duration

	pub string
}

// Init checks the processor and fills defaults; call it once before Handle.
func (p *Processor) Init() error {
	pub, err := proto.PublicKey(p.SecretKey)
	if err != nil {
		return fmt.Errorf("ingest: DVM key: %w", err)
	}
	p.pub = pub
	if p.Store == nil || p.Opener == nil || p.Fetcher == nil || p.Publisher == nil || p.Catalogue == nil {
		return errors.New("ingest: store, opener, fetcher, publisher and catalogue are required")
	}
	if p.Segments == nil {
		p.Segments = nopSink{}
	}
	if p.Sessions == nil {
		p.Sessions = nopSink{}
	}
	if p.Observer == nil {
		p.Observer = nopSink{}
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Backoff == nil {
		p.Backoff = Backoff(2*time.Second, 5*time.Minute)
	}
	p.Policy = p.Policy.withDefaults()
	return nil
}

type nopSink struct{}

func (nopSink) SegmentAccepted(context.Context, store.Segment)           {}
func (nopSink) SessionStarted(context.Context, store.Session)            {}
func (nopSink) SessionStopped(context.Context, store.Session)            {}
func (nopSink) Handled(int, store.WrapOutcome, string)                   {}
func (nopSink) Ingested(time.Duration)                                   {}
func (nopSink) Retry(string)                                             {}
func (nopSink) Join(context.Context, inbox.Opened) (store.Worker, error) { return store.Worker{}, nil }

// outcome is what one message came to.
type outcome struct {
	status  store.WrapOutcome
	label   string // reason label for rejections
	reason  string // human-readable reason (rejections, ignored)
	receipt *proto.Receipt
	// catalogueTo: send this worker its catalogue once the wrap is settled.
	catalogueTo string
	// transient: a failure that may pass; nothing is marked and the wrap is retried.
	transient error
	after     func(ctx context.Context) // hooks to run once the wrap is marked
}

func transient(label string, err error) outcome {
	return outcome{label: label, transient: err}
}

// Handle processes one wrap to the end: open, act, answer, mark, delete.
func (p *Processor) Handle(ctx context.Context, w inbox.Wrap, relays []string, at Attempt) Result {
	log := p.Log.With("wrap", w.Event.ID, "relay", w.Relay)
	kind := 0
	var out outcome
	op, err := p.Opener.Open(ctx, w.Event)
	var refused *inbox.Refused
	switch {
	case errors.As(err, &refused):
		out = outcome{status: store.WrapRejected, label: refused.Label, reason: refused.Err.Error()}
	case err != nil:
		out = transient(LabelStore, err)
	default:
		kind = op.Rumor.Kind
		log = log.With("kind", kind, "sender", op.Sender)
		out = p.dispatch(ctx, op, at)
	}

	if out.transient == nil && out.catalogueTo != "" {
		if err := p.SendCatalogue(ctx, out.catalogueTo); err != nil {
			out = transient(LabelCatalogue, err)
		}
	}
	if out.transient == nil && out.receipt != nil {
		if err := p.sendReceipt(ctx, *out.receipt); err != nil {
			out = transient(LabelPublish, err)
		}
	}
	if out.transient != nil {
		if ctx.Err() != nil {
			log.Info("wrap left for the next start", "err", out.transient)
			return Result{}
		}
		if p.Now().Sub(at.First) < p.Policy.GiveUpAfter || at.First.IsZero() {
			delay := p.Backoff(at.N)
			p.Observer.Retry(out.label)
			log.Warn("transient failure; will retry", "attempt", at.N, "retry_in", delay.Round(time.Millisecond), "reason", out.label, "err", out.transient)
			return Result{RetryAfter: delay}
		}
		// Too long: reject (not permanently) so the tracker knows and sends it again later.
		log.Error("giving up after repeated transient failures", "attempts", at.N, "err", out.transient)
		out = p.giveUp(op, kind, out)
	}

	mark := store.ProcessedWrap{ID: w.Event.ID, Outcome: out.status, Reason: out.reason}
	if err := p.Store.MarkWrapProcessed(ctx, mark); err != nil {
		p.Observer.Retry(LabelStore)
		log.Error("mark wrap processed", "err", err)
		return Result{RetryAfter: p.Backoff(at.N)}
	}
	p.Observer.Handled(kind, out.status, out.label)
	switch out.status {
	case store.WrapRejected:
		log.Warn("wrap rejected", "reason", out.label, "detail", out.reason)
	case store.WrapIgnored:
		log.Info("wrap ignored", "detail", out.reason)
	default:
		log.Info("wrap handled", "status", out.status)
	}
	if out.after != nil {
		out.after(ctx)
	}
	p.RequestDeletion(ctx, w.Event.ID, relays...)
	return Result{Processed: true}
}

// giveUp turns a transient failure into a non-permanent rejection.
func (p *Processor) giveUp(op inbox.Opened, kind int, out outcome) outcome {
	label := out.label
	if label == LabelFetch {
		label = LabelBlobUnavailable
	}
	g := outcome{status: store.WrapRejected, label: label, reason: "gave up after repeated transient failures: " + out.transient.Error()}
	if kind == proto.KindSegmentFile {
		if sf, err := proto.ParseSegmentFile(op.Rumor); err == nil {
			g.receipt = &proto.Receipt{To: op.Sender, Answers: op.Rumor.ID, Session: sf.Session, Index: sf.Index,
				Status: proto.StatusRejected, Reason: clipReason(g.reason), Permanent: false}
			// Best effort: the wrap is being settled anyway.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := p.sendReceipt(ctx, *g.receipt); err != nil {
				p.Log.Warn("could not send the give-up receipt", "err", err)
			}
			g.receipt = nil
		}
	}
	return g
}

func (p *Processor) dispatch(ctx context.Context, op inbox.Opened, at Attempt) outcome {
	switch op.Rumor.Kind {
	case proto.KindSegmentFile:
		return p.segment(ctx, op, at)
	case proto.KindSessionStart:
		return p.sessionStart(ctx, op)
	case proto.KindSessionStop:
		return p.sessionStop(ctx, op)
	case proto.KindCatalogueRequest:
		if _, err := proto.ParseCatalogueRequest(op.Rumor); err != nil {
			return outcome{status: store.WrapRejected, label: LabelBadMessage, reason: err.Error()}
		}
		if !op.Known {
			return outcome{status: store.WrapRejected, label: inbox.RefusedNotOnRoster, reason: "catalogue request from a sender not on the roster"}
		}
		return outcome{status: store.WrapAccepted, catalogueTo: op.Sender}
	case proto.KindJoinRequest:
		return p.join(ctx, op)
	}
	return outcome{status: store.WrapIgnored, reason: fmt.Sprintf("kind %d", op.Rumor.Kind)}
}

func (p *Processor) join(ctx context.Context, op inbox.Opened) outcome {
	if p.Joiner == nil {
		return outcome{status: store.WrapRejected, label: LabelJoin, reason: "this DVM takes no join requests"}
	}
	w, err := p.Joiner.Join(ctx, op)
	if err != nil {
		var perm interface{ Permanent() bool }
		if errors.As(err, &perm) && perm.Permanent() {
			return outcome{status: store.WrapRejected, label: LabelJoin, reason: err.Error()}
		}
		return transient(LabelJoin, err)
	}
	p.Log.Info("worker joined", "worker", w.Pubkey, "name", w.Name)
	return outcome{status: store.WrapAccepted, catalogueTo: w.Pubkey}
}

func (p *Processor) sessionStart(ctx context.Context, op inbox.Opened) outcome {
	s, err := proto.ParseSessionStart(op.Rumor)
	if err != nil {
		return outcome{status: store.WrapRejected, label: LabelBadMessage, reason: err.Error()}
	}
	if s.Start.After(p.Now().Add(p.Policy.FutureSkew)) {
		return outcome{status: store.WrapRejected, label: LabelFuture, reason: fmt.Sprintf("session start %s is in the future", s.Start.UTC().Format(time.RFC3339))}
	}
	cat, err := p.Catalogue.CatalogueFor(ctx, op.Sender)
	if err != nil {
		return transient(LabelCatalogue, err)
	}
	if why := allowed(cat, s.Project, s.Activity); why != "" {
		return outcome{status: store.WrapRejected, label: LabelProjectNotAllowed, reason: why}
	}
	sess, err := p.Store.StartSession(ctx, store.Session{ID: s.Session, Worker: op.Sender, Project: s.Project,
		Activity: s.Activity, Memo: s.Memo, StartedAt: s.Start.UTC(), State: store.SessionOpen, Announced: true, DeclaredSegments: -1})
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInvalid):
		return outcome{status: store.WrapRejected, label: LabelConflict, reason: err.Error()}
	case err != nil:
		return transient(LabelStore, err)
	}
	return outcome{status: store.WrapAccepted, after: func(ctx context.Context) { p.Sessions.SessionStarted(ctx, sess) }}
}

func (p *Processor) sessionStop(ctx context.Context, op inbox.Opened) outcome {
	s, err := proto.ParseSessionStop(op.Rumor)
	if err != nil {
		return outcome{status: store.WrapRejected, label: LabelBadMessage, reason: err.Error()}
	}
	if s.End.After(p.Now().Add(p.Policy.FutureSkew)) {
		return outcome{status: store.WrapRejected, label: LabelFuture, reason: fmt.Sprintf("session end %s is in the future", s.End.UTC().Format(time.RFC3339))}
	}
	sess, err := p.Store.StopSession(ctx, s.Session, op.Sender, s.End.UTC(), s.Segments)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return outcome{status: store.WrapRejected, label: LabelInvalid, reason: "stop for a session never started nor seen: " + s.Session}
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInvalid):
		return outcome{status: store.WrapRejected, label: LabelConflict, reason: err.Error()}
	case err != nil:
		return transient(LabelStore, err)
	}
	return outcome{status: store.WrapAccepted, after: func(ctx context.Context) { p.Sessions.SessionStopped(ctx, sess) }}
}

// SendCatalogue gift-wraps the worker's current catalogue and publishes it.
func (p *Processor) SendCatalogue(ctx context.Context, worker string) error {
	cat, err := p.Catalogue.CatalogueFor(ctx, worker)
	if err != nil {
		return fmt.Errorf("catalogue for %s: %w", worker, err)
	}
	return p.PublishCatalogue(ctx, worker, cat)
}

func (p *Processor) sendReceipt(ctx context.Context, r proto.Receipt) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	if err := p.publishRumor(ctx, r.Rumor(p.pub), r.To); err != nil {
		return fmt.Errorf("send receipt %s for %s/%d: %w", r.Status, r.Session, r.Index, err)
	}
	return nil
}

func (p *Processor) publishRumor(ctx context.Context, rumor nostr.Event, to string) error {
	wrap, err := giftwrap.Wrap(rumor, p.SecretKey, to)
	if err != nil {
		return err
	}
	_, err = p.Publisher.Publish(ctx, wrap)
	return err
}

// RequestDeletion asks the relays (each that delivered the wrap) to delete it: NIP-09
// kind 5 by the wrap's p recipient, which powdo-relay allows. Failure only costs relay
// space: the processed set already keeps the wrap from being handled again.
func (p *Processor) RequestDeletion(ctx context.Context, wrapID string, relays ...string) {
	log := p.Log.With("wrap", wrapID)
	del := nostr.Event{
		Kind:      5,
		CreatedAt: nostr.Now(),
		Tags:      nostr.Tags{{"e", wrapID}, {"k", strconv.Itoa(proto.KindGiftWrap)}},
	}
	if err := del.Sign(p.SecretKey); err != nil {
		log.Error("sign deletion request failed")
		return
	}
	ok, err := p.Publisher.Publish(ctx, del, relays...)
	if err != nil {
		log.Warn("deletion request not accepted", "err", err)
		return
	}
	log.Debug("deletion requested", "relays", ok)
}

// allowed says why project/activity may not be booked by the catalogue's worker ("" if
// they may).
func allowed(cat proto.Catalogue, project, activity int64) string {
	found := false
	for _, pr := range cat.Projects {
		if pr.ID == project {
			found = true
			break
		}
	}
	if !found {
		return fmt.Sprintf("project %d is not in this worker's catalogue", project)
	}
	for _, a := range cat.Activities {
		if a.ID == activity {
			if a.Project == nil || *a.Project == project {
				return ""
			}
			return fmt.Sprintf("activity %d belongs to project %d, not %d", activity, *a.Project, project)
		}
	}
	return fmt.Sprintf("activity %d is not in this worker's catalogue", activity)
}

// clipReason keeps a receipt's reason within PROTOCOL's 500 bytes, on a UTF-8 boundary.
func clipReason(s string) string {
	const max = proto.MaxReasonBytes
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// PublishCatalogue gift-wraps a given catalogue (built elsewhere, e.g. after a Kimai
// change) to the worker and publishes it.
func (p *Processor) PublishCatalogue(ctx context.Context, worker string, cat proto.Catalogue) error {
	cat.To = worker
	if cat.UpdatedAt.IsZero() {
		cat.UpdatedAt = p.Now().UTC().Truncate(time.Second)
	}
	if err := cat.Validate(); err != nil {
		return fmt.Errorf("catalogue for %s: %w", worker, err)
	}
	if err := p.publishRumor(ctx, cat.Rumor(p.pub), worker); err != nil {
		return fmt.Errorf("send catalogue to %s: %w", worker, err)
	}
	p.Log.Info("catalogue sent", "worker", worker, "projects", len(cat.Projects), "activities", len(cat.Activities))
	return nil
}
