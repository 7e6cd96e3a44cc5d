// Command hub runs a cluster served by several pivot processes in one process: three
// NATS JetStream servers (a cluster, the data replicated on all three), two pivot
// processes sharing one natshub bucket, and two nodes on BoltStorage, all on loopback
// with their data in a temporary folder. It writes on every instance, measures a write
// on one node reaching the other through two different pivot processes, stops the
// NATS server that leads the bucket's stream while both nodes keep writing, then the
// pivot process the first node syncs with while they keep writing, and prints what
// happened and how long convergence took. It exits 0 when every instance ends
// with the same data and every write is present everywhere, 1 otherwise.
//
//	go run ./examples/hub
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/natshub"
	"github.com/benitogf/pivot/natshub/localcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// paths are the keys the example syncs.
var paths = []string{"users/*", "settings", "things/*"}

// instance is one ooo server of the example: a pivot process or a node.
type instance struct {
	name   string
	server *ooo.Server
	db     ooo.Database
	result pivot.SetupResult
	nc     *nats.Conn  // a pivot process's NATS connection
	events chan string // keys written on this instance's storage, for latency samples
	once   sync.Once
}

func main() {
	samples := flag.Int("samples", 100, "latency samples (write on node1, visible on node2)")
	writes := flag.Int("writes", 200, "writes on each node while a pivot process stops")
	flag.Parse()
	os.Exit(run(*samples, *writes))
}

func run(samples, writes int) int {
	dir, err := os.MkdirTemp("", "pivot-hub-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	var table [][3]string
	step := func(what string, d time.Duration, result string) {
		table = append(table, [3]string{what, testcluster.FormatDuration(d), result})
	}
	var all []*instance
	defer func() {
		for _, in := range all {
			in.close()
		}
	}()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "error:", err)
		testcluster.PrintSteps(os.Stdout, table)
		return 1
	}

	token := make([]byte, 16)
	_, _ = rand.Read(token)
	cfg := pivot.Config{
		Keys:       []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:   "things/*",
		Token:      hex.EncodeToString(token),
		ClusterID:  "example-hub", // required with several pivot processes
		BackoffMin: 10 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
	}

	start := time.Now()
	js, err := localcluster.Start(filepath.Join(dir, "nats"), 3)
	if err != nil {
		return fail(err)
	}
	defer js.Close()
	var hubs []*instance
	for _, name := range []string{"pivot1", "pivot2"} {
		p, err := startPivot(name, js.URLs(), cfg)
		if err != nil {
			return fail(err)
		}
		hubs = append(hubs, p)
		all = append(all, p)
	}
	addrs := []string{hubs[0].server.Address, hubs[1].server.Address}
	var nodes []*instance
	// Each node syncs first with the pivot process that owns its name (rendezvous
	// hashing of its address): node2 is started again on another port until it lands
	// on the other process than node1, so that its writes cross two processes.
	for _, name := range []string{"node1", "node2"} {
		var n *instance
		for try := 0; ; try++ {
			n, err = startNode(name, filepath.Join(dir, fmt.Sprintf("%s-%d", name, try)), addrs, cfg)
			if err != nil {
				return fail(err)
			}
			if len(nodes) == 0 || try == 9 || n.result.Status().Pivot != nodes[0].result.Status().Pivot {
				break
			}
			n.close()
		}
		nodes = append(nodes, n)
		all = append(all, n)
		// A node registers as an entry under NodesKey, in the shared bucket.
		if err := write(hubs[0], "things/"+name, map[string]string{"ip": n.server.Address}); err != nil {
			return fail(err)
		}
	}
	step("start 3 JetStream servers (R3), 2 pivot processes, 2 nodes on BoltStorage", time.Since(start),
		fmt.Sprintf("pivots %s %s, nodes %s %s", addrs[0], addrs[1], nodes[0].server.Address, nodes[1].server.Address))

	start = time.Now()
	for _, in := range all {
		if err := write(in, "users/"+in.name, map[string]string{"written on": in.name}); err != nil {
			return fail(err)
		}
	}
	if err := waitConverged(all, 20*time.Second); err != nil {
		return fail(fmt.Errorf("the first writes did not converge: %w", err))
	}
	step("write on every instance, wait until all hold the same data", time.Since(start), "converged")

	on := func(n *instance) string { return n.result.Status().Pivot }
	lat, err := latency(nodes[0], nodes[1], samples)
	if err != nil {
		return fail(err)
	}
	via := "via one pivot process"
	if on(nodes[0]) != on(nodes[1]) {
		via = "node1 and node2 on different pivot processes"
	}
	step(fmt.Sprintf("write on node1 → visible on node2 (%d samples)", samples), lat[len(lat)/2],
		fmt.Sprintf("median; p99 %s; %s", testcluster.FormatDuration(lat[len(lat)*99/100]), via))

	// Stop the JetStream server leading the bucket's stream while both nodes write:
	// the hub's writes pause until a new leader is elected, the nodes keep serving.
	leader := js.StreamLeader("KV_example")
	start = time.Now()
	written, err := writeDuring(nodes, "leader", writes, func() {
		if leader >= 0 {
			js.Stop(leader)
		}
	})
	if err != nil {
		return fail(err)
	}
	step(fmt.Sprintf("stop the stream leader (NATS server n%d) while both nodes write %d entries each", leader+1, writes),
		time.Since(start), "every local write succeeded")
	start = time.Now()
	if err := waitConverged(all, 60*time.Second); err != nil {
		return fail(fmt.Errorf("no convergence after the stream leader stopped: %w", err))
	}
	step("wait until every instance holds the same data", time.Since(start),
		fmt.Sprintf("converged; new stream leader n%d", js.StreamLeader("KV_example")+1))

	// Stop node1's pivot process while both nodes write.
	victim := hubs[0]
	if on(nodes[0]) == hubs[1].server.Address {
		victim = hubs[1]
	}
	survivor := hubs[0]
	if survivor == victim {
		survivor = hubs[1]
	}
	start = time.Now()
	more, err := writeDuring(nodes, "pivot", writes, victim.close)
	if err != nil {
		return fail(err)
	}
	written = append(written, more...)
	step(fmt.Sprintf("stop %s (node1's) while both nodes write %d entries each", victim.name, writes), time.Since(start),
		"every local write succeeded")

	start = time.Now()
	rest := []*instance{survivor, nodes[0], nodes[1]}
	if err := waitConverged(rest, 30*time.Second); err != nil {
		return fail(fmt.Errorf("no convergence after %s stopped: %w", victim.name, err))
	}
	st := nodes[0].result.Status()
	step("wait until the rest hold the same data", time.Since(start),
		fmt.Sprintf("converged; node1 now on %s after %d failover(s)", st.Pivot, st.Failovers))

	lost := 0
	for _, in := range rest {
		s := state(in.db)
		for _, k := range written {
			if _, ok := s[k]; !ok {
				lost++
			}
		}
	}
	step("entries on every instance", 0, fmt.Sprintf("%d, byte-identical; %d of %d writes lost",
		len(state(survivor.db)), lost, len(written)))
	testcluster.PrintSteps(os.Stdout, table)
	if lost > 0 {
		return 1
	}
	return 0
}

// writeDuring has every node write n entries (under users/<node>-<tag>-<i>) and calls
// fault once each node has written a quarter of them. It returns the keys written.
func writeDuring(nodes []*instance, tag string, n int, fault func()) ([]string, error) {
	var written []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	quarter := make(chan struct{}, len(nodes))
	for _, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if i == n/4 {
					quarter <- struct{}{}
				}
				k := fmt.Sprintf("users/%s-%s-%03d", node.name, tag, i)
				if err := write(node, k, map[string]int{"i": i}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				written = append(written, k)
				mu.Unlock()
			}
		}()
	}
	for range nodes {
		<-quarter
	}
	fault()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("a write on a node failed: %w", err)
	}
	return written, nil
}

// startPivot starts one pivot process: its own NATS connection, a natshub Storage on
// the shared bucket and a natshub Membership (both replicated on the 3 servers).
func startPivot(name, urls string, cfg pivot.Config) (*instance, error) {
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("%s: connect to NATS: %w", name, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: jetstream: %w", name, err)
	}
	st, err := natshub.New(context.Background(), js, natshub.Config{Bucket: "example", Replicas: 3, Process: name})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: storage: %w", name, err)
	}
	members, err := natshub.NewMembership(context.Background(), js, natshub.MembershipConfig{Bucket: "example_members", Replicas: 3})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: membership: %w", name, err)
	}
	cfg.Membership = members // the engine joins when the server listens, leaves when it stops
	in := &instance{name: name, db: st, nc: nc, events: make(chan string, 1024)}
	return in, in.start(cfg)
}

// startNode starts one node on BoltStorage in dir, with every pivot address.
func startNode(name, dir string, pivots []string, cfg pivot.Config) (*instance, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg.Pivots = pivots
	in := &instance{name: name, db: &ooo.BoltStorage{Path: dir}, events: make(chan string, 1024)}
	return in, in.start(cfg)
}

// start sets pivot up on a new server over in.db and starts it on a loopback port.
func (in *instance) start(cfg pivot.Config) error {
	in.server = &ooo.Server{Silence: true, Storage: in.db}
	in.server.OnStorageEvent = func(ev ooo.StorageEvent) {
		select {
		case in.events <- ev.Key:
		default:
		}
	}
	// Nodes are registered by this program (through the storage), never over REST.
	pivot.ProtectNodesKey(in.server, cfg.NodesKey, nil)
	in.result = pivot.Setup(in.server, cfg)
	if err := in.server.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("start %s: %w", in.name, err)
	}
	return nil
}

// close stops the instance (a pivot process leaves the membership first, then closes
// its storage and its NATS connection). Safe to call more than once.
func (in *instance) close() {
	in.once.Do(func() {
		if in.server != nil {
			in.server.Close(nil)
		}
		if in.nc != nil {
			in.nc.Close()
		}
	})
}

// write stores v at k on in's storage.
func write(in *instance, k string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := in.db.Set(k, b); err != nil {
		return fmt.Errorf("write %s on %s: %w", k, in.name, err)
	}
	return nil
}

// state is every synced entry and tombstone of db, read from its change feed.
func state(db ooo.Database) map[string]string {
	rep := db.(storage.Replica)
	out := map[string]string{}
	for _, p := range paths {
		changes, _, err := rep.Changes(p, 0, 1<<20)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		for _, ch := range changes {
			out[ch.Key] = fmt.Sprintf("%s deleted=%v at %d", ch.Data, ch.Deleted, ch.Version())
		}
	}
	return out
}

// waitConverged waits until every instance holds the same entries and tombstones; the
// error describes every instance's state and status when they do not.
func waitConverged(insts []*instance, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	feeds := make([]testcluster.Feed, len(insts))
	for i, in := range insts {
		feeds[i] = feed{in}
	}
	return testcluster.WaitConverged(ctx, feeds, paths, false)
}

// feed is an instance as the harness reads it: its storage's change feed, its name
// and its status.
type feed struct{ in *instance }

func (f feed) Changes(pattern string, since uint64, limit int) ([]storage.Change, uint64, error) {
	return f.in.db.(storage.Replica).Changes(pattern, since, limit)
}
func (f feed) String() string       { return f.in.name }
func (f feed) Status() pivot.Status { return f.in.result.Status() }

// latency writes on a and times until b's storage reports the write.
func latency(a, b *instance, samples int) ([]time.Duration, error) {
	samples = max(samples, 1)
	out := make([]time.Duration, 0, samples)
	for i := range samples {
		k := fmt.Sprintf("users/latency-%d", i)
		drain(b.events)
		start := time.Now()
		if err := write(a, k, map[string]int{"sample": i}); err != nil {
			return nil, err
		}
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case got := <-b.events:
				if got == k {
					break wait
				}
			case <-timeout:
				sa, _ := json.Marshal(a.result.Status())
				sb, _ := json.Marshal(b.result.Status())
				return nil, fmt.Errorf("sample %d never reached %s\nA %s\nB %s", i, b.name, sa, sb)
			}
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func drain(ch chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
