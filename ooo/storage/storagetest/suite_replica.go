package storagetest

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

func runTombstones(t *testing.T, newHarness func(t testing.TB) Harness) {
	t.Run("HiddenFromReadsVisibleInFeed", func(t *testing.T) {
		s := fresh(t, newHarness)
		mustSet(t, s, "t/a", `1`)
		mustSet(t, s, "t/b", `1`)
		mustDel(t, s, "t/a")
		if got := paths(getList(t, s, "t/*", false)); !equalStrings(got, []string{"t/b"}) {
			t.Fatalf("list shows %v", got)
		}
		if list, _ := s.GetN("t/*", 10); len(list) != 1 {
			t.Fatalf("GetN shows %v", paths(list))
		}
		if keys, _ := s.KeysRange("t/*", 0, 1<<62); !equalStrings(keys, []string{"t/b"}) {
			t.Fatalf("KeysRange shows %v", keys)
		}
		if raw, _ := s.Keys(); string(raw) != `{"keys":["t/b"]}` {
			t.Fatalf("Keys shows %s", raw)
		}
		changes := allChanges(t, s, "t/*", 0)
		if len(changes) != 2 || changes[0].Key != "t/b" || changes[1].Key != "t/a" {
			t.Fatalf("feed %+v", changes)
		}
		tomb := changes[1]
		if !tomb.Deleted || tomb.Updated == 0 || tomb.Created != 0 || len(tomb.Data) != 0 || tomb.Remote {
			t.Fatalf("tombstone %+v", tomb)
		}
	})
	t.Run("CollectedAfterRetention", func(t *testing.T) {
		s := start(t, newHarness(t), Config{TombstoneRetention: time.Hour}, storage.Options{})
		mustSet(t, s, "t/a", `1`)
		mustSet(t, s, "t/b", `1`)
		mustDel(t, s, "t/a")
		mustDel(t, s, "t/b")
		mustSet(t, s, "t/c", `1`)
		tombs := allChanges(t, s, "", 0)
		lastTomb := tombs[1].Seq
		now := s.Clock().Now()
		if n := s.CollectTombstones(now); n != 0 || s.Horizon() != 0 {
			t.Fatalf("young tombstones collected: %d, horizon %d", n, s.Horizon())
		}
		if n := s.CollectTombstones(now + int64(2*time.Hour)); n != 2 {
			t.Fatalf("collected %d, want 2", n)
		}
		if h := s.Horizon(); h != lastTomb {
			t.Fatalf("horizon %d, want %d", h, lastTomb)
		}
		if changes := allChanges(t, s, "", 0); len(changes) != 1 || changes[0].Key != "t/c" {
			t.Fatalf("feed after collection %+v", changes)
		}
		// A collected key is as never seen: a set starts it afresh.
		mustSet(t, s, "t/a", `2`)
		if o := getObject(t, s, "t/a"); o.Updated != 0 {
			t.Fatalf("set after collection %+v", o)
		}
	})
	t.Run("NegativeRetentionKeepsForever", func(t *testing.T) {
		s := start(t, newHarness(t), Config{TombstoneRetention: -1}, storage.Options{})
		mustSet(t, s, "a", `1`)
		mustDel(t, s, "a")
		if n := s.CollectTombstones(1 << 62); n != 0 || s.Horizon() != 0 {
			t.Fatalf("collected %d with negative retention", n)
		}
	})
}

func runChanges(t *testing.T, newHarness func(t testing.TB) Harness) {
	s := fresh(t, newHarness)
	for i := range 10 {
		mustSet(t, s, fmt.Sprintf("f/%d", i), `1`)
	}
	mustSet(t, s, "other/x", `1`)
	mustSet(t, s, "f/3", `2`) // f/3 moves to the end of the feed
	mustDel(t, s, "f/5")      // and so does f/5, as a tombstone
	// Sequences strictly increase but need not be contiguous (a storage may number
	// records of its own, or skip the numbers of superseded writes): the feed's head is
	// read, not computed.
	feedHead := head(t, s)

	t.Run("EachKeyOnceAtItsLatest", func(t *testing.T) {
		changes := allChanges(t, s, "", 0)
		want := []string{"f/0", "f/1", "f/2", "f/4", "f/6", "f/7", "f/8", "f/9", "other/x", "f/3", "f/5"}
		got := make([]string, len(changes))
		for i, c := range changes {
			got[i] = c.Key
			if i > 0 && c.Seq <= changes[i-1].Seq {
				t.Fatalf("feed not in sequence order: %+v", changes)
			}
		}
		if !equalStrings(got, want) {
			t.Fatalf("feed %v, want %v", got, want)
		}
		if last := changes[len(changes)-1]; !last.Deleted || last.Seq != feedHead {
			t.Fatalf("last change %+v", last)
		}
		if f3 := changes[len(changes)-2]; string(f3.Data) != `2` || f3.Updated == 0 {
			t.Fatalf("f/3 is not at its latest state: %+v", f3)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		var (
			keys  []string
			since uint64
		)
		for range 20 {
			page, next, err := s.Changes("f/*", since, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				keys = append(keys, c.Key)
			}
			if len(page) == 3 && next != page[2].Seq {
				t.Fatalf("full page: next %d, last seq %d", next, page[2].Seq)
			}
			since = next
			if len(page) < 3 {
				if next != feedHead {
					t.Fatalf("exhausted feed: next %d, want the head %d", next, feedHead)
				}
				break
			}
		}
		want := []string{"f/0", "f/1", "f/2", "f/4", "f/6", "f/7", "f/8", "f/9", "f/3", "f/5"}
		if !equalStrings(keys, want) {
			t.Fatalf("paged %v, want %v", keys, want)
		}
		page, next, err := s.Changes("", feedHead, 5)
		if err != nil || len(page) != 0 || next != feedHead {
			t.Fatalf("at the head: %v %d %v", page, next, err)
		}
	})
	t.Run("ManyRewrites", func(t *testing.T) {
		// Enough superseded writes to make a storage compact its feed.
		s := fresh(t, newHarness)
		base := s.Clock().Now() - 1e6
		const keys, rounds = 10, 300
		for r := range rounds {
			batch := make([]storage.Entry, 0, keys)
			for k := range keys {
				batch = append(batch, entry(fmt.Sprintf("m/%d", k), base+int64(r*keys+k), 0, fmt.Sprint(r)))
			}
			if r == rounds-1 {
				batch[3] = tombstone("m/3", base+int64(r*keys+3))
			}
			if _, err := s.Apply(batch, winsLWW); err != nil {
				t.Fatal(err)
			}
		}
		changes := allChanges(t, s, "", 0)
		if len(changes) != keys {
			t.Fatalf("%d changes for %d keys", len(changes), keys)
		}
		for k, c := range changes {
			wantData := fmt.Sprint(rounds - 1)
			if k == 3 {
				wantData = ""
			}
			if c.Key != fmt.Sprintf("m/%d", k) || string(c.Data) != wantData || (k > 0 && c.Seq <= changes[k-1].Seq) {
				t.Fatalf("change %d: %+v", k, c)
			}
		}
		if page, next, _ := s.Changes("", changes[4].Seq, 2); len(page) != 2 || page[0].Key != "m/5" || next != changes[6].Seq {
			t.Fatalf("paging after rewrites: %+v next %d", page, next)
		}
	})
	t.Run("Pattern", func(t *testing.T) {
		if got := allChanges(t, s, "other/*", 0); len(got) != 1 || got[0].Key != "other/x" {
			t.Fatalf("pattern other/*: %+v", got)
		}
		if got := allChanges(t, s, "f/3", 0); len(got) != 1 || got[0].Key != "f/3" {
			t.Fatalf("pattern f/3: %+v", got)
		}
		if got := allChanges(t, s, "*", 0); len(got) != 0 {
			t.Fatalf("pattern * matches one-segment keys only: %+v", got)
		}
		_, _, err := s.Changes("f//x", 0, 1)
		wantErr(t, "bad pattern", err, storage.ErrInvalidPattern)
		_, _, err = s.Changes("", 0, 0)
		wantErr(t, "limit 0", err, storage.ErrInvalidLimit)
	})
}

func runEpoch(t *testing.T, newHarness func(t testing.TB) Harness) {
	s := fresh(t, newHarness)
	ep := s.Epoch()
	if b, err := hex.DecodeString(ep); err != nil || len(b) < 8 {
		t.Fatalf("epoch %q is not random hex", ep)
	}
	mustSet(t, s, "a", `1`)
	mustSet(t, s, "b", `1`)
	mustDel(t, s, "b")
	if err := s.SaveCursor("peer", []byte("7")); err != nil {
		t.Fatal(err)
	}
	s.CollectTombstones(1 << 62)
	if s.Horizon() == 0 {
		t.Fatal("no horizon after collecting a tombstone")
	}
	s.Close()
	if s.Epoch() != ep {
		t.Fatal("epoch lost on Close")
	}
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	if s.Epoch() != ep {
		t.Fatal("epoch changed across Close/Start")
	}
	h := head(t, s)
	s.Clear()
	if s.Epoch() == ep || s.Epoch() == "" {
		t.Fatalf("Clear kept epoch %q", s.Epoch())
	}
	if _, err := s.Get("a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("data after Clear: %v", err)
	}
	if got := allChanges(t, s, "", 0); len(got) != 0 {
		t.Fatalf("feed after Clear: %+v", got)
	}
	if s.Horizon() != 0 {
		t.Fatal("horizon after Clear")
	}
	if v, _ := s.LoadCursor("peer"); string(v) != "7" {
		t.Fatalf("Clear dropped a cursor: %q", v)
	}
	mustSet(t, s, "a", `2`)
	if c := allChanges(t, s, "", 0); len(c) != 1 || c[0].Seq <= h {
		t.Fatalf("the sequence restarted after Clear: %+v (head was %d)", c, h)
	}
	expectEvents(t, s.Watch(), set("a")) // Clear itself sends nothing
}

func runCursors(t *testing.T, newHarness func(t testing.TB) Harness) {
	s := fresh(t, newHarness)
	before := head(t, s)
	if v, err := s.LoadCursor("push"); err != nil || v != nil {
		t.Fatalf("missing cursor: %q %v", v, err)
	}
	value := []byte("cursor-1")
	if err := s.SaveCursor("push", value); err != nil {
		t.Fatal(err)
	}
	value[0] = 'X' // the storage keeps its own copy
	v, err := s.LoadCursor("push")
	if err != nil || string(v) != "cursor-1" {
		t.Fatalf("cursor %q %v", v, err)
	}
	if err := s.SaveCursor("", nil); !errors.Is(err, storage.ErrInvalidPath) {
		t.Fatalf("empty cursor name: %v", err)
	}
	if h := head(t, s); h != before {
		t.Fatalf("a cursor entered the feed: head %d, was %d", h, before)
	}
	expectQuiet(t, s)
}

func runRestart(t *testing.T, newHarness func(t testing.TB) Harness) {
	h := newHarness(t)
	if !h.Persistent {
		t.Skip("not a persistent storage")
	}
	cfg := Config{TombstoneRetention: time.Hour}
	s := h.Open(cfg)
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "keep/a", `{"a":1}`)
	mustSet(t, s, "keep/a", `{"a":2}`)
	mustSet(t, s, "gone/a", `1`)
	mustSet(t, s, "gone/b", `1`)
	mustDel(t, s, "gone/a")
	mustDel(t, s, "gone/b")
	if _, err := s.Apply([]storage.Entry{{Key: "remote/a", Created: 5, Data: json.RawMessage(`"r"`)}}, winsLWW); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCursor("pull", []byte("epoch:9")); err != nil {
		t.Fatal(err)
	}
	before := getObject(t, s, "keep/a")
	changes := allChanges(t, s, "", 0)
	ep := s.Epoch()
	s.Close()

	s2 := start(t, h, cfg, storage.Options{})
	if got := getObject(t, s2, "keep/a"); got.Created != before.Created || got.Updated != before.Updated || string(got.Data) != `{"a":2}` {
		t.Fatalf("after restart %+v, before %+v", got, before)
	}
	if s2.Epoch() != ep {
		t.Fatalf("epoch %q after restart, was %q", s2.Epoch(), ep)
	}
	if got := allChanges(t, s2, "", 0); fmt.Sprint(got) != fmt.Sprint(changes) {
		t.Fatalf("feed after restart\n%+v\nwas\n%+v", got, changes)
	}
	if v, _ := s2.LoadCursor("pull"); string(v) != "epoch:9" {
		t.Fatalf("cursor after restart %q", v)
	}
	mustSet(t, s2, "keep/a", `{"a":3}`)
	after := getObject(t, s2, "keep/a")
	if after.Updated <= before.Updated {
		t.Fatalf("a write after restart sorts before the last one: %d <= %d", after.Updated, before.Updated)
	}
	last := allChanges(t, s2, "keep/a", 0)
	if len(last) != 1 || last[0].Seq <= changes[len(changes)-1].Seq {
		t.Fatalf("the sequence did not continue: %+v", last)
	}
	if n := s2.CollectTombstones(s2.Clock().Now() + int64(2*time.Hour)); n != 2 {
		t.Fatalf("collected %d tombstones after restart", n)
	}
	horizon := s2.Horizon()
	s2.Close()

	s3 := start(t, h, cfg, storage.Options{})
	if s3.Horizon() != horizon || horizon == 0 {
		t.Fatalf("horizon %d after restart, was %d", s3.Horizon(), horizon)
	}
	if got := allChanges(t, s3, "gone/*", 0); len(got) != 0 {
		t.Fatalf("collected tombstones came back: %+v", got)
	}
}
