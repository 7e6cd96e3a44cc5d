// Package metrics exports the state of a pivot instance as Prometheus series.
//
// New builds a prometheus.Collector from the pivot.SetupResult of one instance, to
// register in a program's own registry; Handler serves one on a registry of its own
// (with the Go runtime's and the process's series), for SetupResult.Handle:
//
//	result := pivot.Setup(server, config)
//	result.Handle("/metrics", metrics.Handler(result, metricsCredential))
//
// The package lives apart from pivot so that programs which do not export metrics do
// not build the Prometheus client. Every series is read when scraped: counters and
// histograms from SetupResult.Metrics, gauges from SetupResult.Status.
package metrics

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/benitogf/pivot"
)

// Collector is a prometheus.Collector of one pivot instance. Safe for concurrent use
// (scrapes may overlap).
type Collector struct {
	result pivot.SetupResult

	info                              *prometheus.Desc
	rounds, roundTime                 *prometheus.Desc
	pushed, pushedBytes, pushFailures *prometheus.Desc
	pulled, pulledBytes, pullFailures *prometheus.Desc
	triggers                          *prometheus.Desc
	conflicts, superseded, refused    *prometheus.Desc
	checks, repairs, reconciliations  *prometheus.Desc
	sent, received                    *prometheus.Desc
	ackTime                           *prometheus.Desc
	pivotUp, pivotContact             *prometheus.Desc
	nodeUp, nodeLag, nodeContact      *prometheus.Desc
	pending, pendingAge, keyErrors    *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns the collector of the instance result is from.
func New(result pivot.SetupResult) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("pivot_"+name, help, labels, nil)
	}
	return &Collector{
		result:          result,
		info:            d("info", "Always 1; the labels name the instance's role and cluster.", "role", "cluster"),
		rounds:          d("sync_rounds_total", "Sync rounds a node ran, by result (ok, failed).", "result"),
		roundTime:       d("sync_round_duration_seconds", "Duration of a node's sync rounds."),
		pushed:          d("pushed_entries_total", "Entries stored by pushes: on a node those the pivot acknowledged as applied, on the pivot those it applied."),
		pushedBytes:     d("pushed_bytes_total", "Entry bytes (key, stamps, data) of a node's pushes the pivot acknowledged."),
		pushFailures:    d("push_failures_total", "A node's push requests that got no acknowledgement."),
		pulled:          d("pulled_entries_total", "On a node, entries stored from pulls; on the pivot, changes served to pulls."),
		pulledBytes:     d("pulled_bytes_total", "Entry bytes (key, stamps, data) a node stored from pulls."),
		pullFailures:    d("pull_failures_total", "A node's pull requests that got no page."),
		triggers:        d("triggers_total", "The pivot's triggers to nodes, by result: sent (answered), failed, skipped (a key left out because the node held it).", "result"),
		conflicts:       d("conflicts_total", "Entries that lost under last-write-wins to a different value on this instance."),
		superseded:      d("superseded_entries_total", "Pushed entries not applied because the stored entry won or was identical."),
		refused:         d("refused_entries_total", "Entries refused because they were stamped too far in the future."),
		checks:          d("antientropy_checks_total", "A node's comparisons of its data with the pivot's by digest trees."),
		repairs:         d("antientropy_repairs_total", "Entries anti-entropy repaired, on the node or on the pivot."),
		reconciliations: d("reconciliations_total", "A node's full reconciliations with the pivot's snapshot, by mode (merge, prune, adopt).", "mode"),
		sent:            d("protocol_sent_bytes_total", "Protocol body bytes sent, uncompressed."),
		received:        d("protocol_received_bytes_total", "Protocol body bytes received, uncompressed."),
		ackTime:         d("write_ack_duration_seconds", "On a node, time from a local write (its stamp) to the pivot's acknowledgement of it."),
		pivotUp:         d("pivot_up", "On a node, 1 when the last exchange with the pivot succeeded."),
		pivotContact:    d("pivot_last_contact_timestamp_seconds", "On a node, when the pivot last answered (unix seconds)."),
		nodeUp:          d("node_up", "On the pivot, 1 when the last trigger to the node succeeded.", "node"),
		nodeLag:         d("node_lag_seconds", "On the pivot, how long the node may have been behind (0 when it holds every change).", "node"),
		nodeContact:     d("node_last_contact_timestamp_seconds", "On the pivot, the node's last successful exchange (unix seconds).", "node"),
		pending:         d("pending_writes", "On a node, local writes of the key the pivot has not acknowledged yet (counted up to 100000).", "key"),
		pendingAge:      d("pending_oldest_age_seconds", "On a node, age of the oldest write of the key the pivot has not acknowledged (0 when none).", "key"),
		keyErrors:       d("key_error", "On a node, 1 when the key's last sync failed.", "key"),
	}
}

// Describe sends the descriptors of every series.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.rounds, c.roundTime, c.pushed, c.pushedBytes, c.pushFailures,
		c.pulled, c.pulledBytes, c.pullFailures, c.triggers, c.conflicts, c.superseded, c.refused, c.checks,
		c.repairs, c.reconciliations, c.sent, c.received, c.ackTime, c.pivotUp, c.pivotContact, c.nodeUp,
		c.nodeLag, c.nodeContact, c.pending, c.pendingAge, c.keyErrors} {
		ch <- d
	}
}

// Collect reads the instance's metrics and status and sends every series. It reads
// the storage only to count pending writes (the feed after each push cursor).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	m := c.result.Metrics()
	s := c.result.Status()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.info, 1, m.Role, s.ClusterID)
	counter(c.pushed, m.PushedEntries)
	counter(c.pulled, m.PulledEntries)
	counter(c.conflicts, m.Conflicts)
	counter(c.superseded, m.Superseded)
	counter(c.refused, m.Refused)
	counter(c.sent, m.BytesSent)
	counter(c.received, m.BytesReceived)
	if m.Role == pivot.RolePivot {
		counter(c.triggers, m.TriggersSent, "sent")
		counter(c.triggers, m.TriggersFailed, "failed")
		counter(c.triggers, m.TriggersSkipped, "skipped")
		for _, n := range s.Nodes {
			gauge(c.nodeUp, boolean(n.Healthy), n.Address)
			gauge(c.nodeLag, n.Lag.Seconds(), n.Address)
			if !n.LastContact.IsZero() {
				gauge(c.nodeContact, unixSeconds(n.LastContact), n.Address)
			}
		}
		return
	}
	counter(c.rounds, m.Rounds-m.FailedRounds, "ok")
	counter(c.rounds, m.FailedRounds, "failed")
	ch <- histogram(c.roundTime, m.RoundDuration)
	ch <- histogram(c.ackTime, m.WriteAck)
	counter(c.pushedBytes, m.PushedBytes)
	counter(c.pushFailures, m.PushFailures)
	counter(c.pulledBytes, m.PulledBytes)
	counter(c.pullFailures, m.PullFailures)
	counter(c.checks, m.Checks)
	counter(c.repairs, m.Repairs)
	for _, mode := range []string{"merge", "prune", "adopt"} {
		counter(c.reconciliations, m.Reconciliations[mode], mode)
	}
	gauge(c.pivotUp, boolean(s.PivotHealthy))
	if !s.LastContact.IsZero() {
		gauge(c.pivotContact, unixSeconds(s.LastContact))
	}
	now := time.Now()
	for _, k := range s.Keys {
		gauge(c.pending, float64(k.PendingWrites), k.Path)
		age := 0.0
		if k.PendingWrites > 0 && !k.PendingSince.IsZero() {
			age = max(0, now.Sub(k.PendingSince).Seconds())
		}
		gauge(c.pendingAge, age, k.Path)
		gauge(c.keyErrors, boolean(k.LastError != ""), k.Path)
	}
}

// histogram turns a pivot.Histogram into a constant Prometheus histogram.
func histogram(d *prometheus.Desc, h pivot.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Counts[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets)
}

func boolean(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Handler serves the series of result's instance, with the Go runtime's and the
// process's, in the Prometheus text format. With a non-empty credential it answers 401
// to a request without "Authorization: Bearer <credential>"; scrapers send it with
// their bearer token setting. An empty credential leaves the series open: on the
// pivot they name the nodes' addresses.
func Handler(result pivot.SetupResult, credential string) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(result), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if credential == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(credential)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pivot metrics"`)
			http.Error(w, "a valid bearer credential is needed", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
