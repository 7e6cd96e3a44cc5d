package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo"
	oio "github.com/benitogf/pivot/ooo/io"
	"github.com/benitogf/pivot/ooo/messages"
	"github.com/benitogf/pivot/ooo/meta"
)

// dial opens a websocket on path of the library's server with the bearer token, as a
// subscriber that speaks the protocol itself (like the JS client) would.
func dial(t *testing.T, l *library, path string) *websocket.Conn {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: waitFor}
	conn, resp, err := dialer.Dial("ws://"+l.server.Address+path, l.header())
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readFrame reads one message: every message is a binary frame.
func readFrame(t *testing.T, conn *websocket.Conn) []byte {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	kind, frame, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read a frame: %v", err)
	}
	if kind != websocket.BinaryMessage {
		t.Fatalf("frame %s is of type %d, want binary", frame, kind)
	}
	return frame
}

// rawSubscriber holds what a protocol-level client holds: the cache it rebuilt with
// messages.PatchCache and the version of the last message.
type rawSubscriber struct {
	conn    *websocket.Conn
	cache   json.RawMessage
	version string
}

// next reads one message and folds it into the cache.
func (r *rawSubscriber) next(t *testing.T) messages.Message {
	t.Helper()
	frame := readFrame(t, r.conn)
	msg, err := messages.DecodeBuffer(frame)
	if err != nil {
		t.Fatalf("DecodeBuffer(%s): %v", frame, err)
	}
	if r.cache, err = messages.PatchCache(frame, r.cache); err != nil {
		t.Fatalf("PatchCache(%s) on %s: %v", frame, r.cache, err)
	}
	r.version = msg.Version
	return msg
}

// sameAsGet checks that the rebuilt cache holds what a GET of path answers.
func (r *rawSubscriber) sameAsGet(t *testing.T, l *library, path string) []meta.Object {
	t.Helper()
	status, body := request(t, l, true, http.MethodGet, path, "")
	want, err := meta.DecodeList(body)
	if status != http.StatusOK || err != nil {
		t.Fatalf("GET %s: %d %s (%v)", path, status, body, err)
	}
	got, err := meta.DecodeList(r.cache)
	if err != nil {
		t.Fatalf("the rebuilt cache %s: %v", r.cache, err)
	}
	if len(got) != len(want) {
		t.Fatalf("the rebuilt cache holds %d entries, GET %s %d", len(got), path, len(want))
	}
	for i := range got {
		if got[i].Index != want[i].Index || got[i].Created != want[i].Created || got[i].Updated != want[i].Updated || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("entry %d: the rebuilt cache holds %+v, GET %s %+v", i, got[i], path, want[i])
		}
	}
	return got
}

func TestWebsocket_Protocol(t *testing.T) {
	l := startLibrary(t)
	s := l.server

	// The first message is a snapshot of the list; each write then changes the cache
	// the client rebuilds into what a GET answers.
	first := &rawSubscriber{conn: dial(t, l, "/notes/*")}
	if msg := first.next(t); !msg.Snapshot || string(first.cache) != "[]" || msg.Version == "" {
		t.Fatalf("first message: %+v, cache %s; want a snapshot of []", msg, first.cache)
	}
	if _, err := oio.Push(s, "notes/*", Note{Text: "one"}); err != nil {
		t.Fatal(err)
	}
	first.next(t)
	first.sameAsGet(t, l, "/notes/*")
	if err := oio.Set(s, "notes/two", Note{Text: "two"}); err != nil {
		t.Fatal(err)
	}
	first.next(t)
	if got := first.sameAsGet(t, l, "/notes/*"); len(got) != 2 {
		t.Fatalf("the rebuilt cache holds %d notes, want 2", len(got))
	}

	// A client that already holds the current version (?v=) gets no first message: the
	// first thing it reads is the next change, which applies to the cache it kept.
	resumed := &rawSubscriber{conn: dial(t, l, "/notes/*?v="+first.version), cache: first.cache}
	if err := oio.Set(s, "notes/two", Note{Text: "two, again"}); err != nil {
		t.Fatal(err)
	}
	resumed.next(t)
	got := resumed.sameAsGet(t, l, "/notes/*")
	var note Note
	if err := json.Unmarshal(got[1].Data, &note); err != nil || note.Text != "two, again" {
		t.Fatalf("the resumed client holds %s, want the change", resumed.cache)
	}

	// OnUnsubscribe runs once a connection ends.
	resumed.conn.Close()
	eventually(t, "OnUnsubscribe(notes/*)", func() bool { return l.unsubbed.has("notes/*") })

	// OnSubscribe refuses an upgrade with an error; Audit refuses one without the token.
	dialer := websocket.Dialer{HandshakeTimeout: waitFor}
	for _, c := range []struct {
		path   string
		header http.Header
		status int
	}{{"/" + privateNote, l.header(), http.StatusBadRequest}, {"/notes/*", nil, http.StatusUnauthorized}} {
		conn, resp, err := dialer.Dial("ws://"+s.Address+c.path, c.header)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s was accepted", c.path)
		}
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != c.status {
			t.Fatalf("dial %s: %v (%v), want a refused handshake with %d", c.path, err, resp, c.status)
		}
		resp.Body.Close()
	}
}

func TestWebsocket_Clock(t *testing.T) {
	l := startLibrary(t, func(s *ooo.Server) { s.Tick = 20 * time.Millisecond })
	before, err := strconv.ParseInt(ooo.Time(), 10, 64)
	if err != nil {
		t.Fatalf("ooo.Time() is not decimal nanoseconds: %v", err)
	}

	// GET / with an upgrade is the clock: the time at once, then every Tick, as bare
	// decimal nanoseconds.
	conn := dial(t, l, "/")
	last := before - 1
	for i := range 3 {
		frame := readFrame(t, conn)
		now, err := strconv.ParseInt(string(frame), 10, 64)
		if err != nil || now <= last {
			t.Fatalf("clock message %d = %q (%v), want decimal nanoseconds after %d", i, frame, err, last)
		}
		last = now
	}
}
