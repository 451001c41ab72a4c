package evidence

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"

	"pow.do/shared/bundle"
	"pow.do/shared/proto"
)

// Limits on what Verify reads: an export comes from anyone.
const (
	maxEntries    = 200_000
	maxExportJSON = 64 << 20
	maxEventJSON  = 1 << 20
	maxBundle     = proto.MaxBlobBytes
	maxRatio      = 200 // uncompressed : compressed, for deflated entries
)

// Level grades a finding.
type Level string

const (
	Fail Level = "FAIL" // the evidence does not hold
	Warn Level = "WARN" // worth knowing, not a failure (e.g. a gap the DVM recorded at ingest)
	Info Level = "INFO"
)

// Finding is one result of Verify.
type Finding struct {
	Level Level
	Where string // "export", "segment <session>/<index>", "chain <session>"
	Msg   string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s: %s", f.Level, f.Where, f.Msg)
}

// Report is the outcome of Verify.
type Report struct {
	DVM       string // signer of the export ("" if unsigned or the signature failed)
	Segments  int    // listed in export.json
	Verified  int    // segments whose every check passed
	Findings  []Finding
	hasFailed bool
}

// OK reports whether nothing failed.
func (r *Report) OK() bool { return !r.hasFailed }

func (r *Report) add(l Level, where, format string, a ...any) {
	r.Findings = append(r.Findings, Finding{Level: l, Where: where, Msg: fmt.Sprintf(format, a...)})
	if l == Fail {
		r.hasFailed = true
	}
}

// Options tune Verify.
type Options struct {
	// DVM, if set, is the pubkey (hex) the export must be signed by.
	DVM string
}

// Verify checks an export. The error is only for an archive that cannot be read at all;
// everything else is a finding in the report.
func Verify(ra io.ReaderAt, size int64, opt Options) (*Report, error) {
	rep := &Report{}
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, fmt.Errorf("verify: not a readable ZIP archive: %w", err)
	}
	if len(zr.File) > maxEntries {
		return nil, fmt.Errorf("verify: %d entries, more than %d", len(zr.File), maxEntries)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		switch {
		case f.Name == "" || strings.HasPrefix(f.Name, "/") || strings.Contains(f.Name, "\\") ||
			strings.Contains(f.Name, "..") || path.Clean(f.Name) != f.Name:
			rep.add(Fail, "export", "entry name %q is not a safe relative path", clip(f.Name))
			continue
		case files[f.Name] != nil:
			rep.add(Fail, "export", "entry %q appears twice", f.Name)
			continue
		}
		files[f.Name] = f
	}
	used := map[string]bool{ReadmeName: true}

	expJSON, err := readEntry(files, ExportName, maxExportJSON)
	if err != nil {
		rep.add(Fail, "export", "%v", err)
		return rep, nil
	}
	used[ExportName] = true
	var exp Export
	if err := json.Unmarshal(expJSON, &exp); err != nil {
		rep.add(Fail, "export", "%s is not valid JSON: %v", ExportName, err)
		return rep, nil
	}
	if exp.V != 1 || exp.Type != Type {
		rep.add(Fail, "export", "%s has v=%d type=%q; want v=1 type=%q", ExportName, exp.V, exp.Type, Type)
		return rep, nil
	}
	rep.Segments = len(exp.Segments)
	used[SignatureName] = true
	rep.DVM = checkSignature(rep, files, expJSON, exp, opt)

	keys := map[string][32]byte{}
	for _, w := range exp.Workers {
		b, err := hex.DecodeString(w.ConversationKey)
		if err != nil || len(b) != 32 {
			if w.ConversationKey != "" {
				rep.add(Fail, "export", "worker %s: conversation key is not 64 hex characters", w.Pubkey)
			}
			continue
		}
		keys[w.Pubkey] = [32]byte(b)
	}

	type link struct {
		seg        Segment
		ox, prev   string
		trustworth bool // every check of the segment passed
	}
	sessions := map[string][]link{}
	seenSeg := map[string]bool{}
	for _, seg := range exp.Segments {
		where := fmt.Sprintf("segment %s/%d", seg.Session, seg.Index)
		if seenSeg[where] {
			rep.add(Fail, where, "listed twice in %s", ExportName)
			continue
		}
		seenSeg[where] = true
		if seg.Dir != SegmentDir(seg.Session, seg.Index) {
			rep.add(Fail, where, "directory %q does not match the segment (want %q)", clip(seg.Dir), SegmentDir(seg.Session, seg.Index))
			continue
		}
		before := len(rep.Findings)
		ox, prev := checkSegment(rep, where, files, used, seg, exp.DVM, keys)
		ok := !hasFail(rep.Findings[before:])
		if ok {
			rep.Verified++
		}
		sessions[seg.Worker+"/"+seg.Session] = append(sessions[seg.Worker+"/"+seg.Session], link{seg: seg, ox: ox, prev: prev, trustworth: ok})
	}
	for name := range files {
		if !used[name] {
			rep.add(Fail, "export", "unexpected file %q: not listed in %s", name, ExportName)
		}
	}

	// The chain, per session, over what the worker signed.
	var ids []string
	for k := range sessions {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	for _, k := range ids {
		links := sessions[k]
		sort.Slice(links, func(i, j int) bool { return links[i].seg.Index < links[j].seg.Index })
		where := "chain " + links[0].seg.Session
		for i, l := range links {
			idx := l.seg.Index
			if !l.trustworth {
				continue // its own failure is reported; its prev cannot be trusted
			}
			switch {
			case idx == 0:
				if l.prev != "" {
					rep.add(Fail, where, "segment 0 names a previous segment (prev %s): chain broken", l.prev)
				}
			case i == 0:
				rep.add(Info, where, "starts at segment %d; earlier segments are outside this export", idx)
			case links[i-1].seg.Index != idx-1:
				missing := fmt.Sprintf("segment %d", idx-1)
				if links[i-1].seg.Index < idx-2 {
					missing = fmt.Sprintf("segments %d-%d", links[i-1].seg.Index+1, idx-1)
				}
				if l.seg.ChainStatus == "gap" {
					rep.add(Warn, where, "%s never reached the DVM (a gap recorded at ingest): the chain cannot be checked between %d and %d",
						missing, links[i-1].seg.Index, idx)
				} else {
					rep.add(Fail, where, "%s missing from this export although the DVM had linked segment %d to it (chain status %q): removed?",
						missing, idx, l.seg.ChainStatus)
				}
			case !links[i-1].trustworth:
				rep.add(Fail, where, "cannot check the link %d→%d: segment %d failed its own checks", idx-1, idx, idx-1)
			case l.prev != links[i-1].ox:
				rep.add(Fail, where, "chain broken: segment %d names prev %s, but segment %d's bundle hashes to %s",
					idx, l.prev, idx-1, links[i-1].ox)
			}
		}
	}
	return rep, nil
}

func hasFail(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == Fail {
			return true
		}
	}
	return false
}

// checkSignature checks export.sig.json and returns the signer, or "".
func checkSignature(rep *Report, files map[string]*zip.File, expJSON []byte, exp Export, opt Options) string {
	raw, err := readEntry(files, SignatureName, maxEventJSON)
	if err != nil {
		rep.add(Fail, "export", "not signed by a DVM: %v", err)
		return ""
	}
	var ev nostr.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		rep.add(Fail, "export", "%s is not a Nostr event: %v", SignatureName, err)
		return ""
	}
	sum := sha256.Sum256(expJSON)
	x := ""
	for _, t := range ev.Tags {
		if len(t) >= 2 && t[0] == "x" {
			x = t[1]
		}
	}
	switch {
	case ev.Kind != Kind:
		rep.add(Fail, "export", "%s has kind %d, want %d", SignatureName, ev.Kind, Kind)
	case !ev.CheckID():
		rep.add(Fail, "export", "%s: event id is not the hash of the event", SignatureName)
	case !checkSig(ev):
		rep.add(Fail, "export", "%s: the DVM's signature does not verify", SignatureName)
	case x != hex.EncodeToString(sum[:]):
		rep.add(Fail, "export", "%s was changed after signing: it hashes to %x, the signature covers %s", ExportName, sum, clip(x))
	case ev.PubKey != exp.DVM:
		rep.add(Fail, "export", "signed by %s, but %s names DVM %s", ev.PubKey, ExportName, clip(exp.DVM))
	case opt.DVM != "" && ev.PubKey != opt.DVM:
		rep.add(Fail, "export", "signed by %s, not by the expected DVM %s", ev.PubKey, opt.DVM)
	default:
		rep.add(Info, "export", "signed by DVM %s at %s", ev.PubKey, ev.CreatedAt.Time().UTC().Format("2006-01-02 15:04:05Z"))
		return ev.PubKey
	}
	return ""
}

func checkSig(ev nostr.Event) bool {
	ok, err := ev.CheckSignature()
	return err == nil && ok
}

// checkSegment checks one segment and returns the ox and prev the worker signed ("" when
// they could not be established).
func checkSegment(rep *Report, where string, files map[string]*zip.File, used map[string]bool, seg Segment, dvm string, keys map[string][32]byte) (string, string) {
	listed := map[string]File{}
	for _, f := range seg.Files {
		name := path.Join(seg.Dir, f.Name)
		if strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
			rep.add(Fail, where, "file name %q is not a safe relative path", clip(f.Name))
			continue
		}
		used[name] = true
		listed[f.Name] = f
	}
	// read returns a listed file's bytes after checking them against export.json.
	read := func(name string, limit int64) ([]byte, bool) {
		f, ok := listed[name]
		if !ok {
			rep.add(Fail, where, "%s is not listed in %s", name, ExportName)
			return nil, false
		}
		b, err := readEntry(files, path.Join(seg.Dir, name), limit)
		if err != nil {
			rep.add(Fail, where, "%v", err)
			return nil, false
		}
		if got := sha256Hex(b); got != f.SHA256 || int64(len(b)) != f.Size {
			rep.add(Fail, where, "%s hashes to %s (%d bytes); %s lists %s (%d bytes)", name, got, len(b), ExportName, clip(f.SHA256), f.Size)
		}
		return b, true
	}

	// 1. The seal: signed by the worker.
	sealJSON, ok := read(SealName, maxEventJSON)
	if !ok {
		return "", ""
	}
	var sealEv nostr.Event
	if err := json.Unmarshal(sealJSON, &sealEv); err != nil {
		rep.add(Fail, where, "%s is not a Nostr event: %v", SealName, err)
		return "", ""
	}
	switch {
	case sealEv.Kind != proto.KindSeal || len(sealEv.Tags) != 0:
		rep.add(Fail, where, "%s is kind %d with %d tags, not a seal (kind 13, no tags)", SealName, sealEv.Kind, len(sealEv.Tags))
		return "", ""
	case !sealEv.CheckID():
		rep.add(Fail, where, "%s: event id is not the hash of the seal", SealName)
		return "", ""
	case !checkSig(sealEv):
		rep.add(Fail, where, "%s: the worker's signature does not verify", SealName)
		return "", ""
	case sealEv.PubKey != seg.Worker:
		rep.add(Fail, where, "%s is signed by %s, not by the segment's worker %s", SealName, sealEv.PubKey, seg.Worker)
		return "", ""
	}

	// 2. The rumor inside the seal is rumor.json.
	rumorJSON, ok := read(RumorName, maxEventJSON)
	if !ok {
		return "", ""
	}
	var rumor nostr.Event
	if err := json.Unmarshal(rumorJSON, &rumor); err != nil {
		rep.add(Fail, where, "%s is not a Nostr event: %v", RumorName, err)
		return "", ""
	}
	ck, haveKey := keys[seg.Worker]
	if !haveKey {
		rep.add(Fail, where, "no conversation key for worker %s in %s: the rumor cannot be tied to the signed seal", seg.Worker, ExportName)
		return "", ""
	}
	inner, err := nip44.Decrypt(sealEv.Content, ck)
	if err != nil {
		rep.add(Fail, where, "the seal does not decrypt with the exported conversation key: %v", err)
		return "", ""
	}
	var sealed nostr.Event
	if err := json.Unmarshal([]byte(inner), &sealed); err != nil {
		rep.add(Fail, where, "the seal holds no rumor: %v", err)
		return "", ""
	}
	switch {
	case !sealed.CheckID():
		rep.add(Fail, where, "the rumor inside the seal has an id that is not its hash")
		return "", ""
	case sealed.ID != rumor.ID || !rumor.CheckID():
		rep.add(Fail, where, "%s (id %s) differs from the rumor the worker sealed (id %s)", RumorName, clip(rumor.ID), sealed.ID)
		return "", ""
	case sealed.PubKey != sealEv.PubKey:
		rep.add(Fail, where, "the sealed rumor claims author %s, the seal is signed by %s", clip(sealed.PubKey), sealEv.PubKey)
		return "", ""
	case sealed.ID != seg.RumorID:
		rep.add(Fail, where, "the sealed rumor is %s, %s lists %s", sealed.ID, ExportName, clip(seg.RumorID))
	}
	sf, err := proto.ParseSegmentFile(sealed)
	if err != nil {
		rep.add(Fail, where, "the sealed rumor is not a valid segment message: %v", err)
		return "", ""
	}
	if dvm != "" && sf.To != dvm {
		rep.add(Fail, where, "the sealed rumor is addressed to %s, not to the exporting DVM %s", sf.To, dvm)
	}
	if sf.Session != seg.Session || sf.Index != seg.Index || sf.OX != seg.OX || sf.X != seg.X ||
		!sf.Start.Equal(seg.Start) || !sf.End.Equal(seg.End) {
		rep.add(Fail, where, "the signed message (session %s, index %d, ox %s, %s–%s) differs from %s's record",
			sf.Session, sf.Index, sf.OX, sf.Start.UTC().Format("15:04:05"), sf.End.UTC().Format("15:04:05"), ExportName)
	}

	// 3. The bundle is what the worker signed.
	var m bundle.Manifest
	if _, ok := listed[BundleName]; ok {
		zipBytes, ok := read(BundleName, maxBundle)
		if !ok {
			return "", ""
		}
		if got := sha256Hex(zipBytes); got != sf.OX {
			rep.add(Fail, where, "%s hashes to %s, but the worker signed ox %s", BundleName, got, sf.OX)
		}
		b, err := bundle.OpenBytes(zipBytes, bundle.DefaultLimits())
		if err != nil {
			rep.add(Fail, where, "%s: %v", BundleName, err)
			return "", ""
		}
		m = b.Manifest
	} else {
		var ok bool
		if m, ok = rebuild(rep, where, read, sf.OX); !ok {
			return "", ""
		}
	}
	if m.Worker != sealEv.PubKey || m.Session != sf.Session || m.Index != sf.Index || !m.Start.Equal(sf.Start) || !m.End.Equal(sf.End) {
		rep.add(Fail, where, "the manifest (worker %s, session %s, index %d) differs from the signed message", m.Worker, m.Session, m.Index)
	}
	if m.Prev != seg.Prev {
		rep.add(Fail, where, "the manifest's prev %s differs from %s's %s", m.Prev, ExportName, clip(seg.Prev))
	}
	return sf.OX, m.Prev
}

// rebuild checks a segment exported without its bundle: the manifest's files hash right,
// and the reference writer rebuilds a ZIP whose hash is the signed ox.
func rebuild(rep *Report, where string, read func(string, int64) ([]byte, bool), ox string) (bundle.Manifest, bool) {
	mj, ok := read(ManifestName, maxEventJSON*4)
	if !ok {
		return bundle.Manifest{}, false
	}
	aj, ok := read(ActivityName, maxEventJSON*4)
	if !ok {
		return bundle.Manifest{}, false
	}
	var m bundle.Manifest
	var act bundle.Activity
	if err := json.Unmarshal(mj, &m); err != nil {
		rep.add(Fail, where, "%s: %v", ManifestName, err)
		return m, false
	}
	if err := json.Unmarshal(aj, &act); err != nil {
		rep.add(Fail, where, "%s: %v", ActivityName, err)
		return m, false
	}
	var shots []bundle.Screenshot
	for _, f := range m.Files {
		var data []byte
		if f.Name == bundle.ActivityName {
			data = aj
		} else {
			if data, ok = read(f.Name, maxBundle); !ok {
				return m, false
			}
			shots = append(shots, bundle.Screenshot{Name: f.Name, TakenAt: f.TakenAt, JPEG: data})
		}
		if got := sha256Hex(data); got != f.SHA256 {
			rep.add(Fail, where, "%s hashes to %s, the manifest says %s", f.Name, got, f.SHA256)
		}
	}
	built, err := bundle.Build(m, act, shots)
	if err != nil {
		rep.add(Fail, where, "cannot rebuild the bundle: %v", err)
		return m, false
	}
	if built.OX != ox {
		rep.add(Fail, where, "the rebuilt bundle hashes to %s, not to the signed ox %s (bundle not kept by the DVM; the tracker may not use the reference writer)", built.OX, ox)
	}
	return m, true
}

// readEntry reads a whole entry, refusing more than limit bytes or a suspicious
// compression ratio, counted while reading.
func readEntry(files map[string]*zip.File, name string, limit int64) ([]byte, error) {
	f, ok := files[name]
	if !ok {
		return nil, fmt.Errorf("%s is missing from the archive", name)
	}
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%s declares %d bytes, more than %d", name, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		if errors.Is(err, zip.ErrChecksum) {
			return nil, fmt.Errorf("%s is corrupt in the archive (CRC mismatch)", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	if f.Method == zip.Deflate && len(b) > 1<<20 && uint64(len(b)) > maxRatio*max(f.CompressedSize64, 1) {
		return nil, fmt.Errorf("%s inflates more than %d:1", name, maxRatio)
	}
	return b, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
