// Package evidence writes and checks work-diary evidence exports: a ZIP that lets anyone
// check, without trusting the DVM, that each segment's bundle is what the worker signed,
// and that the segments form an unbroken hash chain.
//
// Layout:
//
//	README.txt
//	export.json                  what is in the export (format below), with every file's sha256
//	export.sig.json              a kind-7707 event by the DVM: tag x = sha256(export.json)
//	segments/<session>-<index>/seal.json    the worker's signed kind-13 seal, as received
//	segments/<session>-<index>/rumor.json   the kind-15 rumor inside it
//	segments/<session>-<index>/bundle.zip   the plaintext bundle (manifest, activity, screenshots)
//
// When the DVM did not keep a segment's bundle, manifest.json, activity.json and
// screenshots/NNN.jpg take bundle.zip's place (the reference bundle writer is
// deterministic, so Verify rebuilds the ZIP and compares its hash with the signed ox).
//
// The seal's content is NIP-44-encrypted to the DVM. export.json carries, per worker, the
// NIP-44 conversation key of that worker and the DVM, so a verifier can decrypt the seal
// and compare the rumor inside with rumor.json. That key opens only seals between this
// worker and this DVM, which travel inside gift wraps addressed to one party or the
// other; it is no signing key and proves nothing on its own.
package evidence

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strconv"
	"time"

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"

	"pow.do/shared/proto"
)

// Kind is the event kind of the DVM's signature over export.json.
const Kind = 7707

// File names inside an export.
const (
	ExportName    = "export.json"
	SignatureName = "export.sig.json"
	ReadmeName    = "README.txt"
	SealName      = "seal.json"
	RumorName     = "rumor.json"
	BundleName    = "bundle.zip"
	ManifestName  = "manifest.json"
	ActivityName  = "activity.json"
	Type          = "powdo-evidence"
)

// Export is export.json.
type Export struct {
	V         int       `json:"v"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	DVM       string    `json:"dvm"` // the DVM's pubkey (hex); "" in an unsigned export
	Range     Range     `json:"range"`
	Workers   []Worker  `json:"workers"`
	Segments  []Segment `json:"segments"`
}

// Range says what was exported.
type Range struct {
	From string `json:"from"` // first day, YYYY-MM-DD
	To   string `json:"to"`   // last day
	TZ   string `json:"tz"`   // the zone the days are calendar days of
}

// Worker is a worker whose segments are in the export.
type Worker struct {
	Pubkey string `json:"pubkey"`
	Name   string `json:"name"`
	// ConversationKey is the NIP-44 conversation key of this worker and the DVM (hex);
	// "" when the exporting DVM had no key to derive it.
	ConversationKey string `json:"conversation_key"`
}

// Segment is one exported segment, as the DVM recorded it.
type Segment struct {
	Dir              string    `json:"dir"`
	Worker           string    `json:"worker"`
	Session          string    `json:"session"`
	Index            int       `json:"index"`
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`
	RumorID          string    `json:"rumor_id"`
	X                string    `json:"x"`
	OX               string    `json:"ox"`
	Prev             string    `json:"prev"`
	ChainStatus      string    `json:"chain_status"` // as recorded at ingest: verified, gap or broken
	ReceivedAt       time.Time `json:"received_at"`
	KimaiState       string    `json:"kimai_state"`
	KimaiTimesheetID int64     `json:"kimai_timesheet_id,omitempty"`
	Files            []File    `json:"files"`
}

// File is one file of a segment's directory.
type File struct {
	Name   string `json:"name"` // relative to the segment's directory
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// SegmentDir is the directory of a segment inside the export.
func SegmentDir(session string, index int) string {
	return "segments/" + session + "-" + strconv.Itoa(index)
}

// Writer streams an export into a ZIP.
type Writer struct {
	zw  *zip.Writer
	sk  string
	exp Export
	wk  map[string]bool
	err error
}

// NewWriter starts an export. sk is the DVM's secret key (hex) or "" for an unsigned
// export without conversation keys.
func NewWriter(w io.Writer, r Range, sk string, now time.Time) (*Writer, error) {
	ew := &Writer{zw: zip.NewWriter(w), sk: sk, wk: map[string]bool{},
		exp: Export{V: 1, Type: Type, CreatedAt: now.UTC().Truncate(time.Second), Range: r, Workers: []Worker{}, Segments: []Segment{}}}
	if sk != "" {
		pub, err := proto.PublicKey(sk)
		if err != nil {
			return nil, errors.New("evidence: the DVM secret key is not valid")
		}
		ew.exp.DVM = pub
	}
	if err := ew.put(ReadmeName, zip.Deflate, []byte(readme)); err != nil {
		return nil, err
	}
	return ew, nil
}

// AddWorker records a worker (once) with its conversation key.
func (ew *Writer) AddWorker(pubkey, name string) error {
	if ew.wk[pubkey] {
		return nil
	}
	w := Worker{Pubkey: pubkey, Name: name}
	if ew.sk != "" {
		ck, err := nip44.GenerateConversationKey(pubkey, ew.sk)
		if err != nil {
			return fmt.Errorf("evidence: conversation key for %s: %w", pubkey, errors.New("invalid pubkey"))
		}
		w.ConversationKey = hex.EncodeToString(ck[:])
	}
	ew.wk[pubkey] = true
	ew.exp.Workers = append(ew.exp.Workers, w)
	return nil
}

// Part is one file of a segment to write.
type Part struct {
	Name  string    // relative name: seal.json, rumor.json, bundle.zip, screenshots/001.jpg…
	Data  []byte    // either Data
	From  io.Reader // or From (streamed)
	Store bool      // store instead of deflate (already compressed data)
}

// AddSegment writes a segment's files and records it. seg.Files and seg.Dir are filled in.
func (ew *Writer) AddSegment(seg Segment, parts []Part) error {
	if !ew.wk[seg.Worker] {
		return fmt.Errorf("evidence: segment %s/%d: worker %s not added", seg.Session, seg.Index, seg.Worker)
	}
	seg.Dir = SegmentDir(seg.Session, seg.Index)
	seg.Files = nil
	for _, p := range parts {
		method := zip.Deflate
		if p.Store {
			method = zip.Store
		}
		src := p.From
		if src == nil {
			src = bytes.NewReader(p.Data)
		}
		sum, n, err := ew.stream(path.Join(seg.Dir, p.Name), method, src)
		if err != nil {
			return fmt.Errorf("evidence: segment %s/%d %s: %w", seg.Session, seg.Index, p.Name, err)
		}
		seg.Files = append(seg.Files, File{Name: p.Name, SHA256: sum, Size: n})
	}
	ew.exp.Segments = append(ew.exp.Segments, seg)
	return nil
}

// Close writes export.json and, with a key, its signature, and finishes the ZIP.
func (ew *Writer) Close() error {
	if ew.err != nil {
		return ew.err
	}
	body, err := json.MarshalIndent(ew.exp, "", "  ")
	if err != nil {
		return fmt.Errorf("evidence: encode %s: %w", ExportName, err)
	}
	if err := ew.put(ExportName, zip.Deflate, body); err != nil {
		return err
	}
	if ew.sk != "" {
		sum := sha256.Sum256(body)
		ev := nostr.Event{Kind: Kind, CreatedAt: nostr.Timestamp(ew.exp.CreatedAt.Unix()), Content: "",
			Tags: nostr.Tags{{"x", hex.EncodeToString(sum[:])}, {proto.TagVersion, proto.Version}}}
		if err := ev.Sign(ew.sk); err != nil {
			return errors.New("evidence: sign the export failed") // go-nostr's message may repeat the key
		}
		sig, err := json.MarshalIndent(ev, "", "  ")
		if err != nil {
			return fmt.Errorf("evidence: encode %s: %w", SignatureName, err)
		}
		if err := ew.put(SignatureName, zip.Deflate, sig); err != nil {
			return err
		}
	}
	if err := ew.zw.Close(); err != nil {
		return fmt.Errorf("evidence: finish ZIP: %w", err)
	}
	return nil
}

func (ew *Writer) put(name string, method uint16, data []byte) error {
	_, _, err := ew.stream(name, method, bytes.NewReader(data))
	return err
}

func (ew *Writer) stream(name string, method uint16, r io.Reader) (string, int64, error) {
	if ew.err != nil {
		return "", 0, ew.err
	}
	fw, err := ew.zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: ew.exp.CreatedAt})
	if err != nil {
		ew.err = fmt.Errorf("evidence: add %s: %w", name, err)
		return "", 0, ew.err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(fw, h), r)
	if err != nil {
		ew.err = fmt.Errorf("evidence: write %s: %w", name, err)
		return "", 0, ew.err
	}
	return hexSum(h), n, nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

const readme = `pow.do evidence export
======================

This archive holds work-diary evidence exported by a pow.do DVM. Check it with

    powdo-dvm verify THIS-FILE.zip

which checks, without trusting the DVM:

  * export.sig.json: the DVM's signature (a Nostr event of kind 7707) over export.json;
  * every file's sha256 against export.json, and that no file is missing or added;
  * each segment's seal.json: a kind-13 Nostr event signed by the worker's key;
  * that the seal, decrypted with the worker's conversation key from export.json,
    contains exactly rumor.json (the kind-15 message naming the bundle's hashes);
  * that bundle.zip hashes to the "ox" the worker signed, and that every file inside it
    (manifest.json, activity.json, screenshots) hashes to what its manifest says;
  * the hash chain: each segment's manifest names the previous segment's ox as "prev".

Each segments/<session>-<index>/bundle.zip is the worker's original bundle: open it to
see the screenshots (screenshots/NNN.jpg), the activity (activity.json) and the
manifest (manifest.json).
`
