package pivot_test

import (
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

func TestReconcile_PivotDataLostIsRestoredFromNodes(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			c := startCluster(t, kind, 2, testConfig())
			a, b := c.nodes[0], c.nodes[1]
			set(t, a, "users/a", `"from a"`)
			set(t, b, "users/b", `"from b"`)
			set(t, c.pivot, "settings", `{"v":1}`)
			waitConverged(t, c.all(), false)

			// The pivot comes back on the same address with empty storage (a new
			// epoch): a lost disk. Nothing anyone wrote is lost.
			addr := c.pivot.addr
			c.pivot.stop()
			c.pivot = startInstance(t, "pivot", kind.make(t), addr, "", testConfig())
			c.pivot.register(a)
			c.pivot.register(b)
			waitConverged(t, c.all(), true)
			for _, in := range c.all() {
				require.Equal(t, `"from a"`, get(t, in, "users/a"), in.name)
				require.Equal(t, `"from b"`, get(t, in, "users/b"), in.name)
				require.Equal(t, `{"v":1}`, get(t, in, "settings"), in.name)
			}
		})
	}
}

func TestReconcile_NodeRepointedAtAnotherClusterDoesNotLeak(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			cfgA := testConfig()
			cfgA.ClusterID = "cluster-a"
			old := startCluster(t, kind, 1, cfgA)
			node := old.nodes[0]
			set(t, node, "users/old-node-write", `"a"`)
			set(t, old.pivot, "users/old-pivot-write", `"a"`)
			set(t, old.pivot, "settings", `{"cluster":"a"}`)
			waitConverged(t, old.all(), false)
			node.stop()

			cfgB := testConfig()
			cfgB.ClusterID = "cluster-b"
			newPivot := startInstance(t, "pivot-b", kind.make(t), "", "", cfgB)
			set(t, newPivot, "users/new-pivot-write", `"b"`)
			set(t, newPivot, "settings", `{"cluster":"b"}`)
			moved := startInstance(t, "node", kind.reopen(t, node.db), "", newPivot.addr, cfgB)
			newPivot.register(moved)
			set(t, moved, "users/after-the-move", `"b"`)

			waitConverged(t, []*instance{newPivot, moved}, true)
			require.Equal(t, `"b"`, get(t, newPivot, "users/after-the-move"))
			for _, in := range []*instance{newPivot, moved} {
				require.Equal(t, "", get(t, in, "users/old-node-write"), "old cluster's write on %s", in.name)
				require.Equal(t, "", get(t, in, "users/old-pivot-write"), "old cluster's write on %s", in.name)
				require.Equal(t, `{"cluster":"b"}`, get(t, in, "settings"), in.name)
				require.Equal(t, `"b"`, get(t, in, "users/new-pivot-write"), in.name)
			}
		})
	}
}

func TestReconcile_NodeBehindTheTombstoneHorizonDropsDeletedEntries(t *testing.T) {
	// MemoryStorage only: tombstones are collected through its CollectTombstones.
	c := startCluster(t, memoryKind, 2, testConfig())
	a, b := c.nodes[0], c.nodes[1]
	set(t, a, "users/doomed", `1`)
	set(t, a, "users/kept", `1`)
	waitConverged(t, c.all(), false)

	b.stop()
	del(t, a, "users/doomed")
	eventually(t, waitTimeout, func() bool {
		e := entryOrZero(t, c.pivot, "users/doomed")
		return e.Deleted
	}, "the delete reaches the pivot")
	pivotDB := c.pivot.db.(*ooo.MemoryStorage)
	require.True(t, pivotDB.CollectTombstones(time.Now().Add(365*24*time.Hour).UnixNano()) > 0, "tombstones collected")
	require.True(t, pivotDB.Horizon() > 0, "horizon raised")

	b = b.restart(memoryKind)
	c.nodes[1] = b
	set(t, c.pivot, "settings", `"poke"`) // any change triggers the nodes
	waitConverged(t, c.all(), true)
	require.Equal(t, "", get(t, b, "users/doomed"), "a node behind the horizon does not keep a deleted entry")
	require.Equal(t, `1`, get(t, b, "users/kept"))
}

// entryOrZero reads the replicated state of one key, the zero Entry when unknown.
func entryOrZero(t testing.TB, in *instance, k string) storage.Entry {
	t.Helper()
	changes, _, err := in.db.(storage.Replica).Changes(k, 0, 1)
	require.NoError(t, err)
	if len(changes) == 0 {
		return storage.Entry{}
	}
	return changes[0].Entry
}
