package stream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/messages"
)

// subscriber is a test websocket client that folds every message into its state.
type subscriber struct {
	tb   testing.TB
	ws   *websocket.Conn
	resp *http.Response

	mu       sync.Mutex
	state    json.RawMessage
	version  string
	msgs     []messages.Message
	closeErr error
	changed  chan struct{}
	done     chan struct{}
}

func dial(tb testing.TB, url string, header http.Header) *subscriber {
	tb.Helper()
	s, err := tryDial(tb, url, header)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	return s
}

func tryDial(tb testing.TB, url string, header http.Header) (*subscriber, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, url, header)
	if err != nil {
		return &subscriber{resp: resp}, err
	}
	s := &subscriber{tb: tb, ws: ws, resp: resp, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go s.read()
	tb.Cleanup(s.close)
	return s, nil
}

func (s *subscriber) read() {
	defer close(s.done)
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			s.mu.Lock()
			s.closeErr = err
			s.mu.Unlock()
			s.notify()
			return
		}
		s.mu.Lock()
		if strings.HasPrefix(string(data), "{") {
			msg, err := messages.DecodeBuffer(data)
			if err == nil {
				s.msgs = append(s.msgs, msg)
				s.version = msg.Version
				if next, err := messages.PatchCache(msg, s.state); err == nil {
					s.state = next
				} else {
					s.closeErr = err
				}
			}
		} else {
			s.msgs = append(s.msgs, messages.Message{Data: append(json.RawMessage(nil), data...)})
		}
		s.mu.Unlock()
		s.notify()
	}
}

func (s *subscriber) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *subscriber) close() {
	_ = s.ws.Close()
	<-s.done
}

// waitFor polls cond on every message until it holds, or fails after the deadline.
func (s *subscriber) waitFor(what string, cond func(s *subscriber) bool) {
	s.tb.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond(s)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-deadline.C:
			s.mu.Lock()
			defer s.mu.Unlock()
			s.tb.Fatalf("timed out waiting for %s; state %s, %d messages, err %v", what, s.state, len(s.msgs), s.closeErr)
		}
	}
}

func (s *subscriber) waitState(want string) {
	s.tb.Helper()
	s.waitFor("state "+want, func(s *subscriber) bool { return s.state != nil && canonical(s.state) == canonical([]byte(want)) })
}

func (s *subscriber) waitMessages(n int) {
	s.tb.Helper()
	s.waitFor("messages", func(s *subscriber) bool { return len(s.msgs) >= n })
}

func (s *subscriber) waitClosed() error {
	s.tb.Helper()
	s.waitFor("close", func(s *subscriber) bool { return s.closeErr != nil })
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

func (s *subscriber) messages() []messages.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]messages.Message(nil), s.msgs...)
}

func canonical(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "invalid:" + string(data)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
