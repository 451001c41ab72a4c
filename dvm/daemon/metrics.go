package daemon

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"pow.do/dvm/store"
	"pow.do/shared/proto"
)

// metrics are the daemon's Prometheus series (registry of its own, served at /metrics).
type metrics struct {
	reg       *prometheus.Registry
	received  *prometheus.CounterVec
	replayed  *prometheus.CounterVec
	handled   *prometheus.CounterVec
	ingested  prometheus.Counter
	rejected  *prometheus.CounterVec
	retries   *prometheus.CounterVec
	latency   prometheus.Histogram
	published *prometheus.CounterVec
}

func newMetrics(st store.Store, inFlight func() float64, connected func() float64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.received = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "powdo_dvm_wraps_received_total", Help: "Gift wraps received from relays (before any check; repeats included).",
	}, []string{"relay"})
	m.replayed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "powdo_dvm_wraps_replayed_total", Help: "Gift wraps ignored because they were processed before (replays, or wraps not yet deleted).",
	}, []string{"relay"})
	m.handled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "powdo_dvm_wraps_handled_total", Help: "Gift wraps finished, by rumor kind (0: could not be opened), status and reason.",
	}, []string{"kind", "status", "reason"})
	m.ingested = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "powdo_dvm_bundles_ingested_total", Help: "Segment bundles verified and stored.",
	})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "powdo_dvm_bundles_rejected_total", Help: "Segment messages rejected, by reason.",
	}, []string{"reason"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "powdo_dvm_ingest_retries_total", Help: "Transient failures that will be retried, by reason.",
	}, []string{"reason"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "powdo_dvm_ingest_seconds", Help: "Time from the first try of a segment message to its stored segment.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
	})
	kimaiDepth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "powdo_dvm_kimai_queue_depth", Help: "Kimai jobs pending.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := st.QueueDepth(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	m.reg.MustRegister(m.received, m.replayed, m.handled, m.ingested, m.rejected, m.retries, m.latency, kimaiDepth,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "powdo_dvm_ingest_in_flight", Help: "Wraps queued, being handled or waiting for a retry."}, inFlight),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "powdo_dvm_relays_connected", Help: "Relays with an authenticated subscription."}, connected),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handled, Ingested and Retry implement ingest.Observer.
func (m *metrics) Handled(kind int, status store.WrapOutcome, label string) {
	m.handled.WithLabelValues(strconv.Itoa(kind), string(status), label).Inc()
	if kind != proto.KindSegmentFile {
		return
	}
	switch status {
	case store.WrapAccepted:
		m.ingested.Inc()
	case store.WrapRejected:
		m.rejected.WithLabelValues(label).Inc()
	}
}

func (m *metrics) Ingested(d time.Duration) { m.latency.Observe(d.Seconds()) }
func (m *metrics) Retry(label string)       { m.retries.WithLabelValues(label).Inc() }
func (m *metrics) wrap(relay string)        { m.received.WithLabelValues(relay).Inc() }
func (m *metrics) replay(relay string)      { m.replayed.WithLabelValues(relay).Inc() }
