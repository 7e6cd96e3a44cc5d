package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// wire counts what the sync clients of one cluster move: the bytes read and written on
// their TCP connections (request and response lines, headers and bodies, as sent), and
// the requests in flight. Every instance of a cluster makes its sync requests through a
// client from the same wire, so a figure read from it covers the whole cluster.
type wire struct {
	bytes    atomic.Int64
	requests atomic.Int64
	inflight atomic.Int64
	// settled is signalled (capacity 1, never blocks) each time the requests in flight
	// drop to zero.
	settled chan struct{}
}

func newWire() *wire {
	return &wire{settled: make(chan struct{}, 1)}
}

// client returns an HTTP client for one instance whose requests are counted on w.
// Connections are kept alive, as pivot's own default client does. When pulled is not
// nil, it receives the "next" cursor of every answer to a pull of the synced collection
// (GET .../changes?key=users/*), which is how the bench knows how far a node has pulled.
func (w *wire) client(pulled func(next uint64)) *http.Client {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countedConn{Conn: c, n: &w.bytes}, nil
		},
		MaxIdleConns:        2048,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: &countingTransport{next: t, w: w, pulled: pulled}}
}

// countingTransport tracks the requests in flight: from RoundTrip until the response
// body is closed (or the request failed).
type countingTransport struct {
	next   http.RoundTripper
	w      *wire
	pulled func(next uint64)
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.w.requests.Add(1)
	t.w.inflight.Add(1)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.w.done()
		return nil, err
	}
	body := &trackedBody{ReadCloser: resp.Body}
	done := t.w.done
	if t.pulled != nil && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/changes") &&
		req.URL.Query().Get("key") == syncedPath && resp.StatusCode == http.StatusOK {
		body.head = &bytes.Buffer{}
		done = func() {
			if next, ok := nextCursor(body.head.Bytes()); ok {
				t.pulled(next)
			}
			t.w.done()
		}
	}
	body.done = sync.OnceFunc(done)
	resp.Body = body
	return resp, nil
}

// headBytes is how much of a pull answer is kept to read its cursor: the fields before
// the list of changes.
const headBytes = 1024

// nextCursor reads the "next" field of the start of a pull answer.
func nextCursor(head []byte) (uint64, bool) {
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, false
		}
		name, _ := tok.(string)
		if name == "changes" {
			return 0, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, false
		}
		if name == "next" {
			var next uint64
			if json.Unmarshal(v, &next) != nil {
				return 0, false
			}
			return next, true
		}
	}
	return 0, false
}

// done ends one request in flight.
func (w *wire) done() {
	if w.inflight.Add(-1) == 0 {
		select {
		case w.settled <- struct{}{}:
		default:
		}
	}
}

// trackedBody ends its request when closed, keeping the first headBytes read when head
// is set.
type trackedBody struct {
	io.ReadCloser
	head *bytes.Buffer
	done func()
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.head != nil && b.head.Len() < headBytes {
		b.head.Write(p[:min(n, headBytes-b.head.Len())])
	}
	return n, err
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// countedConn adds every byte read or written to n.
type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}
