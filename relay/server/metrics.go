package server

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"pow.do/relay/sweeper"
)

// metrics live in a registry per server, so several servers can run in one test process.
type metrics struct {
	reg            *prometheus.Registry
	conns          prometheus.Gauge
	connsRefused   prometheus.Counter
	eventsAccepted *prometheus.CounterVec
	eventsRefused  *prometheus.CounterVec
	reqsRefused    *prometheus.CounterVec
	uploads        *prometheus.CounterVec
	uploadBytes    prometheus.Counter
	blobRequests   *prometheus.CounterVec
	sweeperDeleted *prometheus.CounterVec
	manage         *prometheus.CounterVec
}

func newMetrics(blobUsage func() (int, int64)) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "powdo_relay_connections", Help: "Open websocket connections."}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "powdo_relay_connections_refused_total", Help: "Websocket connections refused by the per-IP limit."}),
		eventsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powdo_relay_events_accepted_total", Help: "Events stored, by kind."}, []string{"kind"}),
		eventsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powdo_relay_events_refused_total", Help: "Events refused, by NIP-01 reason prefix."}, []string{"reason"}),
		reqsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powdo_relay_subscriptions_refused_total", Help: "REQ filters refused, by NIP-01 reason prefix."}, []string{"reason"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powdo_relay_uploads_total", Help: "Blossom uploads and mirrors, by result (created, existing, or the HTTP status of a refusal)."}, []string{"result"}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "powdo_relay_upload_bytes_total", Help: "Bytes of newly stored blobs."}),
		blobRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powdo_relay_blob_requests_total", Help: "Blossom requests other than uploads, by operation and HTTP status."}, []string{"op", "status"}),
		sweeperDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powdo_relay_sweeper_deleted_total", Help: "What the sweeper removed: blob_ttl, blob_quota, wrap_ttl, deletion_ttl, invite_expired."}, []string{"what"}),
		manage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powdo_relay_management_calls_total", Help: "NIP-86 calls, by method and HTTP status."}, []string{"method", "status"}),
	}
	m.reg.MustRegister(m.conns, m.connsRefused, m.eventsAccepted, m.eventsRefused, m.reqsRefused,
		m.uploads, m.uploadBytes, m.blobRequests, m.sweeperDeleted, m.manage,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "powdo_relay_blobs_stored", Help: "Blobs on disk."},
			func() float64 { n, _ := blobUsage(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "powdo_relay_bytes_stored", Help: "Bytes of blobs on disk."},
			func() float64 { _, b := blobUsage(); return float64(b) }),
	)
	// Pre-create the sweeper series so they read 0 before the first deletion.
	for _, w := range []string{"blob_ttl", "blob_quota", "wrap_ttl", "deletion_ttl", "invite_expired"} {
		m.sweeperDeleted.WithLabelValues(w)
	}
	return m
}

func (m *metrics) sweep(r sweeper.Report) {
	m.sweeperDeleted.WithLabelValues("blob_ttl").Add(float64(r.BlobsExpired))
	m.sweeperDeleted.WithLabelValues("blob_quota").Add(float64(r.BlobsEvicted))
	m.sweeperDeleted.WithLabelValues("wrap_ttl").Add(float64(r.WrapsExpired))
	m.sweeperDeleted.WithLabelValues("deletion_ttl").Add(float64(r.OthersExpired))
	m.sweeperDeleted.WithLabelValues("invite_expired").Add(float64(r.InvitesExpired))
}

// reasonLabel keeps label cardinality bounded: the NIP-01 prefix of a refusal message.
func reasonLabel(msg string) string {
	if i := strings.Index(msg, ":"); i > 0 && i < 20 {
		return msg[:i]
	}
	return "other"
}

func kindLabel(k int) string { return strconv.Itoa(k) }
