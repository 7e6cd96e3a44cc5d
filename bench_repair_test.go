package pivot_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/stretchr/testify/require"
)

// BenchmarkRepair measures anti-entropy over data at entries=N: an in-sync check (the
// node's tree and the pivot's compared at the root), and the detection and repair of
// one entry altered on the node among N. It reports medians, and the protocol bytes
// both ends moved per check.
func BenchmarkRepair(b *testing.B) {
	for _, size := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("in-sync/entries=%d", size), func(b *testing.B) { benchRepair(b, size, false) })
		b.Run(fmt.Sprintf("one-altered/entries=%d", size), func(b *testing.B) { benchRepair(b, size, true) })
	}
}

func benchRepair(b *testing.B, size int, alterOne bool) {
	cfg := testConfig()
	cfg.RepairInterval = -1
	p := startInstance(b, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	for i := range size {
		set(b, p, fmt.Sprintf("users/u%06d", i), fmt.Sprintf(`{"name":"user %d","n":%d}`, i, 100000+i))
	}
	node := startInstance(b, "node", &ooo.MemoryStorage{}, "", p.addr, cfg)
	p.register(node)
	eventually(b, 2*time.Minute, func() bool {
		return len(state(b, node.db, []string{"users/*"}, true)) == size
	}, "the node holds the %d entries", size)
	ctx := context.Background()
	require.NoError(b, node.result.Repair(ctx)) // builds both trees
	samples := make([]time.Duration, 0, b.N)
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := fmt.Sprintf("users/u%06d", i*7919%size)
		if alterOne {
			b.StopTimer()
			alter(b, node, k, `{"altered":1}`)
			b.StartTimer()
		}
		before := node.result.Status()
		start := time.Now()
		require.NoError(b, node.result.Repair(ctx))
		samples = append(samples, time.Since(start))
		after := node.result.Status()
		bytes += after.BytesSent + after.BytesReceived - before.BytesSent - before.BytesReceived
		if alterOne && after.Repairs != before.Repairs+1 {
			b.Fatalf("the altered entry %s was not repaired: %d → %d", k, before.Repairs, after.Repairs)
		}
		if !alterOne && !after.Keys[0].InSync {
			b.Fatalf("an in-sync check found a difference")
		}
	}
	b.StopTimer()
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/check")
}

// BenchmarkLargeValue measures what one value of size bytes costs to replicate: the time
// from its write on node A to its storage event on node B, and the protocol bytes A and
// B moved for it (push, pull and trigger bodies as they went on the wire).
func BenchmarkLargeValue(b *testing.B) {
	for _, size := range []int{1 << 20, 4<<20 - 64} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) { benchLargeValue(b, size) })
	}
}

func benchLargeValue(b *testing.B, size int) {
	cfg := testConfig()
	cfg.RequestTimeout = 30 * time.Second
	cfg.RepairInterval = -1
	p := startInstance(b, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	a := startInstance(b, "a", &ooo.MemoryStorage{}, "", p.addr, cfg)
	seen := make(chan string, 16)
	bServer := &ooo.Server{Silence: true, Storage: &ooo.MemoryStorage{}, Pivot: p.addr}
	bServer.OnStorageEvent = func(ev ooo.StorageEvent) {
		select {
		case seen <- ev.Key:
		default:
		}
	}
	nb := startServer(b, "b", bServer, "", cfg)
	p.register(a)
	p.register(nb)
	samples := make([]time.Duration, 0, b.N)
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		value := fmt.Sprintf(`{"i":%d,"html":"%s"}`, i, strings.Repeat("<a&b>", (size-40)/5))
		k := fmt.Sprintf("users/large-%d", i)
		drainKeys(seen)
		before := a.result.Status().BytesSent + nb.result.Status().BytesReceived
		b.StartTimer()
		start := time.Now()
		set(b, a, k, value)
		waitKey(b, seen, k, time.Minute)
		samples = append(samples, time.Since(start))
		bytes += a.result.Status().BytesSent + nb.result.Status().BytesReceived - before
	}
	b.StopTimer()
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(bytes)/float64(b.N), "wire-bytes/op")
}
