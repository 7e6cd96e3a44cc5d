package natshub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/natshub"
	"github.com/benitogf/pivot/natshub/localcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// waitTimeout bounds every wait of these tests: a deadline for failure, not a
// measurement.
const waitTimeout = 30 * time.Second

// eventually polls cond until it holds, failing t after waitTimeout.
func eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %s", waitTimeout, fmt.Sprintf(format, args...))
		}
		<-tick.C
	}
}

// hubConfig is the pivot config of every instance of these tests.
func hubConfig() pivot.Config {
	return pivot.Config{
		Keys:           []pivot.Key{{Path: "users/*"}, {Path: "settings"}},
		NodesKey:       "things/*",
		Token:          "natshub-test-token-0123456789",
		ClusterID:      "natshub-test",
		SyncInterval:   -1,
		BackoffMin:     5 * time.Millisecond,
		BackoffMax:     100 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
	}
}

// running is one ooo server with pivot set up.
type running struct {
	name   string
	server *ooo.Server
	db     ooo.Database
	result pivot.SetupResult
	nc     *nats.Conn // a pivot process's
}

func (r *running) stop() { r.server.Close(os.Interrupt) }

// kill stops a pivot process as a crash would, as far as the others can tell: its NATS
// connection goes first, so it can neither leave the membership nor write again, and
// the others learn it is gone when its lease expires.
func (r *running) kill() {
	r.nc.Close()
	r.server.Close(os.Interrupt)
}

// startPivotProcess starts a pivot process over the JetStream cluster at urls, on addr
// ("" for any loopback port): its own NATS connection, a Storage on the shared bucket,
// and a Membership on the shared members bucket (a lease of one second).
func startPivotProcess(t testing.TB, name, urls, addr string) *running {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	must(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must(t, err)
	st, err := natshub.New(context.Background(), js, natshub.Config{Bucket: "hub", Replicas: 3, Process: name})
	must(t, err)
	members, err := natshub.NewMembership(context.Background(), js, natshub.MembershipConfig{Bucket: "hub_members", Replicas: 3, Memory: true, Lease: time.Second})
	must(t, err)
	cfg := hubConfig()
	cfg.Membership = members
	server := &ooo.Server{Silence: true, Storage: st}
	result := pivot.Setup(server, cfg)
	must(t, server.Start(orLoopback(addr)))
	r := &running{name: name, server: server, db: st, result: result, nc: nc}
	t.Cleanup(r.stop)
	return r
}

// startNode starts a node on db (a new MemoryStorage when nil) and addr ("" for any
// loopback port), with every pivot address.
func startNode(t testing.TB, name string, pivots []string, db ooo.Database, addr string) *running {
	t.Helper()
	cfg := hubConfig()
	cfg.Pivots = pivots
	if db == nil {
		db = &ooo.MemoryStorage{}
	}
	server := &ooo.Server{Silence: true, Storage: db}
	result := pivot.Setup(server, cfg)
	must(t, server.Start(orLoopback(addr)))
	r := &running{name: name, server: server, db: server.Storage, result: result}
	t.Cleanup(r.stop)
	return r
}

// orLoopback is addr, or any loopback port when addr is "".
func orLoopback(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// must fails t when err is not nil.
func must(t testing.TB, err error, what ...any) {
	t.Helper()
	if err != nil {
		if len(what) > 0 {
			t.Fatalf("%s: %v", fmt.Sprintf(what[0].(string), what[1:]...), err)
		}
		t.Fatal(err)
	}
}

// entries is the replicated state of the synced keys of db, tombstones included.
func entries(t testing.TB, db ooo.Database) map[string]string {
	t.Helper()
	rep := db.(storage.Replica)
	out := map[string]string{}
	for _, p := range []string{"users/*", "settings", "things/*"} {
		changes, _, err := rep.Changes(p, 0, 1<<20)
		must(t, err)
		for _, c := range changes {
			out[c.Key] = fmt.Sprintf("v=%d deleted=%v data=%s", c.Version(), c.Deleted, c.Data)
		}
	}
	return out
}

// converged reports whether every instance holds the same entries.
func converged(t testing.TB, all []*running) bool {
	first := entries(t, all[0].db)
	for _, r := range all[1:] {
		if !mapsEqual(first, entries(t, r.db)) {
			return false
		}
	}
	return true
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// End to end over NATS: two pivot processes over one bucket replicated on a 3-server
// JetStream cluster, three nodes. Stopping one pivot process moves its nodes to the
// other (they fail over with their cursors), and every write made before, during and
// after reaches every node and the bucket.
//
// Stopped, the process leaves the membership at once; killed (its NATS connection cut
// first, so it cannot leave), the others take its nodes over when its lease expires.
func TestSeveralPivotsOverJetStream_StopOneProcess(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "stop"
		if kill {
			name = "kill"
		}
		t.Run(name, func(t *testing.T) { stopOneProcess(t, kill) })
	}
}

func stopOneProcess(t *testing.T, kill bool) {
	cluster, err := localcluster.Start(t.TempDir(), 3)
	must(t, err)
	t.Cleanup(cluster.Close)
	p1 := startPivotProcess(t, "p1", cluster.URLs(), "")
	p2 := startPivotProcess(t, "p2", cluster.URLs(), "")
	eventually(t, func() bool {
		return len(p1.result.Status().Members) == 2 && len(p2.result.Status().Members) == 2
	}, "both pivot processes joined")
	addrs := []string{p1.server.Address, p2.server.Address}

	var nodes []*running
	for i := range 3 {
		n := startNode(t, fmt.Sprintf("node%d", i+1), addrs, nil, "")
		id := strings.NewReplacer(".", "-", ":", "-").Replace(n.server.Address)
		_, err := p1.db.Set("things/"+id, json.RawMessage(fmt.Sprintf(`{"ip":%q}`, n.server.Address)))
		must(t, err)
		nodes = append(nodes, n)
	}
	var written []string
	write := func(r *running, k string) {
		_, err := r.db.Set(k, json.RawMessage(fmt.Sprintf(`{"by":%q}`, r.name)))
		must(t, err, "write %s on %s", k, r.name)
		written = append(written, k)
	}
	for _, n := range nodes {
		write(n, "users/"+n.name+"-before")
	}
	write(p2, "users/hub-before")
	eventually(t, func() bool { return converged(t, append(slices.Clone(nodes), p1, p2)) }, "converged before the stop")
	merges := map[string]int64{}
	for _, n := range nodes {
		merges[n.name] = n.result.Metrics().Reconciliations["merge"]
	}

	// Stop the process that most nodes sync with.
	count := map[string]int{}
	for _, n := range nodes {
		count[n.result.Status().Pivot]++
	}
	victim, survivor := p1, p2
	if count[p2.server.Address] > count[p1.server.Address] {
		victim, survivor = p2, p1
	}
	var moved []*running
	for _, n := range nodes {
		if n.result.Status().Pivot == victim.server.Address {
			moved = append(moved, n)
		}
	}
	if kill {
		victim.kill()
	} else {
		victim.stop()
	}
	for _, n := range nodes {
		write(n, "users/"+n.name+"-during")
	}
	write(survivor, "users/hub-during")
	eventually(t, func() bool { return len(survivor.result.Status().Members) == 1 }, "the survivor sees the other leave")
	for _, n := range nodes {
		write(n, "users/"+n.name+"-after")
	}
	rest := append(slices.Clone(nodes), survivor)
	eventually(t, func() bool { return converged(t, rest) }, "converged after the stop")
	for _, r := range rest {
		s := entries(t, r.db)
		for _, k := range written {
			if _, ok := s[k]; !ok {
				t.Fatalf("%s lacks %s", r.name, k)
			}
		}
	}
	for _, n := range moved {
		st := n.result.Status()
		if st.Pivot != survivor.server.Address || st.Failovers < 1 {
			t.Fatalf("%s: on %s after %d failovers, want the survivor %s", n.name, st.Pivot, st.Failovers, survivor.server.Address)
		}
		if m := n.result.Metrics().Reconciliations; m["merge"] != merges[n.name] || m["prune"]+m["adopt"] != 0 {
			t.Fatalf("%s reconciled when it failed over: %v", n.name, m)
		}
	}
}

// Over NATS: the JetStream server that leads the bucket's stream dies while the nodes
// write (the hub's writes pause until a new leader is elected; the nodes keep serving
// and retry), then everything is stopped and started again on the same addresses and
// data: it converges with no further writes, and every write is everywhere.
func TestSeveralPivotsOverJetStream_StreamLeaderDiesThenEverythingRestarts(t *testing.T) {
	cluster, err := localcluster.Start(t.TempDir(), 3)
	must(t, err)
	t.Cleanup(cluster.Close)
	pivots := []*running{
		startPivotProcess(t, "p1", cluster.URLs(), ""),
		startPivotProcess(t, "p2", cluster.URLs(), ""),
	}
	addrs := []string{pivots[0].server.Address, pivots[1].server.Address}
	var nodes []*running
	for i := range 3 {
		n := startNode(t, fmt.Sprintf("node%d", i+1), addrs, nil, "")
		id := strings.NewReplacer(".", "-", ":", "-").Replace(n.server.Address)
		_, err := pivots[0].db.Set("things/"+id, json.RawMessage(fmt.Sprintf(`{"ip":%q}`, n.server.Address)))
		must(t, err)
		nodes = append(nodes, n)
	}
	all := append(slices.Clone(nodes), pivots...)
	eventually(t, func() bool { return converged(t, all) }, "converged at start")

	leader := cluster.StreamLeader("KV_hub")
	if leader < 0 {
		t.Fatal("no leader of the bucket's stream")
	}
	var written []string
	for i := range 60 {
		if i == 20 {
			cluster.Stop(leader)
		}
		for _, n := range nodes {
			k := fmt.Sprintf("users/%s-%02d", n.name, i)
			_, err := n.db.Set(k, json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)))
			must(t, err, "write %s on %s while the stream leader is gone", k, n.name)
			written = append(written, k)
		}
	}
	eventually(t, func() bool { return converged(t, all) }, "converged after the stream leader died")
	must(t, cluster.Restart(leader))

	// Stop everything, then start it again on the same addresses and data.
	nodeAddrs := make([]string, len(nodes))
	for i, n := range nodes {
		nodeAddrs[i] = n.server.Address
		n.stop()
	}
	for _, p := range pivots {
		p.stop()
	}
	cluster.Close()
	for i := range cluster.Len() {
		must(t, cluster.Restart(i))
	}
	must(t, cluster.WaitReady(waitTimeout))
	must(t, cluster.WaitStreamLeader("KV_hub", waitTimeout))
	must(t, cluster.WaitStreamLeader("KV_hub_meta", waitTimeout))
	for i, p := range pivots {
		pivots[i] = startPivotProcess(t, p.name, cluster.URLs(), addrs[i])
	}
	for i, n := range nodes {
		nodes[i] = startNode(t, n.name, addrs, n.db, nodeAddrs[i])
	}
	all = append(slices.Clone(nodes), pivots...)
	eventually(t, func() bool { return converged(t, all) }, "converged after the restart, with no writes")
	for _, r := range all {
		s := entries(t, r.db)
		for _, k := range written {
			if _, ok := s[k]; !ok {
				t.Fatalf("%s lacks %s after the restart", r.name, k)
			}
		}
	}
}
