package pivot_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// kinds are the storages every end-to-end test runs on.
func kinds() []storageKind {
	return storageKinds
}

func TestSync_WritesUpdatesDeletesReachEveryone(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			c := startCluster(t, kind, 2, testConfig())
			p, a, b := c.pivot, c.nodes[0], c.nodes[1]

			set(t, p, "users/p", `{"from":"pivot"}`)
			set(t, a, "users/a", `{"from":"a"}`)
			set(t, b, "users/b", `{"from":"b"}`)
			set(t, a, "settings", `{"theme":"dark"}`)
			waitConverged(t, c.all(), false)
			for _, in := range c.all() {
				require.Equal(t, `{"from":"b"}`, get(t, in, "users/b"), in.name)
				require.Equal(t, `{"theme":"dark"}`, get(t, in, "settings"), in.name)
			}

			set(t, b, "users/a", `{"from":"a","edited":"b"}`)
			set(t, p, "settings", `{"theme":"light"}`)
			del(t, a, "users/p")
			waitConverged(t, c.all(), false)
			for _, in := range c.all() {
				require.Equal(t, `{"from":"a","edited":"b"}`, get(t, in, "users/a"), in.name)
				require.Equal(t, `{"theme":"light"}`, get(t, in, "settings"), in.name)
				require.Equal(t, "", get(t, in, "users/p"), "deleted on %s", in.name)
			}
			st := a.result.Status()
			require.Equal(t, pivot.RoleNode, st.Role)
			require.True(t, st.PivotHealthy)
			require.True(t, st.PushedEntries > 0, "pushed entries counted")
		})
	}
}

func TestSync_ExternalStorageWiredAsReadme(t *testing.T) {
	cfg := testConfig()
	// start runs one instance exactly as the README's usage shows it.
	start := func(pivotAddress string) (*ooo.Server, *ooo.MemoryStorage) {
		authStorage := &ooo.MemoryStorage{}
		server := &ooo.Server{Silence: true}
		server.Pivot = pivotAddress // "" on the pivot
		config := cfg
		config.Keys = []pivot.Key{{Path: "users/*", Database: authStorage}, {Path: "settings"}}
		result := pivot.Setup(server, config)
		server.BeforeRead = result.BeforeRead
		require.NoError(t, authStorage.Start(ooo.StorageOpt{BeforeRead: result.BeforeRead}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for event := range authStorage.Watch() {
				result.SyncCallback(event)
			}
		}()
		require.NoError(t, server.Start("127.0.0.1:0"))
		t.Cleanup(func() {
			server.Close(nil)
			authStorage.Close()
			<-done
		})
		return server, authStorage
	}
	pivotServer, pivotAuth := start("")
	nodeA, authA := start(pivotServer.Address)
	nodeB, authB := start(pivotServer.Address)
	// On the pivot, each node registers as an entry under NodesKey.
	_, err := pivotServer.Storage.Set("things/a", json.RawMessage(fmt.Sprintf(`{"ip":%q}`, nodeA.Address)))
	require.NoError(t, err)
	_, err = pivotServer.Storage.Set("things/b", json.RawMessage(fmt.Sprintf(`{"ip":%q}`, nodeB.Address)))
	require.NoError(t, err)

	_, err = authA.Set("users/alice", json.RawMessage(`{"name":"alice"}`))
	require.NoError(t, err)
	_, err = nodeB.Storage.Set("settings", json.RawMessage(`{"v":1}`))
	require.NoError(t, err)
	_, err = pivotAuth.Set("users/root", json.RawMessage(`{"name":"root"}`))
	require.NoError(t, err)

	auths := []*ooo.MemoryStorage{pivotAuth, authA, authB}
	servers := []*ooo.Server{pivotServer, nodeA, nodeB}
	eventually(t, waitTimeout, func() bool {
		for i := range auths {
			for _, k := range []string{"users/alice", "users/root"} {
				if _, err := auths[i].Get(k); err != nil {
					return false
				}
			}
			if _, err := servers[i].Storage.Get("settings"); err != nil {
				return false
			}
		}
		return true
	}, "users on the external storage and settings on the server storage reach every instance")

	require.NoError(t, authB.Del("users/alice"))
	eventually(t, waitTimeout, func() bool {
		for _, a := range auths {
			if _, err := a.Get("users/alice"); err == nil {
				return false
			}
		}
		return true
	}, "a delete on the external storage reaches every instance")
}

func TestSync_PivotDownNodesServeThenConverge(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			c := startCluster(t, kind, 2, testConfig())
			a, b := c.nodes[0], c.nodes[1]
			set(t, a, "users/before", `1`)
			waitConverged(t, c.all(), false)

			c.pivot.stop()
			// Nodes keep serving reads and writes with the pivot gone.
			set(t, a, "users/a-offline", `"a"`)
			set(t, b, "users/b-offline", `"b"`)
			set(t, b, "settings", `{"offline":true}`)
			require.Equal(t, `"a"`, get(t, a, "users/a-offline"))
			require.Equal(t, `1`, get(t, b, "users/before"))
			require.Equal(t, `{"offline":true}`, get(t, b, "settings"))
			eventually(t, waitTimeout, func() bool { return !a.result.Status().PivotHealthy },
				"node a notices the pivot is down")
			// A read while the pivot is known down does not wait for it.
			require.Equal(t, `"b"`, get(t, b, "users/b-offline"))

			// Restarted on the same address, with no further reads or writes, the
			// cluster converges by itself.
			c.pivot = c.pivot.restart(kind)
			waitConverged(t, c.all(), false)
			require.Len(t, state(t, c.pivot.db, []string{"users/*"}, true), 3)
		})
	}
}

func TestSync_ConcurrentWritesDuringPartitionPickTheLWWWinner(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			c := startCluster(t, kind, 2, testConfig())
			a, b := c.nodes[0], c.nodes[1]
			set(t, a, "users/x", `"original"`)
			waitConverged(t, c.all(), false)

			c.pivot.stop()
			set(t, a, "users/x", `"written on a"`)
			set(t, b, "users/x", `"written on b"`)
			ea := entry(t, a, "users/x")
			eb := entry(t, b, "users/x")
			winner := ea
			if pivot.Wins(eb, ea) {
				winner = eb
			}

			c.pivot = c.pivot.restart(kind)
			waitConverged(t, c.all(), false)
			for _, in := range c.all() {
				require.Equal(t, string(winner.Data), get(t, in, "users/x"), in.name)
			}
		})
	}
}

func TestSync_DeleteDuringPartitionIsNotResurrected(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			c := startCluster(t, kind, 2, testConfig())
			a, b := c.nodes[0], c.nodes[1]
			set(t, b, "users/doomed", `"alive"`)
			set(t, b, "users/kept", `"alive"`)
			waitConverged(t, c.all(), false)

			c.pivot.stop()
			del(t, a, "users/doomed") // b still holds a stale copy
			// b's stale copy is read and even re-saved identically elsewhere: nothing
			// about it is newer than the delete.
			require.Equal(t, `"alive"`, get(t, b, "users/doomed"))
			b.stop()
			b = b.restart(kind)
			c.nodes[1] = b

			c.pivot = c.pivot.restart(kind)
			waitConverged(t, c.all(), false)
			for _, in := range c.all() {
				require.Equal(t, "", get(t, in, "users/doomed"), in.name)
				require.Equal(t, `"alive"`, get(t, in, "users/kept"), in.name)
			}
		})
	}
}

func TestSync_BurstOfWritesAllArrive(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.BatchSize = 64 // several batches per round
			c := startCluster(t, kind, 2, cfg)
			a, b := c.nodes[0], c.nodes[1]
			const n = 1000
			for i := 0; i < n; i++ {
				set(t, a, fmt.Sprintf("users/u%04d", i), fmt.Sprintf(`{"i":%d}`, i))
			}
			eventually(t, waitTimeout, func() bool {
				return len(state(t, b.db, []string{"users/*"}, true)) == n
			}, "all %d writes reach node b", n)
			waitConverged(t, c.all(), false)
		})
	}
}

// entry reads the replicated state of one key of an instance.
func entry(t testing.TB, in *instance, k string) storage.Entry {
	t.Helper()
	changes, _, err := in.db.(storage.Replica).Changes(k, 0, 1)
	require.NoError(t, err)
	require.Equal(t, 1, len(changes), "changes of %s", k)
	return changes[0].Entry
}

func TestSync_NodeRestartedDuringPartitionKeepsOfflineWrites(t *testing.T) {
	kind := boltKind
	c := startCluster(t, kind, 2, testConfig())
	a, b := c.nodes[0], c.nodes[1]
	set(t, a, "users/before", `"synced"`)
	waitConverged(t, c.all(), false)

	c.pivot.stop()
	set(t, a, "users/offline-1", `"written offline"`)
	set(t, a, "settings", `{"offline":true}`)
	del(t, a, "users/before")
	// The node process restarts while the pivot is still away.
	a = a.restart(kind)
	c.nodes[0] = a
	require.Equal(t, `"written offline"`, get(t, a, "users/offline-1"), "offline write survives the restart")
	set(t, a, "users/offline-2", `"after restart"`)

	c.pivot = c.pivot.restart(kind)
	waitConverged(t, c.all(), false)
	for _, in := range []*instance{c.pivot, b} {
		require.Equal(t, `"written offline"`, get(t, in, "users/offline-1"), in.name)
		require.Equal(t, `"after restart"`, get(t, in, "users/offline-2"), in.name)
		require.Equal(t, `{"offline":true}`, get(t, in, "settings"), in.name)
		require.Equal(t, "", get(t, in, "users/before"), in.name)
	}
}

func TestSync_PeriodicSyncWithoutTriggers(t *testing.T) {
	cfg := testConfig()
	cfg.SyncInterval = 10 * time.Millisecond
	cfg.ReadBudget = -1
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	// Not registered under NodesKey: the pivot cannot trigger it, and it reads
	// nothing, so only its periodic anti-entropy can bring the write.
	node := startInstance(t, "node", memoryKind.make(t), "", p.addr, cfg)
	set(t, p, "users/periodic", `"tick"`)
	eventually(t, waitTimeout, func() bool {
		return state(t, node.db, []string{"users/*"}, true)["users/periodic"] != ""
	}, "the periodic sync pulls the pivot's write")
}

func TestSync_BeforeReadPullsAndNeverWaitsForADownPivot(t *testing.T) {
	cfg := testConfig()
	cfg.ReadBudget = time.Hour // a read that waited for a down pivot would hang the test
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	node := startInstance(t, "node", memoryKind.make(t), "", p.addr, cfg)
	eventually(t, waitTimeout, func() bool { return node.result.Status().PivotHealthy }, "first sync")

	// Not registered, no periodic sync: only reads can fetch this write. (Reads
	// right after a pull of the same path skip pulling, hence the polling.)
	set(t, p, "users/on-read", `"fresh"`)
	eventually(t, waitTimeout, func() bool { return get(t, node, "users/on-read") == `"fresh"` },
		"a read pulls first")

	p.stop()
	set(t, node, "users/local", `1`) // the push fails: the node learns the pivot is down
	eventually(t, waitTimeout, func() bool { return !node.result.Status().PivotHealthy }, "pivot down noticed")
	require.Equal(t, `1`, get(t, node, "users/local"), "a read with the pivot known down returns at once")
}

func TestSync_PeriodicSyncStillPullsWhileTheNodeKeepsWriting(t *testing.T) {
	cfg := testConfig()
	cfg.SyncInterval = 300 * time.Millisecond // far longer than the gap between writes
	cfg.ReadBudget = -1
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	node := startInstance(t, "node", memoryKind.make(t), "", p.addr, cfg)
	eventually(t, waitTimeout, func() bool { return node.result.Status().PivotHealthy }, "first sync")
	set(t, p, "users/from-pivot", `"tick"`)
	i := 0
	eventually(t, waitTimeout, func() bool {
		// Local writes keep scheduling push rounds faster than the interval.
		i++
		set(t, node, "settings", fmt.Sprint(i))
		return state(t, node.db, []string{"users/*"}, true)["users/from-pivot"] != ""
	}, "a node busy with its own writes still pulls on its interval")
}

// A cursor past the pivot's head in the pivot's own epoch (a node restored from a copy
// taken in a later state, or a pull with an old cursor) is never trusted: the node
// reconciles and receives everything, where it used to wait at that position forever.
func TestSync_CursorPastThePivotsHeadReconciles(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	for i := range 20 {
		set(t, p, fmt.Sprintf("users/u%02d", i), fmt.Sprintf(`{"u":%d}`, i))
	}
	db := &ooo.MemoryStorage{}
	require.NoError(t, db.Start(ooo.StorageOpt{}))
	pivotEpoch := p.db.(storage.Replica).Epoch()
	for _, path := range []string{"users/*", "settings", "things/*"} {
		raw := fmt.Sprintf(`{"cluster":"id:%s","localEpoch":%q,"pivotEpoch":%q,"pull":1000,"push":0}`, cfg.ClusterID, db.Epoch(), pivotEpoch)
		require.NoError(t, db.SaveCursor("pivot/"+path, []byte(raw)))
	}
	node := startInstance(t, "node", db, "", p.addr, cfg)
	p.register(node)
	waitConverged(t, []*instance{p, node}, false)
	require.Len(t, state(t, node.db, []string{"users/*"}, true), 20, "entries on the node")
}

// The pivot does not take a pull from past its head for a pull to its head: it would
// believe the node up to date, and let its next push move its cursor over changes it
// never received (found by the chaos soak after a pivot lost its disk).
func TestChanges_APullFromPastTheHeadIsNotRecorded(t *testing.T) {
	cfg := testConfig()
	p := startInstance(t, "pivot", &ooo.MemoryStorage{}, "", "", cfg)
	node := "127.0.0.1:1" // a registered node that never runs: only its requests are sent
	_, err := p.db.Set("things/n1", json.RawMessage(fmt.Sprintf(`{"ip":%q}`, node)))
	require.NoError(t, err)
	set(t, p, "users/a", `{"a":1}`)
	eventually(t, waitTimeout, func() bool { return len(p.result.Status().Nodes) == 1 }, "the pivot knows the node")
	for _, path := range []string{"users/*", "settings", "things/*"} {
		status, body := call(t, p, http.MethodGet, "/changes", url.Values{"key": {path}, "since": {"1000"}}, "", map[string]string{pivot.HeaderNode: node})
		require.Equal(t, http.StatusOK, status, body)
		require.True(t, strings.Contains(body, `"next":1000`), "next stays at since: %s", body)
	}
	for _, n := range p.result.Status().Nodes {
		require.True(t, !n.UpToDate, "the node is not taken for up to date: %+v", n)
	}
}

// Issue 16, item 1.2 (upstream pivot's TestBasicPivotSync): a read on a node that starts
// after a write on the pivot was acknowledged returns it, every time, even when reads
// follow each other within milliseconds (a pull that started before the write does
// not count for the next read).
func TestSync_ReadAfterAnAcknowledgedWriteSeesIt(t *testing.T) {
	cfg := testConfig()
	cfg.ReadBudget = 2 * time.Second // generous: the test is about staleness, not speed
	p := startInstance(t, "pivot", memoryKind.make(t), "", "", cfg)
	node := startInstance(t, "node", memoryKind.make(t), "", p.addr, cfg)
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 1; i <= 50; i++ {
		want := fmt.Sprintf(`{"i":%d}`, i)
		req, err := http.NewRequest(http.MethodPost, "http://"+p.addr+"/settings", strings.NewReader(want))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "write %d on the pivot", i)
		resp, err = client.Get("http://" + node.addr + "/settings")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Contains(t, string(body), want, "read %d on the node", i)
	}
}
