package pivot_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benitogf/pivot"
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

// instance is one running ooo server with pivot set up.
type instance struct {
	t       testing.TB
	name    string
	server  *ooo.Server
	db      ooo.Database
	result  pivot.SetupResult
	addr    string
	pivot   string
	config  pivot.Config
	stopped bool
	mu      sync.Mutex
}

// startInstance starts a server on addr ("" = any loopback port) with db, as the pivot
// when pivotAddr is "" and as a node otherwise.
func startInstance(t testing.TB, name string, db ooo.Database, addr, pivotAddr string, cfg pivot.Config) *instance {
	t.Helper()
	return startServer(t, name, &ooo.Server{Silence: true, Storage: db, Pivot: pivotAddr}, addr, cfg)
}

// startServer sets pivot up on server (whose Storage and Pivot are set) and starts it
// on addr ("" = any loopback port).
func startServer(t testing.TB, name string, server *ooo.Server, addr string, cfg pivot.Config) *instance {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	db, pivotAddr := server.Storage, server.Pivot
	result := pivot.Setup(server, cfg)
	server.BeforeRead = result.BeforeRead
	require.NoError(t, server.Start(addr))
	in := &instance{t: t, name: name, server: server, db: db, result: result,
		addr: server.Address, pivot: pivotAddr, config: cfg}
	t.Cleanup(in.stop)
	return in
}

// stop closes the server (and with it the storage and the sync engine).
func (in *instance) stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return
	}
	in.stopped = true
	in.server.Close(os.Interrupt)
	in.result.Close()
}

// restart starts a new server on the same address over the same data.
func (in *instance) restart(kind storageKind) *instance {
	in.t.Helper()
	in.stop()
	return startInstance(in.t, in.name, kind.reopen(in.t, in.db), in.addr, in.pivot, in.config)
}

// register writes node's address under NodesKey on the pivot, as an operator would.
func (in *instance) register(node *instance) {
	in.t.Helper()
	id := strings.NewReplacer(".", "-", ":", "-").Replace(node.addr)
	_, err := in.db.Set("things/"+id, json.RawMessage(fmt.Sprintf(`{"ip":%q}`, node.addr)))
	require.NoError(in.t, err)
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
	c := &cluster{kind: kind}
	c.pivot = startInstance(t, "pivot", kind.make(t), "", "", cfg)
	for i := 0; i < n; i++ {
		node := startInstance(t, fmt.Sprintf("node%d", i+1), kind.make(t), "", c.pivot.addr, cfg)
		c.pivot.register(node)
		c.nodes = append(c.nodes, node)
	}
	return c
}

// all lists the pivot then the nodes.
func (c *cluster) all() []*instance {
	return append([]*instance{c.pivot}, c.nodes...)
}

// state is the replicated state of every synced key of an instance: key → a line with
// its version, whether it is a tombstone, and its data. Read through the change feed,
// so tombstones count and no BeforeRead runs.
func state(t testing.TB, db ooo.Database, paths []string, liveOnly bool) map[string]string {
	t.Helper()
	rep := db.(storage.Replica)
	out := map[string]string{}
	for _, p := range paths {
		changes, _, err := rep.Changes(p, 0, 1<<20)
		require.NoError(t, err)
		for _, c := range changes {
			if liveOnly && c.Deleted {
				continue
			}
			out[c.Key] = fmt.Sprintf("v=%d deleted=%v data=%s", c.Version(), c.Deleted, c.Data)
		}
	}
	return out
}

// converged reports whether every instance holds the same entries and tombstones.
func converged(t testing.TB, insts []*instance, liveOnly bool) bool {
	t.Helper()
	first := stateDigest(t, insts[0].db, syncedPaths, liveOnly)
	for _, in := range insts[1:] {
		if stateDigest(t, in.db, syncedPaths, liveOnly) != first {
			return false
		}
	}
	return true
}

// stateDigest hashes what state returns, without building it: polling a cluster that
// holds megabytes must not starve the sync it waits for.
func stateDigest(t testing.TB, db ooo.Database, paths []string, liveOnly bool) [sha256.Size]byte {
	t.Helper()
	rep := db.(storage.Replica)
	h := sha256.New()
	for _, p := range paths {
		changes, _, err := rep.Changes(p, 0, 1<<20)
		require.NoError(t, err)
		sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
		for _, c := range changes {
			if liveOnly && c.Deleted {
				continue
			}
			fmt.Fprintf(h, "%s\x00%d\x00%v\x00%d\x00", c.Key, c.Version(), c.Deleted, len(c.Data))
			h.Write(c.Data)
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
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
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !converged(t, insts, liveOnly) {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, in := range insts {
				s := state(t, in.db, syncedPaths, liveOnly)
				keys := make([]string, 0, len(s))
				for k := range s {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				fmt.Fprintf(&b, "%s (%s):\n", in.name, in.addr)
				for _, k := range keys {
					line := s[k]
					if len(line) > 300 {
						line = fmt.Sprintf("%s... (%d bytes)", line[:300], len(line))
					}
					fmt.Fprintf(&b, "  %s %s\n", k, line)
				}
				st, _ := json.Marshal(in.result.Status())
				fmt.Fprintf(&b, "  status %s\n", st)
			}
			t.Fatalf("instances did not converge within %s:\n%s", timeout, b.String())
		}
		<-tick.C
	}
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
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
