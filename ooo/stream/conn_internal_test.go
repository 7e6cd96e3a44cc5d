package stream

import (
	"bytes"
	"testing"
)

func TestConn_EnqueueResyncsWhenFull(t *testing.T) {
	c := newConn(nil, "k", DefaultWriteTimeout, 2)
	c.enqueue([]byte("p1"), nil)
	c.enqueue([]byte("p2"), nil)
	resyncs := 0
	c.enqueue([]byte("p3"), func() []byte { resyncs++; return []byte("snapshot") })
	if resyncs != 1 || len(c.queue) != 1 || !bytes.Equal(c.queue[0], []byte("snapshot")) {
		t.Fatalf("queue = %q after overflow (resyncs %d), want only the snapshot", c.queue, resyncs)
	}
	c.enqueue([]byte("p4"), nil)
	if len(c.queue) != 2 || string(c.queue[1]) != "p4" {
		t.Fatalf("queue = %q, want the snapshot then p4", c.queue)
	}
}

func TestConn_EnqueueAfterShutdownIsDropped(t *testing.T) {
	c := newConn(nil, "k", DefaultWriteTimeout, 2)
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.enqueue([]byte("late"), nil)
	if len(c.queue) != 0 {
		t.Fatalf("queue = %q, want nothing queued on a closed connection", c.queue)
	}
}
