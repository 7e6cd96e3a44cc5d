package storage

// backend is where a storage keeps its records. The engine implements every Database and
// Replica method once, on top of a backend; MemoryStorage and BoltStorage differ only in
// their backend.
//
// A record is a Change: the key's replicated state (live object or tombstone) with the
// sequence of the write that produced it. Tombstones stay in the backend, so backends
// must skip them where the engine asks for live data only.
type backend interface {
	// view runs fn on a consistent snapshot. Data handed to fn may be shared with the
	// backend: fn must not modify it, and the engine copies it before giving it to users.
	view(fn func(r reader) error) error
	// update runs fn exclusively with every other update and commits what it wrote.
	// fn's returned error is the result of the operation, not a reason to roll back: fn
	// only fails before it writes anything. When the backend itself fails (disk error),
	// nothing is committed, no event is published and update returns that failure.
	// After a commit, update publishes the events fn emitted, in order, before any later
	// update publishes its own.
	update(fn func(w writer) error) error
	// close releases the backend's resources (files). The engine calls it only when no
	// view or update is running.
	close() error
}

// reader reads a backend.
type reader interface {
	// record returns the state of k, tombstones included.
	record(k string) (Change, bool, error)
	// object returns the encoded meta.Object of the live key k.
	object(k string) ([]byte, bool, error)
	// scan calls fn for every record (tombstones included) whose key matches the glob
	// pattern, in no particular order. fn must not write.
	scan(pattern string, fn func(c Change) error) error
	// feed calls fn with the key of every record whose sequence is above since, in
	// sequence order, until fn returns false. Superseded writes are not visited.
	feed(since uint64, fn func(seq uint64, k string) (bool, error)) error
	// head is the sequence of the last write (0 when none).
	head() uint64
	// horizon is the highest sequence of a collected tombstone.
	horizon() uint64
	// epoch is the data set's id ("" before the first Start).
	epoch() string
	// expired calls fn with every tombstone whose Updated is below before, until fn
	// returns an error.
	expired(before int64, fn func(c Change) error) error
	// cursor returns a copy of the value saved under name, nil when none.
	cursor(name string) ([]byte, error)
}

// writer writes a backend inside update.
type writer interface {
	reader
	// put stores c as the state of c.Key with the next sequence, which it writes into
	// c.Seq. The old record of the key, if any, leaves the feed.
	put(c *Change) error
	// drop forgets k entirely (tombstone collection).
	drop(k string) error
	// setHorizon raises the horizon to seq.
	setHorizon(seq uint64) error
	// reset forgets every record, empties the feed, sets the horizon to 0 and the epoch
	// to epoch. The sequence keeps counting and cursors are kept.
	reset(epoch string) error
	// setEpoch records the epoch of a fresh data set.
	setEpoch(epoch string) error
	// saveCursor stores value under name.
	saveCursor(name string, value []byte) error
	// emit queues an event, published after the commit.
	emit(ev Event)
}
