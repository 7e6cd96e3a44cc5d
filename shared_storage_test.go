package pivot_test

import (
	"sync"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// sharedData is one data set served by several ooo servers, as a storage on a
// distributed engine (NATS JetStream) is: one MemoryStorage, and for each server a
// view of it (sharedView) with its own Start, Close and Watch. The MemoryStorage starts
// with the first view and closes with the last; every event of the data set reaches
// every started view, whichever server wrote it, so each pivot process sees every
// change. A test double for the tests of several pivot processes without NATS.
type sharedData struct {
	mem *ooo.MemoryStorage

	mu     sync.Mutex
	starts int
	views  []*sharedView
	fanned chan struct{} // closed when the fan-out of the current start ends
}

// newSharedData returns an empty shared data set.
func newSharedData() *sharedData { return &sharedData{mem: &ooo.MemoryStorage{}} }

// view returns a new view of the data set, for one server's Storage.
func (d *sharedData) view() *sharedView {
	v := &sharedView{MemoryStorage: d.mem, data: d}
	d.mu.Lock()
	d.views = append(d.views, v)
	d.mu.Unlock()
	return v
}

// fanOut hands every event of the MemoryStorage to every started view, in order.
func (d *sharedData) fanOut(events storage.EventChan, done chan struct{}) {
	defer close(done)
	for ev := range events {
		d.mu.Lock()
		for _, v := range d.views {
			v.push(ev)
		}
		d.mu.Unlock()
	}
}

// sharedView is one server's handle on a sharedData. The storage methods are the
// MemoryStorage's (embedded); Start, Close, Active and Watch are the view's own.
type sharedView struct {
	*ooo.MemoryStorage
	data *sharedData

	// Guarded by data.mu.
	active bool
	ch     storage.EventChan
	queue  []storage.Event
	wake   chan struct{}
	done   chan struct{}
}

var (
	_ storage.Database = (*sharedView)(nil)
	_ storage.Replica  = (*sharedView)(nil)
)

// Start starts the view, and the data set if no other view had.
func (v *sharedView) Start(opts ooo.StorageOpt) error {
	d := v.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if v.active {
		return nil
	}
	if d.starts == 0 {
		if err := d.mem.Start(opts); err != nil {
			return err
		}
		d.fanned = make(chan struct{})
		go d.fanOut(d.mem.Watch(), d.fanned)
	}
	d.starts++
	v.active = true
	v.ch, v.wake, v.done = make(storage.EventChan), make(chan struct{}, 1), make(chan struct{})
	go v.pump(v.ch, v.wake, v.done)
	return nil
}

// Close stops the view (its Watch channel closes), and the data set with the last
// view. A second Close is a no-op.
func (v *sharedView) Close() {
	d := v.data
	d.mu.Lock()
	if !v.active {
		d.mu.Unlock()
		return
	}
	v.active = false
	v.queue = nil
	close(v.done)
	d.starts--
	last, fanned := d.starts == 0, d.fanned
	d.mu.Unlock()
	if last {
		d.mem.Close()
		<-fanned
	}
}

// Active reports whether this view is started.
func (v *sharedView) Active() bool {
	v.data.mu.Lock()
	defer v.data.mu.Unlock()
	return v.active && v.data.mem.Active()
}

// Watch returns the view's event channel; nil while it is not started.
func (v *sharedView) Watch() ooo.StorageChan {
	v.data.mu.Lock()
	defer v.data.mu.Unlock()
	if !v.active {
		return nil
	}
	return v.ch
}

// push queues an event for the view's reader without blocking. data.mu is held.
func (v *sharedView) push(ev storage.Event) {
	if !v.active {
		return
	}
	v.queue = append(v.queue, ev)
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// pump moves the queued events onto ch, in order, until done; then closes ch.
func (v *sharedView) pump(ch storage.EventChan, wake, done chan struct{}) {
	defer close(ch)
	for {
		select {
		case <-done:
			return
		case <-wake:
		}
		for {
			v.data.mu.Lock()
			if len(v.queue) == 0 || v.done != done { // empty, or stopped (and maybe started again)
				v.data.mu.Unlock()
				break
			}
			ev := v.queue[0]
			v.queue = v.queue[1:]
			v.data.mu.Unlock()
			select {
			case ch <- ev:
			case <-done:
				return
			}
		}
	}
}
