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
	b.Run("bbolt-tx.Check", func(b *testing.B) {
		// For comparison only: bbolt's own check walks on a goroutine of its own, where
		// a panic on a damaged page cannot be recovered, so the storage does not use it.
		for range b.N {
			err := db.View(func(tx *bolt.Tx) error {
				for err := range tx.Check() {
					return err
				}
				return nil
			})
			if err != nil {
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
