package storagetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

func runEvents(t *testing.T, newHarness func(t testing.TB) Harness) {
	t.Run("NoReaderNeeded", func(t *testing.T) {
		s := fresh(t, newHarness)
		const n = 500
		for i := range n { // nobody reads: the writes must still return
			mustSet(t, s, fmt.Sprintf("e/%d", i), `1`)
		}
		mustDel(t, s, "e/0")
		ch := s.Watch()
		for i := range n {
			expectEvents(t, ch, set(fmt.Sprintf("e/%d", i)))
		}
		expectEvents(t, ch, del("e/0"))
	})
	t.Run("OnePerWriteInOrder", func(t *testing.T) {
		s := fresh(t, newHarness)
		mustSet(t, s, "a", `{"x":1}`)
		if _, err := s.Patch("a", json.RawMessage(`{"x":2}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetWithMeta("b", json.RawMessage(`1`), 5, 0); err != nil {
			t.Fatal(err)
		}
		mustSet(t, s, "g/1", `1`)
		mustSet(t, s, "g/2", `1`)
		mustDel(t, s, "g/*")
		mustDel(t, s, "a")
		mustDel(t, s, "none/*")
		expectEvents(t, s.Watch(), set("a"), set("a"), set("b"), set("g/1"), set("g/2"),
			del("g/*"), del("a"), del("none/*"))
		expectQuiet(t, s)
	})
	t.Run("SetEventsCarryTheStoredObject", func(t *testing.T) {
		s := fresh(t, newHarness)
		mustSet(t, s, "o/a", `{"h":"<&>","n":12345678901234567890}`)
		if _, err := s.Patch("o/a", json.RawMessage(`{"x":"東京"}`)); err != nil {
			t.Fatal(err)
		}
		ch := s.Watch()
		for i := 0; i < 2; i++ {
			ev := nextEvent(t, ch)
			if ev.Operation != storage.OpSet || ev.Object == nil {
				t.Fatalf("event %d = %+v, want a set carrying its object", i, ev)
			}
			if i == 1 {
				got, err := s.Get("o/a")
				if err != nil {
					t.Fatal(err)
				}
				if want := string(meta.New(ev.Object)); string(got) != want {
					t.Fatalf("event object encodes as %s, Get returns %s", want, got)
				}
			}
		}
		mustDel(t, s, "o/a")
		if ev := nextEvent(t, ch); ev.Operation != storage.OpDel || ev.Object != nil {
			t.Fatalf("delete event = %+v, want no object", ev)
		}
	})
	t.Run("NoBroadcastKeys", func(t *testing.T) {
		s := start(t, newHarness(t), Config{}, storage.Options{NoBroadcastKeys: []string{"mute/*", "solo"}})
		mustSet(t, s, "mute/a", `1`)
		mustSet(t, s, "solo", `1`)
		mustDel(t, s, "mute/*")
		mustDel(t, s, "solo")
		mustSet(t, s, "loud", `1`)
		expectEvents(t, s.Watch(), set("loud"))
	})
	t.Run("ConcurrentWritesInFeedOrder", func(t *testing.T) {
		s := fresh(t, newHarness)
		const writers, each = 4, 40
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := s.Set(fmt.Sprintf("c/%d-%d", w, i), json.RawMessage(`1`)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		changes := allChanges(t, s, "", 0)
		if len(changes) != writers*each {
			t.Fatalf("%d changes, want %d", len(changes), writers*each)
		}
		ch := s.Watch()
		for i, c := range changes {
			if ev := nextEvent(t, ch); ev.Key != c.Key {
				t.Fatalf("event %d is %q, the feed's write %d is %q", i, ev.Key, i, c.Key)
			}
		}
	})
	t.Run("CloseClosesChannel", func(t *testing.T) {
		s := fresh(t, newHarness)
		ch := s.Watch()
		for i := range 10 {
			mustSet(t, s, fmt.Sprintf("q/%d", i), `1`)
		}
		expectEvents(t, ch, set("q/0"))
		s.Close() // the nine events still queued are dropped
		done := make(chan int)
		go func() {
			n := 0
			for range ch {
				n++
			}
			done <- n
		}()
		select {
		case n := <-done:
			if n != 0 {
				t.Fatalf("%d events delivered after Close", n)
			}
		case <-time.After(eventWait):
			t.Fatal("Close did not close the Watch channel")
		}
	})
	t.Run("WriteRacingClose", func(t *testing.T) {
		s := fresh(t, newHarness)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					k := fmt.Sprintf("r/%d-%d", w, i)
					var err error
					if i%3 == 2 {
						err = s.Del(fmt.Sprintf("r/%d-%d", w, i-1))
					} else {
						_, err = s.Set(k, json.RawMessage(`1`))
					}
					if errors.Is(err, storage.ErrNotActive) {
						return
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		// Let every writer get going, then close under them.
		deadline := time.Now().Add(eventWait)
		for head(t, s) < 40 && time.Now().Before(deadline) {
			nextEvent(t, s.Watch())
		}
		s.Close()
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(eventWait):
			t.Fatal("a write racing Close hung")
		}
		close(errs)
		for err := range errs {
			t.Errorf("write racing Close: %v", err)
		}
	})
}

func runBeforeRead(t *testing.T, newHarness func(t testing.TB) Harness) {
	var (
		mu    sync.Mutex
		calls []string
		s     Storage
	)
	hook := func(k string) {
		mu.Lock()
		calls = append(calls, k)
		mu.Unlock()
		// BeforeRead runs outside the storage's locks: it may write to the storage,
		// as pivot's sync-on-read does.
		if _, err := s.Set("hooked", json.RawMessage(`1`)); err != nil {
			t.Errorf("write from BeforeRead: %v", err)
		}
	}
	s = start(t, newHarness(t), Config{}, storage.Options{BeforeRead: hook})
	mustSet(t, s, "b/1", `1`)
	_, _ = s.Get("b/1")
	_, _ = s.Get("b/*")
	_, _ = s.GetDescending("b/*")
	_, _ = s.GetN("b/*", 1)
	_, _ = s.GetNAscending("b/*", 1)
	_, _ = s.GetNRange("b/*", 1, 0, 10)
	if _, err := s.GetAndLock("b/1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock("b/1"); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Keys()
	_, _ = s.KeysRange("b/*", 0, 1)
	_, _ = s.Patch("b/1", json.RawMessage(`{"a":1}`))
	_ = s.Del("b/1")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"b/1", "b/*", "b/*", "b/*", "b/*", "b/*", "b/1"}
	if !equalStrings(calls, want) {
		t.Fatalf("BeforeRead calls %v, want %v", calls, want)
	}
}
