package ooo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/messages"
)

// start runs a silent server on a free loopback port, configured by setup, and closes
// it at the end of the test.
func start(tb testing.TB, setup func(*ooo.Server)) *ooo.Server {
	tb.Helper()
	s := &ooo.Server{Silence: true}
	if setup != nil {
		setup(s)
	}
	if err := s.Start("localhost:0"); err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(func() { s.Close(os.Interrupt) })
	return s
}

// response is what a test request got back.
type response struct {
	status int
	body   string
	header http.Header
}

// do sends one real HTTP request to the server.
func do(tb testing.TB, s *ooo.Server, method, path, body string, header http.Header) response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.Address+path, rd)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{status: res.StatusCode, body: string(out), header: res.Header}
}

// expect sends a request and checks its status, and its body when want is not "".
func expect(tb testing.TB, s *ooo.Server, method, path, body string, status int, want string) response {
	tb.Helper()
	res := do(tb, s, method, path, body, nil)
	if res.status != status {
		tb.Fatalf("%s %s: status %d (%q), want %d", method, path, res.status, res.body, status)
	}
	if want != "" && strings.TrimSpace(res.body) != want {
		tb.Fatalf("%s %s: body %q, want %q", method, path, res.body, want)
	}
	return res
}

// poll checks cond until it holds, failing the test after a deadline.
func poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// canonical re-encodes JSON with sorted keys and exact numbers, so equal documents
// compare equal as strings.
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

// subscriber is a test websocket client that folds every message into its state the
// way ooo clients do.
type subscriber struct {
	tb testing.TB
	ws *websocket.Conn

	mu       sync.Mutex
	state    json.RawMessage
	msgs     []messages.Message
	raw      [][]byte
	closeErr error
	changed  chan struct{}
	done     chan struct{}
}

func subscribe(tb testing.TB, s *ooo.Server, path string, header http.Header) *subscriber {
	tb.Helper()
	sub, res, err := trySubscribe(tb, s, path, header)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		tb.Fatalf("subscribe %s: %v (status %d)", path, err, status)
	}
	return sub
}

func trySubscribe(tb testing.TB, s *ooo.Server, path string, header http.Header) (*subscriber, *http.Response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, res, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+s.Address+path, header)
	if err != nil {
		return nil, res, err
	}
	sub := &subscriber{tb: tb, ws: ws, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go sub.read()
	tb.Cleanup(sub.close)
	return sub, res, nil
}

func (c *subscriber) read() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.ReadMessage()
		c.mu.Lock()
		switch {
		case err != nil:
			c.closeErr = err
		case typ != websocket.BinaryMessage:
			c.closeErr = &wrongFrame{typ}
		default:
			c.raw = append(c.raw, data)
			if msg, derr := messages.DecodeBuffer(data); derr == nil {
				c.msgs = append(c.msgs, msg)
				next, perr := messages.PatchCache(msg, c.state)
				if perr != nil {
					c.closeErr = perr
				} else {
					c.state = next
				}
			}
		}
		stop := c.closeErr != nil
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
		if stop {
			return
		}
	}
}

type wrongFrame struct{ typ int }

func (e *wrongFrame) Error() string { return "not a binary frame" }

func (c *subscriber) close() {
	_ = c.ws.Close()
	<-c.done
}

// waitFor re-checks cond after every frame until it holds; it fails after a deadline.
func (c *subscriber) waitFor(what string, cond func(c *subscriber) bool) {
	c.tb.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond(c)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			c.tb.Fatalf("timed out waiting for %s; state %s after %d frames, err %v", what, c.state, len(c.raw), c.closeErr)
		}
	}
}

// waitState waits until the client's state means the same as want.
func (c *subscriber) waitState(want []byte) {
	c.tb.Helper()
	w := canonical(want)
	c.waitFor("state "+string(want), func(c *subscriber) bool { return c.state != nil && canonical(c.state) == w })
}

func (c *subscriber) waitFrames(n int) {
	c.tb.Helper()
	c.waitFor("frames", func(c *subscriber) bool { return len(c.raw) >= n })
}

func (c *subscriber) waitClosed() error {
	c.tb.Helper()
	c.waitFor("close", func(c *subscriber) bool { return c.closeErr != nil })
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

func (c *subscriber) messages() []messages.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]messages.Message(nil), c.msgs...)
}

func (c *subscriber) frames() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.raw...)
}

// stored returns what the server's storage holds for k, as a client would see it.
func stored(tb testing.TB, s *ooo.Server, k string) []byte {
	tb.Helper()
	data, err := s.Storage.Get(k)
	if err != nil {
		tb.Fatalf("storage get %s: %v", k, err)
	}
	return data
}
