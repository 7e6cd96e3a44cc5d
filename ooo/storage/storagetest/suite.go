// Package storagetest is the conformance suite every ooo storage passes, so that the
// memory and the bolt storages cannot drift apart on not-found, ordering, events,
// tombstones, the change feed or replication.
//
// A storage's test file calls Run with a function that makes a Harness per subtest:
//
//	func TestMemoryStorage(t *testing.T) {
//		storagetest.Run(t, func(t testing.TB) storagetest.Harness {
//			return storagetest.Harness{Open: func(cfg storagetest.Config) storagetest.Storage {
//				return &storage.MemoryStorage{HLC: cfg.Clock, TombstoneRetention: cfg.TombstoneRetention}
//			}}
//		})
//	}
package storagetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// Storage is what the suite tests: an ooo Database that can be replicated and whose
// tombstones can be collected on demand.
type Storage interface {
	storage.Database
	storage.Replica
	// CollectTombstones forgets the tombstones older than the retention, measured from
	// now, and returns how many it collected.
	CollectTombstones(now int64) int
}

// Config configures a storage made by a Harness.
type Config struct {
	// Clock stamps the storage's writes; nil lets the storage make its own.
	Clock *clock.Clock
	// TombstoneRetention is passed on to the storage (0 means its default).
	TombstoneRetention time.Duration
}

// Harness makes the storages of one subtest, all over the same data set.
type Harness struct {
	// Open returns a new, unstarted storage over the harness's data set.
	Open func(cfg Config) Storage
	// Persistent is true when a storage opened after an earlier one was closed sees
	// everything the earlier one held (a process restart). The restart tests run only
	// for persistent storages; Close and Start on one value are tested for all.
	Persistent bool
}

// Run runs the whole suite. newHarness is called once per subtest, with the subtest's
// testing.TB (use its TempDir for files).
func Run(t *testing.T, newHarness func(t testing.TB) Harness) {
	groups := []struct {
		name string
		run  func(t *testing.T, newHarness func(t testing.TB) Harness)
	}{
		{"Lifecycle", runLifecycle},
		{"CRUD", runCRUD},
		{"Lists", runLists},
		{"Patch", runPatch},
		{"SetWithMeta", runSetWithMeta},
		{"Locks", runLocks},
		{"BeforeRead", runBeforeRead},
		{"Events", runEvents},
		{"Tombstones", runTombstones},
		{"Changes", runChanges},
		{"Epoch", runEpoch},
		{"Cursors", runCursors},
		{"Apply", runApply},
		{"ApplyRace", runApplyRace},
		{"Restart", runRestart},
		{"DataLimit", runDataLimit},
		{"Identity", runIdentity},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, newHarness) })
	}
}

// eventWait bounds every wait for an event; events normally arrive in microseconds.
const eventWait = 10 * time.Second

// start opens and starts a storage of h and closes it when the test ends.
func start(t testing.TB, h Harness, cfg Config, opts storage.Options) Storage {
	t.Helper()
	s := h.Open(cfg)
	if err := s.Start(opts); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// fresh starts a storage with default configuration on a new harness.
func fresh(t testing.TB, newHarness func(t testing.TB) Harness) Storage {
	t.Helper()
	return start(t, newHarness(t), Config{}, storage.Options{})
}

func mustSet(t testing.TB, s storage.Database, k, data string) string {
	t.Helper()
	idx, err := s.Set(k, json.RawMessage(data))
	if err != nil {
		t.Fatalf("set %q: %v", k, err)
	}
	return idx
}

func mustDel(t testing.TB, s storage.Database, k string) {
	t.Helper()
	if err := s.Del(k); err != nil {
		t.Fatalf("del %q: %v", k, err)
	}
}

func getObject(t testing.TB, s storage.Database, k string) meta.Object {
	t.Helper()
	raw, err := s.Get(k)
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	o, err := meta.Decode(raw)
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return o
}

func getList(t testing.TB, s storage.Database, k string, descending bool) []meta.Object {
	t.Helper()
	get := s.Get
	if descending {
		get = s.GetDescending
	}
	raw, err := get(k)
	if err != nil {
		t.Fatalf("get list %q: %v", k, err)
	}
	list, err := meta.DecodeList(raw)
	if err != nil {
		t.Fatalf("get list %q: %v", k, err)
	}
	return list
}

func paths(list []meta.Object) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = o.Path
	}
	return out
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// nextEvent waits for the next event on ch.
func nextEvent(t testing.TB, ch storage.EventChan) storage.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed while an event was expected")
		}
		return ev
	case <-time.After(eventWait):
		t.Fatal("no event within the deadline")
	}
	return storage.Event{}
}

// expectEvents reads len(want) events and compares them with want.
func expectEvents(t testing.TB, ch storage.EventChan, want ...storage.Event) {
	t.Helper()
	for i, w := range want {
		if got := nextEvent(t, ch); got.Key != w.Key || got.Operation != w.Operation {
			t.Fatalf("event %d: got %+v, want %+v", i, got, w)
		}
	}
}

// expectQuiet proves that no event is pending: it writes a marker key and checks that
// the marker's event is the next one.
func expectQuiet(t testing.TB, s storage.Database) {
	t.Helper()
	mustSet(t, s, "zz/marker", `true`)
	expectEvents(t, s.Watch(), storage.Event{Key: "zz/marker", Operation: storage.OpSet})
}

func set(k string) storage.Event { return storage.Event{Key: k, Operation: storage.OpSet} }
func del(k string) storage.Event { return storage.Event{Key: k, Operation: storage.OpDel} }

// allChanges reads the whole feed after since.
func allChanges(t testing.TB, s storage.Replica, pattern string, since uint64) []storage.Change {
	t.Helper()
	out, _, err := s.Changes(pattern, since, 1<<20)
	if err != nil {
		t.Fatalf("changes %q since %d: %v", pattern, since, err)
	}
	return out
}

// head returns the feed's head sequence.
func head(t testing.TB, s storage.Replica) uint64 {
	t.Helper()
	_, next, err := s.Changes("", 0, 1<<20)
	if err != nil {
		t.Fatalf("changes: %v", err)
	}
	return next
}

// fixedClock returns a clock whose wall clock stands still at wall.
func fixedClock(wall int64) *clock.Clock {
	return clock.New(clock.Options{Wall: func() int64 { return wall }, InstanceID: 7})
}
