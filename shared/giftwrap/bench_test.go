package giftwrap

import (
	"testing"
)

// The benchmarks use a kind-15 segment message with two mirrors: the message a tracker
// sends every segment. `make bench` compares BenchmarkWrapUnwrap with interop/bench.mjs.

func BenchmarkWrap(b *testing.B) {
	worker, dvm := newKey(b), newKey(b)
	rumor := sampleSegment(b, dvm.pub).Rumor(worker.pub)
	b.ReportMetric(float64(len(rumor.String())), "rumor-bytes")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Wrap(rumor, worker.sk, dvm.pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	worker, dvm := newKey(b), newKey(b)
	rumor := sampleSegment(b, dvm.pub).Rumor(worker.pub)
	wrap, err := Wrap(rumor, worker.sk, dvm.pub)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Unwrap(wrap, dvm.sk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrapUnwrap(b *testing.B) {
	worker, dvm := newKey(b), newKey(b)
	rumor := sampleSegment(b, dvm.pub).Rumor(worker.pub)
	b.ReportAllocs()
	for b.Loop() {
		wrap, err := Wrap(rumor, worker.sk, dvm.pub)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Unwrap(wrap, dvm.sk); err != nil {
			b.Fatal(err)
		}
	}
}
