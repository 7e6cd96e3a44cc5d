// Package stream manages the websocket side of an ooo server: pools of subscribers per
// key, the broadcast of changes as JSON Patch or snapshot messages, and the clock
// socket.
//
// Every subscription key has a pool. A pool keeps a cache, the value its connected
// clients hold, with a version. A change reaches each pool its key touches, under the
// pool's lock, so all clients of a pool receive the same messages in the same order and
// end up holding the pool's cache. A client joins under the same lock, receiving its
// first snapshot before any later patch.
//
// A pool follows changes in one of two ways. When the change carries the written object
// and the pool's clients get the storage's value as it is (Stream.Verbatim), the pool
// is patched from the change alone (BroadcastChange): a glob pool keeps its entries in
// served order in a tree that finds an entry's index in O(log n), and one change becomes
// the one operation it implies (add, replace or remove at that index); a single-key pool
// patches its old object into the new one. Otherwise the pool re-reads its whole value
// and diffs it against the cache (Broadcast). Either way the patches carry the new
// value's bytes as they are, so a client that applies them holds exactly what a read
// returns.
//
// Sending never blocks: each connection has a bounded queue drained by its own writer
// goroutine with a per-frame write deadline. Patches that queue up while a client is
// being written to go out as one frame. A client that falls QueueSize messages behind
// gets its queue replaced by one snapshot of the current value; a client whose writes
// time out is disconnected.
package stream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// Defaults used when the matching Stream field is zero.
const (
	// DefaultWriteTimeout bounds the writing of one frame to one client.
	DefaultWriteTimeout = 15 * time.Second
	// DefaultQueueSize is how many messages may wait for one client before its queue is
	// replaced by a snapshot.
	DefaultQueueSize = 256
	// MaxIdlePools is how many pools without clients keep their cache (for ?v= resume).
	// Beyond it, idle pools are forgotten and their next client gets a snapshot.
	MaxIdlePools = 1024
	// ReadLimit is the largest frame a client may send; client frames are discarded.
	ReadLimit = 64 << 10
	// closeWait bounds how long Close waits for connection goroutines to end.
	closeWait = 5 * time.Second
)

// ErrClosed is returned when a subscription arrives while the stream is closed.
var ErrClosed = errors.New("stream: closed")

// Subscribe runs before a websocket upgrade with the subscription key ("" for the
// clock). An error refuses the subscription.
type Subscribe func(key string) error

// Unsubscribe runs after a subscription's connection ended, with its key.
type Unsubscribe func(key string)

// GetFn reads the current value of a subscription key as it must reach clients
// (filtered). It may be called concurrently for different keys.
type GetFn func(key string) ([]byte, error)

// BroadcastOpt configures a Broadcast or a BroadcastChange.
type BroadcastOpt struct {
	// Get reads the value of each pool key touched by the broadcast that has to re-read
	// it. Required.
	Get GetFn
	// Callback, when set, runs after every touched pool was updated.
	Callback func()
}

// Change is what one storage event changed.
type Change struct {
	// Key is the key written or deleted, or the glob of a glob delete.
	Key string
	// Deleted is true for a delete.
	Deleted bool
	// Object is the key's stored object after a write, shared and never modified. nil
	// on a write means the change does not say; the pools it touches re-read.
	Object *meta.Object
}

// Stream holds the subscription pools and the clock sockets. The zero value is ready to
// use; set the exported fields before the first connection and do not change them
// while connections are served. A Stream must not be copied after first use.
type Stream struct {
	// OnSubscribe runs before each upgrade; nil allows everything.
	OnSubscribe Subscribe
	// OnUnsubscribe runs after each connection ended; nil does nothing.
	OnUnsubscribe Unsubscribe
	// ForcePatch sends patches even when they are bigger than the value.
	ForcePatch bool
	// NoPatch always sends whole values. It wins over ForcePatch.
	NoPatch bool
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// WriteTimeout bounds one frame write to one client; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// QueueSize is the per-client send queue length; 0 means DefaultQueueSize.
	QueueSize int
	// CheckOrigin decides whether a cross-origin upgrade is allowed; nil allows any.
	CheckOrigin func(r *http.Request) bool
	// Verbatim reports whether the clients of a subscription key get the storage's
	// value as it is: no read filter rewrites it and every write to a key it covers
	// emits a storage event. BroadcastChange patches the pools of such keys from the
	// change alone; the others re-read. nil means no key (every pool re-reads). It is
	// called on every broadcast and join, so it must be fast; it may be called
	// concurrently.
	Verbatim func(key string) bool
	// FullRead makes BroadcastChange re-read and diff the whole value of every pool it
	// touches, as Broadcast does, even where the change alone would do: the path taken
	// before pools followed changes, kept as an escape hatch and to measure against.
	FullRead bool

	mu     sync.RWMutex
	closed bool
	pools  map[string]*pool
	idle   int
	clock  map[*Conn]struct{}
	all    map[*Conn]struct{}
	gen    *generation

	version atomic.Int64
}

// generation counts the goroutines of the connections accepted between an Open and a
// Close, so that Close waits for exactly those.
type generation struct {
	wg sync.WaitGroup
}

// Open makes a closed Stream accept connections again. A zero Stream is already open.
// Open and Close are safe to call concurrently with everything else.
func (s *Stream) Open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = false
}

// Close disconnects every client with a "going away" close frame, forgets every pool
// and refuses new connections until Open. It waits, bounded, for the connections'
// goroutines to end. Calling it again is harmless.
func (s *Stream) Close() {
	s.mu.Lock()
	s.closed = true
	conns, gen := s.all, s.gen
	s.all, s.pools, s.clock, s.idle, s.gen = nil, nil, nil, 0, nil
	s.mu.Unlock()
	deadline := time.Now().Add(closeGrace) // shared: stuck clients cannot add up
	for c := range conns {
		c.shutdownBy(websocket.CloseGoingAway, "ooo: server closing", deadline)
	}
	if gen == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		gen.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.logger().Warn("stream: connections still running after close", "wait", closeWait)
	}
}

// Serve subscribes the client of r to key: OnSubscribe, upgrade, first message, then
// patches until the connection ends. It blocks for the life of the connection. If the
// query parameter v equals the version of the value the pool's clients hold, no first
// message is sent. When get fails for the first message the client gets a close frame
// with the error. Errors before the upgrade are answered with an HTTP error.
func (s *Stream) Serve(w http.ResponseWriter, r *http.Request, key string, get GetFn) error {
	c, gen, err := s.accept(w, r, key)
	if err != nil {
		return err
	}
	defer gen.wg.Done()
	p := s.acquire(key)
	if p == nil {
		s.abandon(c, websocket.CloseGoingAway, "ooo: server closing")
		return ErrClosed
	}
	if err := s.join(p, c, r.URL.Query().Get("v"), get); err != nil {
		s.release(p)
		s.abandon(c, websocket.CloseInternalServerErr, err.Error())
		return fmt.Errorf("stream: first message for %q: %w", key, err)
	}
	c.readLoop(ReadLimit)
	s.leave(p, c)
	s.end(c)
	return nil
}

// accept runs OnSubscribe, upgrades r and registers the connection and its writer.
// Refusals before the upgrade are answered with an HTTP error. On success the caller
// owns one count of gen.wg and must call gen.wg.Done when the connection is over.
func (s *Stream) accept(w http.ResponseWriter, r *http.Request, key string) (*Conn, *generation, error) {
	if s.OnSubscribe != nil {
		if err := s.OnSubscribe(key); err != nil {
			http.Error(w, "ooo: subscription refused: "+err.Error(), http.StatusBadRequest)
			return nil, nil, fmt.Errorf("stream: subscribe %q: %w", key, err)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "ooo: server closing", http.StatusServiceUnavailable)
		return nil, nil, ErrClosed
	}
	if s.gen == nil {
		s.gen = &generation{}
	}
	gen := s.gen
	gen.wg.Add(1)
	s.mu.Unlock()
	upgrader := websocket.Upgrader{Subprotocols: []string{"bearer"}, CheckOrigin: s.CheckOrigin}
	if upgrader.CheckOrigin == nil {
		upgrader.CheckOrigin = func(*http.Request) bool { return true }
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		gen.wg.Done()
		return nil, nil, fmt.Errorf("stream: upgrade %q: %w", key, err)
	}
	c := newConn(ws, key, s.writeTimeout(), s.queueSize())
	s.mu.Lock()
	if s.closed || s.gen != gen {
		s.mu.Unlock()
		c.shutdown(websocket.CloseGoingAway, "ooo: server closing")
		gen.wg.Done()
		return nil, nil, ErrClosed
	}
	if s.all == nil {
		s.all = make(map[*Conn]struct{})
	}
	s.all[c] = struct{}{}
	gen.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer gen.wg.Done()
		c.writeLoop()
	}()
	return c, gen, nil
}

// drop forgets a connection that has ended.
func (s *Stream) drop(c *Conn) {
	s.mu.Lock()
	delete(s.all, c)
	delete(s.clock, c)
	s.mu.Unlock()
}

// abandon forgets an accepted connection that will not be served and closes it with a
// close frame carrying code and reason.
func (s *Stream) abandon(c *Conn, code int, reason string) {
	s.drop(c)
	c.shutdown(code, reason)
}

// end forgets a connection whose read loop returned, closes it and runs OnUnsubscribe.
func (s *Stream) end(c *Conn) {
	s.drop(c)
	c.shutdown(0, "")
	if s.OnUnsubscribe != nil {
		s.OnUnsubscribe(c.key)
	}
}

// Connections returns how many clients are subscribed to key; "" counts clock sockets.
// It may be called concurrently with everything else; it waits for a broadcast in
// progress on key's pool.
func (s *Stream) Connections(key string) int {
	s.mu.RLock()
	if key == "" {
		n := len(s.clock)
		s.mu.RUnlock()
		return n
	}
	p := s.pools[key]
	s.mu.RUnlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (s *Stream) nextVersion() int64 {
	for {
		last := s.version.Load()
		now := time.Now().UnixNano()
		if now <= last {
			now = last + 1
		}
		if s.version.CompareAndSwap(last, now) {
			return now
		}
	}
}

func (s *Stream) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Stream) queueSize() int {
	if s.QueueSize > 0 {
		return s.QueueSize
	}
	return DefaultQueueSize
}

func (s *Stream) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// encodeVersion formats a version the way it travels: lowercase hex.
func encodeVersion(v int64) string {
	return strconv.FormatInt(v, 16)
}

// matches reports whether a change of eventKey concerns the pool of poolKey.
func matches(poolKey, eventKey string) bool {
	return key.Peer(poolKey, eventKey)
}
