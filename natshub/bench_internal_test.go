package natshub

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/benitogf/pivot/ooo/storage/storagetest"
)

// Benchmarks of the storage on one in-process server (sync on every write), and on a
// 3-server in-process cluster with R3 buckets ("nats-r3"), beside
// MemoryStorage and BoltStorage in the same run:
//
//	go test -run XXX -bench . -count 5 ./natshub/
//
// Changes: ms to read 100 changes since S with 10k keys held. Apply: applies/s in
// batches of 100 new keys. Watch: time from the start of a Set to its event, beside the
// Set's own time (for nats also from a write of one process to the event of another).

// benchStorage returns a started storage of kind, closed when b ends: "nats" on one
// in-process server, "nats-r3" with R3 buckets on a 3-server in-process cluster,
// "memory" or "bolt".
func benchStorage(b *testing.B, kind string) storagetest.Storage {
	switch kind {
	case "nats":
		ns := startServer(b)
		_, js := connect(b, ns.ClientURL())
		return started(b, newStorage(b, js, Config{Bucket: "bench"}))
	case "nats-r3":
		servers := startCluster(b, 3)
		urls := make([]string, len(servers))
		for i, ns := range servers {
			urls[i] = ns.ClientURL()
		}
		_, js := connect(b, strings.Join(urls, ","))
		return started(b, newStorage(b, js, Config{Bucket: "bench", Replicas: 3}))
	}
	var s storagetest.Storage = &storage.MemoryStorage{}
	if kind == "bolt" {
		s = &storage.BoltStorage{Path: filepath.Join(b.TempDir(), "db")}
	}
	if err := s.Start(storage.Options{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}

// fill applies n new keys under prefix in batches of 100.
func fill(b *testing.B, s storagetest.Storage, prefix string, n int) {
	for i := 0; i < n; i += 100 {
		batch := make([]storage.Entry, 0, 100)
		for j := i; j < min(i+100, n); j++ {
			batch = append(batch, storage.Entry{Key: fmt.Sprintf("%s/%06d", prefix, j), Created: s.Clock().Now(), Data: json.RawMessage(`{"v":1}`)})
		}
		if _, err := s.Apply(batch, pivot.Wins); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChanges100At10k(b *testing.B) {
	for _, kind := range []string{"nats", "nats-r3", "bolt", "memory"} {
		b.Run(kind, func(b *testing.B) {
			s := benchStorage(b, kind)
			fill(b, s, "old", 10000)
			_, since, err := s.Changes("", 0, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			fill(b, s, "new", 100)
			b.ResetTimer()
			for b.Loop() {
				c, _, err := s.Changes("", since, 1000)
				if err != nil || len(c) != 100 {
					b.Fatalf("%d changes, %v", len(c), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/changes")
		})
	}
}

func BenchmarkApply100(b *testing.B) {
	for _, kind := range []string{"nats", "nats-r3", "bolt", "memory"} {
		b.Run(kind, func(b *testing.B) {
			s := benchStorage(b, kind)
			n := 0
			b.ResetTimer()
			for b.Loop() {
				batch := make([]storage.Entry, 100)
				for j := range batch {
					batch[j] = storage.Entry{Key: fmt.Sprintf("a/%08d", n), Created: s.Clock().Now(), Data: json.RawMessage(`{"v":1}`)}
					n++
				}
				if _, err := s.Apply(batch, pivot.Wins); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "applies/s")
		})
	}
}

func BenchmarkWatchLatency(b *testing.B) {
	for _, kind := range []string{"nats", "nats-other-process", "bolt", "memory"} {
		b.Run(kind, func(b *testing.B) {
			var (
				writer storagetest.Storage
				ch     storage.EventChan
			)
			if kind == "nats-other-process" {
				ns := startServer(b)
				_, js1 := connect(b, ns.ClientURL())
				_, js2 := connect(b, ns.ClientURL())
				w := started(b, newStorage(b, js1, Config{Bucket: "lat", Process: "w"}))
				r := started(b, newStorage(b, js2, Config{Bucket: "lat", Process: "r"}))
				writer, ch = w, r.Watch()
			} else {
				writer = benchStorage(b, kind)
				ch = writer.Watch()
			}
			var total, writes time.Duration
			i := 0
			b.ResetTimer()
			for b.Loop() {
				k := fmt.Sprintf("w/%d", i)
				i++
				start := time.Now()
				if _, err := writer.Set(k, json.RawMessage(`1`)); err != nil {
					b.Fatal(err)
				}
				writes += time.Since(start)
				for ev := range ch {
					if ev.Key == k {
						break
					}
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/write+event")
			b.ReportMetric(float64(writes.Microseconds())/1000/float64(b.N), "ms/write")
		})
	}
}
