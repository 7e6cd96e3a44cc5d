package client

import (
	"context"
	"net/http"
)

// Path names one subscription of SubscribeMultiple2/3/4: the arguments Subscribe takes.
type Path struct {
	Protocol string      // "ws" or "wss"
	Host     string      // host:port of the server
	Path     string      // key or glob to follow
	Header   http.Header // sent with each handshake; may be nil
}

// MultiState is the latest state of one subscription in a combined callback. Updated is
// true for the subscription whose message caused this call.
type MultiState[T any] struct {
	Data    []Meta[T] // the latest state; nil until the first message
	Updated bool      // this subscription's message caused the call
}

// multiBuffer is how many updates may wait for the combining goroutine before the
// subscriptions' readers block.
const multiBuffer = 10

// combiner runs the combined callback on one goroutine. Each subscription hands it a
// closure that records its new state; only the combiner's goroutine runs those closures,
// so the states need no lock.
type combiner struct {
	ctx     context.Context
	updates chan func()
}

func newCombiner(ctx context.Context) *combiner {
	return &combiner{ctx: ctx, updates: make(chan func(), multiBuffer)}
}

// feed starts Subscribe for p and forwards each state to the combiner through record.
func feed[T any](c *combiner, p Path, record func([]Meta[T])) {
	go Subscribe(c.ctx, p.Protocol, p.Host, p.Path, p.Header, func(state []Meta[T]) {
		select {
		case c.updates <- func() { record(state) }:
		case <-c.ctx.Done():
		}
	})
}

// run applies updates one at a time and calls emit after each, until ctx ends.
func (c *combiner) run(emit func()) {
	for {
		select {
		case <-c.ctx.Done():
			return
		case record := <-c.updates:
			record()
			emit()
		}
	}
}

// SubscribeMultiple2 subscribes to two paths and calls cb with the latest state of both
// each time either one changes, Updated marking which. A subscription that has not
// received anything yet has nil Data. It returns at once; cb runs on one goroutine (never
// concurrently with itself) until ctx is cancelled.
func SubscribeMultiple2[T1, T2 any](ctx context.Context, p1, p2 Path, cb func(MultiState[T1], MultiState[T2])) {
	var s1 MultiState[T1]
	var s2 MultiState[T2]
	c := newCombiner(ctx)
	feed(c, p1, func(d []Meta[T1]) { s1 = MultiState[T1]{Data: d, Updated: true} })
	feed(c, p2, func(d []Meta[T2]) { s2 = MultiState[T2]{Data: d, Updated: true} })
	go c.run(func() {
		cb(s1, s2)
		s1.Updated, s2.Updated = false, false
	})
}

// SubscribeMultiple3 is SubscribeMultiple2 for three paths.
func SubscribeMultiple3[T1, T2, T3 any](ctx context.Context, p1, p2, p3 Path, cb func(MultiState[T1], MultiState[T2], MultiState[T3])) {
	var s1 MultiState[T1]
	var s2 MultiState[T2]
	var s3 MultiState[T3]
	c := newCombiner(ctx)
	feed(c, p1, func(d []Meta[T1]) { s1 = MultiState[T1]{Data: d, Updated: true} })
	feed(c, p2, func(d []Meta[T2]) { s2 = MultiState[T2]{Data: d, Updated: true} })
	feed(c, p3, func(d []Meta[T3]) { s3 = MultiState[T3]{Data: d, Updated: true} })
	go c.run(func() {
		cb(s1, s2, s3)
		s1.Updated, s2.Updated, s3.Updated = false, false, false
	})
}

// SubscribeMultiple4 is SubscribeMultiple2 for four paths.
func SubscribeMultiple4[T1, T2, T3, T4 any](ctx context.Context, p1, p2, p3, p4 Path, cb func(MultiState[T1], MultiState[T2], MultiState[T3], MultiState[T4])) {
	var s1 MultiState[T1]
	var s2 MultiState[T2]
	var s3 MultiState[T3]
	var s4 MultiState[T4]
	c := newCombiner(ctx)
	feed(c, p1, func(d []Meta[T1]) { s1 = MultiState[T1]{Data: d, Updated: true} })
	feed(c, p2, func(d []Meta[T2]) { s2 = MultiState[T2]{Data: d, Updated: true} })
	feed(c, p3, func(d []Meta[T3]) { s3 = MultiState[T3]{Data: d, Updated: true} })
	feed(c, p4, func(d []Meta[T4]) { s4 = MultiState[T4]{Data: d, Updated: true} })
	go c.run(func() {
		cb(s1, s2, s3, s4)
		s1.Updated, s2.Updated, s3.Updated, s4.Updated = false, false, false, false
	})
}
