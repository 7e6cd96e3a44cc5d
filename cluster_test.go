package pivot_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/stretchr/testify/require"
)

// waitTimeout bounds every eventually in these tests. It is a deadline for failure,
// not a measurement: passing runs take milliseconds.
const waitTimeout = 15 * time.Second

// eventually polls cond until it holds or timeout passes, then fails the test.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %s", timeout, fmt.Sprintf(format, args...))
		}
		<-tick.C
	}
}

// storageKind makes the storages of one test run.
type storageKind struct {
	name string
	// make returns a new storage; reopen returns a storage over the same data (for a
	// restart), given the previous one (already closed).
	make   func(t testing.TB) ooo.Database
	reopen func(t testing.TB, old ooo.Database) ooo.Database
}

// memoryKind keeps data in memory; a restart reuses the same (closed) value, whose data
// survives Close.
var memoryKind = storageKind{
	name:   "memory",
	make:   func(testing.TB) ooo.Database { return &ooo.MemoryStorage{} },
	reopen: func(_ testing.TB, old ooo.Database) ooo.Database { return old },
}

// syncedPaths are the paths testConfig syncs.
var syncedPaths = []string{"users/*", "settings", "things/*"}

// testConfig is the config every instance of a test cluster uses, with short backoffs
// so a healed partition is noticed quickly.
func testConfig() pivot.Config {
	return pivot.Config{
		Keys:           []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:       "things/*",
		Token:          "s3cret-token-for-tests",
		ClusterID:      "test-cluster",
		SyncInterval:   -1, // tests prove triggers and backoff, not the periodic timer
		BackoffMin:     2 * time.Millisecond,
		BackoffMax:     50 * time.Millisecond,
		RequestTimeout: 2 * time.Second,
	}
}

// instance is one running ooo server with pivot set up: the shared harness's Instance
// (internal/testcluster) with the test that owns it.
type instance struct {
	t      testing.TB
	inst   *testcluster.Instance
	name   string
	server *ooo.Server
	db     ooo.Database
	result pivot.SetupResult
	addr   string
	pivot  string
	config pivot.Config
}

// startInstance starts a server on addr ("" = any loopback port) with db, as the pivot
// when pivotAddr is "" and as a node otherwise.
func startInstance(t testing.TB, name string, db ooo.Database, addr, pivotAddr string, cfg pivot.Config) *instance {
	t.Helper()
	return started(t, testcluster.Spec{Name: name, Addr: addr, Pivot: pivotAddr, Storage: db, Config: cfg})
}

// startServer sets pivot up on server (whose Storage and Pivot are set) and starts it
// on addr ("" = any loopback port).
func startServer(t testing.TB, name string, server *ooo.Server, addr string, cfg pivot.Config) *instance {
	t.Helper()
	return started(t, testcluster.Spec{Name: name, Addr: addr, Server: server, Config: cfg})
}

// started starts spec and stops it when the test ends.
func started(t testing.TB, spec testcluster.Spec) *instance {
	t.Helper()
	inst, err := testcluster.Start(spec)
	require.NoError(t, err)
	t.Cleanup(inst.Close)
	return wrap(t, inst)
}

func wrap(t testing.TB, inst *testcluster.Instance) *instance {
	return &instance{t: t, inst: inst, name: inst.Spec.Name, server: inst.Server, db: inst.DB,
		result: inst.Result, addr: inst.Addr, pivot: inst.Server.Pivot, config: inst.Spec.Config}
}

// stop closes the server (and with it the storage and the sync engine).
func (in *instance) stop() { in.inst.Close() }

// restart starts a new server on the same address over the same data.
func (in *instance) restart(kind storageKind) *instance {
	in.t.Helper()
	in.stop()
	return startInstance(in.t, in.name, kind.reopen(in.t, in.db), in.addr, in.pivot, in.config)
}

// register writes node's address under NodesKey on the pivot, as an operator would.
func (in *instance) register(node *instance) {
	in.t.Helper()
	require.NoError(in.t, in.inst.Register(node.inst))
}

// cluster is a pivot and its nodes.
type cluster struct {
	pivot *instance
	nodes []*instance
	kind  storageKind
}

// startCluster starts a pivot and n registered nodes.
func startCluster(t testing.TB, kind storageKind, n int, cfg pivot.Config) *cluster {
	t.Helper()
	tc, err := testcluster.StartCluster(n, func(i int) testcluster.Spec {
		name := "pivot"
		if i > 0 {
			name = fmt.Sprintf("node%d", i)
		}
		return testcluster.Spec{Name: name, Storage: kind.make(t), Config: cfg}
	})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	c := &cluster{kind: kind, pivot: wrap(t, tc.Pivot)}
	for _, node := range tc.Nodes {
		c.nodes = append(c.nodes, wrap(t, node))
	}
	return c
}

// all lists the pivot then the nodes.
func (c *cluster) all() []*instance {
	return append([]*instance{c.pivot}, c.nodes...)
}

// feeds lists the instances as the harness's feeds.
func feeds(insts []*instance) []testcluster.Feed {
	out := make([]testcluster.Feed, len(insts))
	for i, in := range insts {
		out[i] = in.inst
	}
	return out
}

// state is the replicated state of every synced key of an instance: key → a line with
// its version, whether it is a tombstone, and its data (testcluster.State).
func state(t testing.TB, db ooo.Database, paths []string, liveOnly bool) map[string]string {
	t.Helper()
	s, err := testcluster.State(db.(storage.Replica), paths, liveOnly)
	require.NoError(t, err)
	return s
}

// converged reports whether every instance holds the same entries and tombstones.
func converged(t testing.TB, insts []*instance, liveOnly bool) bool {
	t.Helper()
	ok, err := testcluster.Converged(feeds(insts), syncedPaths, liveOnly)
	require.NoError(t, err)
	return ok
}

// waitConverged waits until every instance holds the same state, and describes the
// difference when it does not happen.
func waitConverged(t testing.TB, insts []*instance, liveOnly bool) {
	t.Helper()
	waitConvergedWithin(t, insts, liveOnly, waitTimeout)
}

// waitConvergedWithin is waitConverged with another deadline.
func waitConvergedWithin(t testing.TB, insts []*instance, liveOnly bool, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	require.NoError(t, testcluster.WaitConverged(ctx, feeds(insts), syncedPaths, liveOnly))
}

// get reads a key through the storage (BeforeRead included), "" when missing.
func get(t testing.TB, in *instance, k string) string {
	t.Helper()
	raw, err := in.db.Get(k)
	if err != nil {
		return ""
	}
	var o struct {
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &o))
	return string(o.Data)
}

// set writes a key through the storage.
func set(t testing.TB, in *instance, k, data string) {
	t.Helper()
	_, err := in.db.Set(k, json.RawMessage(data))
	require.NoError(t, err, "set %s on %s", k, in.name)
}

// del deletes a key through the storage.
func del(t testing.TB, in *instance, k string) {
	t.Helper()
	require.NoError(t, in.db.Del(k), "del %s on %s", k, in.name)
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := testcluster.FreeAddr()
	require.NoError(t, err)
	return addr
}

// stateDigest hashes an instance's replicated state (testcluster.Digest).
func stateDigest(t testing.TB, db ooo.Database, paths []string, liveOnly bool) [sha256.Size]byte {
	t.Helper()
	d, err := testcluster.Digest(db.(storage.Replica), paths, liveOnly)
	require.NoError(t, err)
	return d
}
