package natshub

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// record reads the current state of the plain key k from the stream leader.
func (s *Storage) record(ctx context.Context, k string) (record, bool, error) {
	m, err := s.data.get(ctx, subjectKey(k))
	if err != nil {
		return record{}, false, err
	}
	return decodeRaw(k, m)
}

// readRecord is record with retries.
func (s *Storage) readRecord(k string) (r record, ok bool, err error) {
	err = s.try.do(func(ctx context.Context) error {
		r, ok, err = s.record(ctx, k)
		return err
	})
	return r, ok, err
}

// scanRecords calls fn with every record (tombstones included) whose key matches
// pattern ("" for every key) and whose revision is above since, in revision order,
// until fn returns false. A scan that fails is retried from where it stopped.
func (s *Storage) scanRecords(pattern string, since uint64, headersOnly bool, fn func(r record) bool) error {
	_, err := s.scanFiltered(pattern, filterKey(pattern), since, headersOnly, 0, fn)
	return err
}

// scanned is how far a scan is known to have read the stream: through last, the
// highest sequence it was delivered, whatever the key.
type scanned struct {
	last uint64
}

// scanFiltered is scanRecords with the servers selecting the subjects of filter (">"
// for all: the records are matched with pattern here either way). It reports how far
// it read.
func (s *Storage) scanFiltered(pattern, filter string, since uint64, headersOnly bool, want int, fn func(r record) bool) (scanned, error) {
	done := false
	var sc scanned
	err := s.try.do(func(ctx context.Context) error {
		var failed error
		err := s.data.scan(ctx, filter, since, headersOnly, want, func(m jetstream.Msg) bool {
			r, ok, err := s.data.decodeMsg(m)
			if err != nil {
				failed = err
				return false
			}
			if md, err := m.Metadata(); err == nil {
				since = md.Sequence.Stream // a retry resumes after it
				sc.last = max(sc.last, since)
			}
			if !ok || (pattern != "" && !key.Match(pattern, r.Key)) {
				return true
			}
			if !fn(r) {
				done = true
				return false
			}
			return true
		})
		if done {
			return nil
		}
		if failed != nil {
			return failed
		}
		return err
	})
	return sc, err
}

// live returns the live records matching the glob pattern ("" for every key), as the
// stream leader held them when the read began: what the consumer's copy of the stream
// had not delivered yet is read from the leader (readLeader), so a list read after a
// write was acknowledged, or after this process delivered its event, holds it.
func (s *Storage) live(pattern string, headersOnly bool) ([]record, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	head, err := s.leaderHead()
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	var all []record // tombstones too: one read from the leader may delete a listed key
	at := map[string]int{}
	take := func(r record) bool {
		if i, ok := at[r.Key]; ok {
			all[i].Deleted, all[i].Key = true, "" // superseded by the newer revision
		}
		at[r.Key] = len(all)
		all = append(all, r)
		return true
	}
	filter := filterKey(pattern)
	sc, err := s.scanFiltered(pattern, filter, 0, headersOnly, 0, take)
	if err != nil {
		return nil, err
	}
	if sc.last < head {
		if _, err := s.readLeader(pattern, filter, sc.last, head, take); err != nil {
			return nil, fmt.Errorf("from the stream leader: %w", err)
		}
	}
	out := all[:0]
	for _, r := range all {
		if !r.Deleted {
			out = append(out, r)
		}
	}
	return out, nil
}

// readLeader calls fn with every record matching pattern (tombstones included) whose
// revision is above since and at most head, in revision order, read from the stream
// leader one message at a time (bucket.fromLeader), until fn returns false. It is for
// the tail a scan's consumer did not deliver: a consumer reads the copy of the stream
// on its own server (an R1 consumer is placed on any replica), which may not hold yet a
// write the leader acknowledged and whose event another process's watcher delivered.
// It returns the sequence through which it read: head, or the last record fn refused.
// The cost is one round trip per matching message (per message for filter ">").
func (s *Storage) readLeader(pattern, filter string, since, head uint64, fn func(r record) bool) (uint64, error) {
	err := s.try.do(func(ctx context.Context) error {
		var failed error
		read, err := s.data.fromLeader(ctx, filter, since, head, func(m *jetstream.RawStreamMsg) bool {
			k, ok := s.data.keyOf(m.Subject)
			if !ok {
				return true
			}
			r, ok, err := decodeRaw(k, m)
			if err != nil {
				failed = err
				return false
			}
			if !ok || (pattern != "" && !key.Match(pattern, r.Key)) {
				return true
			}
			return fn(r)
		})
		since = read // a retry resumes after what was taken
		if failed != nil {
			return failed
		}
		return err
	})
	return since, err
}

// Keys returns {"keys":[...]}: every live key, sorted case-insensitively (then
// byte-wise). It reads every key's headers: O(keys).
func (s *Storage) Keys() ([]byte, error) {
	recs, err := s.live("", true)
	if err != nil {
		return nil, fmt.Errorf("natshub: keys: %w", err)
	}
	keys := make([]string, 0, len(recs))
	for _, r := range recs {
		keys = append(keys, r.Key)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := strings.ToLower(keys[i]), strings.ToLower(keys[j])
		if a != b {
			return a < b
		}
		return keys[i] < keys[j]
	})
	out, err := json.Marshal(struct {
		Keys []string `json:"keys"`
	}{keys})
	if err != nil {
		return nil, fmt.Errorf("natshub: keys: %w", err)
	}
	return out, nil
}

// KeysRange returns the live keys matching the glob path whose Created is in
// [from, to], sorted.
func (s *Storage) KeysRange(path string, from, to int64) ([]string, error) {
	if err := checkGlob(path); err != nil {
		return nil, fmt.Errorf("natshub: keys range %q: %w", path, err)
	}
	if to < from {
		return nil, fmt.Errorf("natshub: keys range %q [%d, %d]: %w", path, from, to, storage.ErrInvalidRange)
	}
	recs, err := s.live(path, true)
	if err != nil {
		return nil, fmt.Errorf("natshub: keys range %q: %w", path, err)
	}
	keys := []string{}
	for _, r := range recs {
		if r.Created >= from && r.Created <= to {
			keys = append(keys, r.Key)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Get calls BeforeRead(k), then returns the stored object of k (meta.New's encoding;
// storage.ErrNotFound when missing or deleted), read from the stream leader, or for a
// glob a JSON array of the matching objects sorted by Created ascending.
func (s *Storage) Get(k string) ([]byte, error) {
	return s.getSorted(k, meta.SortAsc)
}

// GetDescending is Get with lists sorted by Created descending.
func (s *Storage) GetDescending(k string) ([]byte, error) {
	return s.getSorted(k, meta.SortDesc)
}

// GetQuiet is Get without the BeforeRead call (storage.QuietReader).
func (s *Storage) GetQuiet(k string) ([]byte, error) {
	return s.readSorted(k, meta.SortAsc)
}

func (s *Storage) getSorted(k string, order func([]meta.Object) func(i, j int) bool) ([]byte, error) {
	if !key.IsValid(k) {
		return nil, fmt.Errorf("natshub: get %q: %w", k, storage.ErrInvalidPath)
	}
	s.beforeRead(k)
	return s.readSorted(k, order)
}

func (s *Storage) readSorted(k string, order func([]meta.Object) func(i, j int) bool) ([]byte, error) {
	if !key.IsValid(k) {
		return nil, fmt.Errorf("natshub: get %q: %w", k, storage.ErrInvalidPath)
	}
	if !key.IsGlob(k) {
		return s.get(k)
	}
	objs, err := s.objects(k)
	if err != nil {
		return nil, fmt.Errorf("natshub: get %q: %w", k, err)
	}
	sort.Slice(objs, order(objs))
	out, err := json.Marshal(objs)
	if err != nil {
		return nil, fmt.Errorf("natshub: get %q: encode list: %w", k, err)
	}
	return out, nil
}

// get reads one key without calling BeforeRead.
func (s *Storage) get(k string) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("natshub: get %q: %w", k, err)
	}
	defer s.mu.RUnlock()
	r, ok, err := s.readRecord(k)
	if err != nil {
		return nil, fmt.Errorf("natshub: get %q: %w", k, err)
	}
	if !ok || r.Deleted {
		return nil, fmt.Errorf("natshub: get %q: %w", k, storage.ErrNotFound)
	}
	o := r.object()
	return meta.New(&o), nil
}

// objects returns the live objects matching the glob pattern, in no particular order.
func (s *Storage) objects(pattern string) ([]meta.Object, error) {
	recs, err := s.live(pattern, false)
	if err != nil {
		return nil, err
	}
	objs := make([]meta.Object, 0, len(recs))
	for _, r := range recs {
		objs = append(objs, r.object())
	}
	return objs, nil
}

// GetN calls BeforeRead(path), then returns the newest limit objects matching the glob
// path, newest first.
func (s *Storage) GetN(path string, limit int) ([]meta.Object, error) {
	return s.getN(path, limit, meta.SortDesc, nil)
}

// GetNAscending calls BeforeRead(path), then returns the oldest limit objects matching
// the glob path, oldest first.
func (s *Storage) GetNAscending(path string, limit int) ([]meta.Object, error) {
	return s.getN(path, limit, meta.SortAsc, nil)
}

// GetNRange calls BeforeRead(path), then returns up to limit objects matching the glob
// path whose last segment, read as hex, is in [from, to], newest first.
func (s *Storage) GetNRange(path string, limit int, from, to int64) ([]meta.Object, error) {
	if to < from {
		return nil, fmt.Errorf("natshub: get range %q [%d, %d]: %w", path, from, to, storage.ErrInvalidRange)
	}
	in := func(o meta.Object) bool {
		v := key.Decode(o.Index)
		return v >= from && v <= to
	}
	return s.getN(path, limit, meta.SortDesc, in)
}

func (s *Storage) getN(path string, limit int, order func([]meta.Object) func(i, j int) bool, keep func(meta.Object) bool) ([]meta.Object, error) {
	if err := checkGlob(path); err != nil {
		return nil, fmt.Errorf("natshub: get %q: %w", path, err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("natshub: get %q limit %d: %w", path, limit, storage.ErrInvalidLimit)
	}
	s.beforeRead(path)
	objs, err := s.objects(path)
	if err != nil {
		return nil, fmt.Errorf("natshub: get %q: %w", path, err)
	}
	if keep != nil {
		kept := objs[:0]
		for _, o := range objs {
			if keep(o) {
				kept = append(kept, o)
			}
		}
		objs = kept
	}
	sort.Slice(objs, order(objs))
	if len(objs) > limit {
		objs = objs[:limit]
	}
	return objs, nil
}

// checkGlob accepts a valid key that contains a '*'.
func checkGlob(path string) error {
	if !key.IsValid(path) || !key.IsGlob(path) {
		return storage.ErrInvalidPattern
	}
	return nil
}

// leaderHead returns the stream's head as the stream leader holds it, once that head
// reaches every message the watcher of this process delivered. A committed write is applied by each server on its own, the leader included, so a
// follower can apply it, and the watcher (an ordered consumer on any replica) deliver
// it, a moment before the leader's head moves past it: a read made for that event must
// cover it. The leader's head is read again, polling with a deadline (its apply has no
// event here to wait on), for at most headWait; a head that stays below (a bucket
// re-created under the process, its sequences restarted) lowers the mark, so later
// reads do not wait again.
func (s *Storage) leaderHead() (uint64, error) {
	floor := s.watched.Load()
	deadline := time.Now().Add(headWait)
	pause := time.Millisecond
	for {
		var head uint64
		if err := s.try.do(func(ctx context.Context) (err error) {
			head, err = s.data.head(ctx)
			return err
		}); err != nil {
			return 0, err
		}
		if head >= floor {
			return head, nil
		}
		if time.Now().After(deadline) {
			s.watched.CompareAndSwap(floor, head)
			return head, nil
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// headWait bounds how long leaderHead waits for the leader's head to reach what the
// watcher delivered. Servers on one network apply a committed write within milliseconds
// of each other.
const headWait = 2 * time.Second
