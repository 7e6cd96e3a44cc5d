package storage_test

import (
	"fmt"
	"testing"

	"github.com/benitogf/pivot/ooo/storage"
)

// BenchmarkBoltStart measures Start and Close of a file holding 1k and 100k entries:
// the read-only open, checkBolt's walk of every page, the read-write open and the
// checksum pass over every record (newBoltBackend) are all in it.
func BenchmarkBoltStart(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			file := filledBolt(b, n)
			b.ResetTimer()
			for range b.N {
				s := &storage.BoltStorage{Path: file}
				if err := s.Start(storage.Options{}); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
