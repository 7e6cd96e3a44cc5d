package stream

import (
	"net/http"

	"github.com/gorilla/websocket"
)

// ServeClock serves a clock socket: OnSubscribe(""), upgrade, then now() at once and
// every payload given to BroadcastClock, until the connection ends. Clock messages are
// binary frames holding only the payload (a decimal nanosecond time), not an envelope.
// It blocks for the life of the connection. A refusal by OnSubscribe is answered with
// 400 and the reason, a closed Stream with 503 (ErrClosed).
func (s *Stream) ServeClock(w http.ResponseWriter, r *http.Request, now func() []byte) error {
	c, gen, err := s.accept(w, r, "")
	if err != nil {
		return err
	}
	defer gen.wg.Done()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.abandon(c, websocket.CloseGoingAway, "ooo: server closing")
		return ErrClosed
	}
	if s.clock == nil {
		s.clock = make(map[*Conn]struct{})
	}
	s.clock[c] = struct{}{}
	first := newMessage(now(), "", nil, 1)
	c.enqueue(first, func() *message { return first })
	s.mu.Unlock()

	c.readLoop(ReadLimit)
	s.end(c)
	return nil
}

// BroadcastClock queues payload for every clock socket and returns without waiting for
// the writes. A clock client that is behind only keeps the latest time. payload is
// shared by the clients' queues and must not be modified afterwards. Safe for
// concurrent use.
func (s *Stream) BroadcastClock(payload []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	msg := newMessage(payload, "", nil, len(s.clock))
	for c := range s.clock {
		c.enqueue(msg, func() *message { return msg })
	}
}
