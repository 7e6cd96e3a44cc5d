package clock_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo/clock"
)

// wall is a settable wall clock for tests.
type wall struct {
	mu  sync.Mutex
	now int64
}

func (w *wall) get() int64  { w.mu.Lock(); defer w.mu.Unlock(); return w.now }
func (w *wall) set(v int64) { w.mu.Lock(); w.now = v; w.mu.Unlock() }

func TestClock_NowStrictlyIncreases(t *testing.T) {
	w := &wall{now: 1_000_000_000}
	c := clock.New(clock.Options{Wall: w.get, InstanceID: 7})
	last := int64(0)
	for i := 0; i < 1000; i++ {
		if i == 500 {
			w.set(10) // the wall clock steps far back
		}
		s := c.Now()
		if s <= last {
			t.Fatalf("stamp %d = %d, not above %d", i, s, last)
		}
		if s&clock.MaxInstanceID != 7 {
			t.Fatalf("stamp %d carries instance %d, want 7", s, s&clock.MaxInstanceID)
		}
		last = s
	}
}

func TestClock_NowFollowsWallForward(t *testing.T) {
	w := &wall{now: 1_000_000_000}
	c := clock.New(clock.Options{Wall: w.get})
	c.Now()
	w.set(5_000_000_000)
	if s := c.Now(); s < 5_000_000_000 || s > 5_000_000_000+clock.MaxInstanceID+1 {
		t.Fatalf("after a forward jump got %d, want about 5e9", s)
	}
}

func TestClock_DistinctInstancesNeverCollide(t *testing.T) {
	w := &wall{now: 1_000_000_000}
	a := clock.New(clock.Options{Wall: w.get, InstanceID: 1})
	b := clock.New(clock.Options{Wall: w.get, InstanceID: 2})
	seen := map[int64]bool{}
	for i := 0; i < 1000; i++ {
		for _, s := range []int64{a.Now(), b.Now()} {
			if seen[s] {
				t.Fatalf("stamp %d issued twice", s)
			}
			seen[s] = true
		}
	}
}

func TestClock_Observe(t *testing.T) {
	w := &wall{now: 1_000_000_000}
	c := clock.New(clock.Options{Wall: w.get, MaxSkew: time.Second})

	t.Run("jumps past a remote stamp within the skew", func(t *testing.T) {
		remote := w.get() + int64(500*time.Millisecond)
		if err := c.Observe(remote); err != nil {
			t.Fatal(err)
		}
		if s := c.Now(); s <= remote {
			t.Fatalf("stamp %d after observing %d", s, remote)
		}
	})
	t.Run("refuses a stamp beyond the skew", func(t *testing.T) {
		before := c.Last()
		remote := w.get() + int64(2*time.Second)
		err := c.Observe(remote)
		var skew *clock.SkewError
		if !errors.As(err, &skew) || skew.Remote != remote || skew.MaxSkew != time.Second {
			t.Fatalf("Observe = %v, want a *SkewError for %d", err, remote)
		}
		if c.Last() != before {
			t.Fatalf("a refused stamp was adopted: last %d, was %d", c.Last(), before)
		}
	})
	t.Run("a negative max skew accepts anything", func(t *testing.T) {
		open := clock.New(clock.Options{Wall: w.get, MaxSkew: -1})
		if err := open.Observe(w.get() + int64(time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClock_Restore(t *testing.T) {
	w := &wall{now: 1_000_000_000}
	c := clock.New(clock.Options{Wall: w.get, MaxSkew: time.Second})
	own := w.get() + int64(time.Hour) // issued before a restart, wall clock now far behind
	c.Restore(own)
	if s := c.Now(); s <= own {
		t.Fatalf("stamp %d after restoring %d", s, own)
	}
}

func TestClock_SetInstanceID(t *testing.T) {
	w := &wall{now: 1_000_000_000}
	c := clock.New(clock.Options{Wall: w.get, InstanceID: clock.MaxInstanceID})
	last := c.Now()
	// The wall clock stands still, so every stamp after the first is pushed by the last
	// one: a lower id must not make the next stamp sort before it.
	for i, id := range []uint16{0, 5, clock.MaxInstanceID, 1, clock.MaxInstanceID + 1 + 9} {
		c.SetInstanceID(id)
		want := int64(id) & clock.MaxInstanceID
		if got := c.InstanceID(); int64(got) != want {
			t.Fatalf("change %d: InstanceID %d, want %d", i, got, want)
		}
		for j := 0; j < 3; j++ {
			s := c.Now()
			if s <= last {
				t.Fatalf("change %d: stamp %d not above %d", i, s, last)
			}
			if s&clock.MaxInstanceID != want {
				t.Fatalf("change %d: stamp carries instance %d, want %d", i, s&clock.MaxInstanceID, want)
			}
			last = s
		}
	}
}

func TestClock_SetInstanceIDWhileStamping(t *testing.T) {
	c := clock.New(clock.Options{InstanceID: 1})
	const workers, each = 4, 2000
	stamps := make([][]int64, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				stamps[g] = append(stamps[g], c.Now())
			}
		}()
	}
	for i := range 1000 {
		c.SetInstanceID(uint16(1 + i%2))
	}
	wg.Wait()
	seen := make(map[int64]bool, workers*each)
	for g, list := range stamps {
		for i, s := range list {
			if i > 0 && s <= list[i-1] {
				t.Fatalf("worker %d: stamp %d not above %d", g, s, list[i-1])
			}
			if id := s & clock.MaxInstanceID; id != 1 && id != 2 {
				t.Fatalf("stamp carries instance %d, want 1 or 2", id)
			}
			if seen[s] {
				t.Fatalf("stamp %d issued twice", s)
			}
			seen[s] = true
		}
	}
}
