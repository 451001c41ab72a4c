package proto

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

func ptr[T any](v T) *T { return &v }

func sampleCatalogue(to string) Catalogue {
	return Catalogue{
		To:         to,
		UpdatedAt:  time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		WorkerName: "Alice",
		Projects:   []Project{{ID: 12, Name: "Website", Customer: "ACME"}, {ID: 13, Name: "App & <API>", Customer: ""}},
		Activities: []Activity{{ID: 5, Name: "Development", Project: ptr[int64](12)}, {ID: 6, Name: "Meetings", Project: nil}},
		Policy:     DefaultPolicy(),
	}
}

func TestCatalogueRoundTrip(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	for _, tc := range []struct {
		name string
		edit func(*Catalogue)
	}{
		{"full", func(*Catalogue) {}},
		{"empty lists", func(c *Catalogue) { c.Projects, c.Activities, c.WorkerName = nil, nil, "" }},
		{"demo policy", func(c *Catalogue) { c.Policy.SegmentSeconds, c.Policy.Screenshots, c.Policy.Blur = 20, 0, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCatalogue(worker.pub)
			tc.edit(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			ev := c.Rumor(dvm.pub)
			checkRumor(t, ev, KindCatalogue, dvm.pub, worker.pub)
			got, err := ParseCatalogue(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, c)
			}
		})
	}
}

// The content is the JSON of PROTOCOL.md section 6, field for field.
func TestCatalogueContentShape(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	ev := sampleCatalogue(worker.pub).Rumor(dvm.pub)
	var doc map[string]any
	if err := json.Unmarshal([]byte(ev.Content), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["v"] != 1.0 || doc["updated_at"] != "2026-11-21T10:00:00Z" || doc["worker_name"] != "Alice" {
		t.Fatalf("header fields wrong: %v", doc)
	}
	acts := doc["activities"].([]any)
	if acts[0].(map[string]any)["project"] != 12.0 || acts[1].(map[string]any)["project"] != nil {
		t.Fatalf("activity project ids wrong: %v", acts)
	}
	pol := doc["policy"].(map[string]any)
	for k, v := range map[string]any{"segment_seconds": 600.0, "screenshots": 2.0, "blur": false,
		"review_seconds": 120.0, "idle_seconds": 300.0, "jpeg_quality": 80.0, "max_width": 1920.0} {
		if pol[k] != v {
			t.Errorf("policy.%s = %v, want %v", k, pol[k], v)
		}
	}
	// A catalogue written by hand, as another implementation would, parses.
	hand := `{"v":1,"updated_at":"2026-11-21T11:00:00+01:00","worker_name":"Bob","future_field":[1,2],
	  "projects":[{"id":1,"name":"P","customer":"C"}],"activities":[{"id":2,"name":"A","project":null}],
	  "policy":{"segment_seconds":600,"screenshots":2,"blur":false,"review_seconds":120,"idle_seconds":300,"jpeg_quality":80,"max_width":1920}}`
	ev2 := ev
	ev2.Content = hand
	c, err := ParseCatalogue(ev2)
	if err != nil {
		t.Fatal(err)
	}
	if !c.UpdatedAt.Equal(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)) || c.WorkerName != "Bob" || c.Activities[0].Project != nil {
		t.Fatalf("hand-written catalogue read as %+v", c)
	}
}

func TestParseCatalogueRefusals(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	c := sampleCatalogue(worker.pub)
	valid := c.Rumor(dvm.pub)
	// edit rewrites one JSON field of the valid content.
	edit := func(f func(doc map[string]any)) mutation {
		return func(ev *nostr.Event) {
			var doc map[string]any
			if err := json.Unmarshal([]byte(ev.Content), &doc); err != nil {
				panic(err)
			}
			f(doc)
			b, _ := json.Marshal(doc)
			ev.Content = string(b)
		}
	}
	policy := func(k string, v any) mutation {
		return edit(func(doc map[string]any) { doc["policy"].(map[string]any)[k] = v })
	}
	many := make([]any, 0, 400)
	for i := 1; i <= 400; i++ {
		many = append(many, map[string]any{"id": i, "name": strings.Repeat("n", 80), "customer": "c"})
	}
	runRefusals(t, valid, ParseCatalogue, []refusal{
		{"wrong kind", setKind(KindCatalogueRequest), "kind"},
		{"missing p", delTag("p"), "p"},
		{"unknown version", setTag("powdo-v", "2"), "powdo-v"},
		{"not JSON", setContent("projects: 12"), "content"},
		{"JSON array", setContent("[]"), "content"},
		{"trailing data", setContent(valid.Content + " {}"), "content"},
		{"empty", setContent(""), "content"},
		{"too large", edit(func(doc map[string]any) { doc["projects"] = many }), "content"},
		{"wrong v", edit(func(doc map[string]any) { doc["v"] = 2 }), "content.v"},
		{"no v", edit(func(doc map[string]any) { delete(doc, "v") }), "content.v"},
		{"no policy", edit(func(doc map[string]any) { delete(doc, "policy") }), "content.policy"},
		{"bad updated_at", edit(func(doc map[string]any) { doc["updated_at"] = "yesterday" }), "content.updated_at"},
		{"no updated_at", edit(func(doc map[string]any) { delete(doc, "updated_at") }), "content.updated_at"},
		{"segment too short", policy("segment_seconds", 5), "content.policy.segment_seconds"},
		{"segment too long", policy("segment_seconds", 3601), "content.policy.segment_seconds"},
		{"segment missing", edit(func(doc map[string]any) { delete(doc["policy"].(map[string]any), "segment_seconds") }), "content.policy.segment_seconds"},
		{"too many screenshots", policy("screenshots", 11), "content.policy.screenshots"},
		{"screenshots missing", edit(func(doc map[string]any) { delete(doc["policy"].(map[string]any), "screenshots") }), "content.policy.screenshots"},
		{"blur missing", edit(func(doc map[string]any) { delete(doc["policy"].(map[string]any), "blur") }), "content.policy.blur"},
		{"blur not a bool", policy("blur", "yes"), "content.policy"},
		{"policy not an object", edit(func(doc map[string]any) { doc["policy"] = 600 }), "content.policy"},
		{"policy null", edit(func(doc map[string]any) { doc["policy"] = nil }), "content.policy"},
		{"negative review", policy("review_seconds", -1), "content.policy.review_seconds"},
		{"idle too short", policy("idle_seconds", 30), "content.policy.idle_seconds"},
		{"jpeg quality zero", policy("jpeg_quality", 0), "content.policy.jpeg_quality"},
		{"max width tiny", policy("max_width", 100), "content.policy.max_width"},
		{"project id zero", edit(func(doc map[string]any) { doc["projects"].([]any)[0].(map[string]any)["id"] = 0 }), "content.projects[0].id"},
		{"duplicated project", edit(func(doc map[string]any) { doc["projects"].([]any)[1].(map[string]any)["id"] = 12 }), "content.projects[1].id"},
		{"project without name", edit(func(doc map[string]any) { doc["projects"].([]any)[1].(map[string]any)["name"] = "" }), "content.projects[1].name"},
		{"duplicated activity", edit(func(doc map[string]any) { doc["activities"].([]any)[1].(map[string]any)["id"] = 5 }), "content.activities[1].id"},
		{"activity of unknown project", edit(func(doc map[string]any) { doc["activities"].([]any)[0].(map[string]any)["project"] = 99 }), "content.activities[0].project"},
		{"worker name too long", edit(func(doc map[string]any) { doc["worker_name"] = strings.Repeat("w", MaxNameBytes+1) }), "content.worker_name"},
	})
}

func TestPolicyValidateBounds(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatalf("default policy invalid: %v", err)
	}
	for _, tc := range []struct {
		field  string
		set    func(*Policy, int)
		lo, hi int
	}{
		{"segment_seconds", func(p *Policy, v int) { p.SegmentSeconds = v }, 10, 3600},
		{"screenshots", func(p *Policy, v int) { p.Screenshots = v }, 0, 10},
		{"review_seconds", func(p *Policy, v int) { p.ReviewSeconds = v }, 0, 3600},
		{"idle_seconds", func(p *Policy, v int) { p.IdleSeconds = v }, 60, 86400},
		{"jpeg_quality", func(p *Policy, v int) { p.JPEGQuality = v }, 10, 100},
		{"max_width", func(p *Policy, v int) { p.MaxWidth = v }, 320, 7680},
	} {
		for _, v := range []int{tc.lo - 1, tc.lo, tc.hi, tc.hi + 1} {
			t.Run(fmt.Sprintf("%s=%d", tc.field, v), func(t *testing.T) {
				p := DefaultPolicy()
				tc.set(&p, v)
				err := p.Validate()
				inRange := v >= tc.lo && v <= tc.hi
				if inRange && err != nil {
					t.Fatalf("refused %d: %v", v, err)
				}
				var fe *FieldError
				if !inRange && (!errors.As(err, &fe) || fe.Field != "content.policy."+tc.field) {
					t.Fatalf("accepted %d or named the wrong field: %v", v, err)
				}
			})
		}
	}
}

// JSON escaping can double a content that is JSON itself: Validate must keep the whole
// rumor inside MaxRumorBytes, not only the content inside MaxCatalogueBytes.
func TestCatalogueRumorSizeBound(t *testing.T) {
	worker := newKey(t)
	c := sampleCatalogue(worker.pub)
	c.Projects = nil
	c.Activities = nil
	for i := int64(1); i <= 120; i++ {
		c.Projects = append(c.Projects, Project{ID: i, Name: strings.Repeat(`"`, 100), Customer: "x"})
	}
	content := len(c.content())
	if content > MaxCatalogueBytes {
		t.Fatalf("fixture content %d bytes; want it under MaxCatalogueBytes to test the rumor bound", content)
	}
	var fe *FieldError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Field != "content" || !strings.Contains(err.Error(), "gift wrap") {
		t.Fatalf("a %d-byte rumor passed Validate: %v", len(c.Rumor(worker.pub).String()), err)
	}
}

func TestCatalogueRequest(t *testing.T) {
	worker, dvm := newKey(t), newKey(t)
	r := CatalogueRequest{To: dvm.pub}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	ev := r.Rumor(worker.pub)
	checkRumor(t, ev, KindCatalogueRequest, worker.pub, dvm.pub)
	got, err := ParseCatalogueRequest(ev)
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	runRefusals(t, ev, ParseCatalogueRequest, []refusal{
		{"wrong kind", setKind(KindCatalogue), "kind"},
		{"missing p", delTag("p"), "p"},
		{"missing version", delTag("powdo-v"), "powdo-v"},
		{"content not empty", setContent("please"), "content"},
	})
	if err := (CatalogueRequest{To: "nope"}).Validate(); err == nil {
		t.Fatal("Validate accepted a bad recipient")
	}
}
