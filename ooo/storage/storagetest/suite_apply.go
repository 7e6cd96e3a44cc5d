package storagetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// winsLWW is pivot's last-write-wins order, the one replication uses.
func winsLWW(incoming, current storage.Entry) bool { return pivot.Wins(incoming, current) }

func entry(k string, created, updated int64, data string) storage.Entry {
	return storage.Entry{Key: k, Created: created, Updated: updated, Data: json.RawMessage(data)}
}

func tombstone(k string, at int64) storage.Entry {
	return storage.Entry{Key: k, Updated: at, Deleted: true}
}

func sameEntry(a, b storage.Entry) bool {
	return a.Key == b.Key && a.Created == b.Created && a.Updated == b.Updated &&
		a.Deleted == b.Deleted && bytes.Equal(a.Data, b.Data)
}

func runApply(t *testing.T, newHarness func(t testing.TB) Harness) {
	t.Run("ApplyEachReportsEveryEntry", func(t *testing.T) {
		s := fresh(t, newHarness)
		mustSet(t, s, "a", `"local"`)
		v := allChanges(t, s, "a", 0)[0].Version()
		future := time.Now().Add(time.Hour).UnixNano()
		batch := []storage.Entry{
			entry("n", 100, 0, `"new"`),                                         // applied
			entry("a", v-10, 0, `"older"`),                                      // superseded
			entry("*", 100, 0, `"glob"`),                                        // refused: not a plain key
			{Key: "t", Updated: 100, Deleted: true, Data: json.RawMessage(`1`)}, // refused: a tombstone with data
			entry("f", future, 0, `"future"`),                                   // refused: too far ahead of the clock
		}
		results, err := s.ApplyEach(batch, winsLWW)
		if err != nil {
			t.Fatal(err)
		}
		want := []storage.Outcome{storage.Applied, storage.Superseded, storage.Refused, storage.Refused, storage.Refused}
		if len(results) != len(want) {
			t.Fatalf("%d results for %d entries", len(results), len(batch))
		}
		for i, r := range results {
			if r.Outcome != want[i] || (r.Outcome == storage.Refused) != (r.Err != nil) {
				t.Fatalf("entry %d (%s): %+v, want outcome %d", i, batch[i].Key, r, want[i])
			}
		}
		var skew *clock.SkewError
		if !errors.Is(results[2].Err, storage.ErrInvalidPath) || !errors.Is(results[3].Err, storage.ErrInvalidData) || !errors.As(results[4].Err, &skew) {
			t.Fatalf("reasons: %v / %v / %v", results[2].Err, results[3].Err, results[4].Err)
		}
		if len(allChanges(t, s, "f", 0)) != 0 || len(allChanges(t, s, "t", 0)) != 0 {
			t.Fatal("a refused entry was stored")
		}
	})
	t.Run("LastWriteWins", func(t *testing.T) {
		s := fresh(t, newHarness)
		mustSet(t, s, "a", `"local"`)
		local := allChanges(t, s, "a", 0)[0]
		v := local.Version()
		batch := []storage.Entry{
			entry("a", v-10, 0, `"older"`),       // loses
			entry("n", 100, 0, `"new"`),          // never seen: wins
			tombstone("d", 50),                   // a tombstone for a key never seen is kept
			entry("d", 40, 0, `"before-delete"`), // older than the tombstone: loses
		}
		applied, err := s.Apply(batch, winsLWW)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 2 || !sameEntry(applied[0], batch[1]) || !sameEntry(applied[1], batch[2]) {
			t.Fatalf("applied %+v", applied)
		}
		if o := getObject(t, s, "a"); string(o.Data) != `"local"` {
			t.Fatalf("older remote replaced a newer local write: %s", o.Data)
		}
		if o := getObject(t, s, "n"); o.Created != 100 || o.Updated != 0 || string(o.Data) != `"new"` {
			t.Fatalf("applied entry changed: %+v", o)
		}
		if _, err := s.Get("d"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("tombstoned key readable: %v", err)
		}
		expectEvents(t, s.Watch(), set("a"), set("n"), del("d"))

		newer := entry("a", v+1, 0, `"remote"`)
		if applied, err := s.Apply([]storage.Entry{newer}, winsLWW); err != nil || len(applied) != 1 {
			t.Fatalf("newer remote: %+v %v", applied, err)
		}
		feed := allChanges(t, s, "", 0)
		last := feed[len(feed)-1]
		if !last.Remote || !sameEntry(last.Entry, newer) {
			t.Fatalf("feed records %+v, want the remote entry", last)
		}
		if s.Clock().Last() < v+1 {
			t.Fatal("the clock did not observe the applied version")
		}
		// Applying the same entries again changes nothing and sends nothing.
		h := head(t, s)
		if applied, err := s.Apply(append(batch, newer), winsLWW); err != nil || len(applied) != 0 {
			t.Fatalf("second apply stored %+v (%v)", applied, err)
		}
		if head(t, s) != h {
			t.Fatal("a second apply moved the feed")
		}
		expectEvents(t, s.Watch(), set("a"))
		expectQuiet(t, s)
		// A local write after an apply wins over it.
		mustSet(t, s, "a", `"again"`)
		if c := allChanges(t, s, "a", 0)[0]; c.Remote || c.Version() <= newer.Version() {
			t.Fatalf("local write after apply: %+v", c)
		}
	})
	t.Run("EqualVersions", func(t *testing.T) {
		s := fresh(t, newHarness)
		if _, err := s.Apply([]storage.Entry{entry("k", 10, 0, `"a"`)}, winsLWW); err != nil {
			t.Fatal(err)
		}
		applied, _ := s.Apply([]storage.Entry{entry("k", 10, 0, `"b"`)}, winsLWW)
		if len(applied) != 1 {
			t.Fatal("larger data did not win an equal version")
		}
		applied, _ = s.Apply([]storage.Entry{tombstone("k", 10)}, winsLWW)
		if len(applied) != 1 {
			t.Fatal("a delete did not beat a write of equal version")
		}
		applied, _ = s.Apply([]storage.Entry{entry("k", 10, 0, `"z"`)}, winsLWW)
		if len(applied) != 0 {
			t.Fatal("a write beat a delete of equal version")
		}
		// A local set on a tombstone starts a fresh entry that beats it.
		mustSet(t, s, "k", `1`)
		if c := allChanges(t, s, "k", 0)[0]; c.Deleted || c.Created <= 10 || c.Updated != 0 {
			t.Fatalf("set over a remote tombstone: %+v", c)
		}
	})
	t.Run("Refusals", func(t *testing.T) {
		wall := int64(1_000_000_000_000_000)
		s := start(t, newHarness(t), Config{Clock: fixedClock(wall)}, storage.Options{})
		batch := []storage.Entry{
			entry("bad//key", 1, 0, `1`),
			entry("glob/*", 1, 0, `1`),
			entry("nojson", 1, 0, `{`),
			entry("nostamp", 0, 0, `1`),
			entry("future", wall+int64(5e9), 0, `1`),
			entry("fine", wall-1, 0, `1`),
		}
		applied, err := s.Apply(batch, winsLWW)
		if len(applied) != 1 || applied[0].Key != "fine" {
			t.Fatalf("applied %+v", applied)
		}
		var skew *clock.SkewError
		if !errors.As(err, &skew) || skew.Remote != wall+int64(5e9) {
			t.Fatalf("want a *clock.SkewError, got %v", err)
		}
		if !errors.Is(err, storage.ErrInvalidPath) || !errors.Is(err, storage.ErrInvalidData) {
			t.Fatalf("refusals not all reported: %v", err)
		}
		if s.Clock().Last() >= wall+int64(5e9) {
			t.Fatal("the clock adopted a refused stamp")
		}
		for _, k := range []string{"future", "nojson", "nostamp"} {
			if _, err := s.Get(k); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("refused %s stored: %v", k, err)
			}
		}
		if _, err := s.Apply(nil, nil); err == nil {
			t.Fatal("nil wins accepted")
		}
	})
	t.Run("NoBroadcastKeys", func(t *testing.T) {
		s := start(t, newHarness(t), Config{}, storage.Options{NoBroadcastKeys: []string{"mute/*"}})
		if _, err := s.Apply([]storage.Entry{entry("mute/a", 1, 0, `1`), entry("loud", 1, 0, `1`)}, winsLWW); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, s.Watch(), set("loud"))
	})
}

// runApplyRace races Apply of remote entries against local writes of the same keys and
// checks that no local write is lost: every key ends at the LWW maximum of every entry
// written to it, local and remote.
func runApplyRace(t *testing.T, newHarness func(t testing.TB) Harness) {
	s := fresh(t, newHarness)
	const keys = 150
	rnd := rand.New(rand.NewSource(1))
	t0 := s.Clock().Now()
	remote := make(map[string][]storage.Entry)
	var all []storage.Entry
	for i := range keys {
		k := fmt.Sprintf("race/%03d", i)
		es := []storage.Entry{
			entry(k, t0-int64(rnd.Intn(1e6))-1, 0, fmt.Sprintf(`"old-%d"`, i)),
			entry(k, t0-1000, t0+int64(rnd.Intn(2e6)), fmt.Sprintf(`"near-%d"`, i)),
			entry(k, t0-5000, t0+int64(2e8)+int64(rnd.Intn(1e6)), fmt.Sprintf(`"future-%d"`, i)),
		}
		if i%5 == 0 {
			es = append(es, tombstone(k, t0+int64(rnd.Intn(3e6))))
		}
		remote[k] = es
		all = append(all, es...)
	}
	rnd.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	// The local writer's entries are known only through the storage: record every
	// current state wins is shown, which includes each local write that was replaced.
	var (
		mu   sync.Mutex
		seen = make(map[string]storage.Entry) // key -> local entry seen as current
	)
	wins := func(in, cur storage.Entry) bool {
		if !cur.Deleted && strings.HasPrefix(string(cur.Data), `{"local"`) {
			mu.Lock()
			seen[cur.Key] = cur
			mu.Unlock()
		}
		return pivot.Wins(in, cur)
	}

	var wg sync.WaitGroup
	half := len(all) / 2
	for _, part := range [][]storage.Entry{all[:half], all[half:]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := 0; start < len(part); start += 7 {
				if _, err := s.Apply(part[start:min(start+7, len(part))], wins); err != nil {
					t.Errorf("apply: %v", err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range keys {
			k := fmt.Sprintf("race/%03d", i)
			if _, err := s.Set(k, json.RawMessage(fmt.Sprintf(`{"local":%d}`, i))); err != nil {
				t.Errorf("set: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}

	final := make(map[string]storage.Entry)
	for _, c := range allChanges(t, s, "race/*", 0) {
		final[c.Key] = c.Entry
	}
	for i := range keys {
		k := fmt.Sprintf("race/%03d", i)
		got, ok := final[k]
		if !ok {
			t.Fatalf("%s missing from the feed", k)
		}
		candidates := append([]storage.Entry(nil), remote[k]...)
		local, ok := seen[k]
		if strings.HasPrefix(string(got.Data), `{"local"`) {
			local, ok = got, true
		}
		if !ok {
			t.Fatalf("%s: the local write was lost without being compared (final %+v)", k, got)
		}
		candidates = append(candidates, local)
		want := candidates[0]
		for _, c := range candidates[1:] {
			if pivot.Wins(c, want) {
				want = c
			}
		}
		if !sameEntry(got, want) {
			t.Fatalf("%s ends at %+v, LWW says %+v", k, got, want)
		}
	}
}
