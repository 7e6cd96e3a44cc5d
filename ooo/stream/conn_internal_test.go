package stream

import (
	"fmt"
	"testing"

	"github.com/benitogf/pivot/ooo/messages"
)

func frame(s string) *message { return &message{frame: []byte(s)} }

func patchMsg(version, ops string) *message {
	return &message{frame: messages.Encode(false, version, []byte(ops)), version: version, patch: []byte(ops)}
}

func TestConn_EnqueueResyncsWhenFull(t *testing.T) {
	c := newConn(nil, "k", DefaultWriteTimeout, 2)
	c.enqueue(frame("p1"), nil)
	c.enqueue(frame("p2"), nil)
	resyncs := 0
	c.enqueue(frame("p3"), func() *message { resyncs++; return frame("snapshot") })
	if resyncs != 1 || len(c.queue) != 1 || string(c.queue[0].frame) != "snapshot" {
		t.Fatalf("queue = %v after overflow (resyncs %d), want only the snapshot", c.queue, resyncs)
	}
	c.enqueue(frame("p4"), nil)
	if len(c.queue) != 2 || string(c.queue[1].frame) != "p4" {
		t.Fatalf("queue = %v, want the snapshot then p4", c.queue)
	}
}

func TestConn_EnqueueAfterShutdownIsDropped(t *testing.T) {
	c := newConn(nil, "k", DefaultWriteTimeout, 2)
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.enqueue(frame("late"), nil)
	if len(c.queue) != 0 {
		t.Fatalf("queue = %v, want nothing queued on a closed connection", c.queue)
	}
}

func TestCoalesce(t *testing.T) {
	show := func(frames [][]byte) string { return fmt.Sprintf("%s", frames) }
	frames := func(ms []*message) [][]byte {
		out := [][]byte{}
		for _, m := range ms {
			out = append(out, m.frame)
		}
		return out
	}
	a := patchMsg("1", `[{"op":"remove","path":"/0"}]`)
	b := patchMsg("2", `[{"op":"add","path":"/0","value":1}]`)
	snap := frame("S")
	for _, tc := range []struct {
		in   []*message
		want string
	}{
		{nil, "[]"},
		{[]*message{a}, show([][]byte{a.frame})},
		{[]*message{a, b}, show([][]byte{messages.Encode(false, "2", []byte(`[{"op":"remove","path":"/0"},{"op":"add","path":"/0","value":1}]`))})},
		{[]*message{a, snap, b}, show([][]byte{[]byte("S"), b.frame})},
		{[]*message{a, b, snap}, "[S]"},
		{[]*message{frame("t1"), frame("t2")}, "[t2]"},
	} {
		if got := show(frames(coalesce(nil, tc.in))); got != tc.want {
			t.Fatalf("coalesce = %s, want %s", got, tc.want)
		}
	}
}
