package bundle

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzOpen from the archive builders")

const corpusDir = "testdata/fuzz/FuzzOpen"

// FuzzOpen feeds arbitrary bytes to Open. Whatever comes in, Open returns either a
// refusal or a bundle whose every part checks out; it never panics, and ratio and size
// limits keep its memory proportional to the input.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := OpenBytes(data, DefaultLimits())
		if err != nil {
			if b != nil {
				t.Fatal("bundle returned along with an error")
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("an in-memory archive gave a non-refusal error: %v", err)
			}
			return
		}
		if err := b.Manifest.Validate(); err != nil {
			t.Fatalf("opened bundle has an invalid manifest: %v", err)
		}
		if err := b.Activity.Validate(b.Manifest.Start, b.Manifest.End); err != nil {
			t.Fatalf("opened bundle has invalid activity: %v", err)
		}
		for _, fe := range b.Manifest.Files {
			content, ok := b.File(fe.Name)
			if !ok || int64(len(content)) != fe.Size || sha256Hex(content) != fe.SHA256 {
				t.Fatalf("%s: present=%v, content does not match the manifest", fe.Name, ok)
			}
		}
	})
}

// corpusSeeds are the seeds kept in testdata: the valid bundle and every hostile archive
// that is refused under DefaultLimits and small enough to keep in the repository.
func corpusSeeds(tb testing.TB) map[string]hostile {
	seeds := map[string]hostile{"valid": {name: "valid", zip: validBundle(tb).ZIP}}
	for _, h := range hostileArchives(tb) {
		if h.lim == (Limits{}) && len(h.zip) <= 16<<10 {
			seeds[slug(h.name)] = h
		}
	}
	return seeds
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

// TestFuzzCorpus checks that each seed file still exercises what it is named after:
// "valid" opens, every other builder's file is refused with its own error. Files the
// fuzzer wrote (16 hex chars) are kept as regressions and run by FuzzOpen itself.
// Run with -update-corpus to rewrite the builders' files.
func TestFuzzCorpus(t *testing.T) {
	seeds := corpusSeeds(t)
	if *updateCorpus {
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, h := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", h.zip)
			if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, fi := range files {
		if fuzzerName.MatchString(fi.Name()) {
			continue
		}
		found++
		t.Run(fi.Name(), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(corpusDir, fi.Name()))
			if err != nil {
				t.Fatal(err)
			}
			data := parseSeed(t, raw)
			h, ok := seeds[fi.Name()]
			if !ok {
				t.Fatalf("no builder named %s: stale seed (delete it, rerun with -update-corpus)", fi.Name())
			}
			_, err = OpenBytes(data, DefaultLimits())
			if h.want == nil {
				if err != nil {
					t.Fatalf("valid seed refused: %v", err)
				}
				return
			}
			if !errors.Is(err, h.want) {
				t.Fatalf("err = %v, want %v", err, h.want)
			}
		})
	}
	if found != len(seeds) {
		t.Fatalf("%d builder seeds in %s, want %d (rerun with -update-corpus)", found, corpusDir, len(seeds))
	}
}

var fuzzerName = regexp.MustCompile(`^[0-9a-f]{16}$`)

func parseSeed(t *testing.T, raw []byte) []byte {
	t.Helper()
	lines := strings.SplitN(strings.TrimSpace(string(raw)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("not a go fuzz seed file")
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return []byte(s)
}
