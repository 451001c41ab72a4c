package blossom_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/shared/blossom"
)

// BenchmarkUpload measures, in one run, an 8 MiB Upload through the test server (token
// signing and checking, preflight, HTTP, server-side hashing and writing to disk) against a
// plain os.WriteFile of the same bytes, and reports both rates and their ratio.
func BenchmarkUpload(b *testing.B) {
	ts := newTestServer(b)
	c := blossom.New(ts.URL(), nostr.GeneratePrivateKey())
	data, sha := randomBlob(b, 8<<20)
	dst := filepath.Join(b.TempDir(), "raw")
	ctx := context.Background()
	var up, raw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), sha); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			b.Fatal(err)
		}
		up, raw = up+t1.Sub(t0), raw+time.Since(t1)
	}
	mb := float64(len(data)) * float64(b.N) / 1e6
	b.ReportMetric(mb/up.Seconds(), "upload_MB/s")
	b.ReportMetric(mb/raw.Seconds(), "writefile_MB/s")
	b.ReportMetric(up.Seconds()/raw.Seconds(), "upload/writefile_x")
}
