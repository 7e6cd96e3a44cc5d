package storage

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/benitogf/pivot/ooo/key"
)

// Epoch returns the id of this storage's data set: random hex made at the first Start,
// kept across Close and Start (and, for BoltStorage, across processes) and replaced by
// Clear. "" before the first Start.
func (e *engine) Epoch() string {
	ep, _ := e.epochID.Load().(string)
	return ep
}

// Horizon returns the highest sequence of a collected tombstone (0 when none was
// collected, or when the storage is not active).
func (e *engine) Horizon() uint64 {
	if e.enter() != nil {
		return 0
	}
	defer e.mu.RUnlock()
	var h uint64
	_ = e.be.view(func(r reader) error {
		h = r.horizon()
		return nil
	})
	return h
}

// Changes returns, in sequence order, the current state of every key matching pattern
// that changed after sequence since: live objects and tombstones, each key once at its
// latest sequence, at most limit of them. pattern is a key or a glob matched with
// key.Match ("*" alone matches one-segment keys only); "" matches every key. limit must
// be positive (ErrInvalidLimit). next is the sequence of the last change returned when
// the limit was reached, else the head of the feed at the time of the read: pass it as
// since next time. The cost is proportional to the feed entries after since that are
// visited, not to the data held. A record found unreadable is skipped, as if its key
// were absent (see DamageReporter).
func (e *engine) Changes(pattern string, since uint64, limit int) ([]Change, uint64, error) {
	if pattern != "" && !key.IsValid(pattern) {
		return nil, since, fmt.Errorf("storage: changes %q: %w", pattern, ErrInvalidPattern)
	}
	if limit <= 0 {
		return nil, since, fmt.Errorf("storage: changes limit %d: %w", limit, ErrInvalidLimit)
	}
	if err := e.enter(); err != nil {
		return nil, since, fmt.Errorf("storage: changes: %w", err)
	}
	defer e.mu.RUnlock()
	var (
		out  []Change
		next uint64
	)
	err := e.be.view(func(r reader) error {
		out, next = nil, 0
		err := r.feed(since, func(seq uint64, k string) (bool, error) {
			if pattern != "" && !key.Match(pattern, k) {
				return true, nil
			}
			c, ok, err := r.record(k)
			if errors.Is(err, ErrCorrupt) {
				// An unreadable record reads as absent: a peer keeps its own copy, and
				// reconciliation sees the key as missing here (DamageReporter).
				return true, nil
			}
			if err != nil || !ok {
				return err == nil, err
			}
			if c.Seq != seq {
				// A row an unreadable record left behind when it was replaced: the key
				// is listed at its current row.
				return true, nil
			}
			c.Data = append(json.RawMessage(nil), c.Data...)
			out = append(out, c)
			if len(out) == limit {
				next = seq
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		if len(out) < limit {
			next = r.head()
		}
		return nil
	})
	if err != nil {
		return nil, since, fmt.Errorf("storage: changes: %w", err)
	}
	return out, next, nil
}

// Apply stores each remote entry that wins against the key's current state (the live
// object, its tombstone, or the zero Entry when the key was never seen, its tombstone
// was collected or its record is unreadable), in one atomic step with respect to local
// writes. A stored entry keeps its stamps and data as given, is marked Remote, gets a
// new sequence and one event ("set", or "del" for a tombstone); its version is observed
// on the clock first, so every later local write sorts after it. An entry is refused,
// and reported in err (errors.Join of the reasons), when ValidEntry refuses it or its
// version is too far ahead of the clock (*clock.SkewError); the rest of the batch is
// still applied. applied lists the stored entries in the order given.
func (e *engine) Apply(entries []Entry, wins Wins) ([]Entry, error) {
	results, err := e.ApplyEach(entries, wins)
	if err != nil {
		return nil, err
	}
	var applied []Entry
	var refused []error
	for i, r := range results {
		switch r.Outcome {
		case Applied:
			applied = append(applied, entries[i])
		case Refused:
			refused = append(refused, fmt.Errorf("storage: apply %q: %w", entries[i].Key, r.Err))
		}
	}
	return applied, errors.Join(refused...)
}

// ApplyEach is Apply with one Result per entry (see Replica).
func (e *engine) ApplyEach(entries []Entry, wins Wins) ([]Result, error) {
	if wins == nil {
		return nil, errors.New("storage: apply: wins is nil")
	}
	results := make([]Result, len(entries))
	valid := make([]int, 0, len(entries))
	for i, en := range entries {
		if err := ValidEntry(en); err != nil {
			results[i] = Result{Outcome: Refused, Err: err}
			continue
		}
		valid = append(valid, i)
	}
	if err := e.enter(); err != nil {
		return nil, fmt.Errorf("storage: apply: %w", err)
	}
	defer e.mu.RUnlock()
	err := e.be.update(func(w writer) error {
		for _, i := range valid {
			en := entries[i]
			cur, ok, err := w.record(en.Key)
			if err != nil {
				return err
			}
			var current Entry
			if ok {
				current = cur.Entry
			}
			if !wins(en, current) {
				results[i] = Result{Outcome: Superseded}
				continue
			}
			if err := e.clk.Observe(en.Version()); err != nil {
				results[i] = Result{Outcome: Refused, Err: err}
				continue
			}
			op := OpSet
			if en.Deleted {
				op = OpDel
			}
			if err := e.store(w, &Change{Entry: en, Remote: true}, op); err != nil {
				return err
			}
			results[i] = Result{Outcome: Applied}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: apply: %w", err)
	}
	return results, nil
}

// errStop ends an iteration early; it never leaves the function that iterates.
var errStop = errors.New("storage: stop iteration")

// ValidEntry is the one rule of what a replicated entry may be, shared by Apply and by
// the protocols that carry entries (pivot's routes): a plain key (not a glob), stamps
// that are not negative and not both zero, JSON data on a live entry and none on a
// tombstone. It wraps ErrInvalidPath or ErrInvalidData.
func ValidEntry(en Entry) error {
	switch {
	case !key.IsValid(en.Key) || key.IsGlob(en.Key):
		return fmt.Errorf("key %q is not a valid plain key: %w", en.Key, ErrInvalidPath)
	case en.Created < 0 || en.Updated < 0 || en.Version() == 0:
		return fmt.Errorf("created and updated must be non-negative stamps, not both zero: %w", ErrInvalidData)
	case en.Deleted && len(en.Data) > 0:
		return fmt.Errorf("a tombstone carries no data: %w", ErrInvalidData)
	case !en.Deleted && (len(en.Data) == 0 || !json.Valid(en.Data)):
		return fmt.Errorf("a live entry's data must be a JSON value: %w", ErrInvalidData)
	}
	return nil
}

// CollectTombstones forgets the tombstones older than the retention, measured from now
// (a stamp in Unix nanoseconds), raises the horizon to the highest sequence among them
// and returns how many were collected. Storages also collect at Start and in the
// background (every tenth of the retention, between 1s and 1h). A negative retention
// keeps tombstones forever: nothing is collected. 0 on a storage that is not active.
func (e *engine) CollectTombstones(now int64) int {
	if e.enter() != nil {
		return 0
	}
	defer e.mu.RUnlock()
	if e.retention < 0 {
		return 0
	}
	before := now - int64(e.retention)
	// Look first: most calls find nothing, and a read costs no commit.
	found := false
	_ = e.be.view(func(r reader) error {
		return r.expired(before, func(Change) error {
			found = true
			return errStop
		})
	})
	if !found {
		return 0
	}
	n := 0
	_ = e.be.update(func(w writer) error {
		n = 0
		var old []Change
		if err := w.expired(before, func(c Change) error {
			old = append(old, c)
			return nil
		}); err != nil {
			return err
		}
		top := w.horizon()
		for _, c := range old {
			if err := w.drop(c.Key); err != nil {
				return err
			}
			top = max(top, c.Seq)
		}
		n = len(old)
		return w.setHorizon(top)
	})
	return n
}

// LoadCursor returns a copy of the value saved under name, or nil when there is none.
func (e *engine) LoadCursor(name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("storage: load cursor: empty name: %w", ErrInvalidPath)
	}
	if err := e.enter(); err != nil {
		return nil, fmt.Errorf("storage: load cursor %q: %w", name, err)
	}
	defer e.mu.RUnlock()
	var v []byte
	err := e.be.view(func(r reader) error {
		var err error
		v, err = r.cursor(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage: load cursor %q: %w", name, err)
	}
	return v, nil
}

// SaveCursor stores a copy of value under name. Cursors have no events and no change
// feed entries; Clear keeps them.
func (e *engine) SaveCursor(name string, value []byte) error {
	if name == "" {
		return fmt.Errorf("storage: save cursor: empty name: %w", ErrInvalidPath)
	}
	if err := e.enter(); err != nil {
		return fmt.Errorf("storage: save cursor %q: %w", name, err)
	}
	defer e.mu.RUnlock()
	v := append([]byte(nil), value...)
	if err := e.be.update(func(w writer) error { return w.saveCursor(name, v) }); err != nil {
		return fmt.Errorf("storage: save cursor %q: %w", name, err)
	}
	return nil
}
