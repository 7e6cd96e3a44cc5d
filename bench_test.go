package pivot_test

import (
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/stretchr/testify/require"
)

// BenchmarkConvergence measures the time from a write on node A to the storage event of
// that write on node B (the entry is readable there), through push, trigger and pull
// on loopback. It reports the median and p99 besides the mean.
//
// The collection is first filled with entries=N entries, to show that the cost of one
// change does not grow with the data held.
func BenchmarkConvergence(b *testing.B) {
	for _, kind := range kinds() {
		for _, size := range []int{0, 10000} {
			b.Run(fmt.Sprintf("%s/entries=%d", kind.name, size), func(b *testing.B) {
				benchConvergence(b, kind, size)
			})
		}
	}
}

// BenchmarkConvergence_Auth is BenchmarkConvergence on MemoryStorage with the
// protocol authenticated (a Token: every request and answer carries an HMAC proof)
// beside the same cluster with no Token, in one run.
func BenchmarkConvergence_Auth(b *testing.B) {
	for _, token := range []string{"", "bench-secret-0123456789"} {
		name := "auth=off"
		if token != "" {
			name = "auth=on"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig()
			cfg.Token = token
			cfg.DisableStream = true
			benchConvergenceWith(b, memoryKind, 0, cfg)
		})
	}
}

func benchConvergence(b *testing.B, kind storageKind, size int) {
	cfg := testConfig()
	cfg.DisableStream = true // the trigger path; BenchmarkConvergence_Stream has the stream
	benchConvergenceWith(b, kind, size, cfg)
}

func benchConvergenceWith(b *testing.B, kind storageKind, size int, cfg pivot.Config) {
	p := startInstance(b, "pivot", kind.make(b), "", "", cfg)
	for i := 0; i < size; i++ {
		set(b, p, fmt.Sprintf("users/fill-%06d", i), `{"filler":true}`)
	}
	a := startInstance(b, "a", kind.make(b), "", p.addr, cfg)
	seen := make(chan string, 1024)
	server := &ooo.Server{Silence: true, Storage: kind.make(b), Pivot: p.addr}
	server.OnStorageEvent = func(ev ooo.StorageEvent) {
		select {
		case seen <- ev.Key:
		default:
		}
	}
	result := pivot.Setup(server, cfg)
	server.BeforeRead = result.BeforeRead
	require.NoError(b, server.Start("127.0.0.1:0"))
	b.Cleanup(func() { server.Close(os.Interrupt) })
	p.register(a)
	p.register(&instance{addr: server.Address})
	nodeB := &instance{db: server.Storage}
	eventually(b, time.Minute, func() bool {
		return len(state(b, nodeB.db, []string{"users/*"}, true)) == size
	}, "node B holds the %d entries", size)
	drainKeys(seen)

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
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "median-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
}

// waitKey waits until k arrives on seen (the event keys of a storage), failing b after
// timeout.
func waitKey(b *testing.B, seen <-chan string, k string, timeout time.Duration) {
	b.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case got := <-seen:
			if got == k {
				return
			}
		case <-deadline:
			b.Fatalf("write %s never reached the other node", k)
		}
	}
}

// drainKeys empties a channel of event keys.
func drainKeys(ch chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
