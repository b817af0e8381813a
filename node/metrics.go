package node

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are a node's Prometheus collectors, in a registry of its own
// that go-libp2p's swarm, resource manager and protocols register with
// too. Counters are cheap atomics; the store's figures are read when
// scraped.
type Metrics struct {
	reg *prometheus.Registry

	servedBytes, servedPieces   *prometheus.CounterVec // by protocol: exchange, gateway
	fetchedBytes, fetchedPieces *prometheus.CounterVec // by protocol: exchange
	fetchSeconds                prometheus.Histogram   // a piece from a holder
	gatewaySeconds              prometheus.Histogram   // a gateway response, to its last byte
	gatewayResponses            *prometheus.CounterVec // by status
	gcRuns                      prometheus.Counter
	gcSeconds                   prometheus.Histogram
	gcFreed                     prometheus.Counter
	evictedFiles, evictedBytes  prometheus.Counter
	scrubbed, scrubBad          prometheus.Counter
	scrubRepaired               prometheus.Counter
	repairChecks                prometheus.Counter
	repairPushes, repairDropped prometheus.Counter
}

// latencyBuckets run from 100 µs to 100 s.
var latencyBuckets = prometheus.ExponentialBucketsRange(1e-4, 100, 16)

func newMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := promauto{m.reg}
	m.servedBytes = f.counterVec("ddc_served_bytes_total", "Bytes of pieces served, by protocol.", "protocol")
	m.servedPieces = f.counterVec("ddc_served_pieces_total", "Pieces served, by protocol.", "protocol")
	m.fetchedBytes = f.counterVec("ddc_fetched_bytes_total", "Bytes of pieces fetched from other nodes, by protocol.", "protocol")
	m.fetchedPieces = f.counterVec("ddc_fetched_pieces_total", "Pieces fetched from other nodes, by protocol.", "protocol")
	m.fetchSeconds = f.histogram("ddc_fetch_piece_seconds", "Time to fetch a piece from a holder, verified.")
	m.gatewaySeconds = f.histogram("ddc_gateway_response_seconds", "Time a gateway response took, to its last byte.")
	m.gatewayResponses = f.counterVec("ddc_gateway_responses_total", "Gateway responses, by status.", "status")
	m.gcRuns = f.counter("ddc_gc_runs_total", "Garbage collections run.")
	m.gcSeconds = f.histogram("ddc_gc_seconds", "Time a garbage collection took.")
	m.gcFreed = f.counter("ddc_gc_freed_bytes_total", "Bytes of pieces garbage collection removed.")
	m.evictedFiles = f.counter("ddc_quota_evictions_total", "Cached files the quota evicted.")
	m.evictedBytes = f.counter("ddc_quota_evicted_bytes_total", "Bytes the quota's evictions freed.")
	m.scrubbed = f.counter("ddc_scrub_pieces_checked_total", "Stored pieces the scrub re-hashed.")
	m.scrubBad = f.counter("ddc_scrub_pieces_corrupt_total", "Stored pieces the scrub found failing their CID.")
	m.scrubRepaired = f.counter("ddc_scrub_pieces_repaired_total", "Corrupt pieces the scrub replaced from other holders.")
	m.repairChecks = f.counter("ddc_repair_checks_total", "Checks of who keeps a file of a replicated bucket.")
	m.repairPushes = f.counter("ddc_repair_pushes_total", "Files pushed again because fewer nodes than the factor kept them.")
	m.repairDropped = f.counter("ddc_repair_surplus_total", "Files this node stopped rooting because nearer nodes keep them.")
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// promauto makes collectors and registers them.
type promauto struct{ reg *prometheus.Registry }

func (p promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	p.reg.MustRegister(c)
	return c
}

func (p promauto) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	p.reg.MustRegister(c)
	return c
}

func (p promauto) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets})
	p.reg.MustRegister(h)
	return h
}

func (p promauto) gauge(name, help string, value func() float64) {
	p.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value))
}

func (p promauto) gaugeVec(name, help, label string, values func() map[string]float64) {
	p.reg.MustRegister(&gaugeVecFunc{desc: prometheus.NewDesc(name, help, []string{label}, nil), values: values})
}

// gaugeVecFunc is a labelled gauge read when scraped.
type gaugeVecFunc struct {
	desc   *prometheus.Desc
	values func() map[string]float64
}

func (g *gaugeVecFunc) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *gaugeVecFunc) Collect(ch chan<- prometheus.Metric) {
	for label, v := range g.values() {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, label)
	}
}

// registerNode adds the figures read from the running node: the store,
// the DHT's tables, announcements and peers.
func (n *Node) registerNode() {
	p := promauto{n.metrics.reg}
	usage := func(pick func(live, dead, disk, pieces uint64) uint64) func() float64 {
		return func() float64 {
			u, err := n.repo.Store.Usage()
			if err != nil {
				return 0
			}
			return float64(pick(u.PieceBytes, u.DeadBytes, u.AllocatedBytes, u.Pieces))
		}
	}
	p.gauge("ddc_store_live_bytes", "Bytes of the pieces the store holds.", usage(func(l, _, _, _ uint64) uint64 { return l }))
	p.gauge("ddc_store_dead_bytes", "Bytes the block files take beyond the live pieces.", usage(func(_, d, _, _ uint64) uint64 { return d }))
	p.gauge("ddc_store_disk_bytes", "Bytes the block files take on disk, as du counts them.", usage(func(_, _, d, _ uint64) uint64 { return d }))
	p.gauge("ddc_store_pieces", "Pieces the store holds.", usage(func(_, _, _, c uint64) uint64 { return c }))
	p.gaugeVec("ddc_dht_routing_table_peers", "Peers in each DHT routing table.", "table", func() map[string]float64 {
		out := map[string]float64{}
		for _, t := range n.dht.Status() {
			out[t.Name] = float64(t.Peers)
		}
		return out
	})
	p.gauge("ddc_announcements_done", "Announcements of pieces to the DHT done since start.", func() float64 {
		done, _ := n.ann.status()
		return float64(done)
	})
	p.gauge("ddc_announcements_pending", "Announcements of pieces to the DHT waiting.", func() float64 {
		_, pending := n.ann.status()
		return float64(pending)
	})
	p.gauge("ddc_connected_peers", "Peers the node has a connection to.", func() float64 {
		return float64(len(n.host.Network().Peers()))
	})
}

// MetricsHandler serves the node's metrics in Prometheus' text format.
func (n *Node) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{})
}

// servedPiece counts a piece of n bytes served over protocol.
func (m *Metrics) servedPiece(protocol string, n int) {
	m.servedBytes.WithLabelValues(protocol).Add(float64(n))
	m.servedPieces.WithLabelValues(protocol).Inc()
}

// GatewayResponse counts a gateway response: its status, body bytes and
// time.
func (n *Node) GatewayResponse(status int, bytes int64, took time.Duration) {
	m := n.metrics
	m.gatewayResponses.WithLabelValues(strconv.Itoa(status)).Inc()
	m.gatewaySeconds.Observe(took.Seconds())
	if bytes > 0 {
		m.servedBytes.WithLabelValues("gateway").Add(float64(bytes))
	}
}

// fetchedPiece counts a piece of n bytes fetched over protocol in took.
func (m *Metrics) fetchedPiece(protocol string, n int, took time.Duration) {
	m.fetchedBytes.WithLabelValues(protocol).Add(float64(n))
	m.fetchedPieces.WithLabelValues(protocol).Inc()
	m.fetchSeconds.Observe(took.Seconds())
}

// evicted counts files the quota evicted and the bytes that freed.
func (m *Metrics) evicted(files int, freed uint64) {
	m.evictedFiles.Add(float64(files))
	m.evictedBytes.Add(float64(freed))
}

// gcDone counts a garbage collection.
func (m *Metrics) gcDone(took time.Duration, freed uint64) {
	m.gcRuns.Inc()
	m.gcSeconds.Observe(took.Seconds())
	m.gcFreed.Add(float64(freed))
}
