package natshub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// Epoch returns the id of the data set: random hex kept in the bucket's state key,
// replaced by Clear (of any process) and made anew when the bucket was re-created.
// It is the value last read: at Start, by every Changes, and by the watcher when
// another process changes it.
func (s *Storage) Epoch() string {
	ep, _ := s.epochID.Load().(string)
	return ep
}

// Horizon returns the highest sequence of a collected tombstone, as last read (at
// Start, after every Changes, by the watcher, and by CollectTombstones). 0 when the
// storage is not active.
func (s *Storage) Horizon() uint64 {
	if !s.Active() {
		return 0
	}
	return s.horizon.Load()
}

// Changes returns, in sequence order, the current state of every key matching pattern
// that changed after sequence since (live objects and tombstones, each key once at its
// latest revision), at most limit of them, and the cursor to pass next time: the
// sequence of the last change returned when the limit was reached, else the stream's
// head as the stream leader reported it before the read (never below since, never past
// a change not returned). Every change acknowledged before the call is in the result or
// behind since: the consumer reads its server's copy of the stream, and what a lagging
// copy had not delivered up to the head is read from the leader (leaderTail).
// Sequences are the stream's: strictly increasing, with gaps (superseded revisions, the
// state key, glob markers). The cost is one consumer from since+1 and the messages
// read: O(changes). When many messages were written since, the consumer is filtered to
// the pattern's subjects, which costs the servers a walk of the keys it matches when it
// is made. The state
// (epoch, horizon) is read after the changes, so a tombstone missing from them because
// it was collected is covered by the horizon reported next.
func (s *Storage) Changes(pattern string, since uint64, limit int) ([]storage.Change, uint64, error) {
	if pattern != "" && !key.IsValid(pattern) {
		return nil, since, fmt.Errorf("natshub: changes %q: %w", pattern, storage.ErrInvalidPattern)
	}
	if limit <= 0 {
		return nil, since, fmt.Errorf("natshub: changes limit %d: %w", limit, storage.ErrInvalidLimit)
	}
	if err := s.enter(); err != nil {
		return nil, since, fmt.Errorf("natshub: changes: %w", err)
	}
	defer s.mu.RUnlock()
	// The head is read from the leader before the consumer: what the consumer does not
	// deliver up to it is then read from the leader (leaderTail).
	head, err := s.leaderHead()
	if err != nil {
		return nil, since, fmt.Errorf("natshub: changes: head: %w", err)
	}
	// A filtered consumer costs the servers a walk of every key the filter matches when
	// it is made (about 6 ms for 10k keys); reading the few messages after since and
	// matching them here costs less when few were written since.
	filter := filterKey(pattern)
	if head-min(since, head) <= unfilteredChanges {
		filter = ">"
	}
	var out []storage.Change
	collect := func(r record) bool {
		out = append(out, r.Change)
		return len(out) < limit
	}
	sc, err := s.scanFiltered(pattern, filter, since, false, limit, collect)
	if err != nil {
		return nil, since, fmt.Errorf("natshub: changes: %w", err)
	}
	if len(out) < limit && max(since, sc.last) < head {
		read, err := s.leaderTail(pattern, filter, max(since, sc.last), head, limit, &out)
		if err != nil {
			return nil, since, fmt.Errorf("natshub: changes: from the stream leader: %w", err)
		}
		sc.last = max(sc.last, read)
	}
	if err := s.try.do(func(ctx context.Context) error {
		st, rev, err := s.readState(ctx)
		if err != nil {
			return err
		}
		if rev == 0 {
			// The bucket was deleted and re-created (its sequences restarted at 1),
			// or a Clear is between its purge and its new state: a new epoch, so that
			// every cursor taken before is known stale.
			st = state{Epoch: newEpoch()}
			if err := s.writeState(ctx, st, 0); err != nil {
				return err // a conflict: another process wrote it; read it
			}
		}
		s.cacheState(st)
		return nil
	}); err != nil {
		return nil, since, fmt.Errorf("natshub: changes: state: %w", err)
	}
	if len(out) == limit {
		return out, out[limit-1].Seq, nil
	}
	return out, max(since, sc.last), nil
}

// leaderTail appends to out the changes after since up to head that the consumer of a
// scan did not deliver, read from the stream leader (readLeader), until out holds limit
// changes. A key the scan delivered at an older revision and the leader holds at a
// newer one is listed once, at the newer. It returns the sequence through which the
// feed was read: head, or the last change taken when the limit was reached.
//
// Without it a pivot process triggered by a write's event could read nothing new from a
// lagging copy, answer a next below the write as the feed's end, and the node that
// pulled would wait for its next sync.
func (s *Storage) leaderTail(pattern, filter string, since, head uint64, limit int, out *[]storage.Change) (uint64, error) {
	seen := make(map[string]int, len(*out))
	for i, c := range *out {
		seen[c.Key] = i
	}
	superseded := 0
	read, err := s.readLeader(pattern, filter, since, head, func(r record) bool {
		if i, ok := seen[r.Key]; ok {
			(*out)[i].Seq = 0 // listed again below at its newer revision
			superseded++
		}
		seen[r.Key] = len(*out)
		*out = append(*out, r.Change)
		return len(*out)-superseded < limit
	})
	if superseded > 0 {
		kept := (*out)[:0]
		for _, c := range *out {
			if c.Seq != 0 {
				kept = append(kept, c)
			}
		}
		*out = kept
	}
	return read, err
}

// unfilteredChanges is the most messages after since for which Changes reads them all
// and matches the pattern itself rather than have the servers filter.
const unfilteredChanges = 2048

// Apply stores each remote entry that wins against the key's current state (see
// ApplyEach), and returns those it stored; refused entries are reported in err.
func (s *Storage) Apply(entries []storage.Entry, wins storage.Wins) ([]storage.Entry, error) {
	results, err := s.ApplyEach(entries, wins)
	if err != nil {
		return nil, err
	}
	var applied []storage.Entry
	var refused []error
	for i, r := range results {
		switch r.Outcome {
		case storage.Applied:
			applied = append(applied, entries[i])
		case storage.Refused:
			refused = append(refused, fmt.Errorf("natshub: apply %q: %w", entries[i].Key, r.Err))
		}
	}
	return applied, errors.Join(refused...)
}

// applyReaders bounds the parallel reads of one Apply batch.
const applyReaders = 16

// ApplyEach stores each remote entry for which wins(entry, current) is true, by a
// compare-and-set on the revision of the current state it was compared with, so a
// concurrent write (of this process or another) is never overwritten unseen: when one
// lands in between, the entry is compared again with the new state. Entries are
// published in the order given, as atomic batches of a run of distinct keys (all of a
// run are stored or none; a refused run is applied entry by entry), and cost the
// parallel reads and one round trip per run. They keep their stamps and data as given
// and are marked Remote. err reports a failure of the whole batch (servers unavailable
// past the retry budget); unlike the ooo storages, entries published before that
// failure stay applied.
func (s *Storage) ApplyEach(entries []storage.Entry, wins storage.Wins) ([]storage.Result, error) {
	if wins == nil {
		return nil, errors.New("natshub: apply: wins is nil")
	}
	results := make([]storage.Result, len(entries))
	valid := make([]int, 0, len(entries))
	for i, en := range entries {
		if err := storage.ValidEntry(en); err != nil {
			results[i] = storage.Result{Outcome: storage.Refused, Err: err}
			continue
		}
		if err := s.checkPayload(len(en.Data)); err != nil {
			results[i] = storage.Result{Outcome: storage.Refused, Err: err}
			continue
		}
		valid = append(valid, i)
	}
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("natshub: apply: %w", err)
	}
	defer s.mu.RUnlock()
	// Runs of distinct keys: a key met twice waits for the first write's revision.
	for start := 0; start < len(valid); {
		end, seen := start, map[string]bool{}
		for end < len(valid) && !seen[entries[valid[end]].Key] {
			seen[entries[valid[end]].Key] = true
			end++
		}
		if err := s.applyRun(entries, valid[start:end], wins, results); err != nil {
			return nil, fmt.Errorf("natshub: apply: %w", err)
		}
		start = end
	}
	return results, nil
}

// applyRun applies the entries at idx, whose keys are distinct.
func (s *Storage) applyRun(entries []storage.Entry, idx []int, wins storage.Wins, results []storage.Result) error {
	curs := make([]record, len(idx))
	found := make([]bool, len(idx))
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	sem := make(chan struct{}, applyReaders)
	for j, i := range idx {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			curs[j], found[j], errs[j] = s.readRecord(entries[i].Key)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Decide every entry on the state read, then publish the winners as atomic
	// batches; an entry whose batch was refused (a concurrent write of one of its keys:
	// compare again), lost or timed out is applied alone, from a fresh read.
	var pub []int // positions in idx to publish
	for j, i := range idx {
		out, publish := s.decide(entries[i], curs[j], found[j], wins)
		if !publish {
			results[i] = out
			continue
		}
		pub = append(pub, j)
	}
	for start := 0; start < len(pub); start += maxAtomicBatch {
		part := pub[start:min(start+maxAtomicBatch, len(pub))]
		msgs := make([]*nats.Msg, len(part))
		revs := make([]uint64, len(part))
		for n, j := range part {
			msgs[n] = s.data.message(storage.Change{Entry: entries[idx[j]], Remote: true}, "", s.writer)
			revs[n] = curs[j].Seq
		}
		var first uint64
		err := func() error {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
			defer cancel()
			var err error
			first, err = s.data.publishBatch(ctx, msgs, revs)
			return err
		}()
		for n, j := range part {
			i := idx[j]
			if err == nil {
				s.queue.acked(first+uint64(n), s.recordEvent(storage.Change{Entry: entries[i], Remote: true}, ""))
				results[i] = storage.Result{Outcome: storage.Applied}
				continue
			}
			r, err := s.applyOne(entries[i], wins)
			if err != nil {
				return err
			}
			results[i] = r
		}
	}
	return nil
}

// decide compares en with the current state: the result when nothing is to be
// published, else publish true (the clock has observed en's version).
func (s *Storage) decide(en storage.Entry, cur record, ok bool, wins storage.Wins) (storage.Result, bool) {
	var current storage.Entry
	if ok {
		current = cur.Entry
	}
	if !wins(en, current) {
		return storage.Result{Outcome: storage.Superseded}, false
	}
	if err := s.Clock().Observe(en.Version()); err != nil {
		return storage.Result{Outcome: storage.Refused, Err: err}, false
	}
	return storage.Result{}, true
}

// applyOne applies one entry by compare-and-set, re-reading and comparing again after
// every refusal. A publish whose acknowledgement was lost but that landed is
// recognised on the next read (the current state is the entry, marked Remote) and
// reported Applied.
func (s *Storage) applyOne(en storage.Entry, wins storage.Wins) (storage.Result, error) {
	var res storage.Result
	err := s.try.do(func(ctx context.Context) error {
		cur, ok, err := s.record(ctx, en.Key)
		if err != nil {
			return err
		}
		if ok && cur.Remote && sameEntry(cur.Entry, en) {
			res = storage.Result{Outcome: storage.Applied}
			return nil
		}
		out, publish := s.decide(en, cur, ok, wins)
		if !publish {
			res = out
			return nil
		}
		if _, err := s.commit(ctx, storage.Change{Entry: en, Remote: true}, cur.Seq, ""); err != nil {
			return err
		}
		res = storage.Result{Outcome: storage.Applied}
		return nil
	})
	return res, err
}

func sameEntry(a, b storage.Entry) bool {
	return a.Key == b.Key && a.Created == b.Created && a.Updated == b.Updated &&
		a.Deleted == b.Deleted && bytes.Equal(a.Data, b.Data)
}

// CollectTombstones forgets the tombstones older than the retention, measured from now
// (Unix nanoseconds), and returns how many it forgot. It raises the horizon in the
// state key to the highest sequence among them first, and only then purges each
// tombstone (up to its own revision, so a write that replaced it meanwhile stays): a
// reader never misses a tombstone without seeing the raised horizon. It reads every
// key's headers: O(keys). Several processes may collect at once. A negative retention
// collects nothing; 0 on a storage that is not active.
func (s *Storage) CollectTombstones(now int64) int {
	if s.enter() != nil {
		return 0
	}
	defer s.mu.RUnlock()
	if s.cfg.TombstoneRetention < 0 {
		return 0
	}
	before := now - int64(s.cfg.TombstoneRetention)
	var old []record
	if err := s.scanRecords("", 0, true, func(r record) bool {
		if r.Deleted && r.Updated < before {
			old = append(old, r)
		}
		return true
	}); err != nil || len(old) == 0 {
		return 0
	}
	top := uint64(0)
	for _, r := range old {
		top = max(top, r.Seq)
	}
	err := s.try.do(func(ctx context.Context) error {
		st, rev, err := s.readState(ctx)
		if err != nil {
			return err
		}
		if rev == 0 {
			return errors.New("the data set has no state")
		}
		if st.Horizon >= top {
			s.cacheState(st)
			return nil
		}
		st.Horizon = top
		if err := s.writeState(ctx, st, rev); err != nil {
			return err
		}
		s.cacheState(st)
		return nil
	})
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range old {
		subj := s.data.prefix + subjectKey(r.Key)
		err := s.try.do(func(ctx context.Context) error {
			return s.data.stream.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(r.Seq+1))
		})
		if err == nil {
			n++
		}
	}
	return n
}
