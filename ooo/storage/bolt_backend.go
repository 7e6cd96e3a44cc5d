package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// maxBoltBatch bounds how many writes share one transaction.
const maxBoltBatch = 1000

// boltBackend keeps records in bbolt. Writes go through one committer goroutine that
// runs every write waiting at that moment in a single transaction (group commit): a
// lone write commits at once, and writes arriving during a commit share the next one.
//
// Every transaction runs under guard, so a damaged file fails the operation with
// ErrCorrupt instead of killing the process (see guard). Records that fail their
// checksum are remembered in dmg and read as described in DamageReporter.
type boltBackend struct {
	db      *bolt.DB
	publish func([]Event)
	reqs    chan *boltRequest
	stop    chan struct{}
	done    chan struct{}
	dmg     *damageSet
}

// boltRequest is one update waiting for the committer.
type boltRequest struct {
	fn     func(w writer) error
	result error   // what fn returned
	fail   error   // the transaction failed: nothing of fn was committed
	events []Event // emitted by fn, published after the commit
	done   chan struct{}
}

// newBoltBackend starts the committer of db. It first checks every record of the data
// bucket, so the records damaged on disk are known (Damaged) from the start; a failure of
// that scan itself is left to the reads that meet it.
func newBoltBackend(db *bolt.DB, publish func([]Event)) *boltBackend {
	b := &boltBackend{
		db:      db,
		publish: publish,
		reqs:    make(chan *boltRequest),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		dmg:     &damageSet{},
	}
	_ = b.view(func(r reader) error {
		return r.(*boltReader).checkRecords()
	})
	go b.commitLoop()
	return b
}

func (b *boltBackend) view(fn func(r reader) error) error {
	return guard("bolt read", func() error {
		return b.db.View(func(tx *bolt.Tx) error {
			return fn(&boltReader{tx: tx, dmg: b.dmg})
		})
	})
}

// damaged implements damageFinder: it checks each key found unreadable again and
// forgets those that were rewritten (or removed) since.
func (b *boltBackend) damaged(pattern string) ([]string, error) {
	keys := b.dmg.matching(pattern)
	if len(keys) == 0 {
		return nil, nil
	}
	var still, fixed []string
	err := b.view(func(r reader) error {
		data := r.(*boltReader).tx.Bucket(bucketData)
		for _, k := range keys {
			v := data.Get([]byte(k))
			if v == nil {
				fixed = append(fixed, k)
				continue
			}
			if _, err := checkRecord([]byte(k), v); err != nil {
				still = append(still, k)
			} else {
				fixed = append(fixed, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: damaged records: %w", err)
	}
	b.dmg.forget(fixed)
	return still, nil
}

func (b *boltBackend) update(fn func(w writer) error) error {
	req := &boltRequest{fn: fn, done: make(chan struct{})}
	b.reqs <- req
	<-req.done
	if req.fail != nil {
		return req.fail
	}
	return req.result
}

func (b *boltBackend) close() error {
	close(b.stop)
	<-b.done
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("storage: close bolt file: %w", err)
	}
	return nil
}

func (b *boltBackend) commitLoop() {
	defer close(b.done)
	// Faults while committing must become panics that guard turns into a failed batch,
	// on this goroutine as on every reader's.
	debug.SetPanicOnFault(true)
	batch := make([]*boltRequest, 0, maxBoltBatch)
	for {
		select {
		case <-b.stop:
			return
		case req := <-b.reqs:
			batch = append(batch[:0], req)
		}
	gather:
		for len(batch) < maxBoltBatch {
			select {
			case req := <-b.reqs:
				batch = append(batch, req)
			default:
				break gather
			}
		}
		b.commit(batch)
		clear(batch)
	}
}

// commit runs a batch in one transaction. When the transaction fails (a panic on a
// damaged page included, see guard), each request is retried alone, so one failing
// write does not take the others down with it.
func (b *boltBackend) commit(batch []*boltRequest) {
	err := guard("bolt write", func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			for _, req := range batch {
				w := &boltWriter{boltReader: boltReader{tx: tx, dmg: b.dmg}}
				req.result = req.fn(w)
				if w.fail != nil {
					return w.fail
				}
				req.events = w.events
			}
			return nil
		})
	})
	if err == nil {
		for _, req := range batch {
			b.publish(req.events)
			close(req.done)
		}
		return
	}
	if len(batch) == 1 {
		batch[0].fail = fmt.Errorf("storage: bolt commit: %w", err)
		close(batch[0].done)
		return
	}
	for _, req := range batch {
		b.commit([]*boltRequest{req})
	}
}

// boltReader reads inside a bbolt transaction. An unreadable record is an error
// (errUnreadable) for record and object, and is skipped by scan; either way it is
// added to dmg.
type boltReader struct {
	tx   *bolt.Tx
	data *bolt.Cursor // reused by lookup: a Seek rebuilds its path, even after writes
	dmg  *damageSet
}

// lookup returns the raw record of k, nil when k has none.
func (r *boltReader) lookup(kb []byte) []byte {
	if r.data == nil {
		r.data = r.tx.Bucket(bucketData).Cursor()
	}
	found, v := r.data.Seek(kb)
	if found == nil || !bytes.Equal(found, kb) {
		return nil
	}
	return v
}

// decode decodes a record and remembers it when it is unreadable.
func (r *boltReader) decode(k, v []byte) (Change, error) {
	c, err := decodeRecord(k, v)
	if err != nil {
		r.dmg.add(string(k))
	}
	return c, err
}

func (r *boltReader) record(k string) (Change, bool, error) {
	kb := []byte(k)
	v := r.lookup(kb)
	if v == nil {
		return Change{}, false, nil
	}
	c, err := r.decode(kb, v)
	return c, err == nil, err
}

// checkRecords checks the records of the data bucket and remembers the unreadable ones.
func (r *boltReader) checkRecords() error {
	cur := r.tx.Bucket(bucketData).Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if _, err := checkRecord(k, v); err != nil {
			r.dmg.add(string(k))
		}
	}
	return nil
}

func (r *boltReader) object(k string) ([]byte, bool, error) {
	c, ok, err := r.record(k)
	if err != nil || !ok || c.Deleted {
		return nil, false, err
	}
	o := objectOf(c)
	return meta.New(&o), true, nil
}

func (r *boltReader) scan(pattern string, fn func(c Change) error) error {
	// Keys are sorted, so only the keys sharing the pattern's literal prefix are visited.
	prefix := []byte(pattern)
	if i := strings.IndexByte(pattern, '*'); i >= 0 {
		prefix = prefix[:i]
	}
	cur := r.tx.Bucket(bucketData).Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if pattern != "" && !key.Match(pattern, string(k)) {
			continue
		}
		c, err := r.decode(k, v)
		if err != nil {
			continue // unreadable: remembered in dmg, left out of every list
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (r *boltReader) feed(since uint64, fn func(seq uint64, k string) (bool, error)) error {
	cur := r.tx.Bucket(bucketFeed).Cursor()
	for s, k := cur.Seek(seqKey(since + 1)); s != nil; s, k = cur.Next() {
		more, err := fn(binary.BigEndian.Uint64(s), string(k))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (r *boltReader) head() uint64    { return getUint(r.tx.Bucket(bucketMeta), metaHead) }
func (r *boltReader) horizon() uint64 { return getUint(r.tx.Bucket(bucketMeta), metaHorizon) }
func (r *boltReader) epoch() string   { return string(r.tx.Bucket(bucketMeta).Get(metaEpoch)) }

func (r *boltReader) expired(before int64, fn func(c Change) error) error {
	cur := r.tx.Bucket(bucketTombs).Cursor()
	for tk, _ := cur.First(); tk != nil; tk, _ = cur.Next() {
		if len(tk) < 8 {
			return fmt.Errorf("tombstone index: %w", ErrCorrupt)
		}
		stamp := int64(binary.BigEndian.Uint64(tk))
		if stamp >= before {
			return nil
		}
		c, ok, err := r.record(string(tk[8:]))
		if errors.Is(err, ErrCorrupt) {
			continue // an unreadable record is not collected; a write replaces it
		}
		if err != nil {
			return err
		}
		// The stamp must match too: an index row left by an unreadable record that was
		// replaced (see unlink) must not collect a newer tombstone of the same key.
		if ok && c.Deleted && c.Updated == stamp {
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *boltReader) cursor(name string) ([]byte, error) {
	v := r.tx.Bucket(bucketCursors).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

// boltWriter writes inside the committer's transaction. The first bbolt error is kept
// in fail and aborts the whole transaction. To a writer an unreadable record is absent
// (see DamageReporter): record reports it missing, so a Set or an Apply replaces it.
type boltWriter struct {
	boltReader
	fail   error
	events []Event
}

func (w *boltWriter) record(k string) (Change, bool, error) {
	c, ok, err := w.boltReader.record(k)
	if errors.Is(err, ErrCorrupt) {
		return Change{}, false, nil
	}
	return c, ok, err
}

func (w *boltWriter) check(err error) error {
	if err != nil && w.fail == nil {
		w.fail = err
	}
	return err
}

func (w *boltWriter) put(c *Change) error {
	k := []byte(c.Key)
	if err := w.unlink(k); err != nil {
		return err
	}
	m := w.tx.Bucket(bucketMeta)
	c.Seq = getUint(m, metaHead) + 1
	if err := w.check(putUint(m, metaHead, c.Seq)); err != nil {
		return err
	}
	if v := uint64(c.Version()); v > getUint(m, metaStamp) {
		if err := w.check(putUint(m, metaStamp, v)); err != nil {
			return err
		}
	}
	if err := w.check(w.tx.Bucket(bucketData).Put(k, encodeRecord(c))); err != nil {
		return err
	}
	if err := w.check(w.tx.Bucket(bucketFeed).Put(seqKey(c.Seq), k)); err != nil {
		return err
	}
	if c.Deleted {
		return w.check(w.tx.Bucket(bucketTombs).Put(tombKey(c.Updated, c.Key), nil))
	}
	return nil
}

// unlink removes the feed row and tombstone index entry of k's current record. For an
// unreadable record, the header fields it still has are used only where the feed and
// the index confirm them (the feed row at its seq names k, the index holds its
// tombstone key); a row that cannot be found this way stays behind, and readers skip it
// (Changes compares the row's sequence with the record's).
func (w *boltWriter) unlink(k []byte) error {
	v := w.tx.Bucket(bucketData).Get(k)
	if v == nil {
		return nil
	}
	old, err := checkRecord(k, v)
	trusted := err == nil
	if !trusted {
		var ok bool
		if old, ok = recordHeaderOf(k, v); !ok {
			return nil
		}
	}
	feed := w.tx.Bucket(bucketFeed)
	if row := seqKey(old.Seq); trusted || bytes.Equal(feed.Get(row), k) {
		if err := w.check(feed.Delete(row)); err != nil {
			return err
		}
	}
	if !old.Deleted {
		return nil
	}
	tombs := w.tx.Bucket(bucketTombs)
	tk := tombKey(old.Updated, old.Key)
	if !trusted {
		// Index rows have no value, so their presence is told by a cursor, not by Get.
		if found, _ := tombs.Cursor().Seek(tk); !bytes.Equal(found, tk) {
			return nil
		}
	}
	return w.check(tombs.Delete(tk))
}

func (w *boltWriter) drop(k string) error {
	if err := w.unlink([]byte(k)); err != nil {
		return err
	}
	return w.check(w.tx.Bucket(bucketData).Delete([]byte(k)))
}

func (w *boltWriter) setHorizon(seq uint64) error {
	m := w.tx.Bucket(bucketMeta)
	if seq <= getUint(m, metaHorizon) {
		return nil
	}
	return w.check(putUint(m, metaHorizon, seq))
}

func (w *boltWriter) reset(epoch string) error {
	for _, name := range [][]byte{bucketData, bucketFeed, bucketTombs} {
		if err := w.check(w.tx.DeleteBucket(name)); err != nil {
			return err
		}
		if _, err := w.tx.CreateBucket(name); w.check(err) != nil {
			return err
		}
	}
	m := w.tx.Bucket(bucketMeta)
	if err := w.check(putUint(m, metaHorizon, 0)); err != nil {
		return err
	}
	return w.setEpoch(epoch)
}

func (w *boltWriter) setEpoch(epoch string) error {
	return w.check(w.tx.Bucket(bucketMeta).Put(metaEpoch, []byte(epoch)))
}

func (w *boltWriter) saveCursor(name string, value []byte) error {
	return w.check(w.tx.Bucket(bucketCursors).Put([]byte(name), value))
}

func (w *boltWriter) emit(ev Event) {
	w.events = append(w.events, ev)
}
