package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

// Policy is the capture policy the DVM sets for a worker (PROTOCOL.md section 6).
type Policy struct {
	SegmentSeconds int  `json:"segment_seconds"`
	Screenshots    int  `json:"screenshots"` // per segment
	Blur           bool `json:"blur"`
	ReviewSeconds  int  `json:"review_seconds"` // how long the worker may delete screenshots
	IdleSeconds    int  `json:"idle_seconds"`   // no input for this long counts as idle
	JPEGQuality    int  `json:"jpeg_quality"`
	MaxWidth       int  `json:"max_width"` // screenshots are scaled down to this width
}

// Policy bounds (PROTOCOL.md section 6). Segments below a minute are for tests and demos.
const (
	MinSegmentSeconds = 10
	MaxScreenshots    = 10
	MaxReviewSeconds  = 3600
	MinIdleSeconds    = 60
	MaxIdleSeconds    = 86400
	MinJPEGQuality    = 10
	MaxJPEGQuality    = 100
	MinMaxWidth       = 320
	MaxMaxWidth       = 7680
)

// DefaultPolicy is what a DVM offers unless its operator says otherwise.
func DefaultPolicy() Policy {
	return Policy{
		SegmentSeconds: 600,
		Screenshots:    2,
		Blur:           false,
		ReviewSeconds:  120,
		IdleSeconds:    300,
		JPEGQuality:    80,
		MaxWidth:       1920,
	}
}

// Validate checks the bounds; the error names the JSON field.
func (p Policy) Validate() error {
	check := func(name string, v, lo, hi int) error {
		if v < lo || v > hi {
			return fieldErr(KindCatalogue, "content.policy."+name, "%d is out of range (%d..%d)", v, lo, hi)
		}
		return nil
	}
	for _, c := range []struct {
		name      string
		v, lo, hi int
	}{
		{"segment_seconds", p.SegmentSeconds, MinSegmentSeconds, MaxSegmentSeconds},
		{"screenshots", p.Screenshots, 0, MaxScreenshots},
		{"review_seconds", p.ReviewSeconds, 0, MaxReviewSeconds},
		{"idle_seconds", p.IdleSeconds, MinIdleSeconds, MaxIdleSeconds},
		{"jpeg_quality", p.JPEGQuality, MinJPEGQuality, MaxJPEGQuality},
		{"max_width", p.MaxWidth, MinMaxWidth, MaxMaxWidth},
	} {
		if err := check(c.name, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	return nil
}

// Project is a Kimai project the worker may book to.
type Project struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Customer string `json:"customer"`
}

// Activity is a Kimai activity; Project nil marks a global activity usable with any project.
type Activity struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Project *int64 `json:"project"`
}

// Catalogue (kind 7703) tells a worker what they may book to and how to capture.
type Catalogue struct {
	To         string    // worker pubkey
	UpdatedAt  time.Time // second precision, UTC
	WorkerName string
	Projects   []Project
	Activities []Activity
	Policy     Policy
}

type catalogueJSON struct {
	V          int             `json:"v"`
	UpdatedAt  string          `json:"updated_at"`
	WorkerName string          `json:"worker_name"`
	Projects   []Project       `json:"projects"`
	Activities []Activity      `json:"activities"`
	Policy     json.RawMessage `json:"policy"`
}

// policyFields are the JSON names of Policy's fields, all required on the wire.
var policyFields = []string{"segment_seconds", "screenshots", "blur", "review_seconds", "idle_seconds", "jpeg_quality", "max_width"}

// parsePolicy reads the policy object, refusing a missing field rather than taking zero.
func parsePolicy(raw json.RawMessage) (Policy, error) {
	const k = KindCatalogue
	if len(raw) == 0 || string(raw) == "null" {
		return Policy{}, fieldErr(k, "content.policy", "missing")
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(raw, &present); err != nil {
		return Policy{}, fieldErr(k, "content.policy", "not a JSON object: %v", err)
	}
	for _, f := range policyFields {
		if _, ok := present[f]; !ok {
			return Policy{}, fieldErr(k, "content.policy."+f, "missing")
		}
	}
	var p Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		return Policy{}, fieldErr(k, "content.policy", "%v", err)
	}
	return p, nil
}

func (c Catalogue) content() []byte {
	projects, activities := c.Projects, c.Activities
	if projects == nil {
		projects = []Project{}
	}
	if activities == nil {
		activities = []Activity{}
	}
	p, _ := json.Marshal(c.Policy)
	b, _ := json.Marshal(catalogueJSON{
		V:          1,
		UpdatedAt:  c.UpdatedAt.UTC().Format(time.RFC3339),
		WorkerName: c.WorkerName,
		Projects:   projects,
		Activities: activities,
		Policy:     p,
	})
	return b
}

// Validate checks every field against PROTOCOL.md, including the size of the JSON content;
// call it before Rumor.
func (c Catalogue) Validate() error {
	const k = KindCatalogue
	if err := checkPubkey(k, TagRecipient, c.To); err != nil {
		return err
	}
	if c.UpdatedAt.IsZero() || c.UpdatedAt.Unix() < 0 || c.UpdatedAt.Unix() > maxUnix {
		return fieldErr(k, "content.updated_at", "not set or out of range")
	}
	if err := checkText(k, "content.worker_name", c.WorkerName, MaxNameBytes, false); err != nil {
		return err
	}
	projects := make(map[int64]bool, len(c.Projects))
	for i, p := range c.Projects {
		field := fmt.Sprintf("content.projects[%d]", i)
		if p.ID < 1 || p.ID > maxKimaiID {
			return fieldErr(k, field+".id", "Kimai id %d is out of range (1..2^53)", p.ID)
		}
		if projects[p.ID] {
			return fieldErr(k, field+".id", "duplicated project id %d", p.ID)
		}
		projects[p.ID] = true
		if err := checkText(k, field+".name", p.Name, MaxNameBytes, true); err != nil {
			return err
		}
		if err := checkText(k, field+".customer", p.Customer, MaxNameBytes, false); err != nil {
			return err
		}
	}
	activities := make(map[int64]bool, len(c.Activities))
	for i, a := range c.Activities {
		field := fmt.Sprintf("content.activities[%d]", i)
		if a.ID < 1 || a.ID > maxKimaiID {
			return fieldErr(k, field+".id", "Kimai id %d is out of range (1..2^53)", a.ID)
		}
		if activities[a.ID] {
			return fieldErr(k, field+".id", "duplicated activity id %d", a.ID)
		}
		activities[a.ID] = true
		if err := checkText(k, field+".name", a.Name, MaxNameBytes, true); err != nil {
			return err
		}
		if a.Project != nil && !projects[*a.Project] {
			return fieldErr(k, field+".project", "project %d is not in the catalogue", *a.Project)
		}
	}
	if err := c.Policy.Validate(); err != nil {
		return err
	}
	if n := len(c.content()); n > MaxCatalogueBytes {
		return fieldErr(k, "content", "%d bytes, at most %d allowed", n, MaxCatalogueBytes)
	}
	return fitsRumor(k, c)
}

// Rumor builds the unsigned kind-7703 rumor from senderPub (the DVM).
func (c Catalogue) Rumor(senderPub string) nostr.Event {
	return newRumor(KindCatalogue, senderPub, c.To, string(c.content()))
}

// ParseCatalogue reads a kind-7703 rumor. Unknown JSON fields are ignored.
func ParseCatalogue(ev nostr.Event) (Catalogue, error) {
	const k = KindCatalogue
	_, to, err := header(ev, k)
	if err != nil {
		return Catalogue{}, err
	}
	if len(ev.Content) > MaxCatalogueBytes {
		return Catalogue{}, fieldErr(k, "content", "%d bytes, at most %d allowed", len(ev.Content), MaxCatalogueBytes)
	}
	var cj catalogueJSON
	dec := json.NewDecoder(bytes.NewReader([]byte(ev.Content)))
	if err := dec.Decode(&cj); err != nil {
		return Catalogue{}, fieldErr(k, "content", "not a catalogue JSON object: %v", err)
	}
	if dec.More() {
		return Catalogue{}, fieldErr(k, "content", "trailing data after the JSON object")
	}
	if cj.V != 1 {
		return Catalogue{}, fieldErr(k, "content.v", "unknown catalogue version %d", cj.V)
	}
	policy, err := parsePolicy(cj.Policy)
	if err != nil {
		return Catalogue{}, err
	}
	updated, err := time.Parse(time.RFC3339, cj.UpdatedAt)
	if err != nil {
		return Catalogue{}, fieldErr(k, "content.updated_at", "want RFC 3339, got %q", clip(cj.UpdatedAt))
	}
	c := Catalogue{
		To:         to,
		UpdatedAt:  updated.UTC(),
		WorkerName: cj.WorkerName,
		Projects:   cj.Projects,
		Activities: cj.Activities,
		Policy:     policy,
	}
	if len(c.Projects) == 0 {
		c.Projects = nil
	}
	if len(c.Activities) == 0 {
		c.Activities = nil
	}
	if err := c.Validate(); err != nil {
		return Catalogue{}, err
	}
	return c, nil
}

// CatalogueRequest (kind 7704) asks the DVM to send the catalogue again.
type CatalogueRequest struct {
	To string // DVM pubkey
}

// Validate checks the recipient; call it before Rumor.
func (r CatalogueRequest) Validate() error {
	return checkPubkey(KindCatalogueRequest, TagRecipient, r.To)
}

// Rumor builds the unsigned kind-7704 rumor from senderPub (the worker).
func (r CatalogueRequest) Rumor(senderPub string) nostr.Event {
	return newRumor(KindCatalogueRequest, senderPub, r.To, "")
}

// ParseCatalogueRequest reads a kind-7704 rumor.
func ParseCatalogueRequest(ev nostr.Event) (CatalogueRequest, error) {
	_, to, err := header(ev, KindCatalogueRequest)
	if err != nil {
		return CatalogueRequest{}, err
	}
	if err := checkEmptyContent(KindCatalogueRequest, ev.Content); err != nil {
		return CatalogueRequest{}, err
	}
	return CatalogueRequest{To: to}, nil
}
