package storage

import (
	"sort"
	"sync"

	"github.com/benitogf/pivot/ooo/key"
)

// DamageReporter is implemented by the storages of this package. A BoltStorage record
// whose checksum fails (or, for a record written before checksums, whose data is not
// JSON) is unreadable, and the storage treats it this way:
//
//   - Get (and GetAndLock) of its key fails with an error wrapping ErrCorrupt; the
//     other keys are served as usual.
//   - List reads (Get of a glob, GetDescending, GetN..., KeysRange, Keys) skip it and
//     list the rest; Damaged reports it.
//   - Changes skips it, as if the key were absent, so a peer never receives it; Apply
//     compares incoming entries with the zero Entry for it, so any valid remote entry
//     replaces it: replication fetches it again.
//   - Writes see it as absent: Set and SetWithMeta replace it (Set stamps a new
//     Created), Patch and Del of its key fail with ErrNotFound, and a glob Patch or Del
//     leaves it alone. The record keeps being reported until a write replaces it.
//
// A MemoryStorage cannot hold an unreadable record and always reports none.
type DamageReporter interface {
	// Damaged returns, sorted, the keys matching pattern (a key or glob as in
	// key.Match; "" matches every key) whose records were found unreadable, by Start
	// or by a read since, and are still unreadable. Safe for concurrent use; it costs
	// one lookup per key found damaged, nothing when none was.
	Damaged(pattern string) ([]string, error)
}

var (
	_ DamageReporter = (*BoltStorage)(nil)
	_ DamageReporter = (*MemoryStorage)(nil)
)

// damageFinder is implemented by backends that can hold unreadable records.
type damageFinder interface {
	damaged(pattern string) ([]string, error)
}

// Damaged returns the keys matching pattern whose records are unreadable (see
// DamageReporter). A storage that is not active reports ErrNotActive.
func (e *engine) Damaged(pattern string) ([]string, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	defer e.mu.RUnlock()
	d, ok := e.be.(damageFinder)
	if !ok {
		return nil, nil
	}
	return d.damaged(pattern)
}

// damageSet remembers the keys found unreadable. It only grows between prunes: whoever
// reads it checks each key again, since a write may have replaced the record.
type damageSet struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

// add records that k was found unreadable.
func (d *damageSet) add(k string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = make(map[string]struct{})
	}
	d.keys[k] = struct{}{}
}

// matching returns the recorded keys matching pattern, sorted.
func (d *damageSet) matching(pattern string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for k := range d.keys {
		if pattern == "" || key.Match(pattern, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// forget drops keys found readable (or gone) again.
func (d *damageSet) forget(keys []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		delete(d.keys, k)
	}
}
