package server

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"
)

func unlimited(c *Config) {
	c.EventsPerMinutePubkey, c.EventsPerMinuteIP = -1, -1
	c.UploadsPerMinutePubkey, c.UploadsPerMinuteIP = -1, -1
	c.BlobQuotaBytes = -1
}

// BenchmarkWrapPublish: AUTHed publishes of real NIP-59 wraps, one at a time (each waits
// for its OK), through the whole pipeline: signature, whitelist, tombstone check, badger.
func BenchmarkWrapPublish(b *testing.B) {
	s := start(b, "", unlimited)
	dvm, worker := newKey(b), newKey(b)
	for _, k := range []key{dvm, worker} {
		s.Access().Allow("bench", k.pk, "")
	}
	c := dial(b, s, &worker)
	wraps := make([]nostr.Event, b.N)
	for i := range wraps {
		wraps[i] = giftWrap(b, worker, dvm.pk)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if msg := c.publish(wraps[i]); msg != "" {
			b.Fatal(msg)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "wraps/s")
}

// BenchmarkUploadVsRawWrite uploads 4 MiB blobs over HTTP (token check, streaming hash,
// fsync, rename, sidecar) and, in the same iterations, writes the same bytes to a plain
// file with fsync, and reports both throughputs and their ratio.
func BenchmarkUploadVsRawWrite(b *testing.B) {
	s := start(b, "", unlimited)
	k := newKey(b)
	s.Access().Allow("bench", k.pk, "")
	const size = 4 << 20
	base := randomBytes(b, size)
	rawDir := b.TempDir()
	var upload, raw time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data := bytes.Clone(base)
		binary.BigEndian.PutUint64(data, uint64(i)+uint64(time.Now().UnixNano()))
		h := sha(data)
		auth := token(b, k, "upload", h)
		req, _ := http.NewRequest(http.MethodPut, s.URL()+"/upload", bytes.NewReader(data))
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-SHA-256", h)
		b.StartTimer()

		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("upload: %d %s", resp.StatusCode, resp.Header.Get("X-Reason"))
		}
		t1 := time.Now()
		f, err := os.Create(filepath.Join(rawDir, h))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		t2 := time.Now()
		upload += t1.Sub(t0)
		raw += t2.Sub(t1)
	}
	mb := float64(b.N) * size / (1 << 20)
	upMBs, rawMBs := mb/upload.Seconds(), mb/raw.Seconds()
	b.ReportMetric(upMBs, "upload_MB/s")
	b.ReportMetric(rawMBs, "raw_write_MB/s")
	b.ReportMetric(upMBs/rawMBs, "upload/raw")
	b.Logf("upload %.1f MB/s, raw file write %.1f MB/s, ratio %.2f (n=%d)", upMBs, rawMBs, upMBs/rawMBs, b.N)
}
