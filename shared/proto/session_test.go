package proto

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testSession = "00112233445566778899aabbccddeeff"

func TestSessionStartRoundTrip(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	for _, memo := range []string{"", "Fixing the \"login\" bug\nand <tests> & more: ünïcødé 🦄", strings.Repeat("m", MaxMemoBytes)} {
		s := SessionStart{To: dvm.pub, Session: testSession, Project: 12, Activity: 5,
			Start: time.Date(2026, 11, 21, 9, 58, 13, 0, time.UTC), Memo: memo}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		ev := s.Rumor(worker.pub)
		checkRumor(t, ev, KindSessionStart, worker.pub, dvm.pub)
		got, err := ParseSessionStart(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, s)
		}
		if ev.Tags.Find("start")[1] != strconv.FormatInt(s.Start.Unix(), 10) || ev.Tags.Find("project")[1] != "12" || ev.Tags.Find("activity")[1] != "5" {
			t.Fatalf("tags %v do not carry the values", ev.Tags)
		}
	}
}

func TestParseSessionStartRefusals(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	valid := SessionStart{To: dvm.pub, Session: testSession, Project: 12, Activity: 5,
		Start: time.Unix(1795341493, 0).UTC(), Memo: "work"}.Rumor(worker.pub)
	runRefusals(t, valid, ParseSessionStart, []refusal{
		{"wrong kind", setKind(KindSessionStop), "kind"},
		{"missing p", delTag("p"), "p"},
		{"unknown version", setTag("powdo-v", "1.1"), "powdo-v"},
		{"missing session", delTag("powdo-session"), "powdo-session"},
		{"session uppercase", setTag("powdo-session", strings.ToUpper(testSession)), "powdo-session"},
		{"missing project", delTag("project"), "project"},
		{"project zero", setTag("project", "0"), "project"},
		{"project not a number", setTag("project", "Website"), "project"},
		{"project beyond 2^53", setTag("project", "9007199254740993"), "project"},
		{"duplicated project", dupTag("project"), "project"},
		{"missing activity", delTag("activity"), "activity"},
		{"activity negative", setTag("activity", "-5"), "activity"},
		{"missing start", delTag("start"), "start"},
		{"start not numeric", setTag("start", "now"), "start"},
		{"memo too long", setContent(strings.Repeat("m", MaxMemoBytes+1)), "content"},
		{"memo not UTF-8", setContent("caf\xe9"), "content"},
	})
}

func TestSessionStopRoundTrip(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	for _, n := range []int{0, 1, 144} {
		s := SessionStop{To: dvm.pub, Session: testSession, End: time.Unix(1795345093, 0).UTC(), Segments: n}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		ev := s.Rumor(worker.pub)
		checkRumor(t, ev, KindSessionStop, worker.pub, dvm.pub)
		got, err := ParseSessionStop(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, s)
		}
	}
}

func TestParseSessionStopRefusals(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	valid := SessionStop{To: dvm.pub, Session: testSession, End: time.Unix(1795345093, 0).UTC(), Segments: 6}.Rumor(worker.pub)
	runRefusals(t, valid, ParseSessionStop, []refusal{
		{"wrong kind", setKind(KindSessionStart), "kind"},
		{"duplicated p", dupTag("p"), "p"},
		{"missing version", delTag("powdo-v"), "powdo-v"},
		{"session short", setTag("powdo-session", "abc"), "powdo-session"},
		{"missing end", delTag("end"), "end"},
		{"end negative", setTag("end", "-1"), "end"},
		{"missing segments", delTag("segments"), "segments"},
		{"segments not a number", setTag("segments", "six"), "segments"},
		{"duplicated segments", dupTag("segments"), "segments"},
		{"content not empty", setContent("bye"), "content"},
	})
}
