package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
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
type boltBackend struct {
	db      *bolt.DB
	publish func([]Event)
	reqs    chan *boltRequest
	stop    chan struct{}
	done    chan struct{}
}

// boltRequest is one update waiting for the committer.
type boltRequest struct {
	fn     func(w writer) error
	result error   // what fn returned
	fail   error   // the transaction failed: nothing of fn was committed
	events []Event // emitted by fn, published after the commit
	done   chan struct{}
}

func newBoltBackend(db *bolt.DB, publish func([]Event)) *boltBackend {
	b := &boltBackend{
		db:      db,
		publish: publish,
		reqs:    make(chan *boltRequest),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.commitLoop()
	return b
}

func (b *boltBackend) view(fn func(r reader) error) error {
	return b.db.View(func(tx *bolt.Tx) error {
		return fn(&boltReader{tx: tx})
	})
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

// commit runs a batch in one transaction. When the transaction fails, each request is
// retried alone, so one failing write does not take the others down with it.
func (b *boltBackend) commit(batch []*boltRequest) {
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, req := range batch {
			w := &boltWriter{boltReader: boltReader{tx: tx}}
			req.result = req.fn(w)
			if w.fail != nil {
				return w.fail
			}
			req.events = w.events
		}
		return nil
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

// boltReader reads inside a bbolt transaction.
type boltReader struct {
	tx   *bolt.Tx
	data *bolt.Cursor // reused by record: a Seek rebuilds its path, even after writes
}

func (r *boltReader) record(k string) (Change, bool, error) {
	if r.data == nil {
		r.data = r.tx.Bucket(bucketData).Cursor()
	}
	kb := []byte(k)
	found, v := r.data.Seek(kb)
	if found == nil || !bytes.Equal(found, kb) {
		return Change{}, false, nil
	}
	c, err := decodeRecord(kb, v)
	return c, err == nil, err
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
		c, err := decodeRecord(k, v)
		if err != nil {
			return err
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
		if int64(binary.BigEndian.Uint64(tk)) >= before {
			return nil
		}
		c, ok, err := r.record(string(tk[8:]))
		if err != nil {
			return err
		}
		if ok && c.Deleted {
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
// in fail and aborts the whole transaction.
type boltWriter struct {
	boltReader
	fail   error
	events []Event
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

// unlink removes the feed row and tombstone index entry of k's current record.
func (w *boltWriter) unlink(k []byte) error {
	v := w.tx.Bucket(bucketData).Get(k)
	if v == nil {
		return nil
	}
	old, err := decodeRecord(k, v)
	if err != nil {
		return w.check(err)
	}
	if err := w.check(w.tx.Bucket(bucketFeed).Delete(seqKey(old.Seq))); err != nil {
		return err
	}
	if old.Deleted {
		return w.check(w.tx.Bucket(bucketTombs).Delete(tombKey(old.Updated, old.Key)))
	}
	return nil
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
