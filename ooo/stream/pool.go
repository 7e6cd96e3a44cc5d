package stream

import (
	"bytes"
	"sync"

	"github.com/benitogf/pivot/ooo/internal/jsonraw"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/messages"
)

// pool is the set of connections subscribed to one key.
type pool struct {
	key  string
	glob bool

	// guarded by Stream.mu
	refs int
	idle bool

	// guarded by mu
	mu      sync.Mutex
	has     bool   // a value is cached
	version int64  // the version of the cached value
	data    []byte // the cached value; nil while it is only held by list
	// verbatim: the cached value is the storage's value as it is (no read filter changed
	// it), so it can be followed from storage changes.
	verbatim bool
	// list holds a glob pool's entries in served order when the pool follows changes;
	// nil until the first change after a read.
	list  *orderTree
	conns map[*Conn]struct{}
}

// value returns the cached value, encoding it from list when only list holds it. The
// result is shared and must not be modified. The caller holds p.mu.
func (p *pool) value() []byte {
	if p.data == nil && p.list != nil {
		p.data = p.list.encode()
	}
	return p.data
}

// acquire returns the pool of key, creating it, and counts one more user of it so it is
// not forgotten while in use. It returns nil when the stream is closed.
func (s *Stream) acquire(k string) *pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.pools == nil {
		s.pools = make(map[string]*pool)
	}
	p := s.pools[k]
	if p == nil {
		p = &pool{key: k, glob: key.IsGlob(k), conns: make(map[*Conn]struct{})}
		s.pools[k] = p
	}
	if p.idle {
		p.idle = false
		s.idle--
	}
	p.refs++
	return p
}

// release undoes acquire. A pool nobody uses becomes idle: it keeps its cache, is not
// recomputed by broadcasts, and is forgotten when too many pools are idle.
func (s *Stream) release(p *pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.refs--
	if p.refs > 0 || s.pools[p.key] != p {
		return
	}
	p.idle = true
	s.idle++
	if s.idle <= MaxIdlePools {
		return
	}
	for k, q := range s.pools {
		if s.idle <= MaxIdlePools/2 {
			break
		}
		if q.idle {
			delete(s.pools, k)
			s.idle--
		}
	}
}

// join adds c to p and queues its first message, under the pool lock so that no
// broadcast can slip in between.
func (s *Stream) join(p *pool, c *Conn, version string, get GetFn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	verbatim := s.verbatim(p.key)
	data, err := get(p.key)
	if err != nil {
		return err
	}
	switch {
	case !p.has:
		p.has, p.version, p.data, p.list = true, s.nextVersion(), data, nil
	case !bytes.Equal(data, p.value()):
		// The value moved without a broadcast reaching this pool (idle pool, a write
		// that emits no event, or events still on their way): bring the current clients
		// along first.
		s.update(p, data)
	}
	p.verbatim = verbatim
	p.conns[c] = struct{}{}
	if version == "" || version != encodeVersion(p.version) {
		c.enqueue(newMessage(messages.Encode(true, encodeVersion(p.version), p.value()), "", nil, 1), nil)
	}
	return nil
}

// leave removes c from p and releases the pool.
func (s *Stream) leave(p *pool, c *Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	s.release(p)
}

// touched returns the pools with clients that a change of eventKey concerns: pools whose
// key glob-matches it, or that it glob-matches.
func (s *Stream) touched(eventKey string) []*pool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*pool
	for _, p := range s.pools {
		if p.refs > 0 && matches(p.key, eventKey) {
			out = append(out, p)
		}
	}
	return out
}

// Broadcast tells the pools concerned by a change of eventKey (pools whose key
// glob-matches it, or that it glob-matches) to re-read their value with opt.Get and
// send the difference to their clients. Pools without clients are skipped. A pool whose
// value did not change sends nothing. A read error skips that pool, whose clients keep
// their value. Broadcast may be called concurrently; each pool handles one update at a
// time. BroadcastChange does the same work in O(change) when the change is known.
func (s *Stream) Broadcast(eventKey string, opt BroadcastOpt) {
	for _, p := range s.touched(eventKey) {
		p.mu.Lock()
		s.refresh(p, opt.Get)
		p.mu.Unlock()
	}
	if opt.Callback != nil {
		opt.Callback()
	}
}

// BroadcastChange brings the pools concerned by ch (as for Broadcast) to the state
// after it and sends the difference to their clients. A pool that follows changes (see
// Stream.Verbatim) is patched from ch alone, without reading anything: for a glob, the
// entry's position in the list is found in O(log n) and one operation (add, replace or
// remove at that index) is sent; for a single key, the patch from the old object to the
// new one. Every other pool, every pool when ch does not carry the written object, and
// every pool when FullRead is set, re-reads its value with opt.Get as Broadcast does.
//
// The changes of a storage must be given in the storage's event order, one call at a
// time (a server's dispatcher does this): a pool that follows changes applies them in
// the order it receives them.
func (s *Stream) BroadcastChange(ch Change, opt BroadcastOpt) {
	for _, p := range s.touched(ch.Key) {
		p.mu.Lock()
		s.advance(p, ch, opt.Get)
		p.mu.Unlock()
	}
	if opt.Callback != nil {
		opt.Callback()
	}
}

// refresh re-reads p's value and sends the change to its clients. The caller holds p.mu.
func (s *Stream) refresh(p *pool, get GetFn) {
	if len(p.conns) == 0 {
		return
	}
	verbatim := s.verbatim(p.key)
	data, err := get(p.key)
	if err != nil {
		s.logger().Debug("stream: broadcast read failed, pool skipped", "key", p.key, "err", err)
		return
	}
	p.verbatim = verbatim
	if bytes.Equal(data, p.value()) {
		return
	}
	s.update(p, data)
}

// advance applies ch to p, patching it from the change when it can and re-reading it
// otherwise. The caller holds p.mu.
func (s *Stream) advance(p *pool, ch Change, get GetFn) {
	if len(p.conns) == 0 {
		return
	}
	if s.FullRead || (!ch.Deleted && ch.Object == nil) || !p.verbatim || !s.verbatim(p.key) {
		s.refresh(p, get)
		return
	}
	if !p.glob {
		next := p.value()
		switch {
		case ch.Deleted:
			next = []byte(emptyObject)
		case ch.Key == p.key:
			next = encodeObject(ch.Object)
		}
		if !bytes.Equal(next, p.value()) {
			s.update(p, next)
		}
		return
	}
	if p.list == nil {
		list, ok := listOf(p.value())
		if !ok {
			// Not a list this pool can follow (a storage that sorts or encodes lists
			// otherwise): re-read, as without changes.
			s.refresh(p, get)
			return
		}
		p.list = list
	}
	var patch jsonraw.Patch
	if !applyChange(p.list, ch, &patch) {
		s.refresh(p, get)
		return
	}
	if patch.Len() == 0 {
		return
	}
	p.data = nil // list holds the new value
	s.send(p, &patch)
}

// update moves p's clients from the cached value to data and makes data the cache,
// which a re-read replaced: the list is rebuilt from data when the next change comes.
// The caller holds p.mu.
func (s *Stream) update(p *pool, data []byte) {
	version := s.nextVersion()
	if len(p.conns) > 0 {
		v := encodeVersion(version)
		n := len(p.conns)
		msg := s.message(p.value(), data, v, n)
		var snapshot *message
		resync := func() *message {
			if snapshot == nil {
				snapshot = newMessage(messages.Encode(true, v, data), "", nil, n)
			}
			return snapshot
		}
		for c := range p.conns {
			c.enqueue(msg, resync)
		}
	}
	p.has, p.version, p.data, p.list = true, version, data, nil
}

// send gives p's clients the patch that moved its list to the value list now holds.
// The caller holds p.mu.
func (s *Stream) send(p *pool, patch *jsonraw.Patch) {
	version := s.nextVersion()
	p.version = version
	v := encodeVersion(version)
	n := len(p.conns)
	var snapshot *message
	resync := func() *message {
		if snapshot == nil {
			snapshot = newMessage(messages.Encode(true, v, p.value()), "", nil, n)
		}
		return snapshot
	}
	var msg *message
	if s.NoPatch || (!s.ForcePatch && patch.Size() > p.list.encodedLen()) {
		msg = resync()
	} else {
		ops := patch.Bytes()
		msg = newMessage(messages.Encode(false, v, ops), v, ops, n)
	}
	for c := range p.conns {
		c.enqueue(msg, resync)
	}
}

// message encodes, for n clients, the change from old to data: a patch whose values are
// data's bytes as they are, or the whole value when patches are off, the change needs
// the whole document, or the patch is bigger than the value (unless ForcePatch).
func (s *Stream) message(old, data []byte, version string, n int) *message {
	snapshot := func() *message { return newMessage(messages.Encode(true, version, data), "", nil, n) }
	if s.NoPatch {
		return snapshot()
	}
	patch, err := jsonraw.Diff(old, data)
	// An empty patch between different bytes (they differ only in whitespace around the
	// value) goes as a snapshot too, so that clients hold exactly data.
	if err != nil || len(patch) <= 2 || (!s.ForcePatch && len(patch) > len(data)) {
		return snapshot()
	}
	return newMessage(messages.Encode(false, version, patch), version, patch, n)
}

// verbatim reports whether the clients of k get the storage's value as it is.
func (s *Stream) verbatim(k string) bool {
	return s.Verbatim != nil && s.Verbatim(k)
}
