package natshub

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// watch starts the watcher: an ordered consumer of the whole data bucket from the
// sequence after head, so that every change made after Start, by any process, becomes
// an event. An ordered consumer recreates itself after a stream leader change and
// resumes after the last message it delivered, so none is skipped.
func (s *Storage) watch(head uint64) error {
	cons, err := s.data.stream.OrderedConsumer(s.ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.data.prefix + ">"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    head + 1,
	})
	if err != nil {
		return err
	}
	q := s.queue
	// A large pull buffer keeps the messages flowing to the client as they are stored:
	// a message still on the server when its key is rewritten is gone (history 1), and
	// its event with it.
	cc, err := cons.Consume(func(m jetstream.Msg) { s.onMessage(q, m) }, jetstream.PullMaxMessages(10000))
	if err != nil {
		return err
	}
	s.watcher = cc
	return nil
}

// onMessage turns one message of the data bucket into state updates and events.
func (s *Storage) onMessage(q *eventQueue, m jetstream.Msg) {
	sub := m.Subject()
	if !strings.HasPrefix(sub, s.data.prefix) {
		return
	}
	md, err := m.Metadata()
	if err != nil {
		return
	}
	seq, own := md.Sequence.Stream, m.Headers().Get(hdrWriter) == s.writer
	raise(&s.watched, seq)
	switch sub[len(s.data.prefix):] {
	case stateKey:
		// Another process cleared the data set or raised the horizon.
		if st, ok := parseState(m.Data()); ok {
			s.cacheState(st)
		}
		return
	case globKey:
		var ev *storage.Event
		if g := m.Headers().Get(hdrGlob); g != "" {
			ev = s.event(storage.Event{Key: g, Operation: storage.OpDel})
		}
		q.delivered(seq, ev, own)
		return
	}
	r, ok, err := s.data.decodeMsg(m)
	if err != nil {
		return
	}
	if !ok {
		if k, valid := ooKey(sub[len(s.data.prefix):]); valid {
			// A NATS KV delete or purge marker: the key is gone.
			q.delivered(seq, s.event(storage.Event{Key: k, Operation: storage.OpDel}), false)
		}
		return
	}
	if clk := s.Clock(); clk != nil && !own {
		// Writes of other processes: stamp later writes after them. A stamp too far
		// ahead was refused by the process that stored it, or is its own clock's.
		_ = clk.Observe(r.Version())
	}
	q.delivered(seq, s.recordEvent(r.Change, r.glob), own)
}

// recordEvent is the event of a stored change (nil for none): a glob delete's
// tombstones have none, its marker carries the glob.
func (s *Storage) recordEvent(c storage.Change, glob string) *storage.Event {
	switch {
	case c.Deleted && glob != "":
		return nil
	case c.Deleted:
		return s.event(storage.Event{Key: c.Key, Operation: storage.OpDel})
	}
	o := objectOf(c)
	o.Data = append([]byte(nil), o.Data...)
	return s.event(storage.Event{Key: c.Key, Operation: storage.OpSet, Object: &o})
}

// event returns ev, or nil when NoBroadcastKeys silences its key.
func (s *Storage) event(ev storage.Event) *storage.Event {
	if key.Contains(s.options().NoBroadcastKeys, ev.Key) {
		return nil
	}
	return &ev
}

// One event per write. The watcher alone cannot promise it: with one revision per key,
// a write rewritten before the watcher read it is gone from the stream. So the
// process's own writes are also reported by the writer once acknowledged (acked), and
// the queue merges both in stream order: an acknowledged write the watcher has not
// reached waits in pending and is delivered before the first later message the watcher
// delivers; one the watcher delivered itself is not delivered twice; one the watcher
// passed without seeing (rewritten meanwhile) is delivered at once. Writes of other
// processes are known through the watcher only: a key they rewrite faster than the
// watcher reads it shows its latest state, not each write.

// ownEvent is an acknowledged write of this process that the watcher has not reached.
type ownEvent struct {
	seq uint64
	ev  *storage.Event // nil: the write has no event
}

// delivered is the watcher's report of the message at seq (ev nil: no event; own: a
// write of this process).
func (q *eventQueue) delivered(seq uint64, ev *storage.Event, own bool) {
	q.smu.Lock()
	defer q.smu.Unlock()
	i := 0
	for ; i < len(q.pending) && q.pending[i].seq < seq; i++ {
		q.emit(q.pending[i].ev) // rewritten before the watcher read it
	}
	q.pending = q.pending[i:]
	switch {
	case own && len(q.pending) > 0 && q.pending[0].seq == seq:
		q.pending = q.pending[1:]
	case own:
		q.seenOwn[seq] = true // its writer has not reported it yet
		if len(q.seenOwn) > 1<<16 {
			for s := range q.seenOwn { // writes whose acknowledgement was lost
				if s+1<<20 < seq {
					delete(q.seenOwn, s)
				}
			}
		}
	}
	q.emit(ev)
	q.last = max(q.last, seq)
}

// acked is a writer's report of its acknowledged write at seq.
func (q *eventQueue) acked(seq uint64, ev *storage.Event) {
	q.smu.Lock()
	defer q.smu.Unlock()
	switch {
	case q.seenOwn[seq]:
		delete(q.seenOwn, seq)
	case seq <= q.last:
		q.emit(ev) // the watcher passed it without seeing it
	default:
		i := sort.Search(len(q.pending), func(i int) bool { return q.pending[i].seq >= seq })
		if i < len(q.pending) && q.pending[i].seq == seq {
			return // reported twice (a deduplicated retry)
		}
		q.pending = append(q.pending, ownEvent{})
		copy(q.pending[i+1:], q.pending[i:])
		q.pending[i] = ownEvent{seq: seq, ev: ev}
	}
}

func (q *eventQueue) emit(ev *storage.Event) {
	if ev != nil {
		q.push(*ev)
	}
}

// eventQueue is an unbounded queue in front of the Watch channel: the watcher never
// blocks on a slow reader.
type eventQueue struct {
	// smu orders the reports of the watcher and of the writers (see delivered).
	smu     sync.Mutex
	last    uint64
	pending []ownEvent
	seenOwn map[uint64]bool

	ch     storage.EventChan
	mu     sync.Mutex
	items  []storage.Event
	closed bool
	wake   chan struct{}
	done   chan struct{}
	exited chan struct{}
}

func newEventQueue() *eventQueue {
	q := &eventQueue{seenOwn: map[uint64]bool{}, ch: make(storage.EventChan), wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	go q.run()
	return q
}

func (q *eventQueue) push(ev storage.Event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	defer close(q.exited)
	defer close(q.ch)
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-q.done:
				return
			}
		}
		ev := q.items[0]
		q.items[0] = storage.Event{}
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.ch <- ev:
		case <-q.done:
			return
		}
	}
}

// close drops the queued events and closes the channel; when it returns, no event is
// delivered any more.
func (q *eventQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.items = nil
	q.mu.Unlock()
	close(q.done)
	<-q.exited
}

// raise sets v to n when n is higher.
func raise(v *atomic.Uint64, n uint64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}
