package storage

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// DefaultTombstoneRetention is how long tombstones are kept when a storage's
// TombstoneRetention is zero.
const DefaultTombstoneRetention = 7 * 24 * time.Hour

// engine implements Database and Replica once, over a backend. MemoryStorage and
// BoltStorage embed it and only say how their backend is opened.
//
// Locking: every operation holds mu shared while it touches the backend; Start and
// Close hold it exclusively, so Close waits for the operations in flight and those that
// come later see an inactive storage (ErrNotActive). User code (BeforeRead) and the
// per-key locks of GetAndLock are never waited on while mu is held.
type engine struct {
	life sync.Mutex   // serialises start and close
	mu   sync.RWMutex // see above

	be        backend
	active    bool
	opts      Options
	queue     *eventQueue
	clk       *clock.Clock
	retention time.Duration
	epochID   atomic.Value // string, readable after Close
	locks     keyLocks
	dataLimit atomic.Int64 // SetDataLimit; read by every local write without mu

	// identMu serialises SetIdentity, so token and the clock's id change together. It
	// is taken after mu, never before. token changes under identMu with mu held
	// shared, or under mu held exclusively (Start).
	identMu sync.Mutex
	token   string

	gcStop chan struct{}
	gcDone chan struct{}
}

// openFunc opens a storage's backend at Start. It receives the function the backend
// must call to publish committed events, and returns the clock to stamp writes with.
type openFunc func(publish func([]Event)) (backend, *clock.Clock, error)

// start implements Start for the embedding storage.
func (e *engine) start(opts Options, retention time.Duration, open openFunc) error {
	e.life.Lock()
	defer e.life.Unlock()
	e.mu.Lock()
	if e.active {
		e.opts = opts
		e.mu.Unlock()
		return nil
	}
	be, clk, err := open(e.publish)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	e.be, e.clk, e.opts = be, clk, opts
	e.retention = retention
	if e.retention == 0 {
		e.retention = DefaultTombstoneRetention
	}
	if err := e.ensureEpoch(); err != nil {
		e.mu.Unlock()
		_ = be.close()
		return err
	}
	e.queue = newEventQueue()
	e.active = true
	e.mu.Unlock()

	e.CollectTombstones(e.clk.Now())
	if e.retention > 0 {
		e.gcStop, e.gcDone = make(chan struct{}), make(chan struct{})
		go e.collectLoop(collectInterval(e.retention), e.gcStop, e.gcDone)
	}
	return nil
}

// ensureEpoch gives a fresh data set its epoch and caches the epoch.
func (e *engine) ensureEpoch() error {
	var ep string
	err := e.be.view(func(r reader) error {
		ep = r.epoch()
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: read epoch: %w", err)
	}
	if ep == "" {
		ep = newEpoch()
		if err := e.be.update(func(w writer) error { return w.setEpoch(ep) }); err != nil {
			return fmt.Errorf("storage: write epoch: %w", err)
		}
	}
	e.epochID.Store(ep)
	return nil
}

func newEpoch() string {
	var b [16]byte
	// crypto/rand.Read never fails on supported platforms (it panics otherwise).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// collectInterval is how often a storage collects tombstones in the background: a tenth
// of the retention, between one second and one hour.
func collectInterval(retention time.Duration) time.Duration {
	return min(max(retention/10, time.Second), time.Hour)
}

func (e *engine) collectLoop(every time.Duration, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			e.mu.RLock()
			clk := e.clk
			e.mu.RUnlock()
			e.CollectTombstones(clk.Now())
		}
	}
}

// Close stops the storage: operations still running finish first, later ones get
// ErrNotActive, the Watch channel is closed and events still queued are dropped. Data
// is kept for the next Start. A second Close does nothing.
func (e *engine) Close() {
	e.life.Lock()
	defer e.life.Unlock()
	e.mu.RLock()
	active := e.active
	e.mu.RUnlock()
	if !active {
		return
	}
	if e.gcStop != nil {
		close(e.gcStop)
		<-e.gcDone
		e.gcStop, e.gcDone = nil, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.active = false
	e.queue.close()
	// A close error has nowhere to go: Close has no result in the Database contract,
	// and the data committed before it is safe either way.
	_ = e.be.close()
}

// Active reports whether the storage was started and not closed. It is false for a
// storage that was never started.
func (e *engine) Active() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.active
}

// Watch returns the channel that carries one Event per write, in write order. It is nil
// before Start and after Close; Close closes the channel handed out before.
func (e *engine) Watch() EventChan {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.active {
		return nil
	}
	return e.queue.ch
}

// Clock returns the clock that stamps this storage's writes (nil before the first
// Start when none was configured).
func (e *engine) Clock() *clock.Clock {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.clk
}

// enter holds mu shared for an operation; the caller must call e.mu.RUnlock.
func (e *engine) enter() error {
	e.mu.RLock()
	if !e.active {
		e.mu.RUnlock()
		return ErrNotActive
	}
	return nil
}

// publish is handed to the backend; it runs while the operation that committed the
// events holds mu, so the queue cannot change under it.
func (e *engine) publish(events []Event) {
	if len(events) == 0 {
		return
	}
	e.queue.push(events...)
}

// store writes c (which gets its sequence) and queues its event, op on c.Key: the
// one-event-per-write step of Set, Patch, SetWithMeta and Apply. A "set" event carries
// the stored object, so that readers (websocket broadcasts) need not read it back.
func (e *engine) store(w writer, c *Change, op string) error {
	if err := w.put(c); err != nil {
		return err
	}
	var obj *meta.Object
	if op == OpSet && !c.Deleted {
		o := objectOf(*c)
		obj = &o
	}
	e.emit(w, c.Key, op, obj)
	return nil
}

// emit queues the event of op on k, with obj (nil for a delete), unless k is silenced
// by NoBroadcastKeys.
func (e *engine) emit(w writer, k, op string, obj *meta.Object) {
	if key.Contains(e.opts.NoBroadcastKeys, k) {
		return
	}
	w.emit(Event{Key: k, Operation: op, Object: obj})
}

// beforeRead calls the BeforeRead option, outside every storage lock.
func (e *engine) beforeRead(k string) {
	e.mu.RLock()
	fn, active := e.opts.BeforeRead, e.active
	e.mu.RUnlock()
	if fn != nil && active {
		fn(k)
	}
}
