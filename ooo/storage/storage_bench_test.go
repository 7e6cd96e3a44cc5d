package storage_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/benitogf/pivot/ooo/storage/storagetest"
)

// benchKinds lists the storages every benchmark runs on.
var benchKinds = []struct {
	name string
	open func(b *testing.B) storagetest.Storage
}{
	{"memory", func(*testing.B) storagetest.Storage { return &storage.MemoryStorage{} }},
	{"bolt", func(b *testing.B) storagetest.Storage { return &storage.BoltStorage{Path: b.TempDir()} }},
}

// startBench starts s with a reader draining its events, as a server would.
func startBench(b *testing.B, s storagetest.Storage) storagetest.Storage {
	b.Helper()
	if err := s.Start(storage.Options{}); err != nil {
		b.Fatal(err)
	}
	ch := s.Watch()
	go func() {
		for range ch {
		}
	}()
	b.Cleanup(s.Close)
	return s
}

// fill applies n entries in batches, stamped in the past so none is refused.
func fill(b *testing.B, s storagetest.Storage, n int) {
	b.Helper()
	base := s.Clock().Now() - int64(n)
	const batch = 5000
	for start := 0; start < n; start += batch {
		entries := make([]storage.Entry, 0, batch)
		for i := start; i < min(start+batch, n); i++ {
			entries = append(entries, storage.Entry{
				Key:     fmt.Sprintf("bench/%08d", i),
				Created: base + int64(i),
				Data:    json.RawMessage(fmt.Sprintf(`{"n":%d,"name":"entry number %d"}`, i, i)),
			})
		}
		if _, err := s.Apply(entries, pivot.Wins); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSizes are the store sizes Set and Get run at: their cost must not grow with it.
var benchSizes = []int{1000, 100000}

// BenchmarkSet overwrites entries of a store holding 1k and 100k entries, one writer
// and eight concurrent writers (bolt shares a commit between concurrent writers).
func BenchmarkSet(b *testing.B) {
	data := json.RawMessage(`{"name":"a thing","count":42,"tags":["x","y"]}`)
	for _, kind := range benchKinds {
		for _, size := range benchSizes {
			name := fmt.Sprintf("%s/%dk", kind.name, size/1000)
			b.Run(name, func(b *testing.B) {
				s := startBench(b, kind.open(b))
				fill(b, s, size)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if _, err := s.Set(fmt.Sprintf("bench/%08d", i%size), data); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				s := startBench(b, kind.open(b))
				fill(b, s, size)
				b.ReportAllocs()
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if _, err := s.Set(fmt.Sprintf("bench/%08d", i%size), data); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
		}
	}
}

// BenchmarkGet reads single entries of a store holding 1k and 100k entries.
func BenchmarkGet(b *testing.B) {
	for _, kind := range benchKinds {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%dk", kind.name, size/1000), func(b *testing.B) {
				s := startBench(b, kind.open(b))
				fill(b, s, size)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if _, err := s.Get(fmt.Sprintf("bench/%08d", i%size)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkChanges reads 100 changes from the middle of the feed of a storage holding
// 1k and 100k entries: the cost must not grow with the size.
func BenchmarkChanges(b *testing.B) {
	for _, kind := range benchKinds {
		for _, size := range []int{1_000, 100_000} {
			b.Run(fmt.Sprintf("%s/%dk", kind.name, size/1000), func(b *testing.B) {
				s := startBench(b, kind.open(b))
				fill(b, s, size)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					since := uint64(i*100) % uint64(size-100)
					changes, _, err := s.Changes("", since, 100)
					if err != nil || len(changes) != 100 {
						b.Fatalf("%d changes, %v", len(changes), err)
					}
				}
			})
		}
	}
}

// BenchmarkApply applies batches of 1,000 entries that each win: every batch rewrites
// the same 1,000 keys with newer versions, so the storage does not grow.
func BenchmarkApply(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind.name+"/1000", func(b *testing.B) {
			s := startBench(b, kind.open(b))
			base := s.Clock().Now() - int64(b.N)*1000
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				entries := make([]storage.Entry, 1000)
				for j := range entries {
					entries[j] = storage.Entry{
						Key:     fmt.Sprintf("apply/%d", j),
						Created: base + int64(i*1000+j),
						Data:    json.RawMessage(`{"v":1}`),
					}
				}
				b.StartTimer()
				applied, err := s.Apply(entries, pivot.Wins)
				if err != nil || len(applied) != 1000 {
					b.Fatalf("applied %d: %v", len(applied), err)
				}
			}
		})
	}
}
