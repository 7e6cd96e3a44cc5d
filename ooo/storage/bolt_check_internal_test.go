package storage

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkBoltCheck measures the two passes Start makes over a file of 100k entries,
// apart: checkBolt (every page of every bucket) and the checksum of every record.
func BenchmarkBoltCheck(b *testing.B) {
	file := filepath.Join(b.TempDir(), "check.db")
	s := &BoltStorage{Path: file}
	if err := s.Start(Options{}); err != nil {
		b.Fatal(err)
	}
	base := s.Clock().Now() - 1e6
	for start := 0; start < 100000; start += 5000 {
		var entries []Entry
		for i := start; i < start+5000; i++ {
			entries = append(entries, Entry{Key: fmt.Sprintf("users/%06d", i), Created: base + int64(i),
				Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"name":"entry number %d of the damage tests"}`, i, i))})
		}
		if _, err := s.Apply(entries, func(Entry, Entry) bool { return true }); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.Run("pages", func(b *testing.B) {
		for range b.N {
			if err := checkBolt(db, file); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("records", func(b *testing.B) {
		be := &boltBackend{db: db, dmg: &damageSet{}}
		for range b.N {
			if err := be.view(func(r reader) error { return r.(*boltReader).checkRecords() }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
