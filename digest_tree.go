package pivot

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	"github.com/benitogf/pivot/ooo/storage"
)

// Anti-entropy compares a node's data with the pivot's through a digest tree per synced
// path, in the manner of Merkle-tree repair: every entry (tombstones included) hashes
// to 16 bytes; an entry's leaf is given by the first treeDepth hex digits of the
// SHA-256 of its key; a bucket's digest is the XOR of its entries' hashes, so a parent
// is the XOR of its 16 children and the root covers the whole path. Two replicas hold
// the same entries exactly when their roots agree (up to hash collisions), and a
// difference is narrowed down one hex digit per exchange: treeDepth exchanges reach
// the leaf, one more lists its entries.
//
// The tree is built from a full read of the feed the first time it is used, then kept
// up to date from the change feed (O(changes)); it is rebuilt when the storage's epoch
// or tombstone horizon moves, and after treeRebuildEvery checks, so damage done to the
// stored data under a running process is found too.

// entryHash is the 16-byte hash of one entry's replicated state.
type entryHash [16]byte

// bucket is one node of the tree: the XOR of its entries' hashes and their count.
type bucket struct {
	sum   entryHash
	count int
}

func (b *bucket) add(h entryHash, n int) {
	for i := range b.sum {
		b.sum[i] ^= h[i]
	}
	b.count += n
}

// hashEntry hashes what replicas must agree on: key, stamps, tombstone flag and data.
func hashEntry(e storage.Entry) entryHash {
	h := sha256.New()
	var v [17]byte
	binary.BigEndian.PutUint64(v[:8], uint64(e.Created))
	binary.BigEndian.PutUint64(v[8:16], uint64(e.Updated))
	if e.Deleted {
		v[16] = 1
	}
	h.Write([]byte(e.Key))
	h.Write([]byte{0})
	h.Write(v[:])
	h.Write(e.Data)
	var sum [sha256.Size]byte
	var out entryHash
	copy(out[:], h.Sum(sum[:0]))
	return out
}

// leafOf returns the leaf of a key.
func leafOf(k string) int {
	sum := sha256.Sum256([]byte(k))
	return int(binary.BigEndian.Uint16(sum[:2]) >> (16 - 4*treeDepth))
}

// treeEntry is one entry as the tree holds it.
type treeEntry struct {
	hash    entryHash
	version int64
	deleted bool
	leaf    int
}

// digestTree is the digest tree of one synced path. Safe for concurrent use.
type digestTree struct {
	mu      sync.Mutex
	built   bool
	epoch   string
	horizon uint64
	seq     uint64 // the feed position the tree covers
	checks  int    // checks served since the last full build
	entries map[string]treeEntry
	leaves  [treeLeaves]bucket
}

// refresh brings the tree up to sk's current data: from the feed since the last
// refresh, or from a full read when the tree is new, the storage's epoch or horizon
// moved, or treeRebuildEvery checks (refreshes with check set) have passed. page and
// budget bound each read of the feed. Call with t.mu held.
func (t *digestTree) refresh(sk *syncKey, page int, budget int64, check bool) error {
	if check {
		t.checks++
	}
	epoch, horizon := sk.rep.Epoch(), sk.rep.Horizon()
	if !t.built || t.epoch != epoch || t.horizon != horizon || t.checks > treeRebuildEvery {
		t.entries, t.leaves, t.seq, t.checks = map[string]treeEntry{}, [treeLeaves]bucket{}, 0, 0
		t.epoch, t.horizon, t.built = epoch, horizon, true
	}
	for i := 0; i < maxSnapshotPages; i++ {
		p, err := readFeed(sk, t.seq, page, budget, nil)
		if err != nil {
			t.built = false
			return fmt.Errorf("pivot: digest tree of %s: %w", sk.path, err)
		}
		for _, c := range p.changes {
			t.put(c.Entry)
		}
		t.seq = max(t.seq, p.next)
		if !p.more {
			return nil
		}
	}
	return nil
}

// put replaces the tree's state of e's key with e.
func (t *digestTree) put(e storage.Entry) {
	if old, ok := t.entries[e.Key]; ok {
		t.leaves[old.leaf].add(old.hash, -1)
	}
	te := treeEntry{hash: hashEntry(e), version: e.Version(), deleted: e.Deleted, leaf: leafOf(e.Key)}
	t.entries[e.Key] = te
	t.leaves[te.leaf].add(te.hash, 1)
}

// node returns the bucket of a prefix of 0 to treeDepth hex digits.
func (t *digestTree) node(prefix int, digits int) bucket {
	span := 1 << (4 * (treeDepth - digits))
	var b bucket
	for _, l := range t.leaves[prefix*span : (prefix+1)*span] {
		b.add(l.sum, l.count)
	}
	return b
}

// leafEntries lists the entries of one leaf, sorted by key.
func (t *digestTree) leafEntries(leaf int) []leafEntry {
	var out []leafEntry
	for k, te := range t.entries {
		if te.leaf == leaf {
			out = append(out, leafEntry{Key: k, Version: te.version, Deleted: te.deleted, Hash: hex.EncodeToString(te.hash[:])})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// parsePrefix reads a tree prefix: 0 to treeDepth lowercase hex digits.
func parsePrefix(s string) (value, digits int, err error) {
	if len(s) > treeDepth {
		return 0, 0, fmt.Errorf("prefix must have at most %d hex digits", treeDepth)
	}
	for _, c := range s {
		d := hexDigit(c)
		if d < 0 {
			return 0, 0, fmt.Errorf("prefix must be lowercase hex digits, got %q", s)
		}
		value = value<<4 | d
	}
	return value, len(s), nil
}

func hexDigit(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// prefixString writes a prefix of digits hex digits.
func prefixString(value, digits int) string {
	if digits == 0 {
		return ""
	}
	return fmt.Sprintf("%0*x", digits, value)
}

// answer builds the tree answer for a prefix: its bucket and its 16 children, or, for a
// leaf, its entries.
func (t *digestTree) answer(value, digits int, head uint64) treeResponse {
	b := t.node(value, digits)
	resp := treeResponse{Epoch: t.epoch, Head: head, Prefix: prefixString(value, digits), Count: b.count, Digest: hex.EncodeToString(b.sum[:])}
	if digits == treeDepth {
		resp.Entries = t.leafEntries(value)
		if resp.Entries == nil {
			resp.Entries = []leafEntry{}
		}
		return resp
	}
	resp.Children = make([]treeBucket, 16)
	for i := range resp.Children {
		c := t.node(value<<4|i, digits+1)
		resp.Children[i] = treeBucket{Count: c.count, Digest: hex.EncodeToString(c.sum[:])}
	}
	return resp
}
