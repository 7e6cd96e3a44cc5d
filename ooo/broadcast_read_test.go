package ooo_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/benitogf/pivot/ooo"
)

// readCounter counts BeforeRead calls per key.
type readCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *readCounter) hook(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

func (c *readCounter) count(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// wrapped marks what a read filter returned, so a test can tell a filtered read.
func wrapped(_ string, data json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{"filtered":` + string(data) + `}`), nil
}

// plainDatabase hides every method but Database's, GetQuiet included: a storage of
// another kind, read with Get.
type plainDatabase struct{ ooo.Database }

// broadcastPath is one way a pool follows writes, and what the test writes and reads.
type broadcastPath struct {
	name  string
	setup func(*ooo.Server)
	sub   string // the subscription key
	keys  []string
}

var broadcastPaths = []broadcastPath{
	{name: "following changes", sub: "fc/*", keys: []string{"fc/a", "fc/b"}},
	{name: "read filter on a glob", sub: "rf/*", keys: []string{"rf/a", "rf/b"},
		setup: func(s *ooo.Server) { s.ReadFilter("rf/*", wrapped) }},
	{name: "read filter on a key", sub: "rk", keys: []string{"rk"},
		setup: func(s *ooo.Server) { s.ReadFilter("rk", wrapped) }},
	{name: "FullRead", sub: "fr/*", keys: []string{"fr/a", "fr/b"},
		setup: func(s *ooo.Server) { s.Stream.FullRead = true }},
	{name: "NoBroadcastKeys overlap", sub: "nb/*", keys: []string{"nb/a", "nb/b"},
		setup: func(s *ooo.Server) { s.NoBroadcastKeys = []string{"nb/quiet"} }},
}

// TestBroadcast_NoBeforeRead: a client's GET and a websocket join call BeforeRead once
// each; the broadcasts of writes never do, on every path a pool can take (following
// changes, and the re-reads of a read filter, FullRead and a NoBroadcastKeys overlap),
// on both storages. The subscriber still ends with exactly what a GET answers.
func TestBroadcast_NoBeforeRead(t *testing.T) {
	storages := map[string]func(t *testing.T) ooo.Database{
		"memory": func(*testing.T) ooo.Database { return &ooo.MemoryStorage{} },
		"bolt":   func(t *testing.T) ooo.Database { return &ooo.BoltStorage{Path: filepath.Join(t.TempDir(), "db")} },
	}
	for dbName, open := range storages {
		for _, p := range broadcastPaths {
			t.Run(dbName+"/"+p.name, func(t *testing.T) {
				reads := &readCounter{}
				s := start(t, func(s *ooo.Server) {
					s.Storage = open(t)
					s.BeforeRead = reads.hook
					if p.setup != nil {
						p.setup(s)
					}
				})
				sub := subscribe(t, s, "/"+p.sub, nil)
				sub.WaitFrames(1)
				if n := reads.count(p.sub); n != 1 {
					t.Fatalf("a join called BeforeRead(%s) %d times, want 1", p.sub, n)
				}
				writes := 0
				for i, k := range p.keys {
					expect(t, s, http.MethodPost, "/"+k, `{"n":1}`, http.StatusOK, "")
					expect(t, s, http.MethodPut, "/"+k, `{"n":2,"i":`+strconv.Itoa(i)+`}`, http.StatusOK, "")
					writes += 2
				}
				if len(p.keys) > 1 { // a list loses an entry; a single key stays readable
					expect(t, s, http.MethodDelete, "/"+p.keys[0], "", http.StatusNoContent, "")
					writes++
				}
				// The GET a client makes: one more BeforeRead of the subscription key.
				want := expect(t, s, http.MethodGet, "/"+p.sub, "", http.StatusOK, "").body
				sub.WaitState(want)
				if n := reads.count(p.sub); n != 2 {
					t.Fatalf("after %d broadcast writes, BeforeRead(%s) ran %d times, want 2 (the join and the GET)", writes, p.sub, n)
				}
				second := subscribe(t, s, "/"+p.sub, nil)
				second.WaitState(want)
				if n := reads.count(p.sub); n != 3 {
					t.Fatalf("a second join: BeforeRead(%s) ran %d times, want 3", p.sub, n)
				}
			})
		}
	}
}

// TestBroadcast_BeforeReadFallback: a Database that does not implement
// storage.QuietReader is re-read for broadcasts with Get, so its hook runs once per
// broadcast that re-reads (here: three writes under a read filter).
func TestBroadcast_BeforeReadFallback(t *testing.T) {
	reads := &readCounter{}
	s := start(t, func(s *ooo.Server) {
		s.Storage = plainDatabase{&ooo.MemoryStorage{}}
		s.BeforeRead = reads.hook
		s.ReadFilter("pl/*", wrapped)
	})
	sub := subscribe(t, s, "/pl/*", nil)
	sub.WaitFrames(1)
	expect(t, s, http.MethodPost, "/pl/a", `1`, http.StatusOK, "")
	expect(t, s, http.MethodPost, "/pl/b", `2`, http.StatusOK, "")
	expect(t, s, http.MethodDelete, "/pl/a", "", http.StatusNoContent, "")
	want := expect(t, s, http.MethodGet, "/pl/*", "", http.StatusOK, "").body
	sub.WaitState(want)
	if n := reads.count("pl/*"); n != 1+3+1 {
		t.Fatalf("BeforeRead(pl/*) ran %d times, want 5 (join, three broadcasts, GET)", n)
	}
}
