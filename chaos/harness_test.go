package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// The synced paths of every chaos cluster. users/* lives on a storage of its own (an
// "external" storage wired through SyncCallback, as in the README); the others live on
// the server's storage.
const (
	pathUsers    = "users/*"
	pathItems    = "items/*"
	pathSettings = "settings"
	pathNodes    = "things/*"
)

// syncedPaths lists every synced path, NodesKey included.
func syncedPaths() []string { return []string{pathUsers, pathItems, pathSettings, pathNodes} }

// timings are the short durations a chaos cluster runs with.
type timings struct {
	maxSkew        time.Duration // storage clocks' MaxSkew
	syncInterval   time.Duration
	readBudget     time.Duration
	requestTimeout time.Duration
	backoffMin     time.Duration
	backoffMax     time.Duration
	batchSize      int
	fanOut         int
	retention      time.Duration // storages' TombstoneRetention; 0 means the default (days)
}

func defaultTimings() timings {
	return timings{
		maxSkew:        250 * time.Millisecond,
		syncInterval:   150 * time.Millisecond,
		readBudget:     20 * time.Millisecond,
		requestTimeout: 400 * time.Millisecond,
		backoffMin:     5 * time.Millisecond,
		backoffMax:     120 * time.Millisecond,
		batchSize:      7, // small, so pushes and pulls span several batches
		fanOut:         2,
	}
}

// timingsFor varies the batch size (2 to 10: a backlog spans many batches and, past 64
// of them, several rounds) and the pivot's fan-out (1 to 3) with the seed.
func timingsFor(seed uint64) timings {
	tm := defaultTimings()
	tm.batchSize = 2 + int(seed%9)
	tm.fanOut = 1 + int(seed/9%3)
	return tm
}

// portPool hands out loopback ports below the kernel's ephemeral range, so a port that
// a stopped instance will listen on again is never taken meanwhile by the local end of
// an outgoing connection. It is shared by the seeds of one test run.
type portPool struct {
	mu   sync.Mutex
	used map[int]bool
	rng  *rand.Rand
}

func newPortPool(seed uint64) *portPool {
	return &portPool{used: map[int]bool{}, rng: rand.New(rand.NewPCG(seed, 0x90e7))}
}

// take returns a free "127.0.0.1:port".
func (p *portPool) take(tb testing.TB) string {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 1000 {
		port := 20000 + p.rng.IntN(12000)
		if p.used[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		p.used[port] = true
		return addr
	}
	tb.Fatal("chaos: no free loopback port found")
	return ""
}

// logRing keeps the last lines written to it: the pivot engines' logs, printed when a
// seed fails.
type logRing struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		r.lines = append(r.lines, line)
	}
	if over := len(r.lines) - r.max; over > 0 {
		r.lines = append(r.lines[:0:0], r.lines[over:]...)
	}
	return len(p), nil
}

func (r *logRing) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// cluster is one pivot and its nodes, their fault layer and their logs.
type cluster struct {
	tb      testing.TB
	tm      timings
	net     *network
	logs    *logRing
	members []*member // members[0] is the pivot
}

// member is one instance: an ooo server with pivot set up, on two BoltStorage files in
// its own folder (server storage and users storage). Its address, folder, wall clock
// and fault transport survive restarts; each start makes new storages, clocks, server
// and sync engine, as a restarted process would.
type member struct {
	c     *cluster
	name  string
	index int // 0 for the pivot
	addr  string
	dir   string
	wall  skewClock
	tr    *faultTransport
	rest  *http.Client // the workload's own client for REST calls (no faults)
	// operReg: the pivot's operator registers this node under NodesKey (the even
	// nodes); the others register themselves (Config.Advertise).
	operReg bool

	running bool
	starts  int
	server  *ooo.Server
	main    *storage.BoltStorage // server storage: items/*, settings, things/*
	ext     *storage.BoltStorage // users/*
	result  pivot.SetupResult
	watched chan struct{} // closed when the users storage's event loop ends
}

func (m *member) isPivot() bool { return m.index == 0 }

// db returns the storage that holds path.
func (m *member) db(path string) ooo.Database {
	if path == pathUsers || strings.HasPrefix(path, "users/") {
		return m.ext
	}
	return m.main
}

// replica returns the storage that holds path as a storage.Replica.
func (m *member) replica(path string) storage.Replica {
	return m.db(path).(storage.Replica)
}

// newCluster makes the members of a cluster of n nodes and starts them.
func newCluster(tb testing.TB, seed uint64, n int, tm timings, ports *portPool) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, tm: tm, net: newNetwork(seed), logs: &logRing{max: 400}}
	for i := 0; i <= n; i++ {
		name := "pivot"
		if i > 0 {
			name = fmt.Sprintf("node%d", i)
		}
		m := &member{
			c:       c,
			name:    name,
			index:   i,
			addr:    ports.take(tb),
			dir:     tb.TempDir(),
			operReg: i%2 == 0,
		}
		m.tr = newFaultTransport(c.net, name)
		m.rest = &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.net.name(m.addr, name)
		c.members = append(c.members, m)
	}
	tb.Cleanup(c.stopAll)
	for _, m := range c.members {
		if err := m.start(); err != nil {
			tb.Fatalf("chaos: start %s: %v", m.name, err)
		}
	}
	return c
}

// registration is the key and data under which the pivot's operator registers m.
func (m *member) registration() (string, []byte) {
	return "things/" + strings.NewReplacer(".", "-", ":", "-").Replace(m.addr), fmt.Appendf(nil, `{"ip":%q}`, m.addr)
}

func (c *cluster) pivot() *member { return c.members[0] }

// stopAll stops every running member.
func (c *cluster) stopAll() {
	for i := len(c.members) - 1; i >= 0; i-- {
		if c.members[i].running {
			c.members[i].stop()
		}
	}
}

// config is the pivot.Config of m.
func (m *member) config() pivot.Config {
	tm := m.c.tm
	cfg := pivot.Config{
		Keys:           []pivot.Key{{Path: pathUsers, Database: m.ext}, {Path: pathItems}, {Path: pathSettings}},
		NodesKey:       pathNodes,
		Token:          "chaos-token",
		ClusterID:      "chaos",
		SyncInterval:   tm.syncInterval,
		ReadBudget:     tm.readBudget,
		RequestTimeout: tm.requestTimeout,
		BackoffMin:     tm.backoffMin,
		BackoffMax:     tm.backoffMax,
		BatchSize:      tm.batchSize,
		FanOut:         tm.fanOut,
		Client:         &http.Client{Transport: m.tr},
		Logger: slog.New(slog.NewTextHandler(m.c.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).
			With("inst", m.name),
	}
	if !m.isPivot() && !m.operReg {
		cfg.Advertise = m.addr
	}
	return cfg
}

// start starts m on its address and data, as a new process would.
func (m *member) start() error {
	id := uint16(2*m.index + 1)
	newClock := func(id uint16) *clock.Clock {
		return clock.New(clock.Options{Wall: m.wall.now, MaxSkew: m.c.tm.maxSkew, InstanceID: id})
	}
	m.main = &storage.BoltStorage{Path: filepath.Join(m.dir, "main.db"), HLC: newClock(id), TombstoneRetention: m.c.tm.retention}
	m.ext = &storage.BoltStorage{Path: filepath.Join(m.dir, "users.db"), HLC: newClock(id + 1), TombstoneRetention: m.c.tm.retention}
	server := &ooo.Server{Silence: true, Storage: m.main}
	if !m.isPivot() {
		server.Pivot = m.c.pivot().addr
	}
	result := pivot.Setup(server, m.config())
	server.BeforeRead = result.BeforeRead
	if err := m.ext.Start(storage.Options{BeforeRead: result.BeforeRead}); err != nil {
		result.Close()
		return fmt.Errorf("chaos: start users storage of %s: %w", m.name, err)
	}
	watched := make(chan struct{})
	go func(events storage.EventChan) {
		defer close(watched)
		for ev := range events {
			result.SyncCallback(ev)
		}
	}(m.ext.Watch())
	err := listen(server, m.addr)
	if err != nil {
		result.Close()
		m.ext.Close()
		<-watched
		return fmt.Errorf("chaos: start %s on %s: %w", m.name, m.addr, err)
	}
	m.server, m.result, m.watched = server, result, watched
	m.running = true
	m.starts++
	return nil
}

// listen starts server on addr, retrying while the port is still held (a restart right
// after a stop), for at most five seconds.
func listen(server *ooo.Server, addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := server.Start(addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return err
		}
		_ = wait(context.Background(), 20*time.Millisecond)
	}
}

// stop stops m: server, storages, sync engine and idle connections.
func (m *member) stop() {
	m.server.Close(nil)
	m.result.Close()
	m.ext.Close()
	<-m.watched
	m.tr.inner.CloseIdleConnections()
	m.rest.CloseIdleConnections()
	m.running = false
}

// wipe deletes the data of a stopped member, as when its disk is replaced.
func (m *member) wipe() error {
	for _, f := range []string{"main.db", "users.db"} {
		if err := os.Remove(filepath.Join(m.dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("chaos: wipe %s: %w", m.name, err)
		}
	}
	return nil
}

// status is the member's pivot status as one JSON line, for traces.
func (m *member) status() string {
	if !m.running {
		return m.name + ": stopped"
	}
	var b bytes.Buffer
	st := m.result.Status()
	fmt.Fprintf(&b, "%s: healthy=%v failures=%d pushed=%d pulled=%d conflicts=%d refused=%d lastError=%q",
		m.name, st.PivotHealthy, st.ConsecutiveFailures, st.PushedEntries, st.PulledEntries,
		st.Conflicts, st.Refused, st.LastError)
	for _, k := range st.Keys {
		fmt.Fprintf(&b, " [%s pull=%d push=%d]", k.Path, k.PullCursor, k.PushCursor)
	}
	return b.String()
}
