package storage

import (
	"sort"
	"sync"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// memoryBackend holds records in a map and the change feed in an append-only log of
// (seq, key) rows; a row is current while the key's record still has that seq. Stale
// rows are skipped when read and compacted away once they are the majority.
type memoryBackend struct {
	mu      sync.RWMutex
	publish func([]Event)

	records map[string]*memRecord
	tombs   map[string]struct{}
	log     []feedRow
	stale   int // rows of log that no longer name their key's record
	last    uint64
	hor     uint64
	ep      string
	cursors map[string][]byte
	events  []Event // emitted by the update in progress
}

type memRecord struct {
	c   Change
	raw []byte // meta.New of the live object; nil for a tombstone
}

type feedRow struct {
	seq uint64
	key string
}

// minCompaction is the log length below which stale rows are left alone.
const minCompaction = 1024

func newMemoryBackend(publish func([]Event)) *memoryBackend {
	return &memoryBackend{
		publish: publish,
		records: make(map[string]*memRecord),
		tombs:   make(map[string]struct{}),
		cursors: make(map[string][]byte),
	}
}

func (b *memoryBackend) view(fn func(r reader) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return fn(b)
}

func (b *memoryBackend) update(fn func(w writer) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = b.events[:0]
	err := fn(b)
	// Memory writes cannot fail half-way, so whatever fn wrote is committed; its events
	// go out before the lock is released, which keeps them in write order.
	b.publish(b.events)
	clear(b.events)
	b.events = b.events[:0]
	return err
}

func (b *memoryBackend) close() error { return nil }

func (b *memoryBackend) record(k string) (Change, bool, error) {
	r, ok := b.records[k]
	if !ok {
		return Change{}, false, nil
	}
	return r.c, true, nil
}

func (b *memoryBackend) object(k string) ([]byte, bool, error) {
	r, ok := b.records[k]
	if !ok || r.c.Deleted {
		return nil, false, nil
	}
	return append([]byte(nil), r.raw...), true, nil
}

func (b *memoryBackend) scan(pattern string, fn func(c Change) error) error {
	for k, r := range b.records {
		if pattern != "" && !key.Match(pattern, k) {
			continue
		}
		if err := fn(r.c); err != nil {
			return err
		}
	}
	return nil
}

func (b *memoryBackend) feed(since uint64, fn func(seq uint64, k string) (bool, error)) error {
	i := sort.Search(len(b.log), func(i int) bool { return b.log[i].seq > since })
	for ; i < len(b.log); i++ {
		row := b.log[i]
		if r, ok := b.records[row.key]; !ok || r.c.Seq != row.seq {
			continue
		}
		more, err := fn(row.seq, row.key)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (b *memoryBackend) head() uint64    { return b.last }
func (b *memoryBackend) horizon() uint64 { return b.hor }
func (b *memoryBackend) epoch() string   { return b.ep }

func (b *memoryBackend) cursor(name string) ([]byte, error) {
	v, ok := b.cursors[name]
	if !ok {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

func (b *memoryBackend) put(c *Change) error {
	b.last++
	c.Seq = b.last
	if _, ok := b.records[c.Key]; ok {
		b.stale++
	}
	r := &memRecord{c: *c}
	if c.Deleted {
		b.tombs[c.Key] = struct{}{}
	} else {
		delete(b.tombs, c.Key)
		o := objectOf(*c)
		r.raw = meta.New(&o)
	}
	b.records[c.Key] = r
	b.log = append(b.log, feedRow{seq: c.Seq, key: c.Key})
	b.compact()
	return nil
}

func (b *memoryBackend) drop(k string) error {
	if _, ok := b.records[k]; ok {
		delete(b.records, k)
		delete(b.tombs, k)
		b.stale++
		b.compact()
	}
	return nil
}

// compact rewrites the log without its stale rows once they are more than half of it,
// which keeps the log within twice the number of records at amortised O(1) per write.
func (b *memoryBackend) compact() {
	if len(b.log) < minCompaction || b.stale*2 <= len(b.log) {
		return
	}
	kept := make([]feedRow, 0, len(b.log)-b.stale)
	for _, row := range b.log {
		if r, ok := b.records[row.key]; ok && r.c.Seq == row.seq {
			kept = append(kept, row)
		}
	}
	b.log, b.stale = kept, 0
}

func (b *memoryBackend) expired(before int64, fn func(c Change) error) error {
	for k := range b.tombs {
		if c := b.records[k].c; c.Updated < before {
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *memoryBackend) setHorizon(seq uint64) error {
	b.hor = max(b.hor, seq)
	return nil
}

func (b *memoryBackend) reset(epoch string) error {
	b.records = make(map[string]*memRecord)
	b.tombs = make(map[string]struct{})
	b.log, b.stale, b.hor, b.ep = nil, 0, 0, epoch
	return nil
}

func (b *memoryBackend) setEpoch(epoch string) error {
	b.ep = epoch
	return nil
}

func (b *memoryBackend) saveCursor(name string, value []byte) error {
	b.cursors[name] = value
	return nil
}

func (b *memoryBackend) emit(ev Event) {
	b.events = append(b.events, ev)
}
