package ooo_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/internal/wstest"
	"github.com/benitogf/pivot/ooo/meta"
)

// expected returns what a subscriber of k must end up holding: the storage's value,
// or the empty object for a missing key.
func expected(tb testing.TB, s *ooo.Server, k string) string {
	tb.Helper()
	data, err := s.Storage.Get(k)
	if errors.Is(err, ooo.ErrNotFound) {
		return meta.EmptyObject
	}
	if err != nil {
		tb.Fatalf("storage get %s: %v", k, err)
	}
	return string(data)
}

func TestWebsocket_StateFollowsEveryWrite(t *testing.T) {
	s := start(t, nil)
	long := strings.Repeat("x", 200) // big enough values that patches beat snapshots
	expect(t, s, "POST", "/items/seed", `{"text":"`+long+`"}`, http.StatusOK, "")
	paths := []string{"items/*", "items/fixed", "doc", "*"}
	subs := map[string]*wstest.Client{}
	for _, p := range paths {
		subs[p] = subscribe(t, s, "/"+p, nil)
		subs[p].WaitState(expected(t, s, p))
	}
	steps := []struct{ method, path, body string }{
		{"POST", "/items/*", `{"n":1,"text":"` + long + `"}`},
		{"POST", "/items/*", `{"n":2,"text":"` + long + `"}`},
		{"PUT", "/items/fixed", `{"n":3,"list":[1,2,3],"text":"` + long + `"}`},
		{"PATCH", "/items/fixed", `{"list":[1],"extra":{"deep":true}}`},
		{"POST", "/doc", `{"title":"a","text":"` + long + `"}`},
		{"PATCH", "/doc", `{"title":"b"}`},
		{"PATCH", "/items/*", `{"n":9}`},
		{"DELETE", "/items/seed", ``},
		{"DELETE", "/doc", ``},
		{"POST", "/doc", `[1,2,3]`},
		{"DELETE", "/items/*", ``},
	}
	for _, st := range steps {
		res := do(t, s, st.method, st.path, st.body, nil)
		if res.status >= 300 {
			t.Fatalf("%s %s = %d %s", st.method, st.path, res.status, res.body)
		}
		for _, p := range paths {
			subs[p].WaitState(expected(t, s, p))
		}
	}
	for p, sub := range subs {
		msgs := sub.Messages()
		if !msgs[0].Snapshot {
			t.Fatalf("%s: first message is a patch", p)
		}
		for _, f := range sub.Frames() {
			if !strings.HasPrefix(string(f), `{"snapshot":`) || !strings.Contains(string(f), `,"version":"`) {
				t.Fatalf("%s: frame %s is not {snapshot,version,data}", p, f)
			}
		}
		for i, m := range msgs {
			if !m.Snapshot && strings.TrimSpace(string(m.Data)) == "[]" {
				t.Fatalf("%s: message %d is an empty patch", p, i)
			}
		}
	}
	patches := 0
	for _, m := range subs["items/*"].Messages() {
		if !m.Snapshot {
			patches++
		}
	}
	if patches == 0 {
		t.Fatal("the list subscriber never got a patch")
	}
}

func TestWebsocket_MissingKeySnapshot(t *testing.T) {
	s := start(t, nil)
	sub := subscribe(t, s, "/nothing", nil)
	sub.WaitFrames(1)
	f := string(sub.Frames()[0])
	v := sub.Messages()[0].Version
	want := `{"snapshot":true,"version":"` + v + `","data":` + meta.EmptyObject + `}`
	if f != want {
		t.Fatalf("frame %s, want %s", f, want)
	}
	if _, err := strconv.ParseInt(v, 16, 64); err != nil {
		t.Fatalf("version %q is not hex", v)
	}
	list := subscribe(t, s, "/nothing/*", nil)
	list.WaitState(`[]`)
}

func TestWebsocket_NoMessageWhenPoolValueUnchanged(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.ReadFilter("f/*", func(string, json.RawMessage) (json.RawMessage, error) {
			return json.RawMessage(`{"constant":true}`), nil
		})
	})
	f := subscribe(t, s, "/f/*", nil)
	f.WaitFrames(1)
	marker := subscribe(t, s, "/marker", nil)
	marker.WaitFrames(1)
	for i := 0; i < 5; i++ {
		expect(t, s, "POST", "/f/*", `1`, http.StatusOK, "")
	}
	expect(t, s, "POST", "/marker", `1`, http.StatusOK, "")
	marker.WaitFrames(2) // events are dispatched in order: the f/* broadcasts are done
	if n := len(f.Frames()); n != 1 {
		t.Fatalf("f/* got %d frames, want 1: unchanged values must not be sent", n)
	}
}

func TestWebsocket_ResumeWithVersion(t *testing.T) {
	s := start(t, func(s *ooo.Server) { s.ForcePatch = true })
	expect(t, s, "POST", "/r", `{"n":1}`, http.StatusOK, "")
	first := subscribe(t, s, "/r", nil)
	first.WaitFrames(1)
	version := first.Messages()[0].Version
	held := first.Messages()[0].Data
	first.Close()
	poll(t, "unsubscribe", func() bool { return s.Stream.Connections("r") == 0 })

	back := subscribe(t, s, "/r?v="+version, nil)
	poll(t, "resubscribe", func() bool { return s.Stream.Connections("r") == 1 })
	back.SetState(held) // what the client kept from its last connection
	expect(t, s, "PATCH", "/r", `{"n":2}`, http.StatusOK, "")
	back.WaitState(expected(t, s, "r"))
	if msgs := back.Messages(); len(msgs) != 1 || msgs[0].Snapshot {
		t.Fatalf("resumed client got %d messages (first snapshot=%v), want one patch", len(msgs), msgs[0].Snapshot)
	}
	stale := subscribe(t, s, "/r?v=1", nil)
	stale.WaitState(expected(t, s, "r"))
	if !stale.Messages()[0].Snapshot {
		t.Fatal("a stale version did not get a snapshot")
	}
}

func TestWebsocket_ReadFilterErrorClosesConnection(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.ReadFilter("bad", func(string, json.RawMessage) (json.RawMessage, error) {
			return nil, errors.New("not for you")
		})
	})
	sub := subscribe(t, s, "/bad", nil)
	err := sub.WaitClosed()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr || !strings.Contains(ce.Text, "not for you") {
		t.Fatalf("close = %v, want 1011 with the filter error", err)
	}
	poll(t, "the pool to forget the connection", func() bool { return s.Stream.Connections("bad") == 0 })
}

func TestWebsocket_SubscribeHooks(t *testing.T) {
	var mu sync.Mutex
	var log []string
	s := start(t, func(s *ooo.Server) {
		s.OnSubscribe = func(k string) error {
			if k == "refused" {
				return errors.New("no")
			}
			mu.Lock()
			log = append(log, "sub:"+k)
			mu.Unlock()
			return nil
		}
		s.OnUnsubscribe = func(k string) {
			mu.Lock()
			log = append(log, "unsub:"+k)
			mu.Unlock()
		}
	})
	if _, res, err := trySubscribe(t, s, "/refused", nil); err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("refused subscription: %v", err)
	}
	sub := subscribe(t, s, "/ok", nil)
	sub.WaitFrames(1)
	clock := subscribe(t, s, "/", nil)
	clock.WaitFrames(1)
	sub.Close()
	clock.Close()
	poll(t, "OnUnsubscribe", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(log) == 4
	})
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(log, ",")
	if !strings.Contains(got, "sub:ok") || !strings.Contains(got, "sub:,") || !strings.Contains(got, "unsub:ok") || !strings.Contains(got, "unsub:") {
		t.Fatalf("hooks saw %s", got)
	}
}

func TestWebsocket_ClockRefusedByOnSubscribe(t *testing.T) {
	s := start(t, func(s *ooo.Server) {
		s.OnSubscribe = func(k string) error {
			if k == "" {
				return errors.New("no clock for you")
			}
			return nil
		}
	})
	_, res, err := trySubscribe(t, s, "/", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("clock socket refused by OnSubscribe: err %v, response %v; want a 400 handshake", err, res)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "no clock for you") {
		t.Fatalf("refusal body %q, want the OnSubscribe error", body)
	}
	if n := s.Stream.Connections(""); n != 0 {
		t.Fatalf("%d clock sockets after a refusal, want 0", n)
	}
	sub := subscribe(t, s, "/a", nil) // only the clock is refused
	sub.WaitFrames(1)
}

func TestWebsocket_Clock(t *testing.T) {
	s := start(t, func(s *ooo.Server) { s.Tick = 10 * time.Millisecond })
	before := time.Now().UnixNano()
	c := subscribe(t, s, "/", nil)
	c.WaitFrames(3)
	var last int64
	for _, f := range c.Frames() {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			t.Fatalf("clock frame %q is not decimal nanoseconds", f)
		}
		if n < before-int64(time.Second) || n < last {
			t.Fatalf("clock went from %d to %d (start %d)", last, n, before)
		}
		last = n
	}
	if _, err := strconv.ParseInt(ooo.Time(), 10, 64); err != nil {
		t.Fatalf("Time() = %q", ooo.Time())
	}
}

func TestWebsocket_NoBroadcastKeysAndEventOrder(t *testing.T) {
	var mu sync.Mutex
	var events []string
	s := start(t, func(s *ooo.Server) {
		s.NoBroadcastKeys = []string{"quiet/*"}
		s.OnStorageEvent = func(ev ooo.StorageEvent) {
			mu.Lock()
			events = append(events, ev.Operation+":"+ev.Key)
			mu.Unlock()
		}
	})
	want := []string{}
	for i := 0; i < 30; i++ {
		k := "loud/" + strconv.Itoa(i)
		expect(t, s, "POST", "/"+k, `1`, http.StatusOK, "")
		expect(t, s, "POST", "/quiet/"+strconv.Itoa(i), `1`, http.StatusOK, "")
		want = append(want, "set:"+k)
	}
	expect(t, s, "DELETE", "/loud/*", "", http.StatusNoContent, "")
	poll(t, "events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) >= len(want)+1
	})
	mu.Lock()
	got := append([]string(nil), events...)
	mu.Unlock()
	for i, w := range want {
		if got[i] != w {
			t.Fatalf("event %d = %s, want %s (events keep write order)", i, got[i], w)
		}
	}
	for _, e := range got[len(want):] {
		if !strings.HasPrefix(e, "del:loud/") {
			t.Fatalf("unexpected event %s", e)
		}
	}
	// A quiet write reaches a subscriber when it joins, and the others with it.
	q1 := subscribe(t, s, "/quiet/*", nil)
	q1.WaitState(expected(t, s, "quiet/*"))
	expect(t, s, "POST", "/quiet/new", `2`, http.StatusOK, "")
	q2 := subscribe(t, s, "/quiet/*", nil)
	q2.WaitState(expected(t, s, "quiet/*"))
	q1.WaitState(expected(t, s, "quiet/*"))
}

func TestWebsocket_BeforeReadReachesStorage(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	s := start(t, func(s *ooo.Server) {
		s.BeforeRead = func(k string) {
			mu.Lock()
			seen[k]++
			mu.Unlock()
		}
	})
	expect(t, s, "POST", "/br", `1`, http.StatusOK, "")
	expect(t, s, "GET", "/br", "", http.StatusOK, "")
	sub := subscribe(t, s, "/br/*", nil)
	sub.WaitFrames(1)
	mu.Lock()
	defer mu.Unlock()
	if seen["br"] == 0 || seen["br/*"] == 0 {
		t.Fatalf("BeforeRead saw %v", seen)
	}
}
