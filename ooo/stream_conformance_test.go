package ooo_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/meta"
)

// streamHelpers are the stream helpers, each with whether it starts the server itself.
var streamHelpers = []struct {
	name    string
	starts  bool
	helper  func(*testing.T, *ooo.Server)
	options func(*ooo.Server)
}{
	{name: "Broadcast", helper: ooo.StreamBroadcastTest},
	{name: "ItemGlobBroadcast", helper: ooo.StreamItemGlobBroadcastTest},
	{name: "GlobBroadcast", helper: func(t *testing.T, s *ooo.Server) { ooo.StreamGlobBroadcastTest(t, s, 5) }},
	{name: "GlobBroadcastForcePatch", helper: func(t *testing.T, s *ooo.Server) { ooo.StreamGlobBroadcastTest(t, s, 3) },
		options: func(s *ooo.Server) { s.ForcePatch = true }},
	{name: "GlobBroadcastConcurret", helper: func(t *testing.T, s *ooo.Server) { ooo.StreamGlobBroadcastConcurretTest(t, s, 3) }},
	{name: "BroadcastFilter", starts: true, helper: ooo.StreamBroadcastFilterTest},
	{name: "BroadcastFilterForcePatch", starts: true, helper: ooo.StreamBroadcastFilterTest,
		options: func(s *ooo.Server) { s.ForcePatch = true }},
	{name: "BroadcastForcePatch", starts: true, helper: ooo.StreamBroadcastForcePatchTest},
	{name: "BroadcastNoPatch", starts: true, helper: ooo.StreamBroadcastNoPatchTest},
}

// runStreamHelpers runs every stream helper on a fresh server over a storage from open,
// as their callers would: started for the first four, not started for the others.
func runStreamHelpers(t *testing.T, open func(t *testing.T) ooo.Database, extra func(*ooo.Server)) {
	for _, h := range streamHelpers {
		t.Run(h.name, func(t *testing.T) {
			s := &ooo.Server{Silence: true, Storage: open(t)}
			if extra != nil {
				extra(s)
			}
			if h.options != nil {
				h.options(s)
			}
			defer s.Close(os.Interrupt)
			if !h.starts {
				if err := s.Start("localhost:0"); err != nil {
					t.Fatal(err)
				}
			}
			h.helper(t, s)
		})
	}
}

func TestStreamHelpers_Memory(t *testing.T) {
	runStreamHelpers(t, func(*testing.T) ooo.Database { return &ooo.MemoryStorage{} }, nil)
}

func TestStreamHelpers_Bolt(t *testing.T) {
	runStreamHelpers(t, func(t *testing.T) ooo.Database {
		return &ooo.BoltStorage{Path: filepath.Join(t.TempDir(), "db")}
	}, nil)
}

// TestStreamHelpers_FullRead: the helpers hold on the re-read path too (every pool reads
// and diffs its whole value on each change).
func TestStreamHelpers_FullRead(t *testing.T) {
	runStreamHelpers(t, func(*testing.T) ooo.Database { return &ooo.MemoryStorage{} },
		func(s *ooo.Server) { s.Stream.FullRead = true })
}

// TestStreamHelpers_EventsWithoutObjects: a Database of another kind, whose events do
// not carry the written object and which does not read without BeforeRead, passes too.
func TestStreamHelpers_EventsWithoutObjects(t *testing.T) {
	runStreamHelpers(t, func(*testing.T) ooo.Database {
		return &rewrittenEvents{Database: plainDatabase{&ooo.MemoryStorage{}}, rewrite: func(ev ooo.StorageEvent) (ooo.StorageEvent, bool) {
			ev.Object = nil
			return ev, true
		}}
	}, nil)
}

// Storages and servers that each break one rule a stream helper checks. They are only
// ever run by TestStreamHelpers_FailBroken, in a child process, since a helper that
// catches the fault fails its test.

// rewrittenEvents hands the server its storage's events through rewrite, which may
// change an event or drop it (false).
type rewrittenEvents struct {
	ooo.Database
	rewrite func(ooo.StorageEvent) (ooo.StorageEvent, bool)
}

func (s *rewrittenEvents) Watch() ooo.StorageChan {
	in := s.Database.Watch()
	if in == nil {
		return nil
	}
	out := make(ooo.StorageChan, 64)
	go func() {
		defer close(out)
		for ev := range in {
			if ev, ok := s.rewrite(ev); ok {
				out <- ev
			}
		}
	}()
	return out
}

// staleObjects: set events carry an object whose data is not what was stored.
func staleObjects() ooo.Database {
	return &rewrittenEvents{Database: &ooo.MemoryStorage{}, rewrite: func(ev ooo.StorageEvent) (ooo.StorageEvent, bool) {
		if ev.Object != nil {
			o := *ev.Object
			o.Data = json.RawMessage(`{"stale":true}`)
			ev.Object = &o
		}
		return ev, true
	}}
}

// silentGlobDelete: a delete of a glob emits no event.
func silentGlobDelete() ooo.Database {
	return &rewrittenEvents{Database: &ooo.MemoryStorage{}, rewrite: func(ev ooo.StorageEvent) (ooo.StorageEvent, bool) {
		return ev, !(ev.Operation == "del" && strings.Contains(ev.Key, "*"))
	}}
}

// newestFirst serves lists newest first, to clients and broadcasts alike.
type newestFirst struct{ *ooo.MemoryStorage }

func (s newestFirst) Get(k string) ([]byte, error) {
	if strings.Contains(k, "*") {
		return s.MemoryStorage.GetDescending(k)
	}
	return s.MemoryStorage.Get(k)
}

func (s newestFirst) GetQuiet(k string) ([]byte, error) { return s.Get(k) }

// globLocks lets GetAndLock and SetAndUnlock take a glob.
type globLocks struct{ *ooo.MemoryStorage }

func (s globLocks) GetAndLock(k string) ([]byte, error) {
	if strings.Contains(k, "*") {
		return s.MemoryStorage.Get(k)
	}
	return s.MemoryStorage.GetAndLock(k)
}

func (s globLocks) SetAndUnlock(k string, data json.RawMessage) (string, error) {
	if strings.Contains(k, "*") {
		return k, nil
	}
	return s.MemoryStorage.SetAndUnlock(k, data)
}

// quietReadDisagrees: the read of a broadcast (GetQuiet) sees an entry test/mark that
// Get does not.
type quietReadDisagrees struct{ *ooo.MemoryStorage }

func (s quietReadDisagrees) GetQuiet(k string) ([]byte, error) {
	raw, err := s.MemoryStorage.GetQuiet(k)
	if err != nil || k != "test/*" {
		return raw, err
	}
	list, err := meta.DecodeList(raw)
	if err != nil {
		return nil, err
	}
	list = append(list, meta.Object{Created: 1, Index: "mark", Path: "test/mark", Data: json.RawMessage(`{}`)})
	return json.Marshal(list)
}

// brokenStreams maps a case name to the server it breaks (not started), the helper that
// must catch it, whether that helper starts the server, and a fragment of the failure
// it must report.
var brokenStreams = map[string]struct {
	server func() *ooo.Server
	helper func(*testing.T, *ooo.Server)
	starts bool
	report string
}{
	"stale event objects": {func() *ooo.Server { return &ooo.Server{Storage: staleObjects()} },
		ooo.StreamBroadcastTest, false, "after POST /test: the frames on /test rebuild"},
	"glob delete without an event": {func() *ooo.Server { return &ooo.Server{Storage: silentGlobDelete()} },
		ooo.StreamItemGlobBroadcastTest, false, "DELETE /test/* (after a write of test/2"},
	"lists newest first": {func() *ooo.Server { return &ooo.Server{Storage: newestFirst{&ooo.MemoryStorage{}}} },
		func(t *testing.T, s *ooo.Server) { ooo.StreamGlobBroadcastTest(t, s, 3) }, false, "POST /test/* number 2: the frames on /test/* rebuild"},
	"glob locks accepted": {func() *ooo.Server { return &ooo.Server{Storage: globLocks{&ooo.MemoryStorage{}}} },
		func(t *testing.T, s *ooo.Server) { ooo.StreamGlobBroadcastConcurretTest(t, s, 3) }, false, "GetAndLock(test/*) = <nil>, want ErrGlobLock"},
	"broadcast read disagrees with Get": {func() *ooo.Server { return &ooo.Server{Storage: quietReadDisagrees{&ooo.MemoryStorage{}}} },
		ooo.StreamBroadcastFilterTest, true, "moved the version"},
	"NoPatch beside ForcePatch": {func() *ooo.Server { return &ooo.Server{NoPatch: true} },
		ooo.StreamBroadcastForcePatchTest, true, "ForcePatch is set but the message is a snapshot"},
	"stale event objects, NoPatch": {func() *ooo.Server { return &ooo.Server{Storage: staleObjects()} },
		ooo.StreamBroadcastNoPatchTest, true, "after POST /test/* number 1: the frames on /test/* rebuild"},
}

const brokenStreamEnv = "OOO_TEST_BROKEN_STREAM"

// TestStreamHelpers_BrokenChild runs one broken server through its helper; it is meant
// to fail, and runs only as the child of TestStreamHelpers_FailBroken.
func TestStreamHelpers_BrokenChild(t *testing.T) {
	name := os.Getenv(brokenStreamEnv)
	if name == "" {
		t.Skip("run by TestStreamHelpers_FailBroken")
	}
	c, ok := brokenStreams[name]
	if !ok {
		t.Fatalf("no broken stream %q", name)
	}
	s := c.server()
	s.Silence = true
	defer s.Close(os.Interrupt)
	if !c.starts {
		if err := s.Start("localhost:0"); err != nil {
			t.Fatal(err)
		}
	}
	c.helper(t, s)
}

// TestStreamHelpers_FailBroken: each stream helper fails, with a message naming the
// fault, on a server or storage that breaks a rule it checks.
func TestStreamHelpers_FailBroken(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(brokenStreams)) {
		t.Run(name, func(t *testing.T) {
			expectChildFailure(t, "TestStreamHelpers_BrokenChild", brokenStreamEnv, name, brokenStreams[name].report)
		})
	}
}
