package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/store"
	"pow.do/shared/proto"
)

// A worker's segment goes wrap → download → verify → store → receipt; the same bundle
// sent again is a duplicate; the processed wraps are gone from the relay.
func TestSegmentEndToEnd(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	session := RandomSession()

	p0, id0 := w.sendSegment(t, segmentNow(session, 0, ""))
	rc := w.tracker.WaitReceipt(t, id0, 20*time.Second)
	if rc.Status != proto.StatusAccepted || rc.Session != session || rc.Index != 0 {
		t.Fatalf("receipt %+v, want accepted for %s/0", rc, session)
	}
	seg, err := w.d.st.SegmentAt(ctx, session, 0)
	if err != nil {
		t.Fatal(err)
	}
	if seg.Worker != w.tracker.PK || seg.OX != p0.Sealed.OX || seg.X != p0.Sealed.X || seg.RumorID != id0 {
		t.Fatalf("stored segment %+v does not match what was sent", seg.Segment)
	}
	if seg.ChainStatus != store.ChainVerified || seg.ScreenshotCount != 1 || len(seg.Minutes) != 1 || len(seg.TopApps) == 0 {
		t.Fatalf("stored segment details: chain %s, %d screenshots, %d minutes, tops %v", seg.ChainStatus, seg.ScreenshotCount, len(seg.Minutes), seg.TopApps)
	}
	ev, err := w.d.st.SegmentEvidence(ctx, seg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ev.Seal), `"kind":13`) || !strings.Contains(string(ev.Rumor), id0) {
		t.Fatalf("evidence lacks the signed seal or the rumor: seal %.80q rumor %.80q", ev.Seal, ev.Rumor)
	}
	events, err := w.d.st.SegmentEvents(ctx, seg.ID)
	if err != nil || len(events) < 100 {
		t.Fatalf("%d events stored (err %v), want the bundle's 100 window events and more", len(events), err)
	}

	// The chain continues: segment 1 names segment 0's ox.
	_, id1 := w.sendSegment(t, segmentNow(session, 1, p0.Sealed.OX))
	if rc := w.tracker.WaitReceipt(t, id1, 20*time.Second); rc.Status != proto.StatusAccepted {
		t.Fatalf("segment 1: receipt %+v", rc)
	}
	if s1, err := w.d.st.SegmentAt(ctx, session, 1); err != nil || s1.ChainStatus != store.ChainVerified {
		t.Fatalf("segment 1: %v, chain %s", err, s1.ChainStatus)
	}

	// The same bundle in a new wrap (the tracker missed the receipt): duplicate.
	again := p0.Rumor(w.tracker.PK)
	again.CreatedAt++ // a new rumor for the same bundle
	again.ID = again.GetID()
	if _, err := w.tracker.Send(ctx, again); err != nil {
		t.Fatal(err)
	}
	if rc := w.tracker.WaitReceipt(t, again.ID, 20*time.Second); rc.Status != proto.StatusDuplicate {
		t.Fatalf("resent bundle: receipt %+v, want duplicate", rc)
	}
	segs, err := w.d.st.SessionSegments(ctx, session)
	if err != nil || len(segs) != 2 {
		t.Fatalf("%d segments stored (err %v), want 2", len(segs), err)
	}

	// Every processed wrap was deleted from the relay: the DVM sees none left.
	if err := Eventually(10*time.Second, func() error {
		return noWrapsLeft(w.relay, w.dvm)
	}); err != nil {
		t.Fatal(err)
	}

	m := metricsText(t, w.d.url)
	for _, want := range []string{"powdo_dvm_bundles_ingested_total 2", `powdo_dvm_wraps_handled_total{kind="15",reason="",status="duplicate"} 1`, "powdo_dvm_ingest_seconds_count 2"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// noWrapsLeft lists the wraps the relay still holds for the DVM.
func noWrapsLeft(r *Relay, dvm Key) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Connect(ctx, r.WS, dvm.SK)
	if err != nil {
		return err
	}
	defer conn.Close()
	evs, err := Query(ctx, conn, nostr.Filter{Kinds: []int{proto.KindGiftWrap}, Tags: nostr.TagMap{"p": {dvm.PK}}})
	if err != nil {
		return err
	}
	if len(evs) > 0 {
		return fmt.Errorf("relay still holds %d wraps for the DVM", len(evs))
	}
	return nil
}
