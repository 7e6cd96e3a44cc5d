package natshub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/natshub"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// The chaos variant over NATS: 3 nats-server child processes (built from the module
// go.mod pins; R3 buckets, sync_interval always), 2 pivot processes (natshub storage
// and Membership) and 3 nodes (MemoryStorage or BoltStorage, Pivots listing both), a
// seeded workload of sets and deletes on nodes and pivots (JSON with HTML and
// non-ASCII text, 1 B to 8 KiB), seeded faults (pivot stop and kill, SIGKILL of a
// nats-server, the stream leader half the time, restarted on its folder; link cuts
// between nodes and pivot processes); after healing, the four invariants of
// chaos/README.md: A byte-identical convergence of every node and both processes'
// views of the bucket, B no acknowledged write lost (the LWW winner among the
// acknowledged operations, by the entries they left, is the final entry or loses to
// it) and nothing invented, C no resurrection, D every write on a node answered.
//
//	go test -race ./natshub -run TestChaosOverNATS -v        # seeds 1-2, 40 operations
//	go test ./natshub -run TestChaosOverNATS -natschaos.seeds=50 -natschaos.ops=80 -timeout=1h -v
var (
	chaosSeeds = flag.Int("natschaos.seeds", 2, "seeds of TestChaosOverNATS to run, from -natschaos.first")
	chaosFirst = flag.Int("natschaos.first", 1, "first seed of TestChaosOverNATS")
	chaosSeed  = flag.Int("natschaos.seed", 0, "run this seed of TestChaosOverNATS only (replay)")
	chaosOps   = flag.Int("natschaos.ops", 40, "workload operations per seed of TestChaosOverNATS")
	// The nodes' anti-entropy repairs what the change feed failed to deliver. Off by
	// default (-1ns): convergence then rests on the feed and triggers alone, so a feed
	// that skips a change shows as divergence instead of being repaired behind the
	// check's back (it did, until natshub's Changes was fixed).
	chaosRepair = flag.Duration("natschaos.repair", -1, "RepairInterval of the nodes of TestChaosOverNATS (-1ns: off)")
)

// chaosPaths are the synced paths the checker compares.
var chaosPaths = []string{"items/*", "settings", "things/*"}

// chaosWait bounds every wait of the chaos variant (a deadline for failure).
const chaosWait = 45 * time.Second

// chaosConfig is the pivot config of every instance of the chaos variant.
func chaosConfig(client *http.Client) pivot.Config {
	return pivot.Config{
		Keys:           []pivot.Key{{Path: "items/*"}, {Path: "settings"}},
		NodesKey:       "things/*",
		Token:          "natshub-chaos-token-0123456789",
		ClusterID:      "natshub-chaos",
		SyncInterval:   200 * time.Millisecond,
		BackoffMin:     5 * time.Millisecond,
		BackoffMax:     100 * time.Millisecond,
		RequestTimeout: 2 * time.Second,
		RepairInterval: *chaosRepair,
		Client:         client,
	}
}

var (
	natsBinOnce sync.Once
	natsBin     string
	natsBinErr  error
)

// natsServerBinary builds nats-server from the module this one requires (the version
// go.mod pins), once per test binary, into a temporary folder.
func natsServerBinary(t testing.TB) string {
	t.Helper()
	natsBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natshub-chaos-bin")
		if err != nil {
			natsBinErr = err
			return
		}
		natsBin = filepath.Join(dir, "nats-server")
		goBin, err := exec.LookPath("go")
		if err != nil {
			natsBinErr = fmt.Errorf("build nats-server: %w", err)
			return
		}
		cmd := exec.Command(goBin, "build", "-o", natsBin, "github.com/nats-io/nats-server/v2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			natsBinErr = fmt.Errorf("build nats-server: %w: %s", err, out)
		}
	})
	if natsBinErr != nil {
		t.Fatal(natsBinErr)
	}
	return natsBin
}

// natsProc is one nats-server child process: its config file, store dir and ports
// stay across kills, so a restart comes back on the same data and addresses.
type natsProc struct {
	name, conf string
	port, http int
	cmd        *exec.Cmd
	done       chan struct{}
}

// natsCluster is three nats-server child processes routed to each other.
type natsCluster struct {
	bin   string
	procs []*natsProc
}

// freePorts returns n distinct loopback TCP ports nothing listens on right now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 10*n {
			t.Fatalf("no %d distinct free ports", n)
		}
		addr, err := testcluster.FreeAddr()
		must(t, err)
		var port int
		_, err = fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port)
		must(t, err)
		if !seen[port] {
			seen[port] = true
			out = append(out, port)
		}
	}
	return out
}

// startNATS writes the configs of n servers under dir and starts them.
func startNATS(t testing.TB, dir string, n int) *natsCluster {
	t.Helper()
	c := &natsCluster{bin: natsServerBinary(t)}
	ports := freePorts(t, 3*n)
	cluster := ports[:n]
	var routes []string
	for _, p := range cluster {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		p := &natsProc{name: fmt.Sprintf("n%d", i+1), port: ports[n+i], http: ports[2*n+i]}
		store := filepath.Join(dir, p.name)
		p.conf = filepath.Join(dir, p.name+".conf")
		conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"+
			"jetstream { store_dir: %q, sync_interval: always }\n"+
			"cluster { name: chaos, listen: 127.0.0.1:%d, routes: [%s] }\n",
			p.name, p.port, p.http, store, cluster[i], strings.Join(routes, ", "))
		must(t, os.WriteFile(p.conf, []byte(conf), 0o600))
		c.procs = append(c.procs, p)
	}
	for i := range c.procs {
		c.start(t, i)
	}
	t.Cleanup(c.close)
	c.waitHealthy(t)
	return c
}

// start starts server i (again, after a kill).
func (c *natsCluster) start(t testing.TB, i int) {
	t.Helper()
	p := c.procs[i]
	cmd := exec.Command(c.bin, "-c", p.conf)
	cmd.SysProcAttr = childAttr()
	logf, err := os.OpenFile(p.conf+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	must(t, err)
	defer logf.Close() // the child keeps its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start(), "start %s", p.name)
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(p.done)
}

// kill sends SIGKILL to server i and waits until it is reaped.
func (c *natsCluster) kill(i int) {
	p := c.procs[i]
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

func (c *natsCluster) running(i int) bool { return c.procs[i].cmd != nil }

func (c *natsCluster) close() {
	for i := range c.procs {
		c.kill(i)
	}
}

// urls is every server's client URL, as nats.Connect takes them.
func (c *natsCluster) urls() string {
	var out []string
	for _, p := range c.procs {
		out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", p.port))
	}
	return strings.Join(out, ",")
}

// waitHealthy polls every running server's /healthz (JetStream current) until all
// answer 200.
func (c *natsCluster) waitHealthy(t testing.TB) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	var last string
	healthy := func() bool {
		for _, p := range c.procs {
			if p.cmd == nil {
				continue
			}
			select {
			case <-p.done:
				last = p.name + " exited"
				return false
			default:
			}
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.http))
			if err != nil {
				last = fmt.Sprintf("%s: %v", p.name, err)
				return false
			}
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				last = fmt.Sprintf("%s: %d %s", p.name, resp.StatusCode, body[:n])
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(chaosWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !healthy() {
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range c.procs {
				raw, _ := os.ReadFile(p.conf + ".log")
				if len(raw) > 2000 {
					raw = raw[len(raw)-2000:]
				}
				fmt.Fprintf(&logs, "--- %s (port %d, http %d):\n%s\n", p.name, p.port, p.http, raw)
			}
			t.Fatalf("nats-servers not healthy within %s: %s\n%s", chaosWait, last, logs.String())
		}
		<-tick.C
	}
}

// chaosPivot is one pivot process: its NATS connection, storage, membership and server.
type chaosPivot struct {
	name, addr string
	nc         *nats.Conn
	in         *testcluster.Instance
}

// chaosRun is one seed's cluster, workload history and figures.
type chaosRun struct {
	t      *testing.T
	rng    *rand.Rand
	net    *testcluster.Network
	nats   *natsCluster
	pivots []*chaosPivot
	nodes  []*testcluster.Instance
	ops    []chaosOp
	faults map[string]int
	cut    map[[2]string]bool
	steps  []string // faults, with the operation they came before, for a failure message
	// readBackLags are the acknowledged writes that showed in their own instance's
	// feed only after a wait; violations are found during the workload.
	readBackLags, violations []string
}

// chaosOp is one workload operation and what it was observed to write.
type chaosOp struct {
	i        int
	on, key  string
	del      bool
	data     []byte
	acked    bool
	noop     bool
	err      error
	entry    storage.Entry // the entry it left on its instance, when acked
	pivotsUp int
	took     time.Duration
}

func (r *chaosRun) startPivot(p *chaosPivot) error {
	nc, err := nats.Connect(r.nats.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connect %s: %w", p.name, err)
	}
	fail := func(what string, err error) error {
		nc.Close()
		return fmt.Errorf("%s %s: %w", what, p.name, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fail("jetstream", err)
	}
	// The storage and the membership keep ctx for their life: no deadline here (their
	// requests have timeouts of their own).
	ctx := context.Background()
	st, err := natshub.New(ctx, js, natshub.Config{Bucket: "hub", Replicas: 3, Process: p.name})
	if err != nil {
		return fail("storage", err)
	}
	members, err := natshub.NewMembership(ctx, js, natshub.MembershipConfig{Bucket: "hub_members", Replicas: 3, Memory: true, Lease: time.Second})
	if err != nil {
		st.Close()
		return fail("membership", err)
	}
	cfg := chaosConfig(r.net.Transport(p.name).Client())
	cfg.Membership = members
	in, err := testcluster.Start(testcluster.Spec{Name: p.name, Addr: p.addr, Storage: st, Config: cfg})
	if err != nil {
		return fail("server", err)
	}
	p.nc, p.in, p.addr = nc, in, in.Addr
	r.net.Name(in.Addr, p.name)
	return nil
}

// stopPivot stops p; kill cuts its NATS connection first, as a crash would look to
// the others (it can neither leave the membership nor write again).
func (r *chaosRun) stopPivot(p *chaosPivot, kill bool) {
	if p.in == nil {
		return
	}
	if kill {
		p.nc.Close()
	}
	p.in.Close()
	p.nc.Close()
	p.in, p.nc = nil, nil
}

// restartPivot starts p again on its address, retrying while the NATS cluster elects
// leaders, within a deadline.
func (r *chaosRun) restartPivot(p *chaosPivot) {
	deadline := time.Now().Add(chaosWait)
	for {
		err := r.startPivot(p)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("restart %s: %v", p.name, err)
		}
		r.t.Logf("restart %s: %v (retrying)", p.name, err)
	}
}

func (r *chaosRun) pivotsUp() int {
	n := 0
	for _, p := range r.pivots {
		if p.in != nil {
			n++
		}
	}
	return n
}

// chaosValue is a seeded value: JSON with HTML, non-ASCII text and a few sizes.
func chaosValue(rng *rand.Rand, op int, on string) []byte {
	pieces := []string{`<b>Tom & Jerry</b>`, `<script>alert(1)</script>`, `<<&>>`, "café ünïcödé", "日本語のテキスト", "Ελληνικά", "🦊🚀", "\u2028\u2029"}
	size := []int{1, 40, 600, 8000}[rng.IntN(4)]
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	if rng.IntN(20) == 0 {
		return []byte(`"<&>"`)
	}
	v, _ := json.Marshal(map[string]any{"op": op, "by": on, "payload": b.String()})
	// Keep the encoder's escapes off: the bytes must round-trip verbatim.
	v = bytes.ReplaceAll(v, []byte(`\u003c`), []byte(`<`))
	v = bytes.ReplaceAll(v, []byte(`\u003e`), []byte(`>`))
	v = bytes.ReplaceAll(v, []byte(`\u0026`), []byte(`&`))
	return v
}

// entryOf reads key's entry (live or tombstone) from db's change feed.
func entryOf(db ooo.Database, key string) (storage.Entry, bool, error) {
	pattern := key
	if i := strings.LastIndex(key, "/"); i >= 0 {
		pattern = key[:i+1] + "*"
	}
	changes, _, err := db.(storage.Replica).Changes(pattern, 0, 1<<20)
	if err != nil {
		return storage.Entry{}, false, err
	}
	for _, c := range changes {
		if c.Key == key {
			return c.Entry, true, nil
		}
	}
	return storage.Entry{}, false, nil
}

// do runs one workload operation on instance name's storage and records it.
func (r *chaosRun) do(i int) {
	type target struct {
		name string
		db   ooo.Database
	}
	var targets []target
	for _, n := range r.nodes {
		targets = append(targets, target{n.Spec.Name, n.DB})
	}
	for _, p := range r.pivots {
		if p.in != nil && r.rng.IntN(3) == 0 {
			targets = append(targets, target{p.name, p.in.DB})
		}
	}
	tg := targets[r.rng.IntN(len(targets))]
	key := fmt.Sprintf("items/k%d", r.rng.IntN(8))
	if r.rng.IntN(8) == 0 {
		key = "settings"
	}
	op := chaosOp{i: i, on: tg.name, key: key, del: r.rng.IntN(4) == 0, pivotsUp: r.pivotsUp()}
	start := time.Now()
	if op.del {
		op.err = tg.db.Del(key)
		if errors.Is(op.err, storage.ErrNotFound) {
			op.noop, op.err = true, nil
		}
	} else {
		op.data = chaosValue(r.rng, i, tg.name)
		_, op.err = tg.db.Set(key, op.data)
	}
	op.took = time.Since(start)
	if op.err == nil && !op.noop {
		op.acked, op.entry = true, r.readBack(op, tg.db)
	}
	r.ops = append(r.ops, op)
}

// readBackWait bounds how long an acknowledged write may take to show in its own
// instance's change feed.
const readBackWait = 10 * time.Second

// readBack reads the entry op left on db from db's change feed. A node's feed shows
// it at once; a pivot's (natshub) may not: its reads can be served by a replica that
// has not applied the write yet. So it polls, with a deadline, until the feed holds
// op's write (its bytes, or a tombstone), and counts the waits; a write that never
// shows is recorded as a violation (R) and its entry as last seen.
func (r *chaosRun) readBack(op chaosOp, db ooo.Database) storage.Entry {
	start := time.Now()
	deadline := start.Add(readBackWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last storage.Entry
	var lastErr error
	for attempt := 1; ; attempt++ {
		e, ok, err := entryOf(db, op.key)
		lastErr = err
		if ok {
			last = e
			if (op.del && e.Deleted) || (!op.del && !e.Deleted && bytes.Equal(e.Data, op.data)) {
				if attempt > 1 {
					r.readBackLags = append(r.readBackLags, fmt.Sprintf("op %d on %s: %s, %d reads", op.i, op.on, time.Since(start).Round(time.Millisecond), attempt))
				}
				return e
			}
		}
		if time.Now().After(deadline) {
			r.violations = append(r.violations, fmt.Sprintf("R: op %d (%s on %s) acknowledged but not in its own feed after %s (last seen: found=%v v=%d deleted=%v, err %v)",
				op.i, op.key, op.on, readBackWait, ok, last.Version(), last.Deleted, lastErr))
			return last
		}
		<-tick.C
	}
}

// fault applies one seeded fault, or heals one; pending are the repairs still due.
func (r *chaosRun) fault() {
	before := fmt.Sprint(r.faults)
	defer func() { r.steps = append(r.steps, fmt.Sprintf("before op %d: %s -> %v", len(r.ops), before, r.faults)) }()
	switch k := r.rng.IntN(6); k {
	case 0, 1: // stop or kill a pivot process, or start a stopped one again
		p := r.pivots[r.rng.IntN(len(r.pivots))]
		if p.in == nil {
			r.restartPivot(p)
			r.faults["pivot start"]++
			return
		}
		kill := k == 1
		r.stopPivot(p, kill)
		if kill {
			r.faults["pivot kill"]++
		} else {
			r.faults["pivot stop"]++
		}
	case 2: // SIGKILL a nats-server (at most one down: the buckets keep a quorum), or restart it
		for i := range r.nats.procs {
			if !r.nats.running(i) {
				r.nats.start(r.t, i)
				r.faults["nats restart"]++
				return
			}
		}
		// Half the kills go to the leader of the bucket's stream (writes on the hub
		// pause until a new one is elected), the others to any server.
		victim := r.rng.IntN(len(r.nats.procs))
		if r.rng.IntN(2) == 0 {
			if l := r.streamLeader(); l >= 0 {
				victim = l
				r.faults["nats kill -9 stream leader"]++
				r.nats.kill(victim)
				return
			}
		}
		r.nats.kill(victim)
		r.faults["nats kill -9"]++
	default: // cut or heal a link between a node and a pivot process
		n := r.nodes[r.rng.IntN(len(r.nodes))].Spec.Name
		p := r.pivots[r.rng.IntN(len(r.pivots))].name
		links := [][2]string{{n, p}, {p, n}}
		switch r.rng.IntN(3) {
		case 0:
			links = links[:1]
		case 1:
			links = links[1:]
		}
		mode := testcluster.LinkRefused
		if r.rng.IntN(2) == 0 {
			mode = testcluster.LinkBlackhole
		}
		for _, l := range links {
			if r.cut[l] {
				r.net.SetMode(l[0], l[1], testcluster.LinkUp)
				delete(r.cut, l)
				r.faults["link heal"]++
				continue
			}
			r.net.SetMode(l[0], l[1], mode)
			r.cut[l] = true
			r.faults["link cut"]++
		}
	}
}

// streamLeader is the index of the nats-server leading the bucket's stream, as a
// running pivot process sees it, or -1.
func (r *chaosRun) streamLeader() int {
	for _, p := range r.pivots {
		if p.nc == nil {
			continue
		}
		js, err := jetstream.New(p.nc)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := js.Stream(ctx, "KV_hub")
		var name string
		if err == nil && info.CachedInfo().Cluster != nil {
			name = info.CachedInfo().Cluster.Leader
		}
		cancel()
		for i, proc := range r.nats.procs {
			if name != "" && proc.name == name {
				return i
			}
		}
	}
	return -1
}

// heal puts every link up, starts every nats-server and pivot process.
func (r *chaosRun) heal() {
	r.net.HealAll()
	r.cut = map[[2]string]bool{}
	for i := range r.nats.procs {
		if !r.nats.running(i) {
			r.nats.start(r.t, i)
		}
	}
	r.nats.waitHealthy(r.t)
	for _, p := range r.pivots {
		if p.in == nil {
			r.restartPivot(p)
		}
	}
}

func (r *chaosRun) feeds() []testcluster.Feed {
	var out []testcluster.Feed
	for _, n := range r.nodes {
		out = append(out, n)
	}
	for _, p := range r.pivots {
		out = append(out, p.in)
	}
	return out
}

// check verifies the four invariants on the converged state.
func (r *chaosRun) check(final map[string]storage.Change) []string {
	var bad []string
	byKey := map[string][]chaosOp{}
	for _, op := range r.ops {
		byKey[op.key] = append(byKey[op.key], op)
		// D: a node answers every write, whatever the pivots and NATS do.
		if strings.HasPrefix(op.on, "node") && op.err != nil {
			bad = append(bad, fmt.Sprintf("D: op %d on %s (%s, %d pivots up) failed: %v", op.i, op.on, op.key, op.pivotsUp, op.err))
		}
		if strings.HasPrefix(op.on, "node") && op.took > 3*time.Second {
			bad = append(bad, fmt.Sprintf("D: op %d on %s took %s", op.i, op.on, op.took))
		}
	}
	for key, ops := range byKey {
		f, ok := final[key]
		var best *chaosOp
		for i := range ops {
			if ops[i].acked && (best == nil || pivot.Wins(ops[i].entry, best.entry)) {
				best = &ops[i]
			}
		}
		if best == nil {
			continue
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("B: %s: no entry at all, want op %d's", key, best.i))
			continue
		}
		// B: the final entry is the acknowledged op that wins under LWW, or wins over it.
		if f.Version() < best.entry.Version() || (!pivot.Wins(f.Entry, best.entry) && !sameEntry(f.Entry, best.entry)) {
			bad = append(bad, fmt.Sprintf("B: %s: final v=%d deleted=%v, but op %d (on %s) acknowledged v=%d deleted=%v", key, f.Version(), f.Deleted, best.i, best.on, best.entry.Version(), best.entry.Deleted))
			continue
		}
		// Nothing invented: a live final entry holds bytes some operation wrote.
		if !f.Deleted {
			// C: a key whose winning acknowledged op is a delete stays deleted, unless
			// a write with these bytes failed (its outcome is unknown: it may have
			// taken effect after the delete).
			written, unknown := false, false
			for _, op := range ops {
				if !op.del && bytes.Equal(op.data, f.Data) {
					written = true
					unknown = unknown || !op.acked
				}
			}
			switch {
			case !written:
				bad = append(bad, fmt.Sprintf("B: %s: final value written by no operation: %.80s", key, f.Data))
			case best.del && !unknown:
				bad = append(bad, fmt.Sprintf("C: %s: deleted by op %d (on %s, v=%d) but live again at v=%d", key, best.i, best.on, best.entry.Version(), f.Version()))
			}
		}
	}
	return bad
}

func sameEntry(a, b storage.Entry) bool {
	return a.Version() == b.Version() && a.Deleted == b.Deleted && bytes.Equal(a.Data, b.Data)
}

func TestChaosOverNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos over NATS child processes: not in -short")
	}
	natsServerBinary(t)
	seeds := make([]int, 0, *chaosSeeds)
	if *chaosSeed != 0 {
		seeds = append(seeds, *chaosSeed)
	} else {
		for s := *chaosFirst; s < *chaosFirst+*chaosSeeds; s++ {
			seeds = append(seeds, s)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { chaosSeedRun(t, uint64(seed)) })
	}
}

func chaosSeedRun(t *testing.T, seed uint64) {
	began := time.Now()
	dir := t.TempDir()
	r := &chaosRun{
		t:      t,
		rng:    rand.New(rand.NewPCG(seed, 0xc4a05)),
		net:    testcluster.NewNetwork(seed),
		faults: map[string]int{},
		cut:    map[[2]string]bool{},
	}
	r.nats = startNATS(t, dir, 3)
	for i := range 2 {
		p := &chaosPivot{name: fmt.Sprintf("p%d", i+1)}
		r.restartPivot(p)
		r.pivots = append(r.pivots, p)
		t.Cleanup(func() { r.stopPivot(p, false) })
	}
	addrs := []string{r.pivots[0].addr, r.pivots[1].addr}
	for i := range 3 {
		name := fmt.Sprintf("node%d", i+1)
		var db ooo.Database = &ooo.MemoryStorage{}
		if r.rng.IntN(2) == 0 {
			db = &storage.BoltStorage{Path: filepath.Join(dir, name)}
		}
		cfg := chaosConfig(r.net.Transport(name).Client())
		cfg.Pivots = addrs
		in, err := testcluster.Start(testcluster.Spec{Name: name, Storage: db, Config: cfg})
		must(t, err, "start %s", name)
		t.Cleanup(in.Close)
		r.net.Name(in.Addr, name)
		must(t, r.pivots[0].in.Register(in), "register %s", name)
		r.nodes = append(r.nodes, in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chaosWait)
	defer cancel()
	must(t, testcluster.WaitConverged(ctx, r.feeds(), chaosPaths, false), "converged at start")

	// The workload, paced so faults have time to act; faults at seeded operations.
	pace := time.NewTicker(15 * time.Millisecond)
	defer pace.Stop()
	for i := range *chaosOps {
		if r.rng.IntN(6) == 0 {
			r.fault()
		}
		r.do(i)
		<-pace.C
	}
	healed := time.Now()
	r.heal()
	upAt := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), chaosWait)
	defer cancel()
	if err := testcluster.WaitConverged(ctx, r.feeds(), chaosPaths, false); err != nil {
		t.Fatalf("seed %d: A (convergence): %v\n%s\nreplay: go test ./natshub -run 'TestChaosOverNATS/seed=%d$' -natschaos.seed=%d -natschaos.ops=%d -natschaos.repair=%s -v",
			seed, err, r.trace(), seed, seed, *chaosOps, *chaosRepair)
	}
	converged := time.Since(upAt)
	final := map[string]storage.Change{}
	for _, p := range chaosPaths {
		changes, _, err := r.pivots[0].in.Changes(p, 0, 1<<20)
		must(t, err)
		for _, c := range changes {
			final[c.Key] = c
		}
	}
	bad := append(r.violations, r.check(final)...)
	var repairs int64
	for _, n := range r.nodes {
		repairs += n.Result.Metrics().Repairs
	}
	acked, failed, alone := 0, 0, 0
	for _, op := range r.ops {
		if op.acked {
			acked++
		}
		if op.err != nil {
			failed++
		}
		if op.pivotsUp == 0 && strings.HasPrefix(op.on, "node") {
			alone++
		}
	}
	t.Logf("seed %d: %d ops (%d acknowledged, %d failed on a pivot, %d on nodes with no pivot process up), faults %v, requests %d passed %d refused %d blackholed, read-back waits %v, entries repaired by anti-entropy %d, healing (servers and processes up) %s, then converged in %s, %s in all",
		seed, len(r.ops), acked, failed, alone, r.faults, r.net.Count.Passed.Load(), r.net.Count.Refused.Load(), r.net.Count.Blackholed.Load(), r.readBackLags, repairs,
		upAt.Sub(healed).Round(time.Millisecond), converged.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	if len(bad) > 0 {
		t.Fatalf("seed %d: %d violations:\n%s\n%s\nreplay: go test ./natshub -run 'TestChaosOverNATS/seed=%d$' -natschaos.seed=%d -natschaos.ops=%d -natschaos.repair=%s -v",
			seed, len(bad), strings.Join(bad, "\n"), r.trace(), seed, seed, *chaosOps, *chaosRepair)
	}
}

// trace lists the operations of the run, for a failure message.
func (r *chaosRun) trace() string {
	var b strings.Builder
	for _, s := range r.steps {
		fmt.Fprintf(&b, "  fault %s\n", s)
	}
	for _, op := range r.ops {
		kind := "set"
		if op.del {
			kind = "del"
		}
		fmt.Fprintf(&b, "  op %d %s %s on %s acked=%v noop=%v v=%d err=%v pivots up=%d took=%s\n",
			op.i, kind, op.key, op.on, op.acked, op.noop, op.entry.Version(), op.err, op.pivotsUp, op.took.Round(time.Millisecond))
	}
	return b.String()
}

// The chaos checker fails on histories that break each invariant it checks: an
// acknowledged write lost, a value nobody wrote, a deleted key back, a failed write
// on a node; and passes a history whose final state is the LWW winner.
func TestChaosChecker_CatchesEachViolation(t *testing.T) {
	set := func(i int, on string, v int64, data string) chaosOp {
		return chaosOp{i: i, on: on, key: "items/a", data: []byte(data), acked: true,
			entry: storage.Entry{Key: "items/a", Created: v, Updated: v, Data: json.RawMessage(data)}}
	}
	del := func(i int, on string, v int64) chaosOp {
		return chaosOp{i: i, on: on, key: "items/a", del: true, acked: true,
			entry: storage.Entry{Key: "items/a", Created: 1, Updated: v, Deleted: true}}
	}
	final := func(e storage.Entry) map[string]storage.Change {
		return map[string]storage.Change{e.Key: {Entry: e}}
	}
	cases := []struct {
		name  string
		ops   []chaosOp
		final map[string]storage.Change
		want  string // "" for no violation, else the invariant's letter
	}{
		{"the winner stays", []chaosOp{set(0, "node1", 10, `1`), set(1, "node2", 20, `2`)}, final(set(1, "node2", 20, `2`).entry), ""},
		{"an earlier stamp loses though later in time", []chaosOp{set(0, "node1", 30, `1`), set(1, "node2", 20, `2`)}, final(set(0, "node1", 30, `1`).entry), ""},
		{"lost write", []chaosOp{set(0, "node1", 10, `1`), set(1, "node2", 20, `2`)}, final(set(0, "node1", 10, `1`).entry), "B"},
		{"missing key", []chaosOp{set(0, "node1", 10, `1`)}, map[string]storage.Change{}, "B"},
		{"invented value", []chaosOp{set(0, "node1", 10, `1`)}, final(storage.Entry{Key: "items/a", Created: 40, Data: json.RawMessage(`9`)}), "B"},
		{"resurrected", []chaosOp{set(0, "node1", 10, `1`), del(1, "node2", 20)}, final(storage.Entry{Key: "items/a", Created: 10, Updated: 25, Data: json.RawMessage(`1`)}), "C"},
		{"failed node write", []chaosOp{{i: 0, on: "node1", key: "items/a", data: []byte(`1`), err: errors.New("refused")}}, map[string]storage.Change{}, "D"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &chaosRun{t: t, ops: tc.ops}
			bad := r.check(tc.final)
			if tc.want == "" {
				if len(bad) > 0 {
					t.Fatalf("violations on a sound history: %v", bad)
				}
				return
			}
			for _, b := range bad {
				if strings.HasPrefix(b, tc.want+":") {
					return
				}
			}
			t.Fatalf("want a violation of %s, got %v", tc.want, bad)
		})
	}
}
