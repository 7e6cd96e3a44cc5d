package ooo_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/internal/jsonraw"
	"github.com/benitogf/pivot/ooo/internal/wstest"
	"github.com/benitogf/pivot/ooo/messages"
)

// replay folds every frame a client received into bytes with jsonraw, the way a client
// that keeps the server's bytes does, and returns the result.
func replay(t *testing.T, frames [][]byte) []byte {
	t.Helper()
	var state []byte
	for i, f := range frames {
		msg, err := messages.DecodeBuffer(f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if msg.Snapshot {
			state = append([]byte(nil), msg.Data...)
			continue
		}
		if state, err = jsonraw.Apply(state, msg.Data); err != nil {
			t.Fatalf("frame %d (%s): %v", i, msg.Data, err)
		}
	}
	return state
}

// mixedWorkload writes adds, replaces, merges, deletes and moves (a new Created) with
// HTML characters, non-ASCII text, huge numbers and large values to list/* and to the
// single key one.
func mixedWorkload(t *testing.T, s *ooo.Server) {
	t.Helper()
	large := strings.Repeat("ç<&>", 30000)
	values := []string{
		`{"h":"<b>Tom & Jerry</b>"}`,
		`{"t":"東京 😀","e":"\u2028"}`,
		`{"n":123456789012345678901234567890,"f":1e400,"z":-0.0}`,
		`{"big":"` + large + `","k":[1,2,{"z":1,"a":2}]}`,
		`"just a string"`,
		`[3,2,1]`,
		`{"b":1,"a":2}`,
	}
	var indexes []string
	for i, v := range values {
		res := expect(t, s, http.MethodPost, "/list/*", v, http.StatusOK, "")
		var idx struct{ Index string }
		if err := json.Unmarshal([]byte(res.body), &idx); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, idx.Index)
		expect(t, s, http.MethodPost, "/one", values[len(values)-1-i], http.StatusOK, "")
	}
	for i, idx := range indexes {
		expect(t, s, http.MethodPut, "/list/"+idx, fmt.Sprintf(`{"i":%d,"h":"<%d>","a":"ü"}`, i, i), http.StatusOK, "")
		if i%2 == 0 {
			expect(t, s, http.MethodPatch, "/list/"+idx, `{"m":"&amp;","i":null}`, http.StatusOK, "")
		}
	}
	expect(t, s, http.MethodPatch, "/one", `{"x":{"deep":"<>"}}`, http.StatusOK, "")
	expect(t, s, http.MethodPost, "/one", `{"x":{"deep":"<>"},"y":[1]}`, http.StatusOK, "")
	expect(t, s, http.MethodPatch, "/one", `{"y":null,"z":"東"}`, http.StatusOK, "")
	expect(t, s, http.MethodDelete, "/list/"+indexes[1], "", http.StatusNoContent, "")
	expect(t, s, http.MethodDelete, "/list/"+indexes[5], "", http.StatusNoContent, "")
	// A write with other stamps moves an entry to another place in the list.
	if _, err := s.Storage.SetWithMeta("list/"+indexes[0], json.RawMessage(`{"moved":true}`), 1, 2); err != nil {
		t.Fatal(err)
	}
	// A glob delete, then the list fills again.
	expect(t, s, http.MethodDelete, "/list/*", "", http.StatusNoContent, "")
	for _, v := range values[:3] {
		expect(t, s, http.MethodPost, "/list/*", v, http.StatusOK, "")
	}
	expect(t, s, http.MethodPost, "/list/*", `{"final":"<end>"}`, http.StatusOK, "")
	expect(t, s, http.MethodPost, "/one", `{"final":"<end>"}`, http.StatusOK, "")
}

// TestWebsocket_ClientStateIsByteEqualToGet applies every message of a mixed workload,
// with every way a pool can follow its changes, and compares the result with a fresh
// GET byte for byte (but for the newline that ends a single object's GET body).
func TestWebsocket_ClientStateIsByteEqualToGet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*ooo.Server)
	}{
		{"from changes", nil},
		{"full re-read", func(s *ooo.Server) { s.Stream.FullRead = true }},
		{"read filter", func(s *ooo.Server) {
			s.ReadFilter("list/*", func(_ string, data json.RawMessage) (json.RawMessage, error) { return data, nil })
			s.ReadFilter("one", func(_ string, data json.RawMessage) (json.RawMessage, error) { return data, nil })
		}},
		{"open filter, force patch", func(s *ooo.Server) { s.OpenFilter("list/*"); s.OpenFilter("one"); s.ForcePatch = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.setup)
			list := subscribe(t, s, "/list/*", nil)
			one := subscribe(t, s, "/one", nil)
			list.WaitFrames(1)
			one.WaitFrames(1)
			mixedWorkload(t, s)
			for _, c := range []struct {
				sub  *wstest.Client
				path string
			}{{list, "/list/*"}, {one, "/one"}} {
				want := expect(t, s, http.MethodGet, c.path, "", http.StatusOK, "").body
				c.sub.WaitState(want)
				frames := c.sub.Frames()
				// A message's data is a JSON value: the newline ending a single object's
				// GET body is not part of it.
				if got := replay(t, frames); string(got) != strings.TrimSuffix(want, "\n") {
					t.Fatalf("%s: client holds\n%.300q\nGET gives\n%.300q", c.path, got, want)
				}
				patches := 0
				for _, m := range c.sub.Messages() {
					if !m.Snapshot {
						patches++
					}
				}
				if patches == 0 && c.path == "/list/*" { // small single values go whole
					t.Fatalf("%s: every one of %d messages was a snapshot", c.path, len(frames))
				}
			}
		})
	}
}

// TestWebsocket_ListFollowsChangesWithoutReading proves the incremental path: after the
// first snapshot, writes to a list reach its subscriber as one operation at the entry's
// index, and the list is never read again (BeforeRead counts the reads).
func TestWebsocket_ListFollowsChangesWithoutReading(t *testing.T) {
	var reads atomic.Int64
	s := start(t, func(s *ooo.Server) {
		s.BeforeRead = func(k string) {
			if k == "big/*" {
				reads.Add(1)
			}
		}
	})
	for i := 0; i < 200; i++ {
		if _, err := s.Storage.SetWithMeta(fmt.Sprintf("big/%03d", i), json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), int64(1000+10*i), 0); err != nil {
			t.Fatal(err)
		}
	}
	sub := subscribe(t, s, "/big/*", nil)
	sub.WaitFrames(1)
	before := reads.Load()
	// Between entries 49 and 50, a replace of entry 10, a delete of entry 100.
	if _, err := s.Storage.SetWithMeta("big/new", json.RawMessage(`{"new":1}`), 1000+10*49+5, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Storage.Set("big/010", json.RawMessage(`{"i":"ten"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Storage.Del("big/100"); err != nil {
		t.Fatal(err)
	}
	// Patches queued together reach the client as one frame: wait for the operations.
	countOps := func() int {
		n := 0
		for _, m := range sub.Messages()[1:] {
			if ops, err := jsonraw.ParsePatch(m.Data); err == nil {
				n += len(ops)
			}
		}
		return n
	}
	poll(t, "four operations", func() bool { return countOps() >= 4 })
	if n := reads.Load() - before; n != 0 {
		t.Fatalf("the list was read %d times by broadcasts, want 0", n)
	}
	want := string(stored(t, s, "big/*"))
	sub.WaitState(want)
	var ops []string
	for _, m := range sub.Messages()[1:] {
		parsed, err := jsonraw.ParsePatch(m.Data)
		if m.Snapshot || err != nil {
			t.Fatalf("message %s is not a patch (%v)", m.Data, err)
		}
		for _, op := range parsed {
			ops = append(ops, op.Kind+" /"+strings.Join(op.Path, "/"))
		}
	}
	if got := strings.Join(ops, ", "); got != "add /50, replace /10/updated, replace /10/data/i, remove /101" {
		t.Fatalf("operations = %s", got)
	}
	if got := replay(t, sub.Frames()); string(got) != want {
		t.Fatalf("client holds %s, want %s", got, want)
	}
}

// TestWebsocket_FollowingChangesUnderLoad: with a one-message queue (every burst
// overflows into a snapshot resync), writers racing joins, every subscriber of the list
// ends with the bytes of a fresh read.
func TestWebsocket_FollowingChangesUnderLoad(t *testing.T) {
	s := start(t, func(s *ooo.Server) { s.Stream.QueueSize = 1 })
	subs := []*wstest.Client{subscribe(t, s, "/load/*", nil)}
	subs[0].WaitFrames(1)
	const writes = 300
	for i := 0; i < writes; i++ {
		k := fmt.Sprintf("load/%02d", i%40)
		switch {
		case i%17 == 0:
			_ = s.Storage.Del(k) // may be missing: ErrNotFound is fine
		default:
			if _, err := s.Storage.Set(k, json.RawMessage(fmt.Sprintf(`{"i":%d,"h":"<%d>"}`, i, i))); err != nil {
				t.Fatal(err)
			}
		}
		if i%100 == 50 {
			subs = append(subs, subscribe(t, s, "/load/*", nil)) // joins while events are in flight
		}
	}
	want := string(stored(t, s, "load/*"))
	for _, sub := range subs {
		sub.WaitState(want)
		if got := replay(t, sub.Frames()); string(got) != want {
			t.Fatalf("client holds %s, want %s", got, want)
		}
	}
}

// A value close to the largest body the server accepts (DefaultMaxBodyBytes; 1 MiB under
// the race detector, see raceEnabled), with HTML
// characters and non-ASCII text, reaches a list subscriber byte for byte as GET gives
// it: added, replaced in place, then removed.
func TestWebsocket_LargestValueIsByteEqualToGet(t *testing.T) {
	s := start(t, nil)
	list := subscribe(t, s, "/list/*", nil)
	list.WaitFrames(1)
	size := ooo.DefaultMaxBodyBytes - 1024
	if raceEnabled {
		size = 1 << 20 // the client's JSON work on 4 MiB under the race detector outlasts the waits
	}
	body := func(tail string) string {
		return `{"v":"` + strings.Repeat("é<&>", size/5) + tail + `"}` // é is two bytes
	}
	res := expect(t, s, http.MethodPost, "/list/*", body("first"), http.StatusOK, "")
	var idx struct{ Index string }
	if err := json.Unmarshal([]byte(res.body), &idx); err != nil {
		t.Fatal(err)
	}
	frames := 1
	check := func(what string) {
		t.Helper()
		frames++ // one write, one frame: waiting on frames spares canonicalising 4 MiB each time
		list.WaitFrames(frames)
		want := expect(t, s, http.MethodGet, "/list/*", "", http.StatusOK, "").body
		if got := replay(t, list.Frames()); string(got) != strings.TrimSuffix(want, "\n") {
			t.Fatalf("%s: the client's %d bytes differ from GET's %d", what, len(got), len(want))
		}
	}
	check("added")
	expect(t, s, http.MethodPut, "/list/"+idx.Index, body("second"), http.StatusOK, "")
	check("replaced")
	expect(t, s, http.MethodDelete, "/list/"+idx.Index, "", http.StatusNoContent, "")
	check("removed")
}
