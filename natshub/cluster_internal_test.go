package natshub

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/ooo/meta"
)

// startCluster starts n in-process JetStream servers clustered over loopback routes
// (each lists every route), syncing every write, and waits for
// a JetStream meta leader. Stopped servers stay stopped; the rest stop at the end.
func startCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	// Route ports are chosen first so that every server can list them all.
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var all []*server.Server
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("s%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			SyncAlways: true,
			Cluster:    server.ClusterOpts{Name: "hub", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		all = append(all, ns)
	}
	// A clustered server is ready for clients once JetStream has a meta leader, so
	// only when all have started.
	for i, ns := range all {
		if !ns.ReadyForConnections(30 * time.Second) {
			t.Fatalf("server %d not ready", i)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaders, peers := 0, 0
		for _, ns := range all {
			if ns.JetStreamIsLeader() {
				leaders++
			}
			peers = max(peers, len(ns.JetStreamClusterPeers()))
		}
		if leaders == 1 && peers == n {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JetStream meta leader over %d peers (leaders %d, peers %d)", n, leaders, peers)
		}
		time.Sleep(20 * time.Millisecond) // polling a server state with a deadline
	}
}

// TestStorage_LeaderKilled: on a 3-server cluster with R3 buckets, killing the stream
// leader's server while writing pauses the writes, which then resume on the new
// leader, and every acknowledged write is there afterwards, byte for byte.
func TestStorage_LeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster failover takes seconds")
	}
	servers := startCluster(t, 3)
	urls := make([]string, len(servers))
	for i, ns := range servers {
		urls[i] = ns.ClientURL()
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := started(t, newStorage(t, js, Config{Bucket: "fail", Replicas: 3, RetryFor: 60 * time.Second}))
	// Another process, on its own connection, watches: its watcher must survive the
	// leader change and deliver the writes made after it.
	nc2, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc2.Close)
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	reader := started(t, newStorage(t, js2, Config{Bucket: "fail", Replicas: 3, Process: "reader", RetryFor: 60 * time.Second}))
	leader := func() *server.Server {
		for _, ns := range servers {
			if ns.Running() && ns.JetStreamIsStreamLeader("$G", "KV_fail") {
				return ns
			}
		}
		return nil
	}

	const before, after, most = 50, 50, 2000
	acked := map[string]string{}
	var (
		lastKey  string
		killed   *server.Server
		killedAt time.Time
		last     time.Time
		pause    time.Duration
		nAfter   int
	)
	for i := 0; i < most && nAfter < after; i++ {
		if i == before {
			if killed = leader(); killed == nil {
				t.Fatal("no stream leader")
			}
			killed.Shutdown()
			killedAt, last = time.Now(), time.Now()
		}
		k, v := fmt.Sprintf("w/%04d", i), fmt.Sprintf(`{"i":%d,"t":"<ü>"}`, i)
		if _, err := s.Set(k, json.RawMessage(v)); err != nil {
			t.Logf("write %d failed (not acknowledged): %v", i, err)
			continue
		}
		acked[k] = v
		lastKey = k
		if killed != nil {
			nAfter++
			pause = max(pause, time.Since(last))
			last = time.Now()
		}
	}
	if nAfter < after {
		t.Fatalf("only %d writes acknowledged after the leader was killed", nAfter)
	}
	t.Logf("leader %s killed: longest pause between acknowledged writes %s; %d acknowledged writes in all, %d after the kill (%s)",
		killed.Name(), pause.Round(time.Millisecond), len(acked), nAfter, time.Since(killedAt).Round(time.Millisecond))
	if nl := leader(); nl == nil || nl == killed {
		t.Fatalf("no new stream leader")
	}
	for k, v := range acked {
		raw, err := s.Get(k)
		if err != nil {
			t.Fatalf("acknowledged write %s lost: %v", k, err)
		}
		o, err := meta.Decode(raw)
		if err != nil || string(o.Data) != v {
			t.Fatalf("acknowledged write %s reads %s, wrote %s (%v)", k, o.Data, v, err)
		}
	}
	if ev := waitEvent(t, reader.Watch(), lastKey, "set"); ev.Object == nil || string(ev.Object.Data) != acked[lastKey] {
		t.Fatalf("the other process's event of the last write: %+v", ev)
	}
	c, _, err := s.Changes("w/*", 0, 1<<20)
	if err != nil || len(c) != len(acked) {
		t.Fatalf("feed holds %d of %d acknowledged writes (%v)", len(c), len(acked), err)
	}
}
