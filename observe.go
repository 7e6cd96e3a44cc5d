package pivot

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// histogramBounds are the upper bounds, in seconds, of every histogram the engine keeps:
// from half a millisecond (a loopback round on memory storage) to five minutes (a
// write made while the pivot was down for a while).
var histogramBounds = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// histogram counts observed durations in histogramBounds. Lock-free: an observation
// is two atomic adds, so it can sit on the sync path.
type histogram struct {
	counts [len(histogramBounds) + 1]atomic.Uint64 // per bucket, not cumulative; last is +Inf
	sumNs  atomic.Int64
}

// observe records one duration; a negative one counts as zero.
func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	s := d.Seconds()
	i := 0
	for i < len(histogramBounds) && s > histogramBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// snapshot returns the histogram in cumulative form.
func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: histogramBounds[:], Counts: make([]uint64, len(histogramBounds))}
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
		if i < len(histogramBounds) {
			out.Counts[i] = total
		}
	}
	out.Count = total
	out.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return out
}

// Histogram is a snapshot of durations observed by the engine, in the cumulative form
// Prometheus uses: Counts[i] observations took at most Bounds[i] seconds; Count is every
// observation (the +Inf bucket) and Sum their total, in seconds.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// ops are the engine's operational counters, beside the totals Status reports
// (counters): what the metrics add.
type ops struct {
	rounds, failedRounds         atomic.Int64 // node: sync rounds
	pushFailures, pullFailures   atomic.Int64 // node: exchanges that did not complete
	pushBytes, pullBytes         atomic.Int64 // entry bytes (entrySize) pushed acknowledged / pulled applied
	triggersSent, triggersFailed atomic.Int64 // pivot: trigger requests
	triggersSkipped              atomic.Int64 // pivot: keys left out of a trigger (the node held them)
	merges, prunes, adoptions    atomic.Int64 // node: reconciliations by mode
	lost                         atomic.Int64 // entries that lost under LWW to a different value (conflicts.go)
	conflictsDropped             atomic.Int64 // OnConflict calls skipped because its queue was full
	roundTime, ackTime           histogram
	heads                        sync.Map               // node: *syncKey → the pivot's feed head at the last pull that reached it
	downSince                    atomic.Int64           // node: unix ns when the pivot became unreachable; 0 when up
	lastFailure                  atomic.Pointer[string] // node: the last round error logged as a warning
}

// reconciled counts one reconciliation of mode.
func (o *ops) reconciled(mode string) {
	switch mode {
	case modeMerge:
		o.merges.Add(1)
	case modePrune:
		o.prunes.Add(1)
	case modeAdopt:
		o.adoptions.Add(1)
	}
}

// acknowledged records, on a node, the pivot's acknowledgement of pushed entries: their
// bytes, and for each the time from its write (its version stamp, wall-clock
// nanoseconds) to now.
func (o *ops) acknowledged(entries []storage.Entry, now time.Time) {
	var size int64
	for _, en := range entries {
		size += entrySize(en)
		o.ackTime.observe(now.Sub(time.Unix(0, en.Version())))
	}
	o.pushBytes.Add(size)
}

// Metrics is a snapshot of the engine's counters and histograms, for a metrics
// exporter (the pivot/metrics package turns it into Prometheus series). Counters only
// grow while the engine runs. Gauges (reachability, lag, pending writes) are in Status.
type Metrics struct {
	// Role is RolePivot or RoleNode.
	Role string
	// Rounds and FailedRounds count a node's sync rounds, and those that met an error.
	Rounds, FailedRounds int64
	// PushedEntries and PushedBytes count entries stored by pushes (on a node: those
	// the pivot acknowledged as applied; on the pivot: those it applied), bytes as
	// entry keys, stamps and data; PushFailures a node's pushes that did not complete.
	PushedEntries, PushedBytes, PushFailures int64
	// PulledEntries and PulledBytes count, on a node, entries stored from pulls (on
	// the pivot: changes served); PullFailures a node's pulls that did not complete.
	PulledEntries, PulledBytes, PullFailures int64
	// TriggersSent, TriggersFailed and TriggersSkipped count, on the pivot, trigger
	// requests that a node answered, that failed, and keys left out of a trigger
	// because the node already held every change of them.
	TriggersSent, TriggersFailed, TriggersSkipped int64
	// Conflicts counts entries that lost under LWW to a different value (see
	// Conflict); Superseded counts every pushed entry the stored one won over or
	// equalled (Status.Conflicts).
	Conflicts, Superseded int64
	// Refused counts entries refused for clock skew.
	Refused int64
	// Checks and Repairs count a node's anti-entropy comparisons and repaired entries.
	Checks, Repairs int64
	// Reconciliations counts a node's full reconciliations by mode: "merge" (first
	// sync or a reset pivot), "prune" (cursor below the tombstone horizon), "adopt"
	// (another cluster).
	Reconciliations map[string]int64
	// BytesSent and BytesReceived are Status's.
	BytesSent, BytesReceived int64
	// RoundDuration is the duration of a node's sync rounds; WriteAck the time from a
	// local write on a node to the pivot's acknowledgement of it.
	RoundDuration, WriteAck Histogram
}

// Metrics returns a snapshot of the engine's counters and histograms. Safe for
// concurrent use; cheap (no storage access).
func (r SetupResult) Metrics() Metrics {
	e := r.engine
	if e == nil {
		return Metrics{}
	}
	m := Metrics{
		Role:            e.role,
		Rounds:          e.ops.rounds.Load(),
		FailedRounds:    e.ops.failedRounds.Load(),
		PushedEntries:   e.counts.pushed.Load(),
		PushedBytes:     e.ops.pushBytes.Load(),
		PushFailures:    e.ops.pushFailures.Load(),
		PulledEntries:   e.counts.pulled.Load(),
		PulledBytes:     e.ops.pullBytes.Load(),
		PullFailures:    e.ops.pullFailures.Load(),
		TriggersSent:    e.ops.triggersSent.Load(),
		TriggersFailed:  e.ops.triggersFailed.Load(),
		TriggersSkipped: e.ops.triggersSkipped.Load(),
		Conflicts:       e.ops.lost.Load(),
		Superseded:      e.counts.conflicts.Load(),
		Refused:         e.counts.refused.Load(),
		Checks:          e.counts.checks.Load(),
		Repairs:         e.counts.repaired.Load(),
		Reconciliations: map[string]int64{
			modeMerge: e.ops.merges.Load(),
			modePrune: e.ops.prunes.Load(),
			modeAdopt: e.ops.adoptions.Load(),
		},
		BytesSent:     e.traffic.sent.Load(),
		BytesReceived: e.traffic.received.Load(),
		RoundDuration: e.ops.roundTime.snapshot(),
		WriteAck:      e.ops.ackTime.snapshot(),
	}
	if e.pivotRole != nil {
		m.PulledEntries = e.counts.served.Load()
	}
	return m
}

// readable is d as Status's readable fields show it: rounded to the millisecond
// ("1m2.345s"), or "" for zero.
func readable(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.Round(time.Millisecond).String()
}
