package stream_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo/internal/wstest"
	"github.com/benitogf/pivot/ooo/stream"
)

// filler makes values big enough for a patch to be smaller than a snapshot.
const filler = "0123456789012345678901234567890123456789012345678901234567890123456789"

// values is a tiny key/value source standing in for a storage.
type values struct {
	mu   sync.Mutex
	data map[string]string
	fail map[string]error
}

func newValues() *values {
	return &values{data: map[string]string{}, fail: map[string]error{}}
}

func (v *values) set(k, val string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.data[k] = val
}

func (v *values) get(k string) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.fail[k]; err != nil {
		return nil, err
	}
	val, ok := v.data[k]
	if !ok {
		return []byte(`{}`), nil
	}
	return []byte(val), nil
}

// serve starts a real HTTP server on 127.0.0.1 whose every path subscribes to the key
// after the leading "/" ("/" alone is the clock).
func serve(tb testing.TB, s *stream.Stream, v *values) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := strings.TrimPrefix(r.URL.Path, "/")
		if k == "" {
			_ = s.ServeClock(w, r, func() []byte { return []byte("1") })
			return
		}
		_ = s.Serve(w, r, k, v.get)
	}))
	tb.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dial subscribes to url, or fails the test.
func dial(tb testing.TB, url string, header http.Header) *wstest.Client {
	tb.Helper()
	return wstest.Dial(tb, url, header)
}

func waitConnections(tb testing.TB, s *stream.Stream, k string, n int) {
	tb.Helper()
	wstest.Poll(tb, fmt.Sprintf("%d connections on %q", n, k), func() bool { return s.Connections(k) == n })
}

func TestStream_SnapshotThenPatches(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	v.set("a", `{"n":0,"list":[1,2,3],"text":"`+filler+`"}`)
	url := serve(t, s, v)
	sub := dial(t, url+"/a", nil)
	sub.WaitState(`{"n":0,"list":[1,2,3],"text":"` + filler + `"}`)
	if msgs := sub.Messages(); !msgs[0].Snapshot {
		t.Fatalf("first message is not a snapshot: %+v", msgs[0])
	}
	states := []string{
		`{"n":1,"list":[1,2,3],"text":"` + filler + `"}`,
		`{"n":1,"list":[1],"text":"` + filler + `"}`,
		`{"n":2,"list":[1,5,6,7],"new":{"deep":true},"text":"` + filler + `"}`,
		`{"n":2}`,
	}
	for _, st := range states {
		v.set("a", st)
		s.Broadcast("a", stream.BroadcastOpt{Get: v.get})
		sub.WaitState(st)
	}
	msgs := sub.Messages()
	if len(msgs) != 1+len(states) {
		t.Fatalf("got %d messages, want %d", len(msgs), 1+len(states))
	}
	patches := 0
	for i, m := range msgs[1:] {
		if !m.Snapshot {
			patches++
		}
		if m.Version <= msgs[i].Version && len(m.Version) == len(msgs[i].Version) {
			t.Fatalf("version did not move: %s then %s", msgs[i].Version, m.Version)
		}
	}
	if patches == 0 {
		t.Fatal("no patch was sent; every change went as a snapshot")
	}
}

func TestStream_NothingSentWhenUnchanged(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	v.set("a", `{"n":0}`)
	url := serve(t, s, v)
	sub := dial(t, url+"/a", nil)
	sub.WaitFrames(1)
	s.Broadcast("a", stream.BroadcastOpt{Get: v.get}) // unchanged: nothing goes out
	v.set("a", `{"n":1}`)
	s.Broadcast("a", stream.BroadcastOpt{Get: v.get})
	sub.WaitState(`{"n":1}`)
	if msgs := sub.Messages(); len(msgs) != 2 {
		t.Fatalf("got %d messages (%v), want 2: the unchanged broadcast must send nothing", len(msgs), msgs)
	}
}

func TestStream_BroadcastReachesMatchingPools(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	v.set("t/*", `[]`)
	v.set("t/1", `{}`)
	v.set("u/1", `{}`)
	url := serve(t, s, v)
	list := dial(t, url+"/t/*", nil)
	one := dial(t, url+"/t/1", nil)
	other := dial(t, url+"/u/1", nil)
	list.WaitFrames(1)
	one.WaitFrames(1)
	other.WaitFrames(1)
	v.set("t/*", `[{"x":1}]`)
	v.set("t/1", `{"x":1}`)
	v.set("u/1", `{"x":1}`)
	s.Broadcast("t/1", stream.BroadcastOpt{Get: v.get})
	list.WaitState(`[{"x":1}]`)
	one.WaitState(`{"x":1}`)
	// u/1 is not concerned: a later broadcast to it is the first thing it gets.
	s.Broadcast("u/1", stream.BroadcastOpt{Get: v.get})
	other.WaitState(`{"x":1}`)
	if n := len(other.Messages()); n != 2 {
		t.Fatalf("u/1 got %d messages, want 2", n)
	}
}

func TestStream_ResumeWithVersion(t *testing.T) {
	s := &stream.Stream{ForcePatch: true}
	v := newValues()
	v.set("a", `{"n":1}`)
	url := serve(t, s, v)
	first := dial(t, url+"/a", nil)
	first.WaitFrames(1)
	version := first.Messages()[0].Version

	// Same version while the pool is live: no first message.
	resumed := dial(t, url+"/a?v="+version, nil)
	resumed.SetState([]byte(`{"n":1}`)) // what the client held under that version
	waitConnections(t, s, "a", 2)
	v.set("a", `{"n":2}`)
	s.Broadcast("a", stream.BroadcastOpt{Get: v.get})
	resumed.WaitState(`{"n":2}`)
	if msgs := resumed.Messages(); len(msgs) != 1 || msgs[0].Snapshot {
		t.Fatalf("resumed client got %+v, want exactly one patch", msgs)
	}

	// A stale version gets a snapshot.
	stale := dial(t, url+"/a?v="+version, nil)
	stale.WaitState(`{"n":2}`)
	if msgs := stale.Messages(); !msgs[0].Snapshot {
		t.Fatalf("stale client got %+v first, want a snapshot", msgs[0])
	}

	// After every client left, the idle pool still remembers its version.
	current := stale.Messages()[0].Version
	first.Close()
	resumed.Close()
	stale.Close()
	waitConnections(t, s, "a", 0)
	back := dial(t, url+"/a?v="+current, nil)
	back.SetState([]byte(`{"n":2}`))
	waitConnections(t, s, "a", 1)
	v.set("a", `{"n":3}`)
	s.Broadcast("a", stream.BroadcastOpt{Get: v.get})
	back.WaitState(`{"n":3}`)
	if msgs := back.Messages(); len(msgs) != 1 || msgs[0].Snapshot {
		t.Fatalf("client back on an idle pool got %+v, want exactly one patch", msgs)
	}
}

func TestStream_IdlePoolDriftSendsSnapshot(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	v.set("a", `{"n":1}`)
	url := serve(t, s, v)
	first := dial(t, url+"/a", nil)
	first.WaitFrames(1)
	version := first.Messages()[0].Version
	first.Close()
	waitConnections(t, s, "a", 0)
	v.set("a", `{"n":2}`) // changes while nobody listens
	s.Broadcast("a", stream.BroadcastOpt{Get: v.get})
	back := dial(t, url+"/a?v="+version, nil)
	back.WaitState(`{"n":2}`)
	if msgs := back.Messages(); !msgs[0].Snapshot || msgs[0].Version == version {
		t.Fatalf("got %+v, want a snapshot with a new version", msgs[0])
	}
}

func TestStream_JoinCatchesUpMembersOnDrift(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	v.set("a", `{"n":1}`)
	url := serve(t, s, v)
	first := dial(t, url+"/a", nil)
	first.WaitFrames(1)
	v.set("a", `{"n":2}`) // a change no broadcast announced
	second := dial(t, url+"/a", nil)
	second.WaitState(`{"n":2}`)
	first.WaitState(`{"n":2}`)
}

func TestStream_FirstReadErrorClosesWithReason(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	v.fail["bad"] = errors.New("filter says no")
	url := serve(t, s, v)
	sub := dial(t, url+"/bad", nil)
	err := sub.WaitClosed()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr || !strings.Contains(ce.Text, "filter says no") {
		t.Fatalf("close = %v, want code 1011 with the read error", err)
	}
	waitConnections(t, s, "bad", 0)
}

func TestStream_OnSubscribeRefuses(t *testing.T) {
	var unsub sync.WaitGroup
	s := &stream.Stream{
		OnSubscribe: func(k string) error {
			if k == "no" {
				return errors.New("nope")
			}
			return nil
		},
		OnUnsubscribe: func(string) { unsub.Done() },
	}
	url := serve(t, s, newValues())
	_, res, err := wstest.TryDial(t, url+"/no", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("dial refused key: err %v, want a 400 handshake", err)
	}
	unsub.Add(1)
	ok := dial(t, url+"/yes", nil)
	ok.WaitFrames(1)
	ok.Close()
	unsub.Wait() // OnUnsubscribe ran for the closed connection
}

func TestStream_BearerSubprotocol(t *testing.T) {
	s := &stream.Stream{}
	url := serve(t, s, newValues())
	sub := dial(t, url+"/a", http.Header{"Sec-WebSocket-Protocol": {"bearer, token123"}})
	if got := sub.WS.Subprotocol(); got != "bearer" {
		t.Fatalf("subprotocol = %q, want bearer", got)
	}
}

func TestStream_CloseDisconnectsClients(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	url := serve(t, s, v)
	sub := dial(t, url+"/a", nil)
	clock := dial(t, url+"/", nil)
	sub.WaitFrames(1)
	clock.WaitFrames(1)
	s.Close()
	for _, c := range []*wstest.Client{sub, clock} {
		err := c.WaitClosed()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("close = %v, want a going-away close frame", err)
		}
	}
	if _, _, err := wstest.TryDial(t, url+"/a", nil); err == nil {
		t.Fatal("a closed stream accepted a subscription")
	}
	s.Open()
	again := dial(t, url+"/a", nil)
	again.WaitFrames(1)
}

func TestStream_Clock(t *testing.T) {
	s := &stream.Stream{}
	url := serve(t, s, newValues())
	c := dial(t, url+"/", nil)
	c.WaitFrames(1)
	waitConnections(t, s, "", 1)
	s.BroadcastClock([]byte("1795626763539324221"))
	c.WaitFrames(2)
	msgs := c.Messages()
	if string(msgs[0].Data) != "1" || string(msgs[1].Data) != "1795626763539324221" {
		t.Fatalf("clock frames = %q, %q", msgs[0].Data, msgs[1].Data)
	}
}

func TestStream_ConcurrentBroadcastsConverge(t *testing.T) {
	s := &stream.Stream{}
	v := newValues()
	v.set("l/*", `[]`)
	url := serve(t, s, v)
	const subscribers, writers, writes = 8, 4, 50
	subs := make([]*wstest.Client, subscribers)
	var joined sync.WaitGroup
	for i := range subs {
		joined.Add(1)
		go func(i int) {
			defer joined.Done()
			subs[i] = dial(t, url+"/l/*", nil)
		}(i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var items []string
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				mu.Lock()
				items = append(items, fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				v.set("l/*", "["+strings.Join(items, ",")+"]")
				mu.Unlock()
				s.Broadcast(fmt.Sprintf("l/%d", i), stream.BroadcastOpt{Get: v.get})
			}
		}(w)
	}
	joined.Wait()
	wg.Wait()
	final, _ := v.get("l/*")
	for _, sub := range subs {
		sub.WaitState(string(final))
	}
}

func TestStream_NoPatchAndForcePatch(t *testing.T) {
	for _, tc := range []struct {
		name         string
		s            *stream.Stream
		wantSnapshot bool
	}{
		{"no patch", &stream.Stream{NoPatch: true}, true},
		{"force patch", &stream.Stream{ForcePatch: true}, false},
		{"both: no patch wins", &stream.Stream{NoPatch: true, ForcePatch: true}, true},
		{"default: small value goes whole", &stream.Stream{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newValues()
			v.set("a", `{"n":1}`)
			url := serve(t, tc.s, v)
			sub := dial(t, url+"/a", nil)
			sub.WaitFrames(1)
			v.set("a", `{"n":2}`)
			tc.s.Broadcast("a", stream.BroadcastOpt{Get: v.get})
			sub.WaitState(`{"n":2}`)
			if got := sub.Messages()[1].Snapshot; got != tc.wantSnapshot {
				t.Fatalf("snapshot = %v, want %v", got, tc.wantSnapshot)
			}
		})
	}
}

func TestStream_TinyQueueStillConverges(t *testing.T) {
	s := &stream.Stream{QueueSize: 1}
	v := newValues()
	v.set("a", `{"n":0}`)
	url := serve(t, s, v)
	subs := []*wstest.Client{dial(t, url+"/a", nil), dial(t, url+"/a", nil)}
	waitConnections(t, s, "a", 2)
	for i := 1; i <= 500; i++ {
		v.set("a", fmt.Sprintf(`{"n":%d,"text":"%s"}`, i, filler))
		s.Broadcast("a", stream.BroadcastOpt{Get: v.get})
	}
	for _, sub := range subs {
		sub.WaitState(`{"n":500,"text":"` + filler + `"}`)
	}
}

func TestStream_BroadcastCallback(t *testing.T) {
	s := &stream.Stream{}
	called := false
	s.Broadcast("x", stream.BroadcastOpt{Get: newValues().get, Callback: func() { called = true }})
	if !called {
		t.Fatal("callback did not run")
	}
}
