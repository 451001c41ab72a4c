package diarytest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Tampering with evidence exports, the way a careful forger would: archives are rewritten
// whole, with correct ZIP checksums, so only the evidence's own hashes and signatures can
// give the change away.

// RewriteZip copies a ZIP, passing each entry through edit: it returns the new content,
// or keep=false to drop the entry. Methods are kept.
func RewriteZip(in []byte, edit func(name string, data []byte) (out []byte, keep bool, err error)) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		return nil, fmt.Errorf("rewrite zip: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("rewrite zip: %s: %w", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("rewrite zip: %s: %w", f.Name, err)
		}
		out, keep, err := edit(f.Name, data)
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: f.Method, Modified: f.Modified})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(out); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FlipScreenshotByte changes one byte in the middle of screenshots/001.jpg inside the
// bundle.zip of segment directory dir.
func FlipScreenshotByte(export []byte, dir string) ([]byte, error) {
	found := false
	out, err := RewriteZip(export, func(name string, data []byte) ([]byte, bool, error) {
		if name != dir+"/bundle.zip" {
			return data, true, nil
		}
		inner, err := RewriteZip(data, func(n string, d []byte) ([]byte, bool, error) {
			if n == "screenshots/001.jpg" {
				d = bytes.Clone(d)
				d[len(d)/2] ^= 0x01
				found = true
			}
			return d, true, nil
		})
		return inner, true, err
	})
	if err == nil && !found {
		err = fmt.Errorf("no %s/bundle.zip with screenshots/001.jpg", dir)
	}
	return out, err
}

// RemoveSegment drops the files of segment directory dir; with fromListing it also takes
// the segment out of export.json (which breaks the DVM's signature over it).
func RemoveSegment(export []byte, dir string, fromListing bool) ([]byte, error) {
	removed := 0
	out, err := RewriteZip(export, func(name string, data []byte) ([]byte, bool, error) {
		if strings.HasPrefix(name, dir+"/") {
			removed++
			return nil, false, nil
		}
		if name == "export.json" && fromListing {
			var exp map[string]any
			if err := json.Unmarshal(data, &exp); err != nil {
				return nil, false, err
			}
			var keep []any
			for _, s := range exp["segments"].([]any) {
				if s.(map[string]any)["dir"] != dir {
					keep = append(keep, s)
				}
			}
			exp["segments"] = keep
			b, err := json.MarshalIndent(exp, "", "  ")
			return b, true, err
		}
		return data, true, nil
	})
	if err == nil && removed == 0 {
		err = fmt.Errorf("no files under %s", dir)
	}
	return out, err
}

// SwapSealSignatures exchanges the signatures of two segments' seals.
func SwapSealSignatures(export []byte, dirA, dirB string) ([]byte, error) {
	sigs := map[string]string{}
	zr, err := zip.NewReader(bytes.NewReader(export), int64(len(export)))
	if err != nil {
		return nil, err
	}
	for _, f := range zr.File {
		if f.Name != dirA+"/seal.json" && f.Name != dirB+"/seal.json" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		var ev struct {
			Sig string `json:"sig"`
		}
		err = json.NewDecoder(rc).Decode(&ev)
		rc.Close()
		if err != nil {
			return nil, err
		}
		sigs[f.Name] = ev.Sig
	}
	if len(sigs) != 2 {
		return nil, fmt.Errorf("seals of %s and %s not both found", dirA, dirB)
	}
	other := map[string]string{dirA + "/seal.json": sigs[dirB+"/seal.json"], dirB + "/seal.json": sigs[dirA+"/seal.json"]}
	return RewriteZip(export, func(name string, data []byte) ([]byte, bool, error) {
		sig, ok := other[name]
		if !ok {
			return data, true, nil
		}
		var ev map[string]any
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, false, err
		}
		ev["sig"] = sig
		b, err := json.Marshal(ev)
		return b, true, err
	})
}
