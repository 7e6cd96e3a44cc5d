package main

import (
	"strings"
	"sync"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// arrivals turns the storage events of one instance into signals, so the bench waits on
// events instead of polling or sleeping: "this key was written here" and "this many
// distinct keys under a prefix were written here". It is fed from the server's
// OnStorageEvent, which runs after the write committed, so a signalled key is readable.
// The time sent on a channel is taken when the event is handled.
type arrivals struct {
	mu     sync.Mutex
	keys   map[string][]chan time.Time
	counts []*distinct
}

func newArrivals() *arrivals {
	return &arrivals{keys: map[string][]chan time.Time{}}
}

// event handles one storage event. It never blocks.
func (a *arrivals) event(ev ooo.StorageEvent) {
	if ev.Operation != storage.OpSet {
		return
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if waits, ok := a.keys[ev.Key]; ok {
		for _, ch := range waits {
			ch <- now
		}
		delete(a.keys, ev.Key)
	}
	kept := a.counts[:0]
	for _, d := range a.counts {
		if strings.HasPrefix(ev.Key, d.prefix) {
			if _, dup := d.seen[ev.Key]; !dup {
				d.seen[ev.Key] = struct{}{}
				d.last = now
			}
		}
		if d.check() {
			continue
		}
		kept = append(kept, d)
	}
	clear(a.counts[len(kept):])
	a.counts = kept
}

// key returns a channel that receives the time of the next write of k. Call it before
// the write that is awaited.
func (a *arrivals) key(k string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	a.mu.Lock()
	a.keys[k] = append(a.keys[k], ch)
	a.mu.Unlock()
	return ch
}

// distinct starts counting the distinct keys written under prefix. Call it before the
// writes that are counted.
func (a *arrivals) distinct(prefix string) *distinct {
	d := &distinct{a: a, prefix: prefix, seen: map[string]struct{}{}, want: -1, done: make(chan time.Time, 1)}
	a.mu.Lock()
	a.counts = append(a.counts, d)
	a.mu.Unlock()
	return d
}

// distinct counts the distinct keys written under a prefix.
type distinct struct {
	a      *arrivals
	prefix string
	seen   map[string]struct{} // guarded by a.mu
	want   int                 // guarded by a.mu; -1 until expect
	last   time.Time           // guarded by a.mu; when the latest new key was seen
	done   chan time.Time
}

// check signals done, with the time the last needed key was seen, once want keys were
// seen; it reports whether it did. a.mu is held.
func (d *distinct) check() bool {
	if d.want < 0 || len(d.seen) < d.want {
		return false
	}
	d.done <- d.last
	return true
}

// expect returns a channel that receives the time at which n distinct keys had been
// seen (at once when they already were). Call it once.
func (d *distinct) expect(n int) <-chan time.Time {
	d.a.mu.Lock()
	defer d.a.mu.Unlock()
	d.want = n
	if d.check() {
		for i, c := range d.a.counts {
			if c == d {
				d.a.counts = append(d.a.counts[:i], d.a.counts[i+1:]...)
				break
			}
		}
	}
	return d.done
}

// count returns how many distinct keys were seen so far.
func (d *distinct) count() int {
	d.a.mu.Lock()
	defer d.a.mu.Unlock()
	return len(d.seen)
}
