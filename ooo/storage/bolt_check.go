package storage

import (
	"bytes"
	"fmt"
	"os"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// checkBolt checks a bbolt file, opened read-only, before the storage opens it for
// writing. bbolt itself checks only its meta pages when it opens a file, so a file cut
// short or overwritten in the middle opens fine and fails (or, without guard, kills the
// process) at the first read of a damaged page. checkBolt looks at what one pass over
// the file's B+trees can tell:
//
//   - the file holds every page its meta page counts (one that was cut short does not);
//   - every page of every bucket is where its parent points (bbolt's own page check,
//     which panics, under guard), its keys increase, and each key and value lies
//     inside the file's pages.
//
// It does not read the records' checksums (newBoltBackend does) nor the free list
// (bbolt reads it at the read-write open, under guard too). The cost is one read of
// every page in use: on a file of 100k small entries, 4 ms on pages already mapped
// (BenchmarkBoltCheck), about 20 ms when the open has just mapped the file; Start of
// such a file went from 3 ms to about 60 ms with this check and the checksum pass.
func checkBolt(db *bolt.DB, file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("storage: check %s: %w", file, err)
	}
	return guard("check "+file, func() error {
		return db.View(func(tx *bolt.Tx) error {
			if need := tx.Size(); need > fi.Size() {
				return fmt.Errorf("storage: check %s: the file is %d bytes but its pages reach %d (truncated): %w",
					file, fi.Size(), need, ErrCorrupt)
			}
			lo := db.Info().Data
			w := treeWalk{lo: lo, hi: lo + uintptr(tx.Size())}
			if err := w.walk(tx.Cursor(), true, tx.Bucket); err != nil {
				return fmt.Errorf("storage: check %s: %w", file, err)
			}
			return nil
		})
	})
}

// treeWalk visits every key of a bucket and of the buckets nested in it. lo and hi
// bound the memory of the file's pages.
type treeWalk struct {
	lo, hi uintptr
}

// walk visits the keys of cursor c, whose bucket lies in the file's pages unless it is
// an inline bucket whose bytes bbolt copied (mapped false); open opens a nested bucket.
func (t treeWalk) walk(c *bolt.Cursor, mapped bool, open func(name []byte) *bolt.Bucket) error {
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("keys out of order after %q: %w", prev, ErrCorrupt)
		}
		prev = k
		if mapped && (!t.inside(k) || !t.inside(v)) {
			return fmt.Errorf("key %q lies outside the file's pages: %w", k, ErrCorrupt)
		}
		if v != nil {
			continue
		}
		b := open(k)
		if b == nil {
			continue // a key with an empty value, not a bucket
		}
		// An inline bucket (root 0) lives in its parent's page, checked above; bbolt
		// may read it from a copy, whose address says nothing.
		if err := t.walk(b.Cursor(), b.Root() != 0, b.Bucket); err != nil {
			return fmt.Errorf("bucket %q: %w", k, err)
		}
	}
	return nil
}

// inside reports whether p lies in the file's pages.
func (t treeWalk) inside(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return start >= t.lo && start <= t.hi && uintptr(len(p)) <= t.hi-start
}
