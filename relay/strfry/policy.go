// Package strfry is a write-policy plugin for operators who already run strfry: it reads
// strfry's plugin input (one JSON object per line) and answers one line each, echoing the
// event id, accepting only kind-1059 wraps whose single p tag is an allowed recipient and,
// optionally, that carry NIP-13 proof of work.
//
// strfry does not pass the NIP-42 AUTHed key to the plugin, and a wrap's author is a
// one-time key, so this mode cannot check who sent a wrap: only its recipient.
package strfry

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip13"
	"github.com/nbd-wtf/go-nostr/nip19"
)

// Input is one line strfry writes to the plugin.
type Input struct {
	Type       string          `json:"type"`
	Event      json.RawMessage `json:"event"`
	ReceivedAt int64           `json:"receivedAt"`
	SourceType string          `json:"sourceType"`
	SourceInfo string          `json:"sourceInfo"`
}

// Output is the plugin's answer.
type Output struct {
	ID     string `json:"id"`
	Action string `json:"action"` // accept, reject or shadowReject
	Msg    string `json:"msg,omitempty"`
}

// Policy decides on events.
type Policy struct {
	Allowed       func(pubkey string) bool
	MinPoW        int // 0: no proof of work required
	MaxEventBytes int // 0: no limit beyond strfry's own
}

func reject(id, msg string) Output { return Output{ID: id, Action: "reject", Msg: msg} }

// Decide answers one input line.
func (p *Policy) Decide(line []byte) Output {
	var in Input
	if err := json.Unmarshal(line, &in); err != nil {
		return reject("", "invalid: the plugin could not parse its input")
	}
	var ev nostr.Event
	if err := json.Unmarshal(in.Event, &ev); err != nil {
		return reject("", "invalid: the plugin input carries no readable event")
	}
	if in.Type != "new" {
		return reject(ev.ID, fmt.Sprintf("error: unexpected plugin input type %q", in.Type))
	}
	if !ev.CheckID() {
		return reject(ev.ID, "invalid: id is computed incorrectly")
	}
	if p.MaxEventBytes > 0 && len(in.Event) > p.MaxEventBytes {
		return reject(ev.ID, fmt.Sprintf("invalid: too big: event is %d bytes, the limit is %d", len(in.Event), p.MaxEventBytes))
	}
	if ev.Kind != 1059 {
		return reject(ev.ID, fmt.Sprintf("blocked: kind %d is not accepted here; this relay carries only gift wraps (1059)", ev.Kind))
	}
	var ps []string
	for _, t := range ev.Tags {
		if len(t) >= 2 && t[0] == "p" {
			ps = append(ps, t[1])
		}
	}
	if len(ps) != 1 || !nostr.IsValidPublicKey(ps[0]) {
		return reject(ev.ID, "invalid: a gift wrap must carry exactly one p tag naming its recipient")
	}
	if p.Allowed == nil || !p.Allowed(ps[0]) {
		return reject(ev.ID, "restricted: the wrap's recipient is not on this relay's whitelist")
	}
	if p.MinPoW > 0 {
		if d := nip13.Difficulty(ev.ID); d < p.MinPoW {
			return reject(ev.ID, fmt.Sprintf("pow: difficulty %d is below the required %d", d, p.MinPoW))
		}
		// A nonce committing to a lower target got lucky; NIP-13 says to refuse it.
		if n := ev.Tags.Find("nonce"); n != nil && len(n) >= 3 {
			if c, err := strconv.Atoi(n[2]); err != nil || c < p.MinPoW {
				return reject(ev.ID, fmt.Sprintf("pow: committed target %q is below the required %d", n[2], p.MinPoW))
			}
		}
	}
	return Output{ID: ev.ID, Action: "accept"}
}

// maxLine bounds one input line (strfry's own limit is lower).
const maxLine = 4 << 20

// Run answers every line of in on out until in ends. Output is flushed after every line,
// as strfry waits for each answer.
func (p *Policy) Run(in io.Reader, out io.Writer, log *slog.Logger) error {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		var o Output
		if errors.Is(err, errLineTooLong) {
			o = reject("", "invalid: the plugin input line is too long")
		} else if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("strfry policy: read: %w", err)
		} else if len(strings.TrimSpace(string(line))) == 0 {
			continue
		} else {
			o = p.Decide(line)
		}
		if o.Action != "accept" && log != nil {
			log.Info("wrap refused", "id", o.ID, "reason", o.Msg)
		}
		if err := enc.Encode(o); err != nil {
			return fmt.Errorf("strfry policy: write: %w", err)
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("strfry policy: write: %w", err)
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line without keeping more than maxLine bytes of it.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if len(buf)+len(chunk) > maxLine {
			for isPrefix && err == nil {
				_, isPrefix, err = r.ReadLine()
			}
			return []byte{}, errLineTooLong
		}
		buf = append(buf, chunk...)
		if err != nil {
			return buf, err
		}
		if !isPrefix {
			return buf, nil
		}
	}
}

// AllowList is the set of allowed recipients: fixed keys plus a file re-read whenever it
// changes. The file is either powdo-relay's access.json (its allowed keys minus banned
// ones) or a text list of hex pubkeys or npubs, one per line, # for comments.
type AllowList struct {
	Static []string
	Path   string

	mu      sync.Mutex
	keys    map[string]bool
	mod     time.Time
	size    int64
	checked time.Time
}

// Allowed implements Policy.Allowed.
func (a *AllowList) Allowed(pk string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.keys == nil || time.Since(a.checked) > time.Second {
		a.checked = time.Now()
		if err := a.reloadLocked(); err != nil {
			slog.Error("strfry policy: allow list", "err", err)
		}
	}
	return a.keys[pk]
}

// Load reads the list now, reporting errors (call it once at start).
func (a *AllowList) Load() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checked = time.Now()
	return a.reloadLocked()
}

func (a *AllowList) reloadLocked() error {
	keys := map[string]bool{}
	for _, k := range a.Static {
		pk, err := parseKey(k)
		if err != nil {
			return err
		}
		keys[pk] = true
	}
	if a.Path == "" {
		a.keys = keys
		return nil
	}
	st, err := os.Stat(a.Path)
	if err != nil {
		if a.keys == nil {
			a.keys = keys
		}
		return fmt.Errorf("allow list %s: %w", a.Path, err)
	}
	if a.keys != nil && st.ModTime().Equal(a.mod) && st.Size() == a.size {
		return nil
	}
	b, err := os.ReadFile(a.Path)
	if err != nil {
		return fmt.Errorf("allow list %s: %w", a.Path, err)
	}
	if err := parseList(b, keys); err != nil {
		if a.keys == nil {
			a.keys = map[string]bool{}
		}
		return fmt.Errorf("allow list %s: %w", a.Path, err) // keep the previous list
	}
	a.keys, a.mod, a.size = keys, st.ModTime(), st.Size()
	return nil
}

func parseKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "npub1") {
		prefix, v, err := nip19.Decode(s)
		if err != nil || prefix != "npub" {
			return "", fmt.Errorf("bad npub %q", s)
		}
		return v.(string), nil
	}
	s = strings.ToLower(s)
	if !nostr.IsValidPublicKey(s) {
		return "", fmt.Errorf("bad pubkey %q", s)
	}
	return s, nil
}

func parseList(b []byte, keys map[string]bool) error {
	trimmed := strings.TrimSpace(string(b))
	if strings.HasPrefix(trimmed, "{") {
		var st struct {
			Allowed map[string]json.RawMessage `json:"allowed"`
			Banned  map[string]json.RawMessage `json:"banned"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("parse access file: %w", err)
		}
		for pk := range st.Allowed {
			if _, banned := st.Banned[pk]; !banned && nostr.IsValidPublicKey(pk) {
				keys[pk] = true
			}
		}
		return nil
	}
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		pk, err := parseKey(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		keys[pk] = true
	}
	return nil
}
