package proto

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReceiptRoundTrip(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	answers := hex64('a')
	for _, r := range []Receipt{
		{Status: StatusAccepted},
		{Status: StatusDuplicate, Index: 7},
		{Status: StatusRejected, Reason: "sha256 of the blob does not match x", Permanent: true},
		{Status: StatusRejected, Reason: "blob not found on any server", Permanent: false},
		{Status: StatusRejected, Reason: strings.Repeat("é", MaxReasonBytes/2)},
	} {
		r.To, r.Answers, r.Session = worker.pub, answers, testSession
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		ev := r.Rumor(dvm.pub)
		checkRumor(t, ev, KindReceipt, dvm.pub, worker.pub)
		got, err := ParseReceipt(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, r)
		}
		if ev.Tags.Find("e")[1] != answers || ev.Tags.Find("status")[1] != string(r.Status) {
			t.Fatalf("tags %v", ev.Tags)
		}
		if got.Status.Delivered() != (r.Status != StatusRejected) {
			t.Fatalf("Delivered() wrong for %s", r.Status)
		}
	}
}

func TestParseReceiptRefusals(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	base := Receipt{To: worker.pub, Answers: hex64('a'), Session: testSession, Index: 2}
	accepted := base
	accepted.Status = StatusAccepted
	rejected := base
	rejected.Status, rejected.Reason, rejected.Permanent = StatusRejected, "hash mismatch", true

	t.Run("accepted", func(t *testing.T) {
		runRefusals(t, accepted.Rumor(dvm.pub), ParseReceipt, []refusal{
			{"wrong kind", setKind(KindCatalogue), "kind"},
			{"missing p", delTag("p"), "p"},
			{"unknown version", setTag("powdo-v", "0"), "powdo-v"},
			{"missing e", delTag("e"), "e"},
			{"e short", setTag("e", hex64('a')[:40]), "e"},
			{"duplicated e", dupTag("e"), "e"},
			{"missing session", delTag("powdo-session"), "powdo-session"},
			{"missing segment", delTag("powdo-segment"), "powdo-segment"},
			{"segment not numeric", setTag("powdo-segment", "two"), "powdo-segment"},
			{"missing status", delTag("status"), "status"},
			{"unknown status", setTag("status", "ok"), "status"},
			{"status wrong case", setTag("status", "Accepted"), "status"},
			{"duplicated status", dupTag("status"), "status"},
			{"reason on accepted", addTag("reason", "fine"), "reason"},
			{"permanent on accepted", addTag("permanent", "true"), "permanent"},
			{"content not empty", setContent("thanks"), "content"},
		})
	})
	t.Run("rejected", func(t *testing.T) {
		runRefusals(t, rejected.Rumor(dvm.pub), ParseReceipt, []refusal{
			{"missing reason", delTag("reason"), "reason"},
			{"empty reason", setTag("reason", ""), "reason"},
			{"reason too long", setTag("reason", strings.Repeat("r", MaxReasonBytes+1)), "reason"},
			{"reason not UTF-8", setTag("reason", "bad \xff"), "reason"},
			{"duplicated reason", dupTag("reason"), "reason"},
			{"missing permanent", delTag("permanent"), "permanent"},
			{"permanent yes", setTag("permanent", "yes"), "permanent"},
			{"permanent without value", setTag("permanent"), "permanent"},
		})
	})
}

func TestReceiptValidate(t *testing.T) {
	worker := newKey(t)
	r := Receipt{To: worker.pub, Answers: hex64('a'), Session: testSession, Status: StatusDuplicate, Permanent: true}
	var fe *FieldError
	if err := r.Validate(); !errors.As(err, &fe) || fe.Field != "permanent" {
		t.Fatalf("a permanent duplicate passed Validate: %v", err)
	}
	r.Permanent, r.Status = false, ""
	if err := r.Validate(); !errors.As(err, &fe) || fe.Field != "status" {
		t.Fatalf("an empty status passed Validate: %v", err)
	}
}
