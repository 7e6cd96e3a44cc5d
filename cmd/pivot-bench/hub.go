package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/natshub"
	"github.com/benitogf/pivot/natshub/localcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// The hub scenario (issue 14): several pivot processes serving one cluster over a
// natshub bucket on in-process JetStream servers (every write synced to disk), beside
// the single-process pivot, in one run:
//   - the hub storage's applies/s (what a pivot does with a node's push: Apply of a
//     batch of 100 new entries) on MemoryStorage, BoltStorage, natshub R1 (one server)
//     and natshub R3 (three servers);
//   - a write on node A until readable on node B, with one pivot process on
//     MemoryStorage, and with A and B syncing with two different pivot processes over
//     natshub R3;
//   - node A's writes through the hub: 4 writers write a round of new entries on A as
//     fast as it takes them; writes per second from the first write until B holds
//     every one of them, with one pivot process and with two;
//   - failover: node A's pivot process dies (its NATS connection drops, then its HTTP
//     server stops, so it never leaves the membership cleanly); from that moment a
//     write on A until readable on B, which syncs with the other process.
//
// Every instance runs pivot's defaults (live stream on, default backoff), as a
// program would.

// Figure names and scales of the hub scenario.
const (
	figHubApply    = "hub storage applies, batches of 100"
	figHubNode     = "node A → node B, 1 pivot vs 2"
	figHubFlow     = "A's writes through hub, all on B"
	figHubFailover = "failover: A's pivot dies → B has it"

	scaleOnePivotMemory = "1 pivot, memory"
	scaleOnePivotBolt   = "1 pivot, bolt"
	scaleHubR1          = "natshub R1"
	scaleHubR3          = "natshub R3"
	scaleTwoPivotsR3    = "2 pivots, nats R3"
)

// hubEnv is the JetStream clusters of one run of the scenario, and a counter that gives
// every set of buckets a name of its own.
type hubEnv struct {
	dir    string
	r1, r3 *localcluster.Cluster
	n      int
	logger *slog.Logger
}

func newHubEnv(logger *slog.Logger) (*hubEnv, error) {
	dir, err := os.MkdirTemp("", "pivot-bench-hub-")
	if err != nil {
		return nil, fmt.Errorf("bench: hub folder: %w", err)
	}
	e := &hubEnv{dir: dir, logger: logger}
	if e.r3, err = localcluster.Start(filepath.Join(dir, "r3"), 3); err != nil {
		e.close()
		return nil, fmt.Errorf("bench: 3 JetStream servers: %w", err)
	}
	if e.r1, err = localcluster.Start(filepath.Join(dir, "r1"), 1); err != nil {
		e.close()
		return nil, fmt.Errorf("bench: 1 JetStream server: %w", err)
	}
	return e, nil
}

func (e *hubEnv) close() {
	if e.r1 != nil {
		e.r1.Close()
	}
	if e.r3 != nil {
		e.r3.Close()
	}
	_ = os.RemoveAll(e.dir)
}

// bucket returns a bucket name no earlier part of the run used.
func (e *hubEnv) bucket() string {
	e.n++
	return fmt.Sprintf("bench%d", e.n)
}

// natsStorage connects to the servers at urls and opens a natshub Storage on bucket,
// with replicas replicas, for process. The connection is closed with the returned func.
func natsStorage(urls, bucket string, replicas int, process string) (*natshub.Storage, jetstream.JetStream, *nats.Conn, error) {
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bench: connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	st, err := natshub.New(context.Background(), js, natshub.Config{Bucket: bucket, Replicas: replicas, Process: process})
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("bench: natshub storage: %w", err)
	}
	return st, js, nc, nil
}

// runHubApplies measures the applies/s of each hub storage: rounds of 10 batches of 100
// new entries, one sample per round, the storages in turn round by round.
func runHubApplies(r *results, o options, e *hubEnv) error {
	type target struct {
		scale string
		db    ooo.Database
		fig   *figure
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.db.Close()
		}
	}()
	add := func(scale string, db ooo.Database) error {
		if err := db.Start(storage.Options{}); err != nil {
			return fmt.Errorf("bench: start %s: %w", scale, err)
		}
		f := &figure{name: figHubApply, size: scale, mode: modeDelta, unit: unitApply}
		r.add(f)
		targets = append(targets, &target{scale: scale, db: db, fig: f})
		return nil
	}
	if err := add(scaleOnePivotMemory, &ooo.MemoryStorage{}); err != nil {
		return err
	}
	if err := add(scaleOnePivotBolt, &ooo.BoltStorage{Path: filepath.Join(e.dir, "applies.db")}); err != nil {
		return err
	}
	for _, c := range []struct {
		scale    string
		cluster  *localcluster.Cluster
		replicas int
	}{{scaleHubR1, e.r1, 1}, {scaleHubR3, e.r3, 3}} {
		st, _, nc, err := natsStorage(c.cluster.URLs(), e.bucket(), c.replicas, "applies")
		if err != nil {
			return err
		}
		defer nc.Close()
		if err := add(c.scale, st); err != nil {
			return err
		}
	}
	rounds := 30
	if o.quick {
		rounds = 10
	}
	const batches, per = 10, 100
	n := 0
	for round := range rounds + 1 { // round 0 warms up
		for _, t := range targets {
			rep := t.db.(storage.Replica)
			began := time.Now()
			for b := range batches {
				batch := make([]storage.Entry, per)
				for j := range batch {
					batch[j] = storage.Entry{Key: fmt.Sprintf("users/a%d-%d-%d", round, b, j), Created: rep.Clock().Now(), Data: entryData(n, 1)}
					n++
				}
				if _, err := rep.Apply(batch, pivot.Wins); err != nil {
					return fmt.Errorf("bench: apply on %s: %w", t.scale, err)
				}
			}
			if round > 0 {
				t.fig.samples = append(t.fig.samples, float64(batches*per)/time.Since(began).Seconds())
			}
		}
	}
	base := targets[0].fig.median()
	for _, t := range targets[1:] {
		if m := t.fig.median(); base > 0 && m > 0 {
			t.fig.note = fmt.Sprintf("×%s of memory", trim(m/base))
		}
	}
	return nil
}

// hubInstance is one ooo server of a hub cluster: a pivot process or a node.
type hubInstance struct {
	name    string
	server  *ooo.Server
	db      ooo.Database
	sync    pivot.SetupResult
	nc      *nats.Conn // a pivot process's NATS connection
	arrived *arrivals
	once    sync.Once
}

// stop stops the instance; a pivot process first loses its NATS connection, as when
// it dies, so it does not leave the membership. Safe to call more than once.
func (in *hubInstance) stop() {
	in.once.Do(func() {
		if in.nc != nil {
			in.nc.Close()
		}
		in.server.Close(os.Interrupt)
	})
}

// hubCluster is pivot processes and nodes A and B, B syncing with another pivot
// process than A when there are several.
type hubCluster struct {
	pivots []*hubInstance
	a, b   *hubInstance
	missed int // writes on A that never reached B within missAfter
}

// missAfter is how long a write on A may take to reach B before the bench counts it
// missed and goes on (the figures' medians are milliseconds): on the two-process
// cluster some writes were seen to never arrive, B's pull cursor having moved past
// them, until anti-entropy repairs them (RepairInterval, a minute by default).
const missAfter = 5 * time.Second

// holding counts, on every instance, the entries under prefix its feed holds: where a
// round's missing writes are.
func (c *hubCluster) holding(prefix string) string {
	var out []string
	for _, in := range append([]*hubInstance{c.a, c.b}, c.pivots...) {
		n := 0
		if rep, ok := in.db.(storage.Replica); ok {
			changes, _, err := rep.Changes(syncedPath, 0, 1<<20)
			if err != nil {
				out = append(out, fmt.Sprintf("%s: %v", in.name, err))
				continue
			}
			for _, ch := range changes {
				if strings.HasPrefix(ch.Key, prefix) {
					n++
				}
			}
		}
		out = append(out, fmt.Sprintf("%s holds %d", in.name, n))
	}
	return strings.Join(out, ", ")
}

// describe is the sync status of nodes A and B, for a failure report.
func (c *hubCluster) describe(k string) string {
	var b strings.Builder
	for _, in := range append([]*hubInstance{c.a, c.b}, c.pivots...) {
		st, _ := json.Marshal(in.sync.Status())
		// A plain Get on a node would sync on read and fetch the missing write.
		var err error
		if q, ok := in.db.(storage.QuietReader); ok {
			_, err = q.GetQuiet(k)
		} else {
			_, err = in.db.Get(k)
		}
		fmt.Fprintf(&b, "%s (%s) holds %s: %v; status %s\n", in.name, in.server.Address, k, err == nil, st)
		if rep, ok := in.db.(storage.Replica); ok {
			changes, next, err := rep.Changes(syncedPath, 0, 1<<20)
			if err == nil && len(changes) > 0 {
				last := changes[len(changes)-1]
				fmt.Fprintf(&b, "  feed: %d changes, next %d, last %s at %d\n", len(changes), next, last.Key, last.Version())
			}
		}
	}
	return b.String()
}

func (c *hubCluster) close() {
	for _, in := range []*hubInstance{c.a, c.b} {
		if in != nil {
			in.stop()
		}
	}
	for _, p := range c.pivots {
		p.stop()
	}
}

// hubConfig is pivot's defaults with the bench's keys.
func hubConfig(logger *slog.Logger) pivot.Config {
	return pivot.Config{
		Keys:      []pivot.Key{{Path: syncedPath}},
		NodesKey:  nodesPath,
		Token:     "bench-token",
		ClusterID: "bench-hub",
		Logger:    logger,
	}
}

// startHubInstance sets pivot up on a server over db and starts it on loopback.
func startHubInstance(name string, db ooo.Database, cfg pivot.Config) (*hubInstance, error) {
	in := &hubInstance{name: name, db: db, arrived: newArrivals()}
	in.server = &ooo.Server{Silence: true, Storage: db}
	in.server.OnStorageEvent = in.arrived.event
	pivot.ProtectNodesKey(in.server, cfg.NodesKey, nil)
	in.sync = pivot.Setup(in.server, cfg)
	if err := in.server.Start("127.0.0.1:0"); err != nil {
		in.sync.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	return in, nil
}

// newHubCluster starts, with shared, two pivot processes over a new natshub R3 bucket;
// without, one pivot process on MemoryStorage. Then nodes A and B on MemoryStorage,
// registered under NodesKey, B started again (10 tries at most) until it syncs with
// another pivot process than A.
func newHubCluster(e *hubEnv, shared bool, deadline time.Duration) (*hubCluster, error) {
	c := &hubCluster{}
	cfg := hubConfig(e.logger)
	if shared {
		bucket := e.bucket()
		for _, name := range []string{"pivot1", "pivot2"} {
			st, js, nc, err := natsStorage(e.r3.URLs(), bucket, 3, name)
			if err != nil {
				c.close()
				return nil, err
			}
			members, err := natshub.NewMembership(context.Background(), js, natshub.MembershipConfig{Bucket: bucket + "_members", Replicas: 3, Memory: true})
			if err != nil {
				nc.Close()
				c.close()
				return nil, fmt.Errorf("bench: membership: %w", err)
			}
			pc := cfg
			pc.Membership = members
			p, err := startHubInstance(name, st, pc)
			if err != nil {
				nc.Close()
				c.close()
				return nil, err
			}
			p.nc = nc
			c.pivots = append(c.pivots, p)
		}
	} else {
		p, err := startHubInstance("pivot", &ooo.MemoryStorage{}, cfg)
		if err != nil {
			return nil, err
		}
		c.pivots = append(c.pivots, p)
	}
	var addrs []string
	for _, p := range c.pivots {
		addrs = append(addrs, p.server.Address)
	}
	nodeCfg := cfg
	nodeCfg.Pivots = addrs
	startNode := func(name string) (*hubInstance, error) {
		n, err := startHubInstance(name, &ooo.MemoryStorage{}, nodeCfg)
		if err != nil {
			return nil, err
		}
		data, _ := json.Marshal(map[string]string{"ip": n.server.Address})
		if _, err := c.pivots[0].db.Set("things/"+name+"-"+strings.NewReplacer(".", "-", ":", "-").Replace(n.server.Address), data); err != nil {
			n.stop()
			return nil, fmt.Errorf("bench: register %s: %w", name, err)
		}
		if err := pollUntil(deadline, name+" syncing", func() bool { return n.sync.Status().PivotHealthy }); err != nil {
			n.stop()
			return nil, err
		}
		return n, nil
	}
	var err error
	if c.a, err = startNode("nodeA"); err != nil {
		c.close()
		return nil, err
	}
	for try := 0; ; try++ {
		if c.b, err = startNode("nodeB"); err != nil {
			c.close()
			return nil, err
		}
		if !shared || c.b.sync.Status().Pivot != c.a.sync.Status().Pivot {
			break
		}
		if try == 9 {
			c.close()
			return nil, fmt.Errorf("bench: node B synced with node A's pivot process 10 times")
		}
		c.b.stop()
	}
	// One write through, so the first sample does not pay for start-up.
	k := "users/warm"
	onB := c.b.arrived.key(k)
	if _, err := c.a.db.Set(k, entryData(0, 1)); err != nil {
		c.close()
		return nil, fmt.Errorf("bench: write on node A: %w", err)
	}
	if _, err := wait(onB, missAfter, k+" on node B"); err != nil {
		c.missed++
		if verboseMiss {
			fmt.Fprintf(os.Stderr, "\n%v (the cluster's first write)\n%s", err, c.describe(k))
		}
	}
	return c, nil
}

// verboseMiss makes the first missed write of a cluster print the state of every
// instance to stderr (-v).
var verboseMiss bool

// pollUntil checks cond every 5ms until it holds, or fails after deadline.
func pollUntil(deadline time.Duration, what string, cond func() bool) error {
	until := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(until) {
			return fmt.Errorf("bench: timed out after %s waiting for %s", deadline, what)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline, not synchronisation
	}
	return nil
}

// runHubConvergence measures a write on node A until readable on node B, through one
// pivot process on MemoryStorage and through two over natshub R3, one sample on each
// in turn; then runHubFlow on the same clusters.
func runHubConvergence(r *results, o options, e *hubEnv) error {
	one, err := newHubCluster(e, false, o.deadline)
	if err != nil {
		return err
	}
	defer one.close()
	two, err := newHubCluster(e, true, o.deadline)
	if err != nil {
		return err
	}
	defer two.close()
	f1 := &figure{name: figHubNode, size: scaleOnePivotMemory, mode: modeDelta, unit: unitMs}
	f2 := &figure{name: figHubNode, size: scaleTwoPivotsR3, mode: modeDelta, unit: unitMs}
	r.add(f1)
	r.add(f2)
	samples, budget := o.convergenceSamples(modeDelta)
	warm := warmUp(modeDelta)
	var spent time.Duration
	for i := 0; i < warm+samples; i++ {
		if i >= warm+minSamples && spent > 2*budget {
			f2.note = fmt.Sprintf("(%s budget)", 2*budget)
			break
		}
		t0 := time.Now()
		var took [2]time.Duration // -1: missed
		for j, c := range []*hubCluster{one, two} {
			k := entryKey(i)
			onB := c.b.arrived.key(k)
			w0 := time.Now()
			if _, err := c.a.db.Set(k, entryData(i, 1)); err != nil {
				return fmt.Errorf("bench: write on node A: %w", err)
			}
			at, err := wait(onB, missAfter, k+" on node B")
			if err != nil {
				c.missed++
				if c.missed == 1 && verboseMiss {
					fmt.Fprintf(os.Stderr, "\n%v (%s)\n%s", err, []string{f1.size, f2.size}[j], c.describe(k))
				}
				took[j] = -1
				continue
			}
			took[j] = at.Sub(w0)
		}
		if i >= warm {
			for j, f := range []*figure{f1, f2} {
				if took[j] >= 0 {
					f.samples = append(f.samples, ms(took[j]))
				}
			}
			if took[0] >= 0 && took[1] >= 0 { // a miss's wait is not spent on samples
				spent += time.Since(t0)
			}
		}
	}
	if a, b := f1.median(), f2.median(); a > 0 && b > 0 {
		f2.note = fmt.Sprintf("×%s of 1 pivot %s", trim(b/a), f2.note)
	}
	for j, c := range []*hubCluster{one, two} {
		if c.missed > 0 {
			f := []*figure{f1, f2}[j]
			f.note = strings.TrimSpace(fmt.Sprintf("%s; %d write(s) never on B within %s", f.note, c.missed, missAfter))
		}
	}
	return runHubFlow(r, o, one, two)
}

// runHubFlow measures rounds of o.perRound/5 new entries written on node A by
// o.writers writers, each round on one cluster then the other: entries per second from
// the first write until node B holds them all.
func runHubFlow(r *results, o options, one, two *hubCluster) error {
	f1 := &figure{name: figHubFlow, size: scaleOnePivotMemory, mode: modeDelta, unit: unitRate}
	f2 := &figure{name: figHubFlow, size: scaleTwoPivotsR3, mode: modeDelta, unit: unitRate}
	r.add(f1)
	r.add(f2)
	per := max(100, o.perRound/5)
	for round := range o.rounds {
		for j, c := range []*hubCluster{one, two} {
			prefix := fmt.Sprintf("users/flow%d-", round)
			onB := c.b.arrived.distinct(prefix)
			write := func(k string, i int) error {
				_, err := c.a.db.Set(k, entryData(i, 1))
				return err
			}
			written, began, _, err := burst(write, prefix, per, o.convergeFor, o.writers)
			if err != nil {
				return err
			}
			f := []*figure{f1, f2}[j]
			at, err := wait(onB.expect(written), o.convergeFor, fmt.Sprintf("%d writes on node B", written))
			if err != nil {
				f.note = strings.TrimSpace(fmt.Sprintf("%s; round %d: %d of %d on B after %s (%s)", f.note, round, onB.count(), written, o.convergeFor, c.holding(prefix)))
				continue
			}
			f.samples = append(f.samples, float64(written)/at.Sub(began).Seconds())
		}
	}
	if a, b := f1.median(), f2.median(); a > 0 && b > 0 {
		f2.note = strings.TrimSpace(fmt.Sprintf("×%s of 1 pivot %s", trim(b/a), f2.note))
	}
	return nil
}

// runHubFailover measures, on a new two-process cluster per sample, the time from the
// death of node A's pivot process until a write A makes right then is readable on B.
func runHubFailover(r *results, o options, e *hubEnv) error {
	f := &figure{name: figHubFailover, size: scaleTwoPivotsR3, mode: modeDelta, unit: unitMs}
	r.add(f)
	r.add(&figure{name: figHubFailover, size: scaleOnePivotMemory, mode: modeDelta, unit: unitMs,
		note: "no other process: A's writes wait for its return"})
	samples := 10
	if o.quick {
		samples = 3
	}
	missed := 0
	for i := range samples {
		c, err := newHubCluster(e, true, o.deadline)
		if err != nil {
			return err
		}
		var victim *hubInstance
		for _, p := range c.pivots {
			if p.server.Address == c.a.sync.Status().Pivot {
				victim = p
			}
		}
		if victim == nil {
			c.close()
			return fmt.Errorf("bench: node A's pivot process %q is not one of the cluster's", c.a.sync.Status().Pivot)
		}
		k := fmt.Sprintf("users/failover-%d", i)
		onB := c.b.arrived.key(k)
		t0 := time.Now()
		victim.stop()
		if _, err := c.a.db.Set(k, entryData(i, 1)); err != nil {
			c.close()
			return fmt.Errorf("bench: write on node A: %w", err)
		}
		at, err := wait(onB, missAfter, k+" on node B after the failover")
		missed += c.missed
		if err != nil && verboseMiss {
			fmt.Fprintf(os.Stderr, "\n%v (failover sample %d, %s stopped)\n%s", err, i, victim.name, c.describe(k))
		}
		c.close()
		if err != nil {
			missed++
			continue
		}
		f.samples = append(f.samples, ms(at.Sub(t0)))
	}
	if missed > 0 {
		f.note = fmt.Sprintf("%d write(s) never on B within %s", missed, missAfter)
	}
	return nil
}
