package engineapi

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Settings are the tracker's settings. Fields marked read-only are filled in by the
// engine and ignored by SaveSettings.
type Settings struct {
	Relays   []string `json:"relays"`   // wss:// (ws:// for 127.0.0.1 tests)
	Blossoms []string `json:"blossoms"` // https:// (http:// for tests); the first is primary

	DVMNpub     string `json:"dvm_npub"`    // read-only: from the invite
	Fingerprint string `json:"fingerprint"` // read-only: pairing fingerprint
	OwnNpub     string `json:"own_npub"`    // read-only: this worker's key

	ActivityWatchURL string `json:"activitywatch_url"` // e.g. http://localhost:5600
	ActivityWatchKey string `json:"activitywatch_key"` // optional API key

	JPEGQuality  int      `json:"jpeg_quality"`  // 10–100
	ExcludedApps []string `json:"excluded_apps"` // no screenshot while one of these is focused

	DataDir     string `json:"data_dir"`      // read-only
	DiskQuotaMB int64  `json:"disk_quota_mb"` // outbox quota; 0 means none
	DiskUsedMB  int64  `json:"disk_used_mb"`  // read-only
}

// Limits on settings values.
const (
	MinJPEGQuality   = 10
	MaxJPEGQuality   = 100
	MaxEndpoints     = 10
	MaxExcludedApps  = 100
	MinPassphraseLen = 8
)

// WithEditable returns cur with the editable fields taken from in. Engines store the
// result, so read-only fields cannot be changed from the UI.
func (cur Settings) WithEditable(in Settings) Settings {
	out := cur
	out.Relays = clean(in.Relays)
	out.Blossoms = clean(in.Blossoms)
	out.ActivityWatchURL = strings.TrimSpace(in.ActivityWatchURL)
	out.ActivityWatchKey = strings.TrimSpace(in.ActivityWatchKey)
	out.JPEGQuality = in.JPEGQuality
	out.ExcludedApps = clean(in.ExcludedApps)
	out.DiskQuotaMB = in.DiskQuotaMB
	return out
}

// Validate checks the editable fields and returns a ProblemInvalidInput naming the
// first wrong one.
func (s Settings) Validate() error {
	if len(s.Relays) == 0 {
		return invalid("At least one relay is needed.", "Add the relay address from your invite (wss://…).")
	}
	if len(s.Relays) > MaxEndpoints || len(s.Blossoms) > MaxEndpoints {
		return invalid(fmt.Sprintf("At most %d relays and %d Blossom servers.", MaxEndpoints, MaxEndpoints), "Remove some addresses.")
	}
	for _, r := range s.Relays {
		if err := checkURL(r, "wss", "ws"); err != nil {
			return invalid(fmt.Sprintf("Relay %q: %v.", r, err), "Relay addresses look like wss://relay.example.com.")
		}
	}
	if len(s.Blossoms) == 0 {
		return invalid("At least one Blossom server is needed.", "Add the Blossom address from your invite (https://…).")
	}
	for _, b := range s.Blossoms {
		if err := checkURL(b, "https", "http"); err != nil {
			return invalid(fmt.Sprintf("Blossom server %q: %v.", b, err), "Blossom addresses look like https://blossom.example.com.")
		}
	}
	if s.ActivityWatchURL != "" {
		if err := checkURL(s.ActivityWatchURL, "http", "https"); err != nil {
			return invalid(fmt.Sprintf("ActivityWatch address %q: %v.", s.ActivityWatchURL, err), "The default is http://localhost:5600; leave it empty to use the built-in watcher.")
		}
	}
	if s.JPEGQuality < MinJPEGQuality || s.JPEGQuality > MaxJPEGQuality {
		return invalid(fmt.Sprintf("JPEG quality %d is outside %d–%d.", s.JPEGQuality, MinJPEGQuality, MaxJPEGQuality), "80 is a good balance of size and legibility.")
	}
	if len(s.ExcludedApps) > MaxExcludedApps {
		return invalid(fmt.Sprintf("At most %d excluded apps.", MaxExcludedApps), "Remove some entries.")
	}
	if s.DiskQuotaMB < 0 {
		return invalid("The disk quota cannot be negative.", "Use 0 for no quota.")
	}
	return nil
}

// CheckPassphrase enforces the minimum for passphrases that protect the worker key.
func CheckPassphrase(p string) error {
	if utf8.RuneCountInString(p) < MinPassphraseLen {
		return invalid(fmt.Sprintf("The passphrase must have at least %d characters.", MinPassphraseLen), "Choose a longer passphrase; a few unrelated words work well.")
	}
	return nil
}

func invalid(msg, action string) *Problem { return Fail(ProblemInvalidInput, msg, action, nil) }

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fmt.Errorf("must start with %s://", schemes[0])
	}
	if u.Host == "" {
		return fmt.Errorf("has no host")
	}
	if u.User != nil {
		return fmt.Errorf("must not contain a user name or password")
	}
	return nil
}

// clean trims entries and drops empty ones and duplicates, keeping order.
func clean(in []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}
