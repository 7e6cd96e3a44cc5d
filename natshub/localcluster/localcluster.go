// Package localcluster starts a cluster of NATS JetStream servers inside the calling
// process, on loopback ports, for tests and runnable examples of natshub: n servers
// routed to each other, each with its data in a folder of its own, every write synced
// to disk (sync_interval: always). It is not a way to run NATS in production.
package localcluster

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long Start waits for each server to accept clients and for
// the cluster to elect a JetStream meta leader that sees every server.
const readyTimeout = 20 * time.Second

// Cluster is n JetStream servers started by Start. Safe for concurrent use.
type Cluster struct {
	mu      sync.Mutex
	servers []*server.Server
	opts    []*server.Options
}

// Start starts n servers (1 to 5) named "n1".."nn" in cluster "local", with their data
// under dir, and waits until they accept clients and JetStream's meta leader sees them all.
func Start(dir string, n int) (*Cluster, error) {
	if n < 1 || n > 5 {
		return nil, fmt.Errorf("localcluster: %d servers: want 1 to 5", n)
	}
	ports := make([]int, n)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			NoLog:      true,
			NoSigs:     true,
			SyncAlways: true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "local", Host: "127.0.0.1", Port: ports[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		c.opts = append(c.opts, o)
	}
	for i := range n {
		if err := c.start(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(readyTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// WaitReady waits, at most timeout, until a JetStream meta leader sees every server
// (after Restart of servers, for example).
func (c *Cluster) WaitReady(timeout time.Duration) error {
	return poll(timeout, c.ready, "no JetStream meta leader that sees every server")
}

// WaitStreamLeader waits, at most timeout, until a running server leads stream.
func (c *Cluster) WaitStreamLeader(stream string, timeout time.Duration) error {
	return poll(timeout, func() bool { return c.StreamLeader(stream) >= 0 }, "no leader of stream "+stream)
}

// poll checks cond every 10ms until it holds, or fails with what after timeout.
func poll(timeout time.Duration, cond func() bool, what string) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("localcluster: " + what)
		}
		<-tick.C
	}
	return nil
}

// start starts server i (again, after Stop: on the same ports and data).
func (c *Cluster) start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := *c.opts[i]
	ns, err := server.NewServer(&o)
	if err != nil {
		return fmt.Errorf("localcluster: server %s: %w", o.ServerName, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		return fmt.Errorf("localcluster: server %s not ready", o.ServerName)
	}
	if c.opts[i].Port == -1 {
		// Keep the client port it took, so a restart comes back on it.
		c.opts[i].Port = ns.Addr().(*net.TCPAddr).Port
	}
	for len(c.servers) <= i {
		c.servers = append(c.servers, nil)
	}
	c.servers[i] = ns
	return nil
}

// ready reports whether a running server is the JetStream meta leader and sees every
// server as a JetStream peer: before that, creating a stream replicated on all of them
// fails ("no suitable peers for placement").
func (c *Cluster) ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.servers) == 1 {
		return c.servers[0] != nil && c.servers[0].JetStreamEnabled()
	}
	for _, s := range c.servers {
		if s != nil && s.JetStreamIsLeader() {
			return len(s.JetStreamClusterPeers()) == len(c.opts)
		}
	}
	return false
}

// URLs returns the client URLs of every server, comma-separated as nats.Connect takes
// them (a client then reconnects to another when its server stops).
func (c *Cluster) URLs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// Len is the number of servers.
func (c *Cluster) Len() int { return len(c.opts) }

// Stop shuts server i down (its data stays in its folder) and waits until it stopped.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	ns := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Restart starts server i again after Stop, on its ports and data.
func (c *Cluster) Restart(i int) error { return c.start(i) }

// StreamLeader returns the index of the server that leads the stream of account
// "$G" (the default account) named stream, or -1 when none does.
func (c *Cluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// Close stops every server.
func (c *Cluster) Close() {
	for i := range c.opts {
		if i < len(c.servers) {
			c.Stop(i)
		}
	}
}

// freePort returns a loopback TCP port nothing listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localcluster: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
