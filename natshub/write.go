package natshub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// Every write is a compare-and-set on the key's revision: it reads the key from the
// stream leader, decides, and publishes expecting the revision it read. When another
// process (or goroutine) wrote the key in between, the servers refuse the publish and
// the write starts over from a fresh read, with backoff, for at most Config.RetryFor;
// so no write is lost to a concurrent one, and each is decided on the state it replaces.

// commit publishes c (with glob, the glob delete it belongs to) if its key is still at
// revision rev (0: the key has no message).
func (s *Storage) commit(ctx context.Context, c storage.Change, rev uint64, glob string) (uint64, error) {
	seq, err := s.data.publish(ctx, s.data.message(c, glob, s.writer), rev, newID())
	if err == nil {
		s.queue.acked(seq, s.recordEvent(c, glob))
	}
	return seq, err
}

// stampAfter returns a stamp of this process's clock later than the version of cur
// when the clock accepts it, so a write sorts after the state it replaces even when
// that state came from a process whose clock runs ahead.
func (s *Storage) stampAfter(cur record, ok bool) int64 {
	clk := s.Clock()
	if ok {
		_ = clk.Observe(cur.Version()) // a version too far ahead is refused, as elsewhere
	}
	return clk.Now()
}

// Set stores data (one JSON value, kept compacted) at the key k and returns the key's
// index. The first write of a key (or the first after a delete) stamps Created, later
// ones keep it and stamp Updated. A glob is a no-op returning (k, nil). Data over the
// data limit or too long for one message is storage.ErrTooLarge.
func (s *Storage) Set(k string, data json.RawMessage) (string, error) {
	if !key.IsValid(k) {
		return k, fmt.Errorf("natshub: set %q: %w", k, storage.ErrInvalidPath)
	}
	if key.IsGlob(k) {
		return k, nil
	}
	d, err := storage.NormalizeData(data)
	if err == nil {
		err = s.checkSize(len(d))
	}
	if err != nil {
		return k, fmt.Errorf("natshub: set %q: %w", k, err)
	}
	if err := s.enter(); err != nil {
		return k, fmt.Errorf("natshub: set %q: %w", k, err)
	}
	defer s.mu.RUnlock()
	err = s.try.do(func(ctx context.Context) error {
		cur, ok, err := s.record(ctx, k)
		if err != nil {
			return err
		}
		c := storage.Change{Entry: storage.Entry{Key: k, Data: d}}
		now := s.stampAfter(cur, ok)
		if ok && !cur.Deleted {
			c.Created, c.Updated = cur.Created, now
		} else {
			c.Created = now
		}
		_, err = s.commit(ctx, c, cur.Seq, "")
		return err
	})
	if err != nil {
		return k, fmt.Errorf("natshub: set %q: %w", k, err)
	}
	return key.LastIndex(k), nil
}

// Patch merges the JSON object data into the stored data of k (storage.MergePatch) and
// stamps Updated; storage.ErrNotFound when k is missing, storage.ErrNoop when nothing
// changes. For a glob, every matching live key is patched, in key order, each by its
// own compare-and-set (not one atomic step: a reader may see some keys patched and not
// yet others); every merge is checked against the data limit before the first write.
func (s *Storage) Patch(k string, data json.RawMessage) (string, error) {
	if !key.IsValid(k) {
		return k, fmt.Errorf("natshub: patch %q: %w", k, storage.ErrInvalidPath)
	}
	if len(data) == 0 {
		return k, fmt.Errorf("natshub: patch %q: %w", k, storage.ErrEmptyData)
	}
	if _, _, err := storage.MergePatch([]byte(`{}`), data); err != nil {
		return k, fmt.Errorf("natshub: patch %q: %w", k, err)
	}
	if err := s.enter(); err != nil {
		return k, fmt.Errorf("natshub: patch %q: %w", k, err)
	}
	defer s.mu.RUnlock()
	var err error
	if key.IsGlob(k) {
		err = s.patchGlob(k, data)
	} else {
		err = s.try.do(func(ctx context.Context) error {
			cur, ok, err := s.record(ctx, k)
			if err != nil {
				return err
			}
			if !ok || cur.Deleted {
				return storage.ErrNotFound
			}
			merged, changed, err := storage.MergePatch(cur.Data, data)
			if err != nil {
				return err
			}
			if !changed {
				return storage.ErrNoop
			}
			if err := s.checkSize(len(merged)); err != nil {
				return fmt.Errorf("merged data: %w", err)
			}
			c := storage.Change{Entry: storage.Entry{Key: k, Created: cur.Created, Updated: s.stampAfter(cur, true), Data: merged}}
			_, err = s.commit(ctx, c, cur.Seq, "")
			return err
		})
	}
	if err != nil {
		return k, fmt.Errorf("natshub: patch %q: %w", k, err)
	}
	return k, nil
}

// patchGlob patches every live key matching the glob k.
func (s *Storage) patchGlob(k string, data json.RawMessage) error {
	var targets []record
	if err := s.scanRecords(k, 0, false, func(r record) bool {
		if !r.Deleted {
			targets = append(targets, r)
		}
		return true
	}); err != nil {
		return err
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Key < targets[j].Key })
	type change struct {
		cur    record
		merged []byte
	}
	var changes []change
	for _, cur := range targets {
		merged, changed, err := storage.MergePatch(cur.Data, data)
		if err != nil {
			return err
		}
		if !changed {
			continue
		}
		if err := s.checkSize(len(merged)); err != nil {
			return fmt.Errorf("merged data of %q: %w", cur.Key, err)
		}
		changes = append(changes, change{cur, merged})
	}
	if len(changes) == 0 {
		return storage.ErrNoop
	}
	for _, ch := range changes {
		cur, merged := ch.cur, ch.merged
		first := true
		err := s.try.do(func(ctx context.Context) error {
			if !first { // a concurrent write: merge into what it left
				var ok bool
				var err error
				if cur, ok, err = s.record(ctx, cur.Key); err != nil {
					return err
				}
				if !ok || cur.Deleted {
					merged = nil
					return nil // deleted meanwhile: nothing to patch
				}
				var changed bool
				if merged, changed, err = storage.MergePatch(cur.Data, data); err != nil || !changed {
					merged = nil
					return err
				}
			}
			first = false
			c := storage.Change{Entry: storage.Entry{Key: cur.Key, Created: cur.Created, Updated: s.stampAfter(cur, true), Data: merged}}
			_, err := s.commit(ctx, c, cur.Seq, "")
			return err
		})
		if err != nil {
			return fmt.Errorf("key %q: %w", cur.Key, err)
		}
	}
	return nil
}

// SetWithMeta stores data at the key k with the given stamps, as they are, as a local
// write; the clock observes them (a stamp too far ahead is a *clock.SkewError). Globs
// are storage.ErrInvalidPath. Returns the key's index.
func (s *Storage) SetWithMeta(k string, data json.RawMessage, created, updated int64) (string, error) {
	if !key.IsValid(k) || key.IsGlob(k) {
		return k, fmt.Errorf("natshub: set with meta %q: %w", k, storage.ErrInvalidPath)
	}
	d, err := storage.NormalizeData(data)
	if err == nil {
		err = s.checkSize(len(d))
	}
	if err != nil {
		return k, fmt.Errorf("natshub: set with meta %q: %w", k, err)
	}
	if err := s.enter(); err != nil {
		return k, fmt.Errorf("natshub: set with meta %q: %w", k, err)
	}
	defer s.mu.RUnlock()
	c := storage.Change{Entry: storage.Entry{Key: k, Created: created, Updated: updated, Data: d}}
	if err := s.Clock().Observe(c.Version()); err != nil {
		return k, fmt.Errorf("natshub: set with meta %q: %w", k, err)
	}
	err = s.try.do(func(ctx context.Context) error {
		cur, _, err := s.record(ctx, k)
		if err != nil {
			return err
		}
		_, err = s.commit(ctx, c, cur.Seq, "")
		return err
	})
	if err != nil {
		return k, fmt.Errorf("natshub: set with meta %q: %w", k, err)
	}
	return key.LastIndex(k), nil
}

// Del deletes the key k, leaving a tombstone stamped now (storage.ErrNotFound when k
// is missing or deleted). For a glob, every matching live key gets a tombstone, each
// by its own compare-and-set, and one "del" event carries the glob (also when nothing
// matched).
func (s *Storage) Del(k string) error {
	if !key.IsValid(k) {
		return fmt.Errorf("natshub: del %q: %w", k, storage.ErrInvalidPath)
	}
	if err := s.enter(); err != nil {
		return fmt.Errorf("natshub: del %q: %w", k, err)
	}
	defer s.mu.RUnlock()
	var err error
	if key.IsGlob(k) {
		err = s.delGlob(k)
	} else {
		err = s.try.do(func(ctx context.Context) error {
			cur, ok, err := s.record(ctx, k)
			if err != nil {
				return err
			}
			if !ok || cur.Deleted {
				return storage.ErrNotFound
			}
			c := storage.Change{Entry: storage.Entry{Key: k, Updated: s.stampAfter(cur, true), Deleted: true}}
			_, err = s.commit(ctx, c, cur.Seq, "")
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("natshub: del %q: %w", k, err)
	}
	return nil
}

// delGlob deletes every live key matching the glob k, then publishes the glob's event.
func (s *Storage) delGlob(k string) error {
	var targets []record
	if err := s.scanRecords(k, 0, true, func(r record) bool {
		if !r.Deleted {
			targets = append(targets, r)
		}
		return true
	}); err != nil {
		return err
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Key < targets[j].Key })
	now := s.Clock().Now()
	for _, t := range targets {
		cur := t
		first := true
		err := s.try.do(func(ctx context.Context) error {
			if !first {
				var ok bool
				var err error
				if cur, ok, err = s.record(ctx, cur.Key); err != nil || !ok || cur.Deleted {
					return err // deleted meanwhile (or a read error to retry)
				}
			}
			first = false
			c := storage.Change{Entry: storage.Entry{Key: cur.Key, Updated: max(now, s.stampAfter(cur, true)), Deleted: true}}
			_, err := s.commit(ctx, c, cur.Seq, k)
			return err
		})
		if err != nil {
			return fmt.Errorf("key %q: %w", cur.Key, err)
		}
	}
	m := s.data.messageRaw(globKey, nil)
	m.Header.Set(hdrGlob, k)
	m.Header.Set(hdrWriter, s.writer)
	id := newID()
	var seq uint64
	err := s.try.do(func(ctx context.Context) (err error) {
		seq, err = s.data.putSeq(ctx, m, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("glob event: %w", err)
	}
	s.queue.acked(seq, s.event(storage.Event{Key: k, Operation: storage.OpDel}))
	return nil
}

// Clear removes every key and tombstone (a purge of the data bucket's stream) and
// starts a new epoch. The stream's sequence keeps counting; cursors and identities, in
// the meta bucket, are kept. No events. It does nothing on a storage that is not
// active. Writes of other processes racing it may survive it.
func (s *Storage) Clear() {
	if s.enter() != nil {
		return
	}
	defer s.mu.RUnlock()
	ep := newEpoch()
	err := s.try.do(func(ctx context.Context) error {
		if err := s.data.stream.Purge(ctx); err != nil {
			return err
		}
		// 0 after the purge, unless another process wrote a state since.
		_, rev, err := s.readState(ctx)
		if err != nil {
			return err
		}
		return s.writeState(ctx, state{Epoch: ep}, rev)
	})
	if err == nil {
		s.cacheState(state{Epoch: ep})
	}
}

// GetAndLock waits for this process's lock of k, holds it, and reads k (BeforeRead is
// called first). The lock is local to the process: other processes sharing the bucket
// do not see it. It stays held when the read succeeds or finds nothing, so a missing
// key can be created with SetAndUnlock. Globs are storage.ErrGlobLock.
func (s *Storage) GetAndLock(k string) ([]byte, error) {
	if key.IsGlob(k) {
		return nil, fmt.Errorf("natshub: get and lock %q: %w", k, storage.ErrGlobLock)
	}
	if !key.IsValid(k) {
		return nil, fmt.Errorf("natshub: get and lock %q: %w", k, storage.ErrInvalidPath)
	}
	if !s.Active() {
		return nil, fmt.Errorf("natshub: get and lock %q: %w", k, storage.ErrNotActive)
	}
	s.beforeRead(k)
	s.locks.lock(k)
	data, err := s.get(k)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		_ = s.locks.unlock(k)
	}
	return data, err
}

// SetAndUnlock writes k (as Set) and releases the lock taken by GetAndLock, whether or
// not the write succeeded. storage.ErrLockNotFound when k is not locked.
func (s *Storage) SetAndUnlock(k string, data json.RawMessage) (string, error) {
	if key.IsGlob(k) {
		return k, fmt.Errorf("natshub: set and unlock %q: %w", k, storage.ErrGlobLock)
	}
	if !s.locks.isHeld(k) {
		return k, fmt.Errorf("natshub: set and unlock %q: %w", k, storage.ErrLockNotFound)
	}
	idx, err := s.Set(k, data)
	if uerr := s.locks.unlock(k); uerr != nil && err == nil {
		err = uerr
	}
	return idx, err
}

// Unlock releases the lock taken by GetAndLock; storage.ErrLockNotFound when k is not
// locked.
func (s *Storage) Unlock(k string) error {
	return s.locks.unlock(k)
}
