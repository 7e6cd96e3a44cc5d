package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// Sync modes a cluster runs.
const (
	modeDelta = "delta" // pivot.Setup: the library under test
	modeNaive = "naive" // naiveSync: the full-collection baseline
)

// Storages a cluster runs on.
const (
	storeMemory = "memory"
	storeBolt   = "bolt"
)

// Paths every cluster uses.
const (
	syncedPath = "users/*"  // the synced collection
	nodesPath  = "things/*" // NodesKey
)

// cluster is a pivot and its nodes in this process, on loopback, in one sync mode.
type cluster struct {
	mode   string
	store  string
	wire   *wire
	busy   atomic.Int64 // naive mode: work scheduled or running
	dir    string       // bolt files
	logger *slog.Logger
	// fullRead makes every instance's websocket pools re-read and diff their whole value
	// on each broadcast (ooo.Server.Stream.FullRead), the baseline of the websocket
	// scenario.
	fullRead bool

	pivot *instance
	nodes []*instance
}

// instance is one ooo server with sync set up.
type instance struct {
	c         *cluster
	name      string
	server    *ooo.Server
	db        ooo.Database
	rep       storage.Replica
	addr      string
	pivotAddr string
	arrived   *arrivals
	pulled    atomic.Uint64         // the cursor of the node's latest pull of the synced collection
	sync      pivot.SetupResult     // delta mode
	harness   *testcluster.Instance // delta mode: the running instance
	naive     *naiveSync            // naive mode
	stopped   bool
}

// newCluster starts a pivot holding size entries of the synced collection, then n nodes,
// and waits until the nodes hold the collection and the pivot knows them.
func newCluster(mode, store string, n, size int, logger *slog.Logger) (*cluster, error) {
	c := &cluster{mode: mode, store: store, wire: newWire(), logger: logger}
	return c.startAll(n, size)
}

// startAll starts c's pivot holding size entries, then n nodes, as newCluster does.
func (c *cluster) startAll(n, size int) (*cluster, error) {
	if c.store == storeBolt {
		dir, err := os.MkdirTemp("", "pivot-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: bolt folder: %w", err)
		}
		c.dir = dir
	}
	p, err := c.start("pivot", c.newStorage("pivot"), "127.0.0.1:0", "", 0)
	if err != nil {
		c.close()
		return nil, err
	}
	c.pivot = p
	if err := preload(p.rep, size); err != nil {
		c.close()
		return nil, err
	}
	for i := range n {
		name := fmt.Sprintf("node%d", i+1)
		node, err := c.start(name, c.newStorage(name), "127.0.0.1:0", p.addr, size)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		if err := c.register(node); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := c.waitKnown(time.Now().Add(time.Minute)); err != nil {
		c.close()
		return nil, err
	}
	if err := c.quiesce(time.Now().Add(time.Minute)); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// newStorage makes the storage of one instance.
func (c *cluster) newStorage(name string) ooo.Database {
	if c.store == storeBolt {
		return &ooo.BoltStorage{Path: filepath.Join(c.dir, name+".db")}
	}
	return &ooo.MemoryStorage{}
}

// config is the pivot configuration of every delta instance: the defaults, with the
// periodic sync off so every figure comes from triggered syncs alone.
func (c *cluster) config(client *http.Client) pivot.Config {
	return pivot.Config{
		Keys:         []pivot.Key{{Path: syncedPath}},
		NodesKey:     nodesPath,
		Token:        "bench-token",
		ClusterID:    "bench",
		SyncInterval: -1,
		Client:       client,
		Logger:       c.logger,
	}
}

// start runs an instance on addr over db, as the pivot when pivotAddr is "". When want
// is positive it returns once the instance holds want entries of the synced collection.
func (c *cluster) start(name string, db ooo.Database, addr, pivotAddr string, want int) (*instance, error) {
	in := &instance{c: c, name: name, db: db, pivotAddr: pivotAddr, arrived: newArrivals()}
	var filled *distinct
	if want > 0 {
		filled = in.arrived.distinct("users/")
	}
	if err := c.launch(in, addr); err != nil {
		return nil, err
	}
	if filled != nil {
		if _, err := wait(filled.expect(want), time.Minute, name+" holding the collection"); err != nil {
			in.stop()
			return nil, err
		}
	}
	return in, nil
}

// launch sets sync up on a new server over in.db and starts it on addr.
func (c *cluster) launch(in *instance, addr string) error {
	rep, ok := in.db.(storage.Replica)
	if !ok {
		return fmt.Errorf("bench: %T is not a storage.Replica", in.db)
	}
	in.rep = rep
	client := c.wire.client(in.pulled.Store)
	server := &ooo.Server{Silence: true, Storage: in.db, Pivot: in.pivotAddr, Client: client}
	server.OnStorageEvent = in.arrived.event
	server.Stream.FullRead = c.fullRead
	in.sync, in.naive, in.harness = pivot.SetupResult{}, nil, nil
	if c.mode == modeDelta {
		h, err := testcluster.Start(testcluster.Spec{Name: in.name, Addr: addr, Server: server, Config: c.config(client)})
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		in.harness, in.sync = h, h.Result
	} else {
		base := ""
		if in.pivotAddr != "" {
			base = "http://" + in.pivotAddr
		}
		in.naive = newNaiveSync(syncedPath, base, in.db, client, &c.busy)
		in.naive.setup(server)
		if err := server.Start(addr); err != nil {
			return fmt.Errorf("bench: start %s: %w", in.name, err)
		}
		in.naive.start()
	}
	in.server, in.addr, in.stopped = server, server.Address, false
	return nil
}

// stop closes the instance's server, storage and sync.
func (in *instance) stop() {
	if in.stopped || in.server == nil {
		return
	}
	in.stopped = true
	if in.harness != nil {
		in.harness.Close()
		return
	}
	in.server.Close(os.Interrupt)
	in.naive.close()
}

// restart stops the instance and starts it again on the same address over the same
// data (memory data survives Close; a bolt file is reopened). The channel receives the
// time at which want distinct keys under prefix have been written to it since.
func (in *instance) restart(prefix string, want int) (<-chan time.Time, error) {
	in.stop()
	if b, ok := in.db.(*ooo.BoltStorage); ok {
		in.db = &ooo.BoltStorage{Path: b.Path}
	}
	done := in.arrived.distinct(prefix).expect(want)
	return done, in.c.launch(in, in.addr)
}

// register makes the pivot know node: an entry under NodesKey on the pivot, as an
// operator writes it (delta), or the baseline's node list (naive).
func (c *cluster) register(node *instance) error {
	if c.mode == modeNaive {
		c.pivot.naive.addNode(node.addr)
		return nil
	}
	if err := c.pivot.harness.Register(node.harness); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// waitKnown waits until the pivot knows every node (delta); polled, bounded by deadline.
func (c *cluster) waitKnown(deadline time.Time) error {
	if c.mode != modeDelta {
		return nil
	}
	for {
		if len(c.pivot.sync.Status().Nodes) >= len(c.nodes) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("bench: the pivot did not discover every node in time")
		}
		time.Sleep(time.Millisecond) // polling with a deadline, not synchronisation
	}
}

// quiesce waits, after the cluster started, until the nodes have also finished the work
// that needs no request: in delta mode, a node's push rounds read the entries it pulled
// (to skip them) and move its push cursor to the head of its feed, which the node saves
// within pivot's cursor flush interval; a saved cursor with no entry of the synced
// collection after it means the node is done. Polled, bounded by deadline.
func (c *cluster) quiesce(deadline time.Time) error {
	if err := c.settle(time.Until(deadline)); err != nil {
		return err
	}
	if c.mode != modeDelta {
		return nil
	}
	for _, n := range c.live() {
		for {
			var push uint64
			for _, k := range n.sync.Status().Keys {
				if k.Path == syncedPath {
					push = k.PushCursor
				}
			}
			left, _, err := n.rep.Changes(syncedPath, push, 1)
			if err != nil {
				return fmt.Errorf("bench: feed of %s: %w", n.name, err)
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bench: %s did not finish its start-up sync in time", n.name)
			}
			time.Sleep(5 * time.Millisecond) // polling with a deadline, not synchronisation
		}
	}
	return c.settle(time.Until(deadline))
}

// close stops every instance and removes the bolt files.
func (c *cluster) close() {
	for _, n := range c.nodes {
		n.stop()
	}
	if c.pivot != nil {
		c.pivot.stop()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// live lists the nodes that are running.
func (c *cluster) live() []*instance {
	var out []*instance
	for _, n := range c.nodes {
		if !n.stopped {
			out = append(out, n)
		}
	}
	return out
}

// settle waits until the cluster has finished the sync work started so far: no request
// in flight and, in delta mode, every running node's latest pull reached the head of
// the pivot's feed of the synced collection, or the pivot reports the node up to date
// (what follows its pull are its own pushes, which it is not triggered to fetch back;
// in naive mode, no sync or trigger scheduled or running). It wakes when requests end,
// and at least every millisecond.
//
// What it cannot see is work that needs no request: a node skipping, in its push round,
// the entries it just pulled, and the deferred save of its cursors.
func (c *cluster) settle(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if c.wire.inflight.Load() == 0 && c.idle() {
			return nil
		}
		select {
		case <-c.wire.settled:
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("bench: the cluster was still syncing after %s", timeout)
		}
	}
}

// idle reports whether no sync work is left (see settle).
func (c *cluster) idle() bool {
	if c.mode == modeNaive {
		return c.busy.Load() == 0
	}
	var upToDate map[string]bool // by node address, read from the pivot when needed
	for _, n := range c.live() {
		pending, _, err := c.pivot.rep.Changes(syncedPath, n.pulled.Load(), 1)
		if err != nil {
			return false
		}
		if len(pending) == 0 {
			continue
		}
		if upToDate == nil {
			upToDate = map[string]bool{}
			for _, ns := range c.pivot.sync.Status().Nodes {
				upToDate[ns.Address] = ns.UpToDate
			}
		}
		if !upToDate[n.addr] {
			return false
		}
	}
	return true
}

// preload writes size entries of the synced collection straight into a storage.
func preload(rep storage.Replica, size int) error {
	const batch = 5000
	base := rep.Clock().Now() - int64(size)
	for start := 0; start < size; start += batch {
		entries := make([]storage.Entry, 0, batch)
		for i := start; i < min(start+batch, size); i++ {
			entries = append(entries, storage.Entry{Key: entryKey(i), Created: base + int64(i), Data: entryData(i, 0)})
		}
		if _, err := rep.Apply(entries, pivot.Wins); err != nil {
			return fmt.Errorf("bench: preload: %w", err)
		}
	}
	return nil
}

// entryKey is the key of entry i of the collection.
func entryKey(i int) string { return fmt.Sprintf("users/%08d", i) }

// entryData is the data of entry i at revision rev: a small object, about 80 bytes.
func entryData(i, rev int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"name":"user number %d","email":"user%d@example.test","rev":%d}`, i, i, rev))
}

// wait receives from ch within timeout.
func wait(ch <-chan time.Time, timeout time.Duration, what string) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case at := <-ch:
		return at, nil
	case <-t.C:
		return time.Time{}, fmt.Errorf("bench: timed out after %s waiting for %s", timeout, what)
	}
}
