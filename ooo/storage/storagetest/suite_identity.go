package storagetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// identified returns s as an Identified storage; storages without an identity skip
// the test.
func identified(t *testing.T, s Storage) storage.Identified {
	t.Helper()
	id, ok := s.(storage.Identified)
	if !ok {
		t.Skip("storage has no identity")
	}
	return id
}

// stampOf returns the version of the key k's last write.
func stampOf(t testing.TB, s Storage, k string) int64 {
	t.Helper()
	o := getObject(t, s, k)
	return max(o.Created, o.Updated)
}

func runIdentity(t *testing.T, newHarness func(t testing.TB) Harness) {
	t.Run("TokenAndInstance", func(t *testing.T) {
		s := fresh(t, newHarness)
		token, instance := identified(t, s).Identity()
		if token == "" {
			t.Fatal("a started storage has no token")
		}
		if instance != s.Clock().InstanceID() {
			t.Fatalf("identity says instance %d, the clock stamps with %d", instance, s.Clock().InstanceID())
		}
		other := fresh(t, newHarness)
		if t2, _ := identified(t, other).Identity(); t2 == token {
			t.Fatalf("two data sets share the token %q", token)
		}
	})
	t.Run("KeptAcrossCloseAndStart", func(t *testing.T) {
		s := fresh(t, newHarness)
		ident := identified(t, s)
		token, instance := ident.Identity()
		s.Close()
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		if t2, i2 := ident.Identity(); t2 != token || i2 != instance {
			t.Fatalf("identity (%q, %d) after Close and Start, was (%q, %d)", t2, i2, token, instance)
		}
	})
	t.Run("SetIdentity", func(t *testing.T) {
		s := fresh(t, newHarness)
		ident := identified(t, s)
		old := s.Clock().InstanceID()
		next := uint16(clock.MaxInstanceID)
		if old == next {
			next = 0
		}
		mustSet(t, s, "before", `1`)
		if err := ident.SetIdentity("confirmed-token", next); err != nil {
			t.Fatal(err)
		}
		if token, instance := ident.Identity(); token != "confirmed-token" || instance != next {
			t.Fatalf("identity (%q, %d), want (confirmed-token, %d)", token, instance, next)
		}
		mustSet(t, s, "after", `1`)
		before, after := stampOf(t, s, "before"), stampOf(t, s, "after")
		if after <= before {
			t.Fatalf("a write after SetIdentity sorts before one made earlier: %d <= %d", after, before)
		}
		if after&clock.MaxInstanceID != int64(next) {
			t.Fatalf("a write after SetIdentity carries instance %d, want %d", after&clock.MaxInstanceID, next)
		}
		// Back to the old id: still after every earlier stamp.
		if err := ident.SetIdentity("again", old); err != nil {
			t.Fatal(err)
		}
		mustSet(t, s, "again", `1`)
		if again := stampOf(t, s, "again"); again <= after || again&clock.MaxInstanceID != int64(old) {
			t.Fatalf("stamp %d after a second change (previous %d, want instance %d)", again, after, old)
		}
		s.Close()
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		if token, instance := ident.Identity(); token != "again" || instance != old {
			t.Fatalf("identity (%q, %d) after Close and Start, want (again, %d)", token, instance, old)
		}
	})
	t.Run("SetIdentityRefuses", func(t *testing.T) {
		h := newHarness(t)
		s := h.Open(Config{})
		ident := identified(t, s)
		wantErr(t, "before Start", ident.SetIdentity("t", 1), storage.ErrNotActive)
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		token, instance := ident.Identity()
		for name, err := range map[string]error{
			"empty token":     ident.SetIdentity("", 1),
			"long token":      ident.SetIdentity(strings.Repeat("t", storage.MaxTokenLength+1), 1),
			"id out of range": ident.SetIdentity("t", clock.MaxInstanceID+1),
		} {
			wantErr(t, name, err, storage.ErrInvalidIdentity)
		}
		if t2, i2 := ident.Identity(); t2 != token || i2 != instance {
			t.Fatalf("a refused SetIdentity changed the identity to (%q, %d)", t2, i2)
		}
		s.Close()
		wantErr(t, "after Close", ident.SetIdentity("t", 1), storage.ErrNotActive)
		if t2, _ := ident.Identity(); t2 != token {
			t.Fatalf("identity after Close %q, was %q", t2, token)
		}
	})
	t.Run("SetIdentityWhileWriting", func(t *testing.T) {
		s := fresh(t, newHarness)
		ident := identified(t, s)
		const writers, each = 4, 50
		var wg sync.WaitGroup
		errs := make(chan error, writers*each+50)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := s.Set(fmt.Sprintf("w/%d-%d", w, i), []byte(`1`)); err != nil {
						errs <- err
					}
				}
			}()
		}
		for i := range 50 {
			if err := ident.SetIdentity(fmt.Sprintf("t%d", i), uint16(i%3)); err != nil {
				errs <- err
			}
			ident.Identity()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if token, instance := ident.Identity(); token != "t49" || instance != 49%3 {
			t.Fatalf("identity (%q, %d) after the last SetIdentity", token, instance)
		}
	})
	t.Run("SurvivesRestart", func(t *testing.T) {
		h := newHarness(t)
		if !h.Persistent {
			t.Skip("not a persistent storage")
		}
		s := h.Open(Config{})
		if err := s.Start(storage.Options{}); err != nil {
			t.Fatal(err)
		}
		ident := identified(t, s)
		token, instance := ident.Identity()
		s.Close()
		s2 := start(t, h, Config{}, storage.Options{})
		if t2, i2 := identified(t, s2).Identity(); t2 != token || i2 != instance {
			t.Fatalf("identity (%q, %d) after a restart, was (%q, %d)", t2, i2, token, instance)
		}
		next := (instance + 1) & clock.MaxInstanceID
		if err := identified(t, s2).SetIdentity("set-before-restart", next); err != nil {
			t.Fatal(err)
		}
		mustSet(t, s2, "k", `1`)
		last := stampOf(t, s2, "k")
		s2.Close()
		s3 := start(t, h, Config{}, storage.Options{})
		if t3, i3 := identified(t, s3).Identity(); t3 != "set-before-restart" || i3 != next {
			t.Fatalf("identity (%q, %d) after a restart, want (set-before-restart, %d)", t3, i3, next)
		}
		mustSet(t, s3, "k", `2`)
		if got := stampOf(t, s3, "k"); got <= last || got&clock.MaxInstanceID != int64(next) {
			t.Fatalf("stamp %d after the restart (last %d, want instance %d)", got, last, next)
		}
	})
}
