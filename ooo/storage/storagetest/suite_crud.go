package storagetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

func runLifecycle(t *testing.T, newHarness func(t testing.TB) Harness) {
	t.Run("NeverStarted", func(t *testing.T) {
		s := newHarness(t).Open(Config{})
		if s.Active() {
			t.Fatal("a storage never started is active")
		}
		if s.Watch() != nil {
			t.Fatal("Watch before Start is not nil")
		}
		_, err := s.Set("a", json.RawMessage(`1`))
		wantErr(t, "set before start", err, storage.ErrNotActive)
		_, err = s.Get("a")
		wantErr(t, "get before start", err, storage.ErrNotActive)
		_, _, err = s.Changes("", 0, 1)
		wantErr(t, "changes before start", err, storage.ErrNotActive)
		s.Close() // closing a storage never started does nothing
	})
	t.Run("CloseTwiceAndStartAgain", func(t *testing.T) {
		h := newHarness(t)
		s := start(t, h, Config{}, storage.Options{})
		mustSet(t, s, "a", `1`)
		ch := s.Watch()
		s.Close()
		s.Close()
		if s.Active() || s.Watch() != nil {
			t.Fatal("closed storage is active or has a channel")
		}
		for range ch { // the old channel is closed: the range ends
		}
		_, err := s.Set("a", json.RawMessage(`2`))
		wantErr(t, "set after close", err, storage.ErrNotActive)
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		if o := getObject(t, s, "a"); string(o.Data) != `1` {
			t.Fatalf("data after Close/Start: %s", o.Data)
		}
		mustSet(t, s, "b", `2`)
		expectEvents(t, s.Watch(), set("b"))
	})
	t.Run("StartAgainReplacesOptions", func(t *testing.T) {
		s := fresh(t, newHarness)
		ch := s.Watch()
		if err := s.Start(storage.Options{NoBroadcastKeys: []string{"quiet/*"}}); err != nil {
			t.Fatal(err)
		}
		if s.Watch() != ch {
			t.Fatal("Start on an active storage replaced the channel")
		}
		mustSet(t, s, "quiet/a", `1`)
		expectQuiet(t, s)
	})
}

func runCRUD(t *testing.T, newHarness func(t testing.TB) Harness) {
	t.Run("SetGet", func(t *testing.T) {
		s := fresh(t, newHarness)
		if idx := mustSet(t, s, "things/a1", `{"n": 1}`); idx != "a1" {
			t.Fatalf("index %q, want a1", idx)
		}
		raw, err := s.Get("things/a1")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(raw, []byte("}\n")) {
			t.Fatalf("stored object does not end in a newline: %q", raw)
		}
		o := getObject(t, s, "things/a1")
		if o.Created == 0 || o.Updated != 0 || o.Index != "a1" || o.Path != "things/a1" || string(o.Data) != `{"n":1}` {
			t.Fatalf("first write: %+v (%s)", o, o.Data)
		}
		mustSet(t, s, "things/a1", `{"n":2}`)
		o2 := getObject(t, s, "things/a1")
		if o2.Created != o.Created || o2.Updated <= o.Created || string(o2.Data) != `{"n":2}` {
			t.Fatalf("second write: %+v after %+v", o2, o)
		}
		raw[0] = 'X' // the caller owns the returned slice
		if o3 := getObject(t, s, "things/a1"); o3.Updated != o2.Updated {
			t.Fatal("modifying a returned slice changed the storage")
		}
	})
	t.Run("KeyRules", func(t *testing.T) {
		s := fresh(t, newHarness)
		for _, k := range []string{"a", "ab", "a-b_c.d", "x/y/z"} {
			mustSet(t, s, k, `1`)
			getObject(t, s, k)
		}
		for _, k := range []string{"", "/a", "a/", "a//b", "a b", "a:b", "a/**"} {
			_, err := s.Set(k, json.RawMessage(`1`))
			wantErr(t, fmt.Sprintf("set %q", k), err, storage.ErrInvalidPath)
			_, err = s.Get(k)
			wantErr(t, fmt.Sprintf("get %q", k), err, storage.ErrInvalidPath)
			wantErr(t, fmt.Sprintf("del %q", k), s.Del(k), storage.ErrInvalidPath)
		}
	})
	t.Run("BadData", func(t *testing.T) {
		s := fresh(t, newHarness)
		h := head(t, s) // a storage may keep records of its own in the feed's sequence
		_, err := s.Set("a", nil)
		wantErr(t, "nil data", err, storage.ErrEmptyData)
		_, err = s.Set("a", json.RawMessage("  "))
		wantErr(t, "blank data", err, storage.ErrEmptyData)
		for _, bad := range []string{`{`, `nope`, `{"a":1}}`, `1 2`} {
			_, err = s.Set("a", json.RawMessage(bad))
			wantErr(t, fmt.Sprintf("data %q", bad), err, storage.ErrInvalidData)
		}
		_, err = s.Get("a")
		wantErr(t, "get after refused writes", err, storage.ErrNotFound)
		if got := head(t, s); got != h {
			t.Fatalf("refused writes moved the feed from %d to %d", h, got)
		}
	})
	t.Run("SetGlobIsNoop", func(t *testing.T) {
		s := fresh(t, newHarness)
		idx, err := s.Set("things/*", json.RawMessage(`1`))
		if err != nil || idx != "things/*" {
			t.Fatalf("set glob: %q %v", idx, err)
		}
		if list := getList(t, s, "things/*", false); len(list) != 0 {
			t.Fatalf("set glob stored %v", paths(list))
		}
		expectQuiet(t, s)
	})
	t.Run("Del", func(t *testing.T) {
		s := fresh(t, newHarness)
		wantErr(t, "del missing", s.Del("a"), storage.ErrNotFound)
		mustSet(t, s, "a", `1`)
		before := getObject(t, s, "a")
		mustDel(t, s, "a")
		_, err := s.Get("a")
		wantErr(t, "get deleted", err, storage.ErrNotFound)
		wantErr(t, "del deleted", s.Del("a"), storage.ErrNotFound)
		mustSet(t, s, "a", `2`)
		after := getObject(t, s, "a")
		if after.Created <= before.Created || after.Updated != 0 {
			t.Fatalf("set after delete must start a fresh entry: %+v after %+v", after, before)
		}
	})
	t.Run("DelGlob", func(t *testing.T) {
		s := fresh(t, newHarness)
		for _, k := range []string{"g/a", "g/b", "g/c/d", "h/a"} {
			mustSet(t, s, k, `1`)
		}
		mustDel(t, s, "g/*")
		if list := getList(t, s, "g/*", false); len(list) != 0 {
			t.Fatalf("left after glob delete: %v", paths(list))
		}
		getObject(t, s, "g/c/d")
		getObject(t, s, "h/a")
		mustDel(t, s, "none/*") // no match is not an error
	})
}

func runSetWithMeta(t *testing.T, newHarness func(t testing.TB) Harness) {
	t.Run("StoresStampsAsGiven", func(t *testing.T) {
		s := fresh(t, newHarness)
		now := s.Clock().Now()
		idx, err := s.SetWithMeta("history/a1", json.RawMessage(`{"x":1}`), now-100, now+50)
		if err != nil || idx != "a1" {
			t.Fatalf("set with meta: %q %v", idx, err)
		}
		o := getObject(t, s, "history/a1")
		if o.Created != now-100 || o.Updated != now+50 {
			t.Fatalf("stamps %+v", o)
		}
		if s.Clock().Now() <= now+50 {
			t.Fatal("the clock did not observe the stamps")
		}
		mustSet(t, s, "history/a1", `2`)
		if o2 := getObject(t, s, "history/a1"); o2.Updated <= now+50 || o2.Created != now-100 {
			t.Fatalf("a later local write must sort after: %+v", o2)
		}
		// Unlike upstream, history keys get their event like any other key.
		expectEvents(t, s.Watch(), set("history/a1"), set("history/a1"))
		changes := allChanges(t, s, "history/*", 0)
		if len(changes) != 1 || changes[0].Remote {
			t.Fatalf("feed %+v", changes)
		}
	})
	t.Run("Refusals", func(t *testing.T) {
		wall := int64(1_000_000_000_000_000)
		s := start(t, newHarness(t), Config{Clock: fixedClock(wall)}, storage.Options{})
		_, err := s.SetWithMeta("a/*", json.RawMessage(`1`), 1, 0)
		wantErr(t, "glob", err, storage.ErrInvalidPath)
		_, err = s.SetWithMeta("a", json.RawMessage(`{`), 1, 0)
		wantErr(t, "bad data", err, storage.ErrInvalidData)
		_, err = s.SetWithMeta("a", json.RawMessage(`1`), wall+int64(10e9), 0)
		var skew *clock.SkewError
		if !errors.As(err, &skew) {
			t.Fatalf("future stamp: %v", err)
		}
		_, err = s.Get("a")
		wantErr(t, "refused write stored", err, storage.ErrNotFound)
	})
}

func runLocks(t *testing.T, newHarness func(t testing.TB) Harness) {
	s := fresh(t, newHarness)
	mustSet(t, s, "l", `1`)
	raw, err := s.GetAndLock("l")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := meta.Decode(raw); string(o.Data) != `1` {
		t.Fatalf("GetAndLock read %s", raw)
	}
	second := make(chan error, 1)
	go func() {
		_, err := s.GetAndLock("l") // waits for the first holder
		if err == nil {
			err = s.Unlock("l")
		}
		second <- err
	}()
	if _, err := s.SetAndUnlock("l", json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(eventWait):
		t.Fatal("second GetAndLock never got the lock")
	}
	wantErr(t, "unlock unlocked", s.Unlock("l"), storage.ErrLockNotFound)
	_, err = s.SetAndUnlock("l", json.RawMessage(`3`))
	wantErr(t, "set and unlock unlocked", err, storage.ErrLockNotFound)
	_, err = s.GetAndLock("l/*")
	wantErr(t, "lock glob", err, storage.ErrGlobLock)
	_, err = s.GetAndLock("new")
	wantErr(t, "lock missing key", err, storage.ErrNotFound)
	if _, err := s.SetAndUnlock("new", json.RawMessage(`1`)); err != nil {
		t.Fatalf("a missing key stays locked so it can be created: %v", err)
	}
	if o := getObject(t, s, "l"); string(o.Data) != `2` {
		t.Fatalf("final %s", o.Data)
	}
}
