package natshub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// Storage is an ooo storage on a NATS JetStream KV bucket, shared by every process
// configured with the same bucket. It implements storage.Database, storage.Replica,
// storage.QuietReader, storage.DataLimiter and storage.Identified; see the package
// documentation for its guarantees. Safe for concurrent use.
type Storage struct {
	cfg  Config
	ctx  context.Context // parent of every request; New's context
	data *bucket         // the data set: records, the state key and glob markers
	meta *bucket         // cursors and process identities: not part of the data set
	try  retrier

	life sync.Mutex   // serialises Start and Close
	mu   sync.RWMutex // held shared by every operation, exclusively by Start and Close

	active  bool
	opts    atomic.Pointer[storage.Options] // read by the watcher without mu
	clk     atomic.Pointer[clock.Clock]     // read by the watcher without mu
	queue   *eventQueue
	watcher jetstream.ConsumeContext

	epochID   atomic.Value  // string; readable after Close
	horizon   atomic.Uint64 // the last horizon read from the state key
	watched   atomic.Uint64 // the highest sequence the watcher delivered (leaderHead)
	dataLimit atomic.Int64

	identMu sync.Mutex // serialises SetIdentity; taken after mu
	token   string

	locks keyLocks

	// writer names this value's messages (hdrWriter), so the watcher knows its own.
	writer string

	gcStop, gcDone chan struct{}
}

// Pinned interfaces: what pivot and ooo look for.
var (
	_ storage.Database    = (*Storage)(nil)
	_ storage.Replica     = (*Storage)(nil)
	_ storage.QuietReader = (*Storage)(nil)
	_ storage.DataLimiter = (*Storage)(nil)
	_ storage.Identified  = (*Storage)(nil)
)

// New binds (creating when missing) the buckets cfg names on the JetStream js and
// returns an unstarted Storage. ctx is the parent of every request the storage makes,
// for its whole life: cancel it only to abandon the storage. js's connection belongs
// to the caller, who closes it after Close.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Storage, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	data, err := openBucket(octx, js, cfg.Bucket, cfg.Replicas, cfg.storageType())
	if err != nil {
		return nil, err
	}
	metaB, err := openBucket(octx, js, cfg.Bucket+"_meta", cfg.Replicas, cfg.storageType())
	if err != nil {
		return nil, err
	}
	return &Storage{
		cfg: cfg, ctx: ctx, data: data, meta: metaB,
		try:    retrier{parent: ctx, timeout: cfg.RequestTimeout, budget: cfg.RetryFor},
		writer: newID(),
	}, nil
}

// state is the value of the data bucket's stateKey.
type state struct {
	Epoch   string `json:"epoch"`
	Horizon uint64 `json:"horizon,omitempty"`
}

// readState reads the state key (rev 0 and a zero state when it has none).
func (s *Storage) readState(ctx context.Context) (state, uint64, error) {
	m, err := s.data.get(ctx, stateKey)
	if err != nil || m == nil {
		return state{}, 0, err
	}
	var st state
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return state{}, 0, fmt.Errorf("state key: %w", err)
	}
	return st, m.Sequence, nil
}

// loadState reads the state, giving a data set without one (new, or a bucket that was
// deleted and re-created, whose sequences restarted at 1) a new epoch, and caches it.
func (s *Storage) loadState() error {
	return s.try.do(func(ctx context.Context) error {
		st, rev, err := s.readState(ctx)
		if err != nil {
			return err
		}
		if rev == 0 {
			st = state{Epoch: newEpoch()}
			if err := s.writeState(ctx, st, 0); err != nil {
				return err // a conflict: another process made the epoch; read it
			}
		}
		s.cacheState(st)
		return nil
	})
}

// writeState stores st if the state key is still at rev.
func (s *Storage) writeState(ctx context.Context, st state, rev uint64) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	m := s.data.messageRaw(stateKey, raw)
	_, err = s.data.publish(ctx, m, rev, newID())
	return err
}

// cacheState makes st what Epoch and Horizon report.
func (s *Storage) cacheState(st state) {
	if st.Epoch != "" {
		s.epochID.Store(st.Epoch)
	}
	s.horizon.Store(st.Horizon)
}

func newEpoch() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// newID names one write for the servers' duplicate window.
func newID() string { return newEpoch() }

// Start binds the storage to its buckets: it reads (or makes) the data set's epoch and
// this process's identity, and starts the watcher that turns every change of the
// bucket, by any process, into an event. A second Start only replaces the options.
// It may be called again after Close; the data is in the bucket.
func (s *Storage) Start(opts storage.Options) error {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	if s.active {
		s.opts.Store(&opts)
		s.mu.Unlock()
		return nil
	}
	if err := s.open(opts); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("natshub: start %q: %w", s.cfg.Bucket, err)
	}
	s.active = true
	s.mu.Unlock()

	s.CollectTombstones(s.Clock().Now())
	if s.cfg.TombstoneRetention > 0 {
		s.gcStop, s.gcDone = make(chan struct{}), make(chan struct{})
		go s.collectLoop(collectInterval(s.cfg.TombstoneRetention), s.gcStop, s.gcDone)
	}
	return nil
}

// open does Start's work with mu held.
func (s *Storage) open(opts storage.Options) error {
	if err := s.loadIdentity(); err != nil {
		return err
	}
	if err := s.loadState(); err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	var head uint64
	err := s.try.do(func(ctx context.Context) error {
		var err error
		head, err = s.data.head(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	s.opts.Store(&opts)
	s.queue = newEventQueue()
	if err := s.watch(head); err != nil {
		s.queue.close()
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

// collectInterval is how often tombstones are collected in the background: a tenth of
// the retention, between one second and one hour (as the ooo storages do).
func collectInterval(retention time.Duration) time.Duration {
	return min(max(retention/10, time.Second), time.Hour)
}

func (s *Storage) collectLoop(every time.Duration, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.CollectTombstones(s.Clock().Now())
		}
	}
}

// Close waits for the operations in flight (a write in flight completes, acknowledged
// or failed), then stops the watcher and closes the Watch channel; events still
// queued are dropped. Later operations get storage.ErrNotActive. The data stays in the
// bucket and js's connection stays open. A second Close does nothing.
func (s *Storage) Close() {
	s.life.Lock()
	defer s.life.Unlock()
	if !s.Active() {
		return
	}
	if s.gcStop != nil {
		close(s.gcStop)
		<-s.gcDone
		s.gcStop, s.gcDone = nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = false
	s.watcher.Stop()
	s.queue.close()
	s.data.close(s.ctx, s.cfg.RequestTimeout)
}

// Active reports whether the storage was started and not closed.
func (s *Storage) Active() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.active
}

// Watch returns the channel of events: one per change of the bucket, made by this
// process or any other sharing it, in the bucket's order. nil before Start and after
// Close.
func (s *Storage) Watch() storage.EventChan {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.active {
		return nil
	}
	return s.queue.ch
}

// Clock returns the clock that stamps this process's writes (nil before the first
// Start when none was configured).
func (s *Storage) Clock() *clock.Clock {
	return s.clk.Load()
}

// options returns the options of the last Start.
func (s *Storage) options() storage.Options {
	if o := s.opts.Load(); o != nil {
		return *o
	}
	return storage.Options{}
}

// enter holds mu shared for an operation; the caller must call s.mu.RUnlock.
func (s *Storage) enter() error {
	s.mu.RLock()
	if !s.active {
		s.mu.RUnlock()
		return storage.ErrNotActive
	}
	return nil
}

// beforeRead calls the BeforeRead option, outside every lock.
func (s *Storage) beforeRead(k string) {
	s.mu.RLock()
	fn, active := s.options().BeforeRead, s.active
	s.mu.RUnlock()
	if fn != nil && active {
		fn(k)
	}
}

// parseState decodes a state key's value.
func parseState(raw []byte) (state, bool) {
	var st state
	if json.Unmarshal(raw, &st) != nil {
		return state{}, false
	}
	return st, true
}
