package chaos_test

import (
	"testing"
	"time"

	"github.com/benitogf/pivot/internal/testcluster"
)

// Reproductions of what the soak found, each scripted on the chaos harness so it fails
// deterministically while the bug is there.

// scripted starts a cluster of n nodes for a scripted scenario and returns it with a
// monitor that follows its replicas, once every node is registered everywhere.
func scripted(t *testing.T, n int) (*cluster, *monitor) {
	t.Helper()
	return scriptedWith(t, n, defaultTimings())
}

// scriptedWith is scripted with other timings.
func scriptedWith(t *testing.T, n int, tm timings) (*cluster, *monitor) {
	t.Helper()
	c := newCluster(t, 1, n, tm, testcluster.NewPorts(uint64(time.Now().UnixNano())))
	for _, m := range c.members[1:] {
		if m.operReg {
			k, data := m.registration()
			if _, err := c.pivot().main.Set(k, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	mo := newMonitor()
	ready := func() bool {
		return mo.converged(c) && len(mo.view(c.pivot().name, pathNodes).entries) == n
	}
	if _, err := awaitState(c, mo, time.Now().Add(5*time.Second), ready); err != nil {
		t.Fatalf("the cluster did not settle: %v\n%s", err, mo.diff(c))
	}
	return c, mo
}

// mustConverge waits for every replica to hold the same entries and tombstones.
func mustConverge(t *testing.T, c *cluster, mo *monitor, within time.Duration) {
	t.Helper()
	if _, err := awaitConvergence(c, mo, time.Now().Add(within)); err != nil {
		t.Fatalf("%v:\n%s", err, mo.diff(c))
	}
	if len(mo.violations) > 0 {
		t.Fatalf("violations: %v", mo.violations)
	}
}

// wipe stops m and deletes its data, as when a machine's disk is replaced.
func wipe(t *testing.T, m *member) {
	t.Helper()
	m.stop()
	if err := m.wipe(); err != nil {
		t.Fatal(err)
	}
}

// A node whose first sync (or first after its data was reset) happens when the pivot
// holds a tombstone for a key the node never had must still get that tombstone. The
// reconciliation compared digests of live entries only, found them equal and moved
// the cursor past the tombstone, which then never reached the node.
func TestRegression_FreshNodeGetsTombstonesOfKeysItNeverHad(t *testing.T) {
	c, mo := scripted(t, 1)
	p, node := c.pivot(), c.members[1]
	wipe(t, node)
	if _, err := p.main.Set(pathSettings, []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := p.main.Del(pathSettings); err != nil {
		t.Fatal(err)
	}
	if err := node.start(); err != nil {
		t.Fatal(err)
	}
	mustConverge(t, c, mo, 5*time.Second)
}

// An instance restarted with its wall clock set back further than the max skew must
// still stamp its writes after the ones it stored before: a delete made after the
// restart has to win over the write it deletes. BoltStorage resumed its clock through
// Observe, which refuses a stamp that far ahead of the wall clock, so the clock
// restarted behind the stored stamps: the delete lost to the older write, and the
// write came back from the pivot.
func TestRegression_RestartWithClockSetBackKeepsStampsIncreasing(t *testing.T) {
	c, mo := scripted(t, 1)
	node := c.members[1]
	if _, err := node.main.Set(pathSettings, []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	mustConverge(t, c, mo, 5*time.Second)
	node.stop()
	node.wall.offset.Store(int64(-4 * c.tm.maxSkew))
	if err := node.start(); err != nil {
		t.Fatal(err)
	}
	if err := node.main.Del(pathSettings); err != nil {
		t.Fatal(err)
	}
	node.wall.offset.Store(0)
	mustConverge(t, c, mo, 5*time.Second)
	if st, err := fullState(c.pivot()); err != nil || !st[pathSettings].Deleted {
		t.Fatalf("the delete made after the restart lost: %v %s", err, entryString(st[pathSettings]))
	}
}

// A node whose clock runs far ahead stamps writes the pivot refuses (and must keep
// retrying), but it must still receive everybody else's writes meanwhile: one bad
// clock must not cut its own node off from a whole synced path. The sync round skipped
// the pull of a path whenever its push had been refused, so such a node saw nothing
// new on that path until real time caught up with its stamps (here, an hour).
func TestRegression_NodeWithClockAheadStillPulls(t *testing.T) {
	c, mo := scripted(t, 1)
	p, node := c.pivot(), c.members[1]
	mustConverge(t, c, mo, 5*time.Second)
	node.wall.offset.Store(int64(time.Hour))
	if _, err := node.main.Set("items/ahead", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.main.Set("items/fresh", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	got := func() bool {
		_, ok := mo.view(node.name, pathItems).entries["items/fresh"]
		return ok
	}
	if _, err := awaitState(c, mo, time.Now().Add(5*time.Second), got); err != nil {
		t.Fatalf("the node with a clock an hour ahead never pulled the pivot's write: %v\n%s", err, node.status())
	}
	if _, ok := mo.view(p.name, pathItems).entries["items/ahead"]; ok {
		t.Fatal("the pivot adopted an entry stamped an hour ahead")
	}
}
