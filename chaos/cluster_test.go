package chaos_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// cluster is one pivot and its nodes, their fault layer and their logs.
type cluster struct {
	tb  testing.TB
	tm  timings
	net *testcluster.Network
	// processes: every member runs as a child process (see child_test.go) and stops
	// by SIGKILL; otherwise every member runs in this process.
	processes bool
	ports     *testcluster.Ports
	logs      *logRing
	members   []*member // members[0] is the pivot

	idMu  sync.Mutex
	idRng *rand.Rand // the storages' clock instance ids, drawn like a real first start
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
	tr    *testcluster.Transport
	rest  *http.Client // the workload's own client for REST calls (no faults)
	// operReg: the pivot's operator registers this node under NodesKey (the even
	// nodes); the others register themselves (Config.Advertise).
	operReg bool

	running bool
	starts  int
	inst    instance // the running instance, in this process or a child
	proxy   *faultProxy

	// The in-process instance's parts (nil for a child process), used by the
	// scripted tests.
	server *ooo.Server
	main   *storage.BoltStorage // server storage: items/*, settings, things/*, posts/*
	ext    *storage.BoltStorage // users/*
	result pivot.SetupResult
}

func (m *member) isPivot() bool { return m.index == 0 }

// storeFile is the bolt file that holds path in m's folder.
func (m *member) storeFile(path string) string {
	if path == pathUsers || strings.HasPrefix(path, "users/") {
		return filepath.Join(m.dir, "users.db")
	}
	return filepath.Join(m.dir, "main.db")
}

// newCluster makes the members of a cluster of n nodes and starts them.
func newCluster(tb testing.TB, seed uint64, n int, tm timings, ports *testcluster.Ports) *cluster {
	return newClusterOf(tb, seed, n, tm, ports, false)
}

// newClusterOf is newCluster, with every member a child process when processes is set.
func newClusterOf(tb testing.TB, seed uint64, n int, tm timings, ports *testcluster.Ports, processes bool) *cluster {
	tb.Helper()
	c := &cluster{
		tb: tb, tm: tm, net: testcluster.NewNetwork(seed), processes: processes, ports: ports,
		logs: &logRing{max: 400}, idRng: rand.New(rand.NewPCG(seed, 0x1d5)),
	}
	tb.Cleanup(c.stopAll)
	for i := 0; i <= n; i++ {
		name := "pivot"
		if i > 0 {
			name = fmt.Sprintf("node%d", i)
		}
		c.add(name, tb.TempDir(), i%2 == 0)
	}
	for _, m := range c.members {
		if err := m.start(); err != nil {
			tb.Fatalf("chaos: start %s: %v", m.name, err)
		}
	}
	return c
}

// add makes a member (not started) on a new address with its data in dir.
func (c *cluster) add(name, dir string, operReg bool) *member {
	m := &member{
		c:       c,
		name:    name,
		index:   len(c.members),
		addr:    take(c.tb, c.ports),
		dir:     dir,
		operReg: operReg,
	}
	m.tr = c.net.Transport(name)
	m.rest = &http.Client{Timeout: 20 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	c.net.Name(m.addr, name)
	c.members = append(c.members, m)
	return m
}

// registration is the key and data under which the pivot's operator registers m.
func (m *member) registration() (string, []byte) {
	return "things/" + strings.NewReplacer(".", "-", ":", "-").Replace(m.addr), fmt.Appendf(nil, `{"ip":%q}`, m.addr)
}

func (c *cluster) pivot() *member { return c.members[0] }

// stopAll stops every running member, and every proxy: the end of a test.
func (c *cluster) stopAll() {
	for i := len(c.members) - 1; i >= 0; i-- {
		m := c.members[i]
		if m.running {
			m.stop()
		}
		if m.proxy != nil {
			m.proxy.close()
		}
	}
}

// instanceIDs returns the instance ids the clocks of m's two storages stamp with: the
// ids kept in the bolt files, as a storage started without a configured clock would
// use (a restart keeps them, a copied folder shares them until the storage or the
// cluster gives the copy its own, a wiped disk draws new ones). A file not created yet
// gets an id drawn from the seed; the storage then keeps its own in the new file.
func (m *member) instanceIDs() ([2]uint16, error) {
	var ids [2]uint16
	for i, f := range []string{"main.db", "users.db"} {
		id, ok, err := fileInstanceID(filepath.Join(m.dir, f))
		if err != nil {
			return ids, fmt.Errorf("chaos: instance id of %s: %w", m.name, err)
		}
		if !ok {
			m.c.idMu.Lock()
			id = uint16(m.c.idRng.IntN(4096))
			m.c.idMu.Unlock()
		}
		ids[i] = id
	}
	return ids, nil
}

// fileInstanceID reads the instance id a closed bolt file keeps (bucket "meta", key
// "instance", two bytes big endian); ok is false when the file or the id is missing.
func fileInstanceID(file string) (uint16, bool, error) {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return 0, false, fmt.Errorf("open %s: %w", file, err)
	}
	defer db.Close()
	var id uint16
	var ok bool
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("meta")); b != nil {
			if v := b.Get([]byte("instance")); len(v) == 2 {
				id, ok = binary.BigEndian.Uint16(v), true
			}
		}
		return nil
	})
	return id, ok, err
}

// spec is what a start of m needs, in this process or in a child.
func (m *member) spec() (launchSpec, error) {
	ids, err := m.instanceIDs()
	if err != nil {
		return launchSpec{}, err
	}
	s := launchSpec{Name: m.name, Addr: m.addr, Dir: m.dir, IDs: ids, Timings: m.c.tm.wire(), Offset: m.wall.offset.Load()}
	if !m.isPivot() {
		s.Pivot = m.c.pivot().addr
		if !m.operReg {
			s.Advertise = m.addr
		}
	}
	return s, nil
}

// start starts m on its address and data, as a new process would.
func (m *member) start() error {
	s, err := m.spec()
	if err != nil {
		return err
	}
	if m.c.processes {
		if m.proxy == nil {
			if m.proxy, err = newFaultProxy(take(m.c.tb, m.c.ports), m.tr); err != nil {
				return err
			}
		}
		s.Proxy = m.proxy.addr
		ch, err := startChild(s, m.c.logs)
		if err != nil {
			return err
		}
		m.inst = ch
	} else {
		l, err := launch(s, m.wall.now, &http.Client{Transport: m.tr}, m.c.logs)
		if err != nil {
			return err
		}
		m.inst, m.server, m.main, m.ext, m.result = l, l.server, l.main, l.ext, l.result
	}
	m.running = true
	m.starts++
	return nil
}

// stop stops m gracefully: server, storages, sync engine and idle connections.
func (m *member) stop() { m.halt(false) }

// kill stops m at once: a child process gets SIGKILL (what it had not written to
// disk is gone); an in-process member is closed as by stop.
func (m *member) kill() { m.halt(true) }

func (m *member) halt(kill bool) {
	if err := m.inst.stop(kill); err != nil {
		m.c.logs.Write(fmt.Appendf(nil, "chaos: stop %s: %v\n", m.name, err))
	}
	m.tr.Inner.CloseIdleConnections()
	m.rest.CloseIdleConnections()
	m.running = false
}

// setSkew moves m's wall clock off by d (0 puts it right).
func (m *member) setSkew(d time.Duration) {
	m.wall.offset.Store(int64(d))
	if m.running {
		if err := m.inst.setSkew(d); err != nil {
			m.c.logs.Write(fmt.Appendf(nil, "chaos: skew %s: %v\n", m.name, err))
		}
	}
}

// changes reads m's change feed of path (a synced path or one key) since seq.
func (m *member) changes(path string, since uint64, limit int) ([]storage.Change, uint64, error) {
	return m.inst.changes(path, since, limit)
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

// copyDir copies the files of a stopped member's folder into dir.
func (m *member) copyDir(dir string) error {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("chaos: copy the folder of %s: %w", m.name, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(m.dir, e.Name()))
		if err != nil {
			return fmt.Errorf("chaos: copy the folder of %s: %w", m.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), raw, 0o600); err != nil {
			return fmt.Errorf("chaos: copy the folder of %s: %w", m.name, err)
		}
	}
	return nil
}

// status is the member's pivot status as one line, for traces.
func (m *member) status() string {
	if !m.running {
		return m.name + ": stopped"
	}
	st, err := m.inst.status()
	if err != nil {
		return fmt.Sprintf("%s: status: %v", m.name, err)
	}
	return statusLine(m.name, st)
}

// knownNodes lists the nodes the pivot's engine knows (on the pivot).
func (m *member) knownNodes() map[string]bool {
	have := map[string]bool{}
	if !m.running {
		return have
	}
	st, err := m.inst.status()
	if err != nil {
		return have
	}
	for _, n := range st.Nodes {
		have[n.Address] = true
	}
	return have
}
