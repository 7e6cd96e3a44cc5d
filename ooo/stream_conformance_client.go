package ooo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/messages"
	"github.com/benitogf/pivot/ooo/meta"
)

// streamWait bounds every wait of the stream test helpers: for a websocket handshake,
// for a frame, for a value to arrive. Frames normally arrive in milliseconds; the bound
// only decides how long a helper takes to fail on a server that never sends one.
const streamWait = 10 * time.Second

// streamFrames is how many received frames a helper's subscriber holds before its reader
// waits for the helper to take them.
const streamFrames = 1024

// streamSubscriber is a websocket subscriber of a stream helper: a goroutine reads the
// frames, and the helper takes them one at a time, folding each into the value the
// subscriber holds as a client does (messages.PatchCache). It is used by one goroutine.
type streamSubscriber struct {
	t     *testing.T
	path  string
	ws    *websocket.Conn
	in    chan streamFrame
	quit  chan struct{}
	state json.RawMessage
	taken int // frames taken so far
}

// streamFrame is one frame as the reader got it, or the error that ended the reading.
type streamFrame struct {
	kind int
	data []byte
	err  error
}

// streamDial subscribes to path (with its query) on the running server.
func streamDial(t *testing.T, server *Server, path string) *streamSubscriber {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamWait)
	defer cancel()
	ws, res, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+server.Address+path, nil)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("subscribe to %s: %v (status %d)", path, err, status)
	}
	c := &streamSubscriber{t: t, path: path, ws: ws, in: make(chan streamFrame, streamFrames), quit: make(chan struct{})}
	go c.read()
	return c
}

// read hands every frame to the helper until the connection fails or close is called.
func (c *streamSubscriber) read() {
	for {
		kind, data, err := c.ws.ReadMessage()
		select {
		case c.in <- streamFrame{kind: kind, data: data, err: err}:
		case <-c.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// close ends the subscription and its reader.
func (c *streamSubscriber) close() {
	close(c.quit)
	_ = c.ws.Close()
}

// next waits, at most streamWait, for the next frame, folds it into the subscriber's
// value and returns it decoded. what names the change the frame is waited for.
func (c *streamSubscriber) next(what string) messages.Message {
	c.t.Helper()
	timer := time.NewTimer(streamWait)
	defer timer.Stop()
	var f streamFrame
	select {
	case f = <-c.in:
	case <-timer.C:
		c.t.Fatalf("%s: no frame on %s within %v (holding %s after %d frames)", what, c.path, streamWait, c.state, c.taken)
	}
	if f.err != nil {
		c.t.Fatalf("%s: the subscription to %s ended: %v", what, c.path, f.err)
	}
	c.taken++
	if f.kind != websocket.BinaryMessage {
		c.t.Fatalf("%s: frame %d on %s is not binary (type %d): %q", what, c.taken, c.path, f.kind, f.data)
	}
	msg, err := messages.DecodeBuffer(f.data)
	if err != nil {
		c.t.Fatalf("%s: frame %d on %s does not decode: %v (%q)", what, c.taken, c.path, err, f.data)
	}
	if _, err := strconv.ParseUint(msg.Version, 16, 64); err != nil {
		c.t.Fatalf("%s: frame %d on %s has version %q, want lowercase hex", what, c.taken, c.path, msg.Version)
	}
	if c.taken == 1 && !msg.Snapshot {
		c.t.Fatalf("%s: the first frame on %s is a patch, want a snapshot: %s", what, c.path, msg.Data)
	}
	state, err := messages.PatchCache(msg, c.state)
	if err != nil {
		c.t.Fatalf("%s: frame %d on %s does not apply to %s: %v (%s)", what, c.taken, c.path, c.state, err, msg.Data)
	}
	c.state = state
	return msg
}

// until takes frames until cond holds for the subscriber's value, or fails the test
// after streamWait.
func (c *streamSubscriber) until(what string, cond func(state json.RawMessage) bool) {
	c.t.Helper()
	deadline := time.Now().Add(streamWait)
	for !cond(c.state) {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %s still holds %s after %d frames and %v", what, c.path, c.state, c.taken, streamWait)
		}
		c.next(what)
	}
}

// expectRead fails the test unless the subscriber holds what a GET of key answers (the
// same JSON value; for a missing single key, the empty object a subscriber gets).
func (c *streamSubscriber) expectRead(server *Server, key, what string) json.RawMessage {
	c.t.Helper()
	want := streamRead(c.t, server, key)
	if !sameJSON(c.state, want) {
		c.t.Fatalf("%s: the frames on %s rebuild %s, GET /%s answers %s", what, c.path, c.state, key, want)
	}
	return want
}

// streamRead is a client's GET of key: the body, or for a missing single key the empty
// object a subscriber holds.
func streamRead(t *testing.T, server *Server, key string) json.RawMessage {
	t.Helper()
	status, body := conformanceRequest(t, server, http.MethodGet, "/"+key, nil)
	switch status {
	case http.StatusOK:
		return body
	case http.StatusNotFound:
		return json.RawMessage(meta.EmptyObject)
	}
	t.Fatalf("GET /%s: %d %s", key, status, body)
	return nil
}

// streamWrite sends a REST write and checks its status; it returns the index a POST or
// PUT answered ("" for a DELETE).
func streamWrite(t *testing.T, server *Server, method, key string, body []byte) string {
	t.Helper()
	status, out := conformanceRequest(t, server, method, "/"+key, body)
	want := http.StatusOK
	if method == http.MethodDelete {
		want = http.StatusNoContent
	}
	if status != want {
		t.Fatalf("%s /%s: %d %s, want %d", method, key, status, out, want)
	}
	if method == http.MethodDelete {
		return ""
	}
	var reply struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(out, &reply); err != nil || reply.Index == "" {
		t.Fatalf("%s /%s answered %s (%v), want {\"index\":...}", method, key, out, err)
	}
	return reply.Index
}

// streamObject decodes the value a single-key subscriber holds.
func streamObject(t *testing.T, state json.RawMessage, what string) meta.Object {
	t.Helper()
	o, err := meta.Decode(state)
	if err != nil {
		t.Fatalf("%s: the subscriber holds %s: %v", what, state, err)
	}
	return o
}

// streamList decodes the value a glob subscriber holds.
func streamList(t *testing.T, state json.RawMessage, what string) []meta.Object {
	t.Helper()
	list, err := meta.DecodeList(state)
	if err != nil {
		t.Fatalf("%s: the subscriber holds %s: %v", what, state, err)
	}
	return list
}

// streamStart starts a server for the helpers that configure it themselves, and
// empties its storage.
func streamStart(t *testing.T, server *Server, helper string) {
	t.Helper()
	if err := server.Start("localhost:0"); err != nil {
		if errors.Is(err, ErrActive) {
			t.Fatalf("%s configures and starts the server itself: pass one that is not started", helper)
		}
		t.Fatalf("%s: start the server: %v", helper, err)
	}
	server.Storage.Clear()
}

// streamCounter reads the integer member name of an entry's data.
func streamCounter(t *testing.T, o meta.Object, name string) int64 {
	t.Helper()
	var data map[string]json.RawMessage
	if err := json.Unmarshal(o.Data, &data); err != nil {
		t.Fatalf("entry %s holds %s: %v", o.Path, o.Data, err)
	}
	n, err := strconv.ParseInt(string(data[name]), 10, 64)
	if err != nil {
		t.Fatalf("entry %s holds %s: member %q is not an integer", o.Path, o.Data, name)
	}
	return n
}

// streamEventBarrier counts the storage events a server's dispatcher has finished with:
// OnStorageEvent runs after the event's broadcast, so once it saw a key every frame of
// that broadcast is queued.
type streamEventBarrier struct {
	seen   chan string
	counts map[string]int
}

// installStreamBarrier chains a barrier before the server's OnStorageEvent; the server
// must not be started yet.
func installStreamBarrier(server *Server) *streamEventBarrier {
	b := &streamEventBarrier{seen: make(chan string, streamFrames), counts: map[string]int{}}
	prev := server.OnStorageEvent
	server.OnStorageEvent = func(ev StorageEvent) {
		select {
		case b.seen <- ev.Key:
		default: // a helper waits for a few events only; never block the dispatcher
		}
		if prev != nil {
			prev(ev)
		}
	}
	return b
}

// wait returns once the broadcast of an event of key has been handled, or fails the
// test after streamWait.
func (b *streamEventBarrier) wait(t *testing.T, key string) {
	t.Helper()
	timer := time.NewTimer(streamWait)
	defer timer.Stop()
	for b.counts[key] == 0 {
		select {
		case k := <-b.seen:
			b.counts[k]++
		case <-timer.C:
			t.Fatalf("the server did not handle the event of %s within %v", key, streamWait)
		}
	}
	b.counts[key]--
}
