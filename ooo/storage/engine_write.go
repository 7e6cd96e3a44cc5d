package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/benitogf/pivot/ooo/key"
)

// Set stores data (one JSON value, kept compacted) at the key k and returns the key's
// index (its last segment). The first write of a key, or the first after a delete,
// stamps Created and leaves Updated 0; later writes keep Created and stamp Updated. A
// glob is a no-op that returns (k, nil). Data longer than the data limit
// (SetDataLimit) is refused with ErrTooLarge. One "set" event follows.
func (e *engine) Set(k string, data json.RawMessage) (string, error) {
	if !key.IsValid(k) {
		return k, fmt.Errorf("storage: set %q: %w", k, ErrInvalidPath)
	}
	if key.IsGlob(k) {
		return k, nil
	}
	d, err := normalizeData(data)
	if err == nil {
		err = e.checkSize(len(d))
	}
	if err != nil {
		return k, fmt.Errorf("storage: set %q: %w", k, err)
	}
	if err := e.enter(); err != nil {
		return k, fmt.Errorf("storage: set %q: %w", k, err)
	}
	defer e.mu.RUnlock()
	err = e.be.update(func(w writer) error {
		cur, ok, err := w.record(k)
		if err != nil {
			return err
		}
		c := Change{Entry: Entry{Key: k, Data: d}}
		now := e.clk.Now()
		if ok && !cur.Deleted {
			c.Created, c.Updated = cur.Created, now
		} else {
			c.Created = now
		}
		return e.store(w, &c, OpSet)
	})
	if err != nil {
		return k, fmt.Errorf("storage: set %q: %w", k, err)
	}
	return key.LastIndex(k), nil
}

// Patch merges the JSON object data into the stored data of k (rules in mergePatch)
// and stamps Updated. ErrNotFound when k is missing, ErrNoop (and nothing stored) when
// the merge changes nothing. For a glob, every matching key is patched in one atomic
// step, in key order, skipping those the patch would not change, with one "set" event
// per changed key; ErrNoop when none changed. A merged result over the data limit fails
// the whole patch with ErrTooLarge, nothing stored. Returns k.
func (e *engine) Patch(k string, data json.RawMessage) (string, error) {
	if !key.IsValid(k) {
		return k, fmt.Errorf("storage: patch %q: %w", k, ErrInvalidPath)
	}
	if len(data) == 0 {
		return k, fmt.Errorf("storage: patch %q: %w", k, ErrEmptyData)
	}
	if _, _, err := mergePatch([]byte(`{}`), data); err != nil {
		return k, fmt.Errorf("storage: patch %q: %w", k, err)
	}
	if err := e.enter(); err != nil {
		return k, fmt.Errorf("storage: patch %q: %w", k, err)
	}
	defer e.mu.RUnlock()
	err := e.be.update(func(w writer) error {
		targets, err := liveTargets(w, k)
		if err != nil {
			return err
		}
		// Every merge is made and checked before the first store: update may only fail
		// before it writes, so a glob patch with one target too large stores nothing.
		var changed []Change
		for _, cur := range targets {
			merged, ok, err := mergePatch(cur.Data, data)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := e.checkSize(len(merged)); err != nil {
				if key.IsGlob(k) {
					return fmt.Errorf("merged data of %q: %w", cur.Key, err)
				}
				return fmt.Errorf("merged data: %w", err)
			}
			changed = append(changed, Change{Entry: Entry{Key: cur.Key, Created: cur.Created, Data: merged}})
		}
		if len(changed) == 0 {
			return ErrNoop
		}
		for i := range changed {
			changed[i].Updated = e.clk.Now()
			if err := e.store(w, &changed[i], OpSet); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return k, fmt.Errorf("storage: patch %q: %w", k, err)
	}
	return k, nil
}

// SetWithMeta stores data at the key k with the given stamps, as they are, as a local
// write; the clock observes them so later local writes sort after. A stamp too far in
// the future is refused with a *clock.SkewError. Globs are ErrInvalidPath; data over
// the data limit is ErrTooLarge. One "set" event follows. Returns the key's index.
func (e *engine) SetWithMeta(k string, data json.RawMessage, created, updated int64) (string, error) {
	if !key.IsValid(k) || key.IsGlob(k) {
		return k, fmt.Errorf("storage: set with meta %q: %w", k, ErrInvalidPath)
	}
	d, err := normalizeData(data)
	if err == nil {
		err = e.checkSize(len(d))
	}
	if err != nil {
		return k, fmt.Errorf("storage: set with meta %q: %w", k, err)
	}
	if err := e.enter(); err != nil {
		return k, fmt.Errorf("storage: set with meta %q: %w", k, err)
	}
	defer e.mu.RUnlock()
	c := Change{Entry: Entry{Key: k, Created: created, Updated: updated, Data: d}}
	err = e.be.update(func(w writer) error {
		if err := e.clk.Observe(c.Version()); err != nil {
			return err
		}
		return e.store(w, &c, OpSet)
	})
	if err != nil {
		return k, fmt.Errorf("storage: set with meta %q: %w", k, err)
	}
	return key.LastIndex(k), nil
}

// Del deletes the key k, leaving a tombstone stamped now (ErrNotFound when k is missing
// or already deleted) and one "del" event. For a glob, every matching live key gets a
// tombstone with the same stamp and a single "del" event carries the glob, whether or
// not anything matched.
func (e *engine) Del(k string) error {
	if !key.IsValid(k) {
		return fmt.Errorf("storage: del %q: %w", k, ErrInvalidPath)
	}
	if err := e.enter(); err != nil {
		return fmt.Errorf("storage: del %q: %w", k, err)
	}
	defer e.mu.RUnlock()
	err := e.be.update(func(w writer) error {
		targets, err := liveTargets(w, k)
		if err != nil {
			return err
		}
		now := e.clk.Now()
		for _, t := range targets {
			c := Change{Entry: Entry{Key: t.Key, Updated: now, Deleted: true}}
			if err := w.put(&c); err != nil {
				return err
			}
		}
		e.emit(w, k, OpDel, nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: del %q: %w", k, err)
	}
	return nil
}

// Clear removes every key and tombstone, empties the change feed, resets the horizon
// and starts a new epoch. The sequence keeps counting and cursors are kept. No events.
// It does nothing on a storage that is not active.
func (e *engine) Clear() {
	if e.enter() != nil {
		return
	}
	defer e.mu.RUnlock()
	ep := newEpoch()
	if e.be.update(func(w writer) error { return w.reset(ep) }) == nil {
		e.epochID.Store(ep)
	}
}

// GetAndLock waits for the per-key lock of k, holds it, and reads k (BeforeRead is
// called first, before waiting). The lock stays held when the read succeeds or fails
// with ErrNotFound (so a missing key can be created with SetAndUnlock); on any other
// error it is released. Globs are ErrGlobLock.
func (e *engine) GetAndLock(k string) ([]byte, error) {
	if key.IsGlob(k) {
		return nil, fmt.Errorf("storage: get and lock %q: %w", k, ErrGlobLock)
	}
	if !key.IsValid(k) {
		return nil, fmt.Errorf("storage: get and lock %q: %w", k, ErrInvalidPath)
	}
	if !e.Active() {
		return nil, fmt.Errorf("storage: get and lock %q: %w", k, ErrNotActive)
	}
	e.beforeRead(k)
	e.locks.lock(k)
	data, err := e.get(k)
	if err != nil && !errors.Is(err, ErrNotFound) {
		_ = e.locks.unlock(k)
	}
	return data, err
}

// SetAndUnlock writes k (as Set) and releases the lock taken by GetAndLock, whether or
// not the write succeeded. ErrLockNotFound when k is not locked.
func (e *engine) SetAndUnlock(k string, data json.RawMessage) (string, error) {
	if key.IsGlob(k) {
		return k, fmt.Errorf("storage: set and unlock %q: %w", k, ErrGlobLock)
	}
	if !e.locks.isHeld(k) {
		return k, fmt.Errorf("storage: set and unlock %q: %w", k, ErrLockNotFound)
	}
	idx, err := e.Set(k, data)
	if uerr := e.locks.unlock(k); uerr != nil && err == nil {
		err = uerr
	}
	return idx, err
}

// Unlock releases the lock taken by GetAndLock; ErrLockNotFound when k is not locked.
func (e *engine) Unlock(k string) error {
	return e.locks.unlock(k)
}

// liveTargets returns the live records a write of k applies to: for a glob, every live
// key matching it, in key order (none is not an error); otherwise the key k itself,
// ErrNotFound when it is missing or deleted.
func liveTargets(r reader, k string) ([]Change, error) {
	if !key.IsGlob(k) {
		cur, ok, err := r.record(k)
		if err != nil {
			return nil, err
		}
		if !ok || cur.Deleted {
			return nil, ErrNotFound
		}
		return []Change{cur}, nil
	}
	var targets []Change
	if err := scanLive(r, k, func(c Change) { targets = append(targets, c) }); err != nil {
		return nil, err
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Key < targets[j].Key })
	return targets, nil
}
