package storagetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/benitogf/pivot/ooo/storage"
)

// limited starts a fresh storage with a data limit of limit bytes; storages without a
// data limit skip the test.
func limited(t *testing.T, newHarness func(t testing.TB) Harness, limit int64) Storage {
	t.Helper()
	s := fresh(t, newHarness)
	dl, ok := s.(storage.DataLimiter)
	if !ok {
		t.Skip("storage has no data limit")
	}
	dl.SetDataLimit(limit)
	return s
}

// wantTooLarge checks that err is ErrTooLarge and says how long the data was and what
// the limit is.
func wantTooLarge(t testing.TB, what string, err error, size int, limit int64) {
	t.Helper()
	wantErr(t, what, err, storage.ErrTooLarge)
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%d bytes, the limit is %d bytes", size, limit)) {
		t.Fatalf("%s: error %q does not give the size %d and the limit %d", what, msg, size, limit)
	}
}

// sized returns a JSON string value of exactly n bytes (n >= 2).
func sized(n int) string { return `"` + strings.Repeat("x", n-2) + `"` }

func runDataLimit(t *testing.T, newHarness func(t testing.TB) Harness) {
	const limit = 100
	t.Run("SetRefusesAndStoresNothing", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		h := head(t, s)
		_, err := s.Set("big", json.RawMessage(sized(limit+1)))
		wantTooLarge(t, "set", err, limit+1, limit)
		if !strings.Contains(err.Error(), `"big"`) {
			t.Fatalf("error %q does not name the key", err)
		}
		if _, err := s.Get("big"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused write readable: %v", err)
		}
		if got := head(t, s); got != h {
			t.Fatalf("feed head moved from %d to %d", h, got)
		}
		expectQuiet(t, s)
		mustSet(t, s, "fits", sized(limit))
	})
	t.Run("CountsCompactedData", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		// 150 bytes as sent, 100 once compacted: what is stored and replicated counts.
		spaced := `{"v" :` + strings.Repeat(" ", 50) + sized(limit-len(`{"v":}`)) + `}`
		mustSet(t, s, "spaced", spaced)
		if o := getObject(t, s, "spaced"); len(o.Data) != limit {
			t.Fatalf("stored %d bytes, want %d", len(o.Data), limit)
		}
	})
	t.Run("SetWithMeta", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		now := s.Clock().Now()
		_, err := s.SetWithMeta("m", json.RawMessage(sized(limit+7)), now, 0)
		wantTooLarge(t, "set with meta", err, limit+7, limit)
		if _, err := s.Get("m"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused write readable: %v", err)
		}
	})
	t.Run("SetAndUnlockReleasesTheLock", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		if _, err := s.GetAndLock("l"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get and lock: %v", err)
		}
		_, err := s.SetAndUnlock("l", json.RawMessage(sized(limit+1)))
		wantTooLarge(t, "set and unlock", err, limit+1, limit)
		wantErr(t, "unlock after a refused write", s.Unlock("l"), storage.ErrLockNotFound)
		if _, err := s.Get("l"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused write readable: %v", err)
		}
	})
	t.Run("PatchMergedResult", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		mustSet(t, s, "p", `{"a":1}`)
		before := getObject(t, s, "p")
		// The patch alone fits; the merge does not.
		patch := `{"b":` + sized(limit-len(`{"b":}`)) + `}`
		_, err := s.Patch("p", json.RawMessage(patch))
		wantTooLarge(t, "patch", err, limit+len(`"a":1,`), limit)
		if o := getObject(t, s, "p"); o.Updated != before.Updated || string(o.Data) != string(before.Data) {
			t.Fatalf("refused patch changed the key: %+v", o)
		}
		expectEvents(t, s.Watch(), set("p"))
		expectQuiet(t, s)
	})
	t.Run("GlobPatchIsAllOrNothing", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		mustSet(t, s, "g/a", `{}`)
		mustSet(t, s, "g/b", `{"pad":`+sized(60)+`}`)
		mustSet(t, s, "g/c", `{}`)
		expectEvents(t, s.Watch(), set("g/a"), set("g/b"), set("g/c"))
		h := head(t, s)
		// 46 bytes merged into g/a and g/c, 113 into g/b.
		_, err := s.Patch("g/*", json.RawMessage(`{"v":`+sized(40)+`}`))
		wantTooLarge(t, "glob patch", err, 113, limit)
		if !strings.Contains(err.Error(), `"g/b"`) {
			t.Fatalf("error %q does not name the key over the limit", err)
		}
		if got := head(t, s); got != h {
			t.Fatalf("a refused glob patch stored something: head %d, was %d", got, h)
		}
		for _, k := range []string{"g/a", "g/c"} {
			if o := getObject(t, s, k); string(o.Data) != `{}` {
				t.Fatalf("%s patched by a refused glob patch: %s", k, o.Data)
			}
		}
		expectQuiet(t, s)
	})
	t.Run("ApplyIsNotLimited", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		now := s.Clock().Now()
		applied, err := s.Apply([]storage.Entry{entry("remote", now, 0, sized(10*limit))}, winsLWW)
		if err != nil || len(applied) != 1 {
			t.Fatalf("apply: %d applied, %v", len(applied), err)
		}
		if o := getObject(t, s, "remote"); len(o.Data) != 10*limit {
			t.Fatalf("applied entry holds %d bytes", len(o.Data))
		}
	})
	t.Run("ChangeAndRemove", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		dl := s.(storage.DataLimiter)
		if got := dl.DataLimit(); got != limit {
			t.Fatalf("DataLimit %d, want %d", got, limit)
		}
		dl.SetDataLimit(-5)
		if got := dl.DataLimit(); got != 0 {
			t.Fatalf("DataLimit %d after a negative limit, want 0", got)
		}
		mustSet(t, s, "any", sized(10*limit))
		dl.SetDataLimit(limit)
		_, err := s.Set("any", json.RawMessage(sized(limit+1)))
		wantTooLarge(t, "set after raising back", err, limit+1, limit)
	})
	t.Run("KeptAcrossCloseAndStart", func(t *testing.T) {
		h := newHarness(t)
		s := h.Open(Config{})
		dl, ok := s.(storage.DataLimiter)
		if !ok {
			t.Skip("storage has no data limit")
		}
		dl.SetDataLimit(limit) // before the first Start
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		_, err := s.Set("k", json.RawMessage(sized(limit+1)))
		wantTooLarge(t, "set", err, limit+1, limit)
		s.Close()
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		_, err = s.Set("k", json.RawMessage(sized(limit+1)))
		wantTooLarge(t, "set after a restart of the same value", err, limit+1, limit)
	})
	t.Run("ConcurrentWithWrites", func(t *testing.T) {
		s := limited(t, newHarness, limit)
		dl := s.(storage.DataLimiter)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				dl.SetDataLimit(int64(limit + i%2*limit))
			}
		}()
		errs := make(chan error, 4*25)
		var writers sync.WaitGroup
		for w := 0; w < 4; w++ {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for i := 0; i < 25; i++ {
					// Over the smaller limit, under the larger one: either answer is
					// right, and nothing else may happen.
					_, err := s.Set(fmt.Sprintf("c/%d-%d", w, i), json.RawMessage(sized(limit+limit/2)))
					if err != nil && !errors.Is(err, storage.ErrTooLarge) {
						errs <- err
					}
				}
			}()
		}
		writers.Wait()
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}
