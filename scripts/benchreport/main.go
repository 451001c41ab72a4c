// Command benchreport turns the raw outputs of one `make bench` run (a directory of
// `go test -bench` outputs and the nostr-tools bench's JSON line) into one table, each
// figure beside the reference measured in the same run.
//
//	go run ./scripts/benchreport DIR
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// results maps a benchmark name (without the -GOMAXPROCS suffix) to unit → value.
type results map[string]map[string]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseGoBench reads `go test -bench` output: "BenchmarkName-2  N  v1 unit1  v2 unit2 …".
// Log lines a benchmark prints (to the same stream) may split a result line after the
// name; the numbers are then taken from the next line that starts with them.
func parseGoBench(r io.Reader, into results) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pending := ""
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		rest := f
		if strings.HasPrefix(f[0], "Benchmark") {
			pending, rest = procSuffix.ReplaceAllString(f[0], ""), f[1:]
		} else if pending == "" {
			continue
		}
		if len(rest) < 3 {
			continue
		}
		if _, err := strconv.Atoi(rest[0]); err != nil {
			continue
		}
		if _, err := strconv.ParseFloat(rest[1], 64); err != nil {
			continue
		}
		m := into[pending]
		if m == nil {
			m = map[string]float64{}
			into[pending] = m
		}
		for i := 1; i+1 < len(rest); i += 2 {
			v, err := strconv.ParseFloat(rest[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q: %w", pending, rest[i], err)
			}
			m[rest[i+1]] = v
		}
		pending = ""
	}
	return sc.Err()
}

type report struct {
	r       results
	node    map[string]any
	missing []string
	rows    [][4]string
}

func (p *report) get(bench, unit string) (float64, bool) {
	v, ok := p.r[bench][unit]
	if !ok {
		p.missing = append(p.missing, bench+" "+unit)
	}
	return v, ok
}

func (p *report) row(figure, measured, reference, ratio string) {
	p.rows = append(p.rows, [4]string{figure, measured, reference, ratio})
}

func f1(v float64) string  { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string  { return strconv.FormatFloat(v, 'f', 2, 64) }
func kib(v float64) string { return f1(v/1024) + " KiB" }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreport DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	p := &report{r: results{}}
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %v\n", err)
			os.Exit(1)
		}
		err = parseGoBench(fh, p.r)
		fh.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "nostr-tools.json")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "{") && json.Unmarshal([]byte(l), &p.node) == nil {
				break
			}
		}
	}

	// DVM ingest on one core against the bare crypto of the same bundles.
	full, ok1 := p.get("BenchmarkIngest/ingest", "bundles/s")
	bare, ok2 := p.get("BenchmarkIngest/bare", "bundles/s")
	if ok1 && ok2 {
		p.row("DVM ingest, one core (GOMAXPROCS=1)", f1(full)+" bundles/s",
			"bare unwrap+sha256+AES-GCM: "+f1(bare)+"/s", fmt.Sprintf("%.2f (full costs %.1f× bare)", full/bare, bare/full))
	}
	// Relay.
	if v, ok := p.get("BenchmarkWrapPublish", "wraps/s"); ok {
		ref, ratio := "(publish+OK round trips, one connection)", ""
		if full > 0 {
			ref, ratio = "DVM ingest "+f1(full)+" bundles/s", fmt.Sprintf("%.0f× ingest", v/full)
		}
		p.row("relay: wraps stored/s (AUTHed, one by one)", f1(v)+" wraps/s", ref, ratio)
	}
	if up, ok := p.get("BenchmarkUploadVsRawWrite", "upload_MB/s"); ok {
		raw, _ := p.get("BenchmarkUploadVsRawWrite", "raw_write_MB/s")
		p.row("Blossom upload, relay (4 MiB over HTTP)", f1(up)+" MB/s", "raw file write+fsync: "+f1(raw)+" MB/s", f2(up/raw))
	}
	if up, ok := p.get("BenchmarkUpload", "upload_MB/s"); ok {
		raw, _ := p.get("BenchmarkUpload", "writefile_MB/s")
		p.row("Blossom upload, shared client (8 MiB)", f1(up)+" MB/s", "os.WriteFile: "+f1(raw)+" MB/s", f2(up/raw))
	}
	// Tracker process.
	if cpu, ok := p.get("BenchmarkTrackerProcess", "tracker-cpu-%"); ok {
		segS, _ := p.get("BenchmarkTrackerProcess", "segment-s")
		shots, _ := p.get("BenchmarkTrackerProcess", "screenshots/segment")
		capMS, okc := p.get("BenchmarkSegmentPipeline", "capture+encode-ms/screen")
		sealMS, _ := p.get("BenchmarkSegmentPipeline", "bundle+seal-ms/segment")
		ref, ratio := "", ""
		if okc && segS > 0 {
			floor := (shots*capMS + sealMS) / (segS * 1000) * 100
			ref = fmt.Sprintf("capture+encode+seal floor %.2f %% (%.0f×%.0f ms + %.0f ms per %.0f s)", floor, shots, capMS, sealMS, segS)
			ratio = fmt.Sprintf("%.1f× floor", cpu/floor)
		}
		p.row(fmt.Sprintf("tracker CPU while tracking (%.0f s segments, %.0f shots)", segS, shots), f2(cpu)+" % of a core", ref, ratio)
		rss, _ := p.get("BenchmarkTrackerProcess", "tracker-rss-MiB")
		rmax, _ := p.get("BenchmarkTrackerProcess", "tracker-rss-max-MiB")
		drss, _ := p.get("BenchmarkTrackerProcess", "dvm-rss-MiB")
		p.row("tracker RSS while tracking", fmt.Sprintf("%s MiB (max %s)", f1(rss), f1(rmax)), "DVM RSS same run: "+f1(drss)+" MiB", f2(rss/drss)+"× DVM")
	}
	// Latency.
	var p50_10 float64
	for _, n := range []string{"10", "100"} {
		name := "BenchmarkCaptureToReceipt/trackers=" + n
		p50, ok := p.get(name, "p50-ms")
		if !ok {
			continue
		}
		p99, _ := p.get(name, "p99-ms")
		rate, _ := p.get(name, "segments/s")
		ref, ratio := "", ""
		if full > 0 {
			ref = fmt.Sprintf("one ingest on one core: %.0f ms", 1000/full)
			ratio = fmt.Sprintf("p50 = %.1f ingests", p50/(1000/full))
		}
		if n == "10" {
			p50_10 = p50
		} else if p50_10 > 0 {
			ratio += fmt.Sprintf("; p50 %.1f× the 10-tracker p50", p50/p50_10)
		}
		p.row("capture→receipt, "+n+" trackers at once", fmt.Sprintf("p50 %.0f ms, p99 %.0f ms (%.0f seg/s)", p50, p99, rate), ref, ratio)
	}
	// Bundle size.
	if bb, ok := p.get("BenchmarkTrackerProcess", "bundle-bytes/segment"); ok {
		jb, _ := p.get("BenchmarkTrackerProcess", "jpeg-bytes/segment")
		segS, _ := p.get("BenchmarkTrackerProcess", "segment-s")
		p.row(fmt.Sprintf("bundle bytes/segment (tracker run, %.0f s)", segS), kib(bb), "its screenshots (JPEG): "+kib(jb), fmt.Sprintf("+%.1f %% overhead", (bb/jb-1)*100))
	}
	if bb, ok := p.get("BenchmarkSegmentPipeline", "ciphertext-bytes/segment"); ok {
		jb, _ := p.get("BenchmarkSegmentPipeline", "bytes/jpeg")
		p.row("bundle bytes/segment (10 min, 2 shots, 1080p)", kib(bb), "2 JPEGs: "+kib(2*jb), fmt.Sprintf("+%.1f %% overhead", (bb/(2*jb)-1)*100))
	}
	// AES-256-GCM over a 256 KiB bundle: seal against open.
	if seal, ok := p.get("BenchmarkSeal", "MB/s"); ok {
		if open, ok := p.get("BenchmarkOpen", "MB/s"); ok {
			p.row("bundle seal, AES-256-GCM (256 KiB)", f1(seal)+" MB/s", "open (sha256 x, decrypt, sha256 ox): "+f1(open)+" MB/s", f2(seal/open)+"× open")
		}
	}
	// Gift wraps, Go against nostr-tools.
	if ns, ok := p.get("BenchmarkWrapUnwrap", "ns/op"); ok {
		goRate := 1e9 / ns
		ref, ratio := "nostr-tools: not measured", ""
		if v, ok := p.node["ops_per_sec"].(float64); ok {
			ref = fmt.Sprintf("nostr-tools %v (node): %s/s", p.node["version"], f1(v))
			ratio = f2(goRate/v) + "× nostr-tools"
		} else {
			p.missing = append(p.missing, "nostr-tools ops_per_sec")
		}
		p.row("gift wrap+unwrap (kind-15), Go", f1(goRate)+"/s", ref, ratio)
	}

	w := [4]int{}
	head := [4]string{"figure", "measured", "reference (same run)", "ratio"}
	for i, h := range head {
		w[i] = len(h)
	}
	for _, r := range p.rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	line := func(r [4]string) {
		for i, c := range r {
			pad := w[i] - len([]rune(c))
			if i < 3 {
				fmt.Print(c + strings.Repeat(" ", pad) + "  ")
			} else {
				fmt.Println(c)
			}
		}
	}
	line(head)
	line([4]string{strings.Repeat("-", w[0]), strings.Repeat("-", w[1]), strings.Repeat("-", w[2]), strings.Repeat("-", w[3])})
	for _, r := range p.rows {
		line(r)
	}
	if len(p.missing) > 0 {
		fmt.Println()
		fmt.Println("MISSING (a benchmark failed or did not report): " + strings.Join(p.missing, ", "))
		os.Exit(1)
	}
}
