package storage

import "sync"

// eventQueue hands a storage's events to its Watch channel without ever making a write
// wait for a reader. push appends to an unbounded slice; one pump goroutine moves the
// events, in push order, onto the channel. close stops the pump, drops whatever is still
// queued and closes the channel; pushes after close are dropped.
type eventQueue struct {
	ch   EventChan
	wake chan struct{} // buffered(1): "the slice is no longer empty"
	done chan struct{} // closed by close to stop the pump
	exit chan struct{} // closed by the pump when it returns

	mu      sync.Mutex
	pending []Event
	closed  bool
}

func newEventQueue() *eventQueue {
	q := &eventQueue{
		ch:   make(EventChan),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		exit: make(chan struct{}),
	}
	go q.pump()
	return q
}

// push queues events in order. It never blocks on the channel.
func (q *eventQueue) push(events ...Event) {
	if len(events) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.pending = append(q.pending, events...)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close stops the pump, drops the queued events and closes the channel. It is safe to
// call more than once.
func (q *eventQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.pending = nil
	q.mu.Unlock()
	close(q.done)
	<-q.exit
	close(q.ch)
}

func (q *eventQueue) pump() {
	defer close(q.exit)
	var batch []Event
	for {
		select {
		case <-q.wake:
		case <-q.done:
			return
		}
		q.mu.Lock()
		batch, q.pending = q.pending, batch[:0]
		q.mu.Unlock()
		for _, ev := range batch {
			select {
			case q.ch <- ev:
			case <-q.done:
				return
			}
		}
		clear(batch)
	}
}
