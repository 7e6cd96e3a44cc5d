package chaos_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// seedResult is what one seed did.
type seedResult struct {
	seed        uint64
	nodes       int
	kind        scenarioKind
	failed      bool
	ops, acked  int
	noops       int
	reads       int
	faults      map[string]int // schedule faults by kind
	requests    [6]int64       // fault layer: passed, refused, blackholed, dropped req, dropped answers, delayed
	convergence time.Duration
	latencies   []time.Duration
	restarts    int
	lost        int // entries lost with a wiped disk (held by no other replica)
	// Violations: acknowledged writes lost (B), keys still divergent at the deadline
	// (A), keys resurrected (C), altered values not repaired, and all of them.
	lostWrites, divergent, resurrected, unrepaired, violations int
	// duringFaults counts operations run on an instance cut off, delayed, skewed or
	// without a running pivot.
	duringFaults int
	elapsed      time.Duration
}

// figures aggregates the results of a run. It is safe for concurrent use.
type figures struct {
	mu      sync.Mutex
	start   time.Time
	results []seedResult
}

// add records a seed's result and returns how many seeds are done.
func (f *figures) add(r seedResult) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, r)
	return len(f.results)
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// String is the summary printed at the end of a run.
func (f *figures) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var (
		conv, lat              []time.Duration
		ops, acked, noops, rds int
		req                    [6]int64
		failed                 []string
		restarts, lost, during int
		lw, dv, rs, ur, vs     int
		faults                 = map[string]int{}
		nodes                  = map[int]int{}
		kinds                  = map[scenarioKind]int{}
		most                   int
	)
	for _, r := range f.results {
		conv = append(conv, r.convergence)
		lat = append(lat, r.latencies...)
		ops, acked, noops, rds = ops+r.ops, acked+r.acked, noops+r.noops, rds+r.reads
		for i := range req {
			req[i] += r.requests[i]
		}
		for k, n := range r.faults {
			faults[k] += n
		}
		nodes[r.nodes]++
		kinds[r.kind]++
		most = max(most, r.nodes)
		lw, dv, rs, ur, vs = lw+r.lostWrites, dv+r.divergent, rs+r.resurrected, ur+r.unrepaired, vs+r.violations
		restarts += r.restarts
		lost += r.lost
		during += r.duringFaults
		if r.failed {
			failed = append(failed, fmt.Sprint(r.seed))
		}
	}
	sort.Slice(conv, func(i, j int) bool { return conv[i] < conv[j] })
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	total := 0
	byKind := make([]string, 0, len(faults))
	for k, n := range faults {
		byKind = append(byKind, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(byKind)
	var b strings.Builder
	fmt.Fprintf(&b, "chaos figures: %d seeds (%d failed%s) in %s; scenarios: %d standard, %d many nodes, %d child processes; clusters of 3/4/5 nodes: %d/%d/%d, largest %d nodes\n",
		len(f.results), len(failed), list(failed), time.Since(f.start).Round(time.Second),
		kinds[kindStandard], kinds[kindMany], kinds[kindProcess], nodes[3], nodes[4], nodes[5], most)
	fmt.Fprintf(&b, "  operations: %d (%d writes and reads acknowledged, %d no-ops on missing keys, %d reads; %d run while a fault concerned their instance)\n",
		ops, acked, noops, rds, during)
	fmt.Fprintf(&b, "  faults injected: %d (%s); restarts: %d; entries lost with a wiped disk (held nowhere else): %d\n",
		total, strings.Join(byKind, ", "), restarts, lost)
	fmt.Fprintf(&b, "  violations: %d; acknowledged writes lost %d, keys divergent %d, resurrected %d, altered values not repaired %d\n",
		vs, lw, dv, rs, ur)
	fmt.Fprintf(&b, "  pivot requests: %d passed, %d refused, %d blackholed, %d dropped before sending, %d answers dropped after the peer acted, %d delayed\n",
		req[0], req[1], req[2], req[3], req[4], req[5])
	fmt.Fprintf(&b, "  convergence after healing: p50 %s, p99 %s, max %s\n",
		percentile(conv, 50).Round(time.Millisecond), percentile(conv, 99).Round(time.Millisecond), percentile(conv, 100).Round(time.Millisecond))
	fmt.Fprintf(&b, "  operation latency: p50 %s, p99 %s, max %s",
		percentile(lat, 50).Round(time.Microsecond), percentile(lat, 99).Round(time.Microsecond), percentile(lat, 100).Round(time.Millisecond))
	return b.String()
}

func list(seeds []string) string {
	if len(seeds) == 0 {
		return ""
	}
	if len(seeds) > 20 {
		seeds = append(seeds[:20:20], "...")
	}
	return ": " + strings.Join(seeds, " ")
}
