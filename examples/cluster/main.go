// Command cluster runs a whole pivot cluster in one process: a pivot and two nodes on
// loopback, each on BoltStorage in a temporary folder. It writes on every instance,
// stops the pivot, writes on both nodes (one entry on both, a conflict), restarts the
// pivot, and prints what happened and how long convergence took. It exits 0 when every
// instance ends with the same data, 1 otherwise.
//
//	go run ./examples/cluster          # the scenario, then exit
//	go run ./examples/cluster -keep    # then keep the cluster running; prints URLs
//
// It starts its instances and waits for convergence with the repository's test
// harness (internal/testcluster), as the tests and the benchmark do, so that the
// example's "converged" is the tests' own. examples/pivot and examples/node show the
// wiring of one instance in a program of one's own.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// paths are the keys the example syncs.
var paths = []string{"users/*", "settings", "things/*"}

// instance is one server of the example cluster.
type instance struct {
	name   string
	dir    string
	server *ooo.Server
	db     *ooo.BoltStorage
	result pivot.SetupResult
	run    *testcluster.Instance
	events chan string // keys written on this instance's storage, for latency samples
}

// cluster holds the three instances and the shared config.
type cluster struct {
	cfg   pivot.Config
	pivot *instance
	nodes []*instance
}

func main() {
	keep := flag.Bool("keep", false, "keep the cluster running after the scenario and print URLs to try")
	samples := flag.Int("samples", 200, "convergence latency samples (write on node1, visible on node2)")
	flag.Parse()
	os.Exit(run(*keep, *samples))
}

func run(keep bool, samples int) int {
	dir, err := os.MkdirTemp("", "pivot-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	token := make([]byte, 16)
	_, _ = rand.Read(token)
	c := &cluster{cfg: pivot.Config{
		Keys:       []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:   "things/*",
		Token:      hex.EncodeToString(token),
		ClusterID:  "example",
		BackoffMin: 10 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
	}}
	var table [][3]string
	step := func(what string, d time.Duration, result string) {
		table = append(table, [3]string{what, testcluster.FormatDuration(d), result})
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "error:", err)
		testcluster.PrintSteps(os.Stdout, table)
		return 1
	}
	defer c.stop()

	if c.pivot, err = c.start("pivot", filepath.Join(dir, "pivot"), "127.0.0.1:0", ""); err != nil {
		return fail(err)
	}
	for _, name := range []string{"node1", "node2"} {
		n, err := c.start(name, filepath.Join(dir, name), "127.0.0.1:0", c.pivot.server.Address)
		if err != nil {
			return fail(err)
		}
		c.nodes = append(c.nodes, n)
		// On the pivot, a node registers as an entry under NodesKey.
		if err := write(c.pivot, "things/"+name, map[string]string{"ip": n.server.Address}); err != nil {
			return fail(err)
		}
	}
	step("start a pivot and two nodes on BoltStorage", 0, fmt.Sprintf("pivot %s, nodes %s %s",
		c.pivot.server.Address, c.nodes[0].server.Address, c.nodes[1].server.Address))

	start := time.Now()
	for _, in := range c.all() {
		if err := write(in, "users/"+in.name, map[string]string{"written on": in.name}); err != nil {
			return fail(err)
		}
	}
	if err := write(c.nodes[0], "settings", map[string]any{"theme": "dark"}); err != nil {
		return fail(err)
	}
	if !c.waitConverged(10 * time.Second) {
		return fail(fmt.Errorf("the first writes did not converge:\n%s", c.describe()))
	}
	step("write on every instance, wait until all hold the same data", time.Since(start), "converged")

	lat, err := c.latency(samples)
	if err != nil {
		return fail(err)
	}
	step(fmt.Sprintf("write on node1 → visible on node2 (%d samples)", samples), lat[len(lat)/2],
		fmt.Sprintf("median; p99 %s, max %s", testcluster.FormatDuration(lat[len(lat)*99/100]), testcluster.FormatDuration(lat[len(lat)-1])))

	pivotAddr := c.pivot.server.Address
	c.pivot.close()
	step("stop the pivot", 0, "nodes keep serving")

	start = time.Now()
	for i, n := range c.nodes {
		for j := 0; j < 10; j++ {
			if err := write(n, fmt.Sprintf("users/%s-offline-%d", n.name, j), map[string]int{"n": j}); err != nil {
				return fail(fmt.Errorf("write on %s with the pivot down: %w", n.name, err))
			}
		}
		if err := write(n, "settings", map[string]any{"theme": []string{"blue", "green"}[i]}); err != nil {
			return fail(err)
		}
		if _, err := n.db.Get("users/node1"); err != nil {
			return fail(fmt.Errorf("read on %s with the pivot down: %w", n.name, err))
		}
	}
	if err := n0del(c); err != nil {
		return fail(err)
	}
	step("write 10 entries on each node, both edit settings, node1 deletes users/pivot", time.Since(start),
		"all local writes and reads succeeded with the pivot down")

	start = time.Now()
	if c.pivot, err = c.start("pivot", filepath.Join(dir, "pivot"), pivotAddr, ""); err != nil {
		return fail(err)
	}
	if !c.waitConverged(20 * time.Second) {
		return fail(fmt.Errorf("no convergence after the pivot came back:\n%s", c.describe()))
	}
	step("restart the pivot on the same address, no further writes", time.Since(start), "converged")

	winner, _ := c.pivot.db.Get("settings")
	step("conflict on settings, resolved by last-write-wins", 0, "kept "+compactData(winner))
	entries := len(state(c.pivot.db, true))
	step("entries on every instance", 0, fmt.Sprintf("%d, byte-identical (tombstones included)", entries))
	testcluster.PrintSteps(os.Stdout, table)

	if keep {
		c.printURLs()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
	}
	return 0
}

// n0del deletes, on node1 during the partition, an entry the pivot wrote.
func n0del(c *cluster) error {
	if err := c.nodes[0].db.Del("users/pivot"); err != nil {
		return fmt.Errorf("delete on node1 with the pivot down: %w", err)
	}
	return nil
}

// start runs one instance on addr with its data in dir, as a node of pivotAddr (or as
// the pivot when pivotAddr is "").
func (c *cluster) start(name, dir, addr, pivotAddr string) (*instance, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	in := &instance{name: name, dir: dir, db: &ooo.BoltStorage{Path: dir}, events: make(chan string, 1024)}
	in.server = &ooo.Server{Silence: true, Storage: in.db, Pivot: pivotAddr}
	in.server.OnStorageEvent = func(ev ooo.StorageEvent) {
		select {
		case in.events <- ev.Key:
		default:
		}
	}
	// Nodes are registered by this program (through the storage), never over REST.
	pivot.ProtectNodesKey(in.server, c.cfg.NodesKey, nil)
	run, err := testcluster.Start(testcluster.Spec{Name: name, Addr: addr, Server: in.server, Config: c.cfg})
	if err != nil {
		return nil, err
	}
	in.run, in.result = run, run.Result
	return in, nil
}

func (in *instance) close() { in.run.Close() }

func (c *cluster) all() []*instance {
	return append([]*instance{c.pivot}, c.nodes...)
}

func (c *cluster) stop() {
	for _, in := range c.all() {
		if in != nil {
			in.close()
		}
	}
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
func state(db *ooo.BoltStorage, liveOnly bool) map[string]string {
	out := map[string]string{}
	for _, p := range paths {
		changes, _, err := db.Changes(p, 0, 1<<20)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		for _, ch := range changes {
			if liveOnly && ch.Deleted {
				continue
			}
			out[ch.Key] = entryLine(ch)
		}
	}
	return out
}

func entryLine(ch storage.Change) string {
	if ch.Deleted {
		return fmt.Sprintf("deleted at %d", ch.Version())
	}
	return fmt.Sprintf("%s at %d", ch.Data, ch.Version())
}

// waitConverged waits until every instance holds the same entries and tombstones.
func (c *cluster) waitConverged(timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	feeds := make([]testcluster.Feed, 0, len(c.nodes)+1)
	for _, in := range c.all() {
		feeds = append(feeds, in.run)
	}
	return testcluster.WaitConverged(ctx, feeds, paths, false) == nil
}

// latency writes on node1 and times until node2's storage reports the write.
func (c *cluster) latency(samples int) ([]time.Duration, error) {
	if samples < 1 {
		samples = 1
	}
	a, b := c.nodes[0], c.nodes[1]
	out := make([]time.Duration, 0, samples)
	for i := 0; i < samples; i++ {
		k := fmt.Sprintf("users/latency-%d", i)
		drain(b.events)
		start := time.Now()
		if err := write(a, k, map[string]int{"sample": i}); err != nil {
			return nil, err
		}
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case got := <-b.events:
				if got == k {
					break wait
				}
			case <-timeout:
				return nil, fmt.Errorf("sample %d never reached node2", i)
			}
		}
		out = append(out, time.Since(start))
	}
	for i := 0; i < samples; i++ {
		if err := a.db.Del(fmt.Sprintf("users/latency-%d", i)); err != nil {
			return nil, err
		}
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

// describe lists every instance's state, for a failure report.
func (c *cluster) describe() string {
	var b strings.Builder
	for _, in := range c.all() {
		s := state(in.db, false)
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "%s:\n", in.name)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %-28s %s\n", k, s[k])
		}
		st, _ := json.Marshal(in.result.Status())
		fmt.Fprintf(&b, "  status: %s\n", st)
	}
	return b.String()
}

func (c *cluster) printURLs() {
	p := c.pivot.server.Address
	fmt.Println()
	fmt.Println("The cluster keeps running (Ctrl-C to stop). Try:")
	for _, in := range c.all() {
		fmt.Printf("  %-6s http://%s\n", in.name, in.server.Address)
	}
	n1 := c.nodes[0].server.Address
	fmt.Printf("\n  curl 'http://%s/users/*'\n", p)
	fmt.Printf("  curl -X POST -d '{\"hello\":\"from curl\"}' 'http://%s/users/*'   # then read it on node2\n", n1)
	fmt.Printf("  curl 'http://%s/users/*'\n", c.nodes[1].server.Address)
	fmt.Printf("  subscribe: ws://%s/users/*  (any ooo client, e.g. npm ooo-client)\n", c.nodes[1].server.Address)
}

// compactData returns the data of a stored object, compacted.
func compactData(raw []byte) string {
	var o struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return string(raw)
	}
	var b bytes.Buffer
	if json.Compact(&b, o.Data) != nil {
		return string(o.Data)
	}
	return b.String()
}
