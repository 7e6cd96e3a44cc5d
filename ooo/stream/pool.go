package stream

import (
	"bytes"
	"sync"

	"github.com/benitogf/pivot/ooo/messages"
)

// pool is the set of connections subscribed to one key.
type pool struct {
	key string

	// guarded by Stream.mu
	refs int
	idle bool

	// guarded by mu
	mu    sync.Mutex
	cache Cache
	conns map[*Conn]struct{}
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
		p = &pool{key: k, conns: make(map[*Conn]struct{})}
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
	data, err := get(p.key)
	if err != nil {
		return err
	}
	switch {
	case p.cache.Data == nil:
		p.cache = Cache{Version: s.nextVersion(), Data: data}
	case !bytes.Equal(data, p.cache.Data):
		// The value moved without a broadcast reaching this pool (idle pool, or a write
		// that emits no event): bring the current clients along first.
		s.update(p, data)
	}
	p.conns[c] = struct{}{}
	if version == "" || version != encodeVersion(p.cache.Version) {
		c.enqueue(messages.Encode(true, encodeVersion(p.cache.Version), p.cache.Data), nil)
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

// Broadcast tells the pools concerned by a change of eventKey (pools whose key
// glob-matches it, or that it glob-matches) to re-read their value with opt.Get and
// send the difference to their clients. Pools without clients are skipped. A pool whose
// value did not change sends nothing. A read error skips that pool, whose clients keep
// their value. Broadcast may be called concurrently; each pool handles one update at a
// time.
func (s *Stream) Broadcast(eventKey string, opt BroadcastOpt) {
	s.mu.RLock()
	var touched []*pool
	for _, p := range s.pools {
		if p.refs > 0 && matches(p.key, eventKey) {
			touched = append(touched, p)
		}
	}
	s.mu.RUnlock()
	for _, p := range touched {
		s.refresh(p, opt.Get)
	}
	if opt.Callback != nil {
		opt.Callback()
	}
}

// refresh re-reads p's value and sends the change to its clients.
func (s *Stream) refresh(p *pool, get GetFn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) == 0 {
		return
	}
	data, err := get(p.key)
	if err != nil {
		s.logger().Debug("stream: broadcast read failed, pool skipped", "key", p.key, "err", err)
		return
	}
	if bytes.Equal(data, p.cache.Data) {
		return
	}
	s.update(p, data)
}

// update moves p's clients from the cached value to data and makes data the cache.
// The caller holds p.mu.
func (s *Stream) update(p *pool, data []byte) {
	version := s.nextVersion()
	if len(p.conns) > 0 {
		v := encodeVersion(version)
		msg := s.message(p.cache.Data, data, v)
		var snapshot []byte
		resync := func() []byte {
			if snapshot == nil {
				snapshot = messages.Encode(true, v, data)
			}
			return snapshot
		}
		for c := range p.conns {
			c.enqueue(msg, resync)
		}
	}
	p.cache = Cache{Version: version, Data: data}
}

// message encodes the change from old to data: a patch, or the whole value when
// patches are off, the diff fails, or the patch is bigger than the value (unless
// ForcePatch).
func (s *Stream) message(old, data []byte, version string) []byte {
	if s.NoPatch {
		return messages.Encode(true, version, data)
	}
	patch, err := messages.Diff(old, data)
	if err != nil || (!s.ForcePatch && len(patch) > len(data)) {
		return messages.Encode(true, version, data)
	}
	return messages.Encode(false, version, patch)
}
