package chaos_test

import (
	"testing"
	"time"

	"github.com/benitogf/pivot/internal/testcluster"
)

// Scripted scenarios around tombstone collection, which the random soak leaves out
// (it keeps tombstones, so that it can compare them; see README.md).

// A node that was away while a key was deleted and the tombstone collected on the
// pivot comes back with a cursor below the pivot's horizon: it must resynchronise and
// drop the entry, not keep it or push it back. Its own writes made while away, which
// no delete beats, must survive the resynchronisation.
func TestTombstones_StaleNodeDropsWhatWasDeletedAndCollected(t *testing.T) {
	tm := defaultTimings()
	tm.retention = time.Hour // collected only when the test says so
	c, mo := scriptedWith(t, 2, tm)
	p, away := c.pivot(), c.members[1]
	for _, k := range []string{"items/a", "items/b"} {
		if _, err := p.main.Set(k, []byte(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	mustConverge(t, c, mo, 5*time.Second)

	c.net.Update(away.name, p.name, func(l *testcluster.Link) { l.Mode = testcluster.LinkRefused })
	c.net.Update(p.name, away.name, func(l *testcluster.Link) { l.Mode = testcluster.LinkRefused })
	if _, err := away.main.Set("items/offline", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.main.Del("items/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.main.Set("items/b", []byte(`{"v":3}`)); err != nil {
		t.Fatal(err)
	}
	// Let the other node see the delete, then collect every tombstone everywhere but
	// on the node that is away.
	other := c.members[2]
	if _, err := awaitConvergence(&cluster{members: []*member{p, other}, tm: tm}, mo, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("pivot and the other node: %v", err)
	}
	future := time.Now().Add(2 * time.Hour).UnixNano()
	for _, m := range []*member{p, other} {
		if m.main.CollectTombstones(future) == 0 {
			t.Fatalf("no tombstone collected on %s", m.name)
		}
	}
	if p.main.Horizon() == 0 {
		t.Fatal("the pivot's horizon did not move")
	}
	c.net.HealAll()

	if _, err := awaitState(c, mo, time.Now().Add(5*time.Second), func() bool { return liveConverged(c, mo) }); err != nil {
		t.Fatalf("live entries: %v:\n%s", err, mo.diff(c))
	}
	for _, m := range c.members {
		v := mo.view(m.name, pathItems).entries
		if a, ok := v["items/a"]; ok && !a.Deleted {
			t.Fatalf("items/a came back on %s: %s", m.name, entryString(a))
		}
		if o, ok := v["items/offline"]; !ok || o.Deleted {
			t.Fatalf("the write made while away is missing on %s", m.name)
		}
		if b := v["items/b"]; string(b.Data) != `{"v":3}` {
			t.Fatalf("items/b on %s is %s", m.name, entryString(b))
		}
	}
	if len(mo.violations) > 0 {
		t.Fatalf("violations: %q", mo.violations)
	}
}

// liveConverged reports whether every member holds the same live entries (tombstones
// may have been collected on some and not on others).
func liveConverged(c *cluster, mo *monitor) bool {
	live := func(name, path string) map[string]string {
		out := map[string]string{}
		for k, e := range mo.view(name, path).entries {
			if !e.Deleted {
				out[k] = entryString(e)
			}
		}
		return out
	}
	for _, p := range syncedPaths() {
		first := live(c.members[0].name, p)
		for _, m := range c.members[1:] {
			other := live(m.name, p)
			if len(other) != len(first) {
				return false
			}
			for k, e := range first {
				if other[k] != e {
					return false
				}
			}
		}
	}
	return true
}
