// Package wstest is a websocket test client for ooo subscriptions and clock sockets,
// shared by the tests of ooo and ooo/stream. It exists only to support tests.
//
// A Client reads every frame on its own goroutine, folds subscription messages into its
// state the way ooo clients do (a snapshot replaces it, a patch is applied to it), and
// lets a test wait, with a deadline and never with a sleep, until a condition holds.
package wstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/messages"
)

// Timeouts of a test client.
const (
	// DialTimeout bounds the opening handshake.
	DialTimeout = 5 * time.Second
	// WaitTimeout bounds every Wait; frames normally arrive in milliseconds. It is a
	// deadline for failure, generous because a frame of megabytes under the race
	// detector, on a machine shared with other test runs, has taken over 10 s.
	WaitTimeout = 30 * time.Second
)

// ErrNotBinary is the close error of a client that received a frame that is not binary:
// every ooo frame is binary.
var ErrNotBinary = errors.New("wstest: not a binary frame")

// Client is a test websocket client. Its methods may be called from any goroutine.
type Client struct {
	// WS is the connection, for tests that inspect it (its subprotocol, say).
	WS *websocket.Conn

	tb       testing.TB
	mu       sync.Mutex
	state    json.RawMessage
	frames   [][]byte
	msgs     []messages.Message
	closeErr error
	changed  chan struct{}
	done     chan struct{}
}

// Dial connects to url (ws://host/path) with header, or fails the test.
func Dial(tb testing.TB, url string, header http.Header) *Client {
	tb.Helper()
	c, res, err := TryDial(tb, url, header)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		tb.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	return c
}

// TryDial connects to url with header. When the server refuses the handshake, it returns
// the error and the response, whose Body holds the start of the server's answer. The
// client is closed when the test ends.
func TryDial(tb testing.TB, url string, header http.Header) (*Client, *http.Response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
	defer cancel()
	ws, res, err := websocket.DefaultDialer.DialContext(ctx, url, header)
	if err != nil {
		return nil, res, err
	}
	c := &Client{WS: ws, tb: tb, changed: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	tb.Cleanup(c.Close)
	return c, res, nil
}

// read records every frame until the connection fails. A frame that decodes as a
// subscription message is folded into the state; any other frame (a clock tick) is
// recorded as a message holding just the frame. A patch that does not apply ends the
// reading, with its error as the close error.
func (c *Client) read() {
	defer close(c.done)
	for {
		typ, data, err := c.WS.ReadMessage()
		c.mu.Lock()
		switch {
		case err != nil:
			c.closeErr = err
		case typ != websocket.BinaryMessage:
			c.closeErr = ErrNotBinary
		default:
			c.frames = append(c.frames, data)
			msg, derr := messages.DecodeBuffer(data)
			if derr != nil {
				c.msgs = append(c.msgs, messages.Message{Data: append(json.RawMessage(nil), data...)})
				break
			}
			c.msgs = append(c.msgs, msg)
			next, perr := messages.PatchCache(msg, c.state)
			if perr != nil {
				c.closeErr = perr
				break
			}
			c.state = next
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

// Close closes the connection and waits for the reader to end.
func (c *Client) Close() {
	_ = c.WS.Close()
	<-c.done
}

// SetState replaces the client's state, as a client resuming with ?v= would hold it.
func (c *Client) SetState(state []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = append(json.RawMessage(nil), state...)
}

// waitFor re-checks cond, under the client's lock, after every frame until it holds; it
// fails the test after WaitTimeout.
func (c *Client) waitFor(what string, cond func() bool) {
	c.tb.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			c.tb.Fatalf("timed out waiting for %s; state %s after %d frames, err %v", what, clip(c.state), len(c.frames), c.closeErr)
		}
	}
}

// clip cuts a state of megabytes to what a failure message can show.
func clip(state []byte) string {
	const show = 512
	if len(state) <= show {
		return string(state)
	}
	return fmt.Sprintf("%s… (%d bytes)", state[:show], len(state))
}

// WaitState waits until the client's state means the same JSON as want.
func (c *Client) WaitState(want string) {
	c.tb.Helper()
	w := Canonical([]byte(want))
	c.waitFor("state "+want, func() bool { return c.state != nil && Canonical(c.state) == w })
}

// WaitFrames waits until the client received at least n frames.
func (c *Client) WaitFrames(n int) {
	c.tb.Helper()
	c.waitFor("frames", func() bool { return len(c.frames) >= n })
}

// WaitClosed waits until the connection ended and returns why.
func (c *Client) WaitClosed() error {
	c.tb.Helper()
	c.waitFor("close", func() bool { return c.closeErr != nil })
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Messages returns a copy of the messages received so far.
func (c *Client) Messages() []messages.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]messages.Message(nil), c.msgs...)
}

// Frames returns a copy of the frames received so far.
func (c *Client) Frames() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// Canonical re-encodes JSON with sorted keys and exact numbers, so equal documents
// compare equal as strings. Invalid JSON gives a string no valid document gives.
func Canonical(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "invalid:" + string(data)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "invalid:" + string(data)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// Poll checks cond until it holds, failing the test after WaitTimeout. Use it only for
// conditions nothing signals (a server-side count, say).
func Poll(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
