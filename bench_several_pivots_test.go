package pivot_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/stretchr/testify/require"
)

// BenchmarkSeveralPivots measures, in one run:
//   - convergence/pivots=1: a write on node A → readable on node B through one pivot
//     (as BenchmarkConvergence/memory/entries=0);
//   - convergence/pivots=2: the same with A and B syncing with two different pivot
//     processes over one shared data set (shared_storage_test.go);
//   - failover: a pivot process with a node on it stops; from then, a write on that
//     node → readable on a node of the other process (the node's failed round, the
//     backoff, its push to the other process, the trigger and the other node's pull),
//     with the default backoff (BackoffMin 100ms, halved at most by jitter).
//
// Each reports the median and p99 of its samples.
func BenchmarkSeveralPivots(b *testing.B) {
	b.Run("convergence/pivots=1", func(b *testing.B) {
		benchConvergenceWith(b, memoryKind, 0, testConfig())
	})
	b.Run("convergence/pivots=2", func(b *testing.B) {
		_, a, _, seen := startSplitHub(b, testConfig())
		samples := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := fmt.Sprintf("users/bench-%d", i)
			start := time.Now()
			set(b, a, k, `{"sample":true}`)
			waitKey(b, seen, k, 10*time.Second)
			samples = append(samples, time.Since(start))
		}
		b.StopTimer()
		reportMedian(b, samples)
	})
	b.Run("failover", func(b *testing.B) {
		cfg := testConfig()
		cfg.BackoffMin, cfg.BackoffMax = 0, 0 // the defaults
		samples := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			h, a, _, seen := startSplitHub(b, cfg)
			victim := h.byAddr(a.result.Status().Pivot)
			k := fmt.Sprintf("users/failover-%d", i)
			b.StartTimer()
			victim.stop()
			start := time.Now()
			set(b, a, k, `{"sample":true}`)
			waitKey(b, seen, k, 30*time.Second)
			samples = append(samples, time.Since(start))
		}
		b.StopTimer()
		reportMedian(b, samples)
	})
}

// startSplitHub starts two pivot processes over one data set and two nodes on
// different processes: A (an instance) and B (a server whose storage events of synced
// keys arrive on seen). Nodes whose owner turned out to be A's process are stopped and
// unregistered until one lands on the other process.
func startSplitHub(b *testing.B, cfg pivot.Config) (*hub, *instance, *instance, chan string) {
	b.Helper()
	h := startHub(b, 2, cfg)
	a := h.startNode("a", cfg)
	eventually(b, waitTimeout, func() bool { return a.result.Status().PivotHealthy }, "node A syncs")
	onA := a.result.Status().Pivot
	for try := 0; try < 20; try++ {
		seen := make(chan string, 1024)
		c := cfg
		c.Pivots = h.addrs()
		server := &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}}
		server.OnStorageEvent = func(ev ooo.StorageEvent) {
			select {
			case seen <- ev.Key:
			default:
			}
		}
		result := pivot.Setup(server, c)
		require.NoError(b, server.Start("127.0.0.1:0"))
		nodeB := &instance{t: b, name: "b", server: server, db: server.Storage, result: result, addr: server.Address, config: c}
		b.Cleanup(nodeB.stop)
		h.pivots[0].register(nodeB)
		eventually(b, waitTimeout, func() bool { return result.Status().PivotHealthy }, "node B syncs")
		if result.Status().Pivot != onA {
			drainKeys(seen)
			return h, a, nodeB, seen
		}
		nodeB.stop()
		require.NoError(b, h.pivots[0].db.Del(nodeEntry(nodeB)))
	}
	b.Fatal("no node landed on the other pivot process in 20 tries")
	return nil, nil, nil, nil
}

// nodeEntry is the NodesKey entry register writes for node.
func nodeEntry(node *instance) string {
	id := []rune(node.addr)
	for i, c := range id {
		if c == '.' || c == ':' {
			id[i] = '-'
		}
	}
	return "things/" + string(id)
}

// reportMedian reports the median and p99 of samples, in µs.
func reportMedian(b *testing.B, samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "median-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
}
