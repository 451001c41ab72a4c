package ingest_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nbd-wtf/go-nostr"

	"pow.do/dvm/daemon"
	"pow.do/dvm/e2e"
	"pow.do/dvm/inbox"
	"pow.do/dvm/ingest"
	"pow.do/dvm/store"
	"pow.do/dvm/store/sqlite"
	"pow.do/shared/blossom"
	"pow.do/shared/giftwrap"
	"pow.do/shared/proto"
	"pow.do/shared/relayconn"
	"pow.do/shared/seal"
)

// connPublisher publishes over one authenticated connection.
type connPublisher struct{ c *relayconn.Conn }

func (p connPublisher) Publish(ctx context.Context, ev nostr.Event, _ ...string) ([]string, error) {
	return []string{p.c.URL()}, p.c.Publish(ctx, ev)
}

type benchItem struct {
	wrap nostr.Event
	ct   []byte
	file proto.SegmentFile
}

// BenchmarkIngest measures the whole ingest of a typical bundle (one 1920×1080 JPEG, 100
// window events) — unwrap, Blossom download from a powdo-relay process, hash checks,
// AES-GCM, safe unzip, validation, one SQLite transaction (synchronous=FULL), receipt and
// deletion request published — beside the bare unwrap + sha256 + AES-GCM open of the same
// bundles, on one core (GOMAXPROCS=1), and prints both and their ratio.
//
//	go test -run '^$' -bench Ingest ./ingest/
func BenchmarkIngest(b *testing.B) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	dvm, worker := e2e.NewKey(), e2e.NewKey()
	relay := e2e.StartRelayProcess(b, e2e.RelayOptions{Admins: []string{dvm.PK}, Allow: []string{worker.PK}})
	ctx := context.Background()
	db, err := sqlite.Open(b.TempDir(), sqlite.WithLogger(e2e.Quiet()))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.AddWorker(ctx, store.Worker{Pubkey: worker.PK, Name: "Alice"}); err != nil {
		b.Fatal(err)
	}
	conn, err := e2e.Connect(ctx, relay.WS, dvm.SK)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	proc := &ingest.Processor{
		SecretKey: dvm.SK, Store: db,
		Opener:    &inbox.Opener{SecretKey: dvm.SK, Roster: db},
		Fetcher:   &ingest.Fetcher{Client: blossom.New(relay.HTTP, "", blossom.WithLogger(e2e.Quiet()), blossom.WithTempDir(b.TempDir()))},
		Publisher: connPublisher{conn},
		Catalogue: daemon.StaticCatalogue{Projects: []proto.Project{{ID: 1, Name: "Website"}}, Activities: []proto.Activity{{ID: 5, Name: "Dev"}}},
		Log:       e2e.Quiet(),
	}
	if err := proc.Init(); err != nil {
		b.Fatal(err)
	}
	tr := &e2e.Tracker{Key: worker, DVM: dvm.PK}
	jpeg := e2e.ScreenshotJPEG()
	prepare := func(n int) []benchItem {
		items := make([]benchItem, n)
		end := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
		for i := range items {
			s := e2e.Segment{Session: e2e.RandomSession(), Start: end.Add(-10 * time.Minute), End: end,
				Project: 1, Activity: 5, Events: 100, JPEG: jpeg}
			p, err := tr.Prepare(s, relay.HTTP)
			if err != nil {
				b.Fatal(err)
			}
			if err := tr.Upload(ctx, relay.HTTP, p.Sealed.Ciphertext); err != nil {
				b.Fatal(err)
			}
			w, err := giftwrap.Wrap(p.Rumor(worker.PK), worker.SK, dvm.PK)
			if err != nil {
				b.Fatal(err)
			}
			items[i] = benchItem{wrap: w, ct: p.Sealed.Ciphertext, file: p.File}
		}
		return items
	}

	var full, bare time.Duration
	var bundleBytes int
	b.Run("ingest", func(b *testing.B) {
		b.StopTimer()
		items := prepare(b.N)
		bundleBytes = len(items[0].ct)
		b.StartTimer()
		for i := range b.N {
			res := proc.Handle(ctx, inbox.Wrap{Event: items[i].wrap, Relay: relay.WS}, []string{relay.WS}, ingest.Attempt{N: 1, First: time.Now()})
			if !res.Processed {
				b.Fatalf("bundle %d not processed: %+v", i, res)
			}
		}
		b.StopTimer()
		full = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bundles/s")
		b.SetBytes(int64(bundleBytes))
	})
	b.Run("bare", func(b *testing.B) {
		b.StopTimer()
		items := prepare(min(b.N, 20)) // no upload needed, but the same kind of bundle
		b.StartTimer()
		for i := range b.N {
			it := items[i%len(items)]
			if _, _, err := giftwrap.Unwrap(it.wrap, dvm.SK); err != nil {
				b.Fatal(err)
			}
			if _, err := seal.Open(it.ct, it.file.Key[:], it.file.Nonce[:], it.file.X, it.file.OX); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		bare = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bundles/s")
		b.SetBytes(int64(bundleBytes))
	})
	if full > 0 && bare > 0 {
		fmt.Printf("ingest of a typical bundle (%d KiB sealed), one core: full %s/bundle (%.1f bundles/s), bare unwrap+sha256+AES-GCM %s/bundle (%.1f bundles/s), ratio full/bare %.1f×\n",
			bundleBytes>>10, full.Round(time.Microsecond), float64(time.Second)/float64(full),
			bare.Round(time.Microsecond), float64(time.Second)/float64(bare), float64(full)/float64(bare))
	}
}
