package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
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
//   - the free list page is one, inside those pages, and lists only pages inside them
//     (bbolt reads it at the read-write open, and panics on a bad one; a panic there is
//     caught by guard but leaves the file open, and locked, until the garbage
//     collector closes it, so it is checked before);
//   - every page of every bucket is where its parent points (bbolt's own page check,
//     which panics, under guard), its keys increase, and each key and value lies
//     inside the file's pages.
//
// The read-only open holds a shared lock, so no writer changes the file during the
// check. It does not read the records' checksums (newBoltBackend does). The cost is one read of
// every page in use: on a file of 100k small entries, 4 ms on pages already mapped
// (BenchmarkBoltCheck), about 20 ms when the open has just mapped the file; Start of
// such a file went from 3 ms to about 60 ms with this check and the checksum pass.
func checkBolt(db *bolt.DB, file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("storage: check %s: %w", file, err)
	}
	return guard("storage: check "+file, func() error {
		return db.View(func(tx *bolt.Tx) error {
			if need := tx.Size(); need > fi.Size() {
				return fmt.Errorf("storage: check %s: the file is %d bytes but its pages reach %d (truncated): %w",
					file, fi.Size(), need, ErrCorrupt)
			}
			if err := checkFreelist(file, db.Info().PageSize, tx.Size()); err != nil {
				return fmt.Errorf("storage: check %s: %w", file, err)
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

// The parts of bbolt's file layout (format version 2) that checkFreelist reads: a page
// starts with a 16-byte header (id, flags, count, overflow); pages 0 and 1 are meta
// pages, whose fields follow the header; a free list page holds count page ids of 8
// bytes after the header, or, when count is 0xFFFF, the real count as the first of them.
// bbolt writes these in the machine's byte order; on a big-endian machine the magic
// does not match here and checkFreelist checks nothing.
const (
	pageHeaderSize   = 16
	freelistPageFlag = 0x10
	metaMagic        = 0xED0CDAED
	metaVersion      = 2
	noFreelist       = ^uint64(0)
)

// boltMeta is what checkFreelist needs of a meta page.
type boltMeta struct {
	freelist, pgid, txid uint64
}

// readMeta reads the meta page at off; ok is false unless its magic, version and
// checksum hold.
func readMeta(f *os.File, off int64) (m boltMeta, ok bool) {
	b := make([]byte, pageHeaderSize+64)
	if _, err := f.ReadAt(b, off); err != nil {
		return m, false
	}
	meta := b[pageHeaderSize:]
	h := fnv.New64a()
	_, _ = h.Write(meta[:56])
	if binary.LittleEndian.Uint32(meta[0:]) != metaMagic || binary.LittleEndian.Uint32(meta[4:]) != metaVersion ||
		binary.LittleEndian.Uint64(meta[56:]) != h.Sum64() {
		return m, false
	}
	return boltMeta{
		freelist: binary.LittleEndian.Uint64(meta[32:]),
		pgid:     binary.LittleEndian.Uint64(meta[40:]),
		txid:     binary.LittleEndian.Uint64(meta[48:]),
	}, true
}

// checkFreelist checks the free list page of the meta bbolt uses (the valid one with
// the higher txid, as bbolt picks it) against size, the bytes the file's pages span.
// It says nothing when it cannot read the meta as bbolt did (a layout it does not know).
func checkFreelist(file string, pageSize int, size int64) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("free list: %w", err)
	}
	defer f.Close()
	ps := int64(pageSize)
	m0, ok0 := readMeta(f, 0)
	m1, ok1 := readMeta(f, ps)
	m := m0
	if !ok0 || (ok1 && m1.txid > m0.txid) {
		m = m1
	}
	if (!ok0 && !ok1) || int64(m.pgid)*ps != size || m.freelist == noFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Errorf("free list page %d outside the file's %d pages: %w", m.freelist, m.pgid, ErrCorrupt)
	}
	head := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(head, int64(m.freelist)*ps); err != nil {
		return fmt.Errorf("free list page %d: %w: %w", m.freelist, err, ErrCorrupt)
	}
	id, flags := binary.LittleEndian.Uint64(head), binary.LittleEndian.Uint16(head[8:])
	count, overflow := uint64(binary.LittleEndian.Uint16(head[10:])), uint64(binary.LittleEndian.Uint32(head[12:]))
	if id != m.freelist || flags != freelistPageFlag || m.freelist+overflow >= m.pgid {
		return fmt.Errorf("free list page %d is not one: %w", m.freelist, ErrCorrupt)
	}
	start := uint64(pageHeaderSize)
	if count == 0xFFFF {
		count, start = binary.LittleEndian.Uint64(head[pageHeaderSize:]), start+8
	}
	span := (overflow + 1) * uint64(ps)
	if count > (span-start)/8 {
		return fmt.Errorf("free list page %d lists %d pages, more than it holds: %w", m.freelist, count, ErrCorrupt)
	}
	ids := make([]byte, count*8)
	if _, err := f.ReadAt(ids, int64(m.freelist)*ps+int64(start)); err != nil {
		return fmt.Errorf("free list page %d: %w: %w", m.freelist, err, ErrCorrupt)
	}
	for i := 0; i < len(ids); i += 8 {
		if p := binary.LittleEndian.Uint64(ids[i:]); p < 2 || p >= m.pgid {
			return fmt.Errorf("free list page %d lists page %d, outside the file: %w", m.freelist, p, ErrCorrupt)
		}
	}
	return nil
}
