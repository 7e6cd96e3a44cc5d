package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// The live stream scenario (issue 15): the same write measured on the trigger path
// (push, trigger, pull: the delta clusters of the other scenarios, whose counting
// client keeps the stream off) and on the stream (push, one frame), in one run,
// sample by sample in turn; and one write on the pivot reaching 10, 100 and 1,000
// nodes that have their stream open and no NodesKey entry, so nothing but the stream
// can bring it to them.

// Figure names and modes of the stream scenario.
const (
	figStreamNode = "node A → node B, stream vs triggers"
	figStreamFan  = "fan-out, pivot → every stream node"

	modeStream  = "stream"
	modeTrigger = "trigger"
)

// liveCluster is a pivot and nodes on MemoryStorage with the live stream on (the
// default) and no NodesKey entries: the pivot cannot trigger them.
type liveCluster struct {
	pivot *liveInstance
	nodes []*liveInstance
}

// liveInstance is one server of a liveCluster.
type liveInstance struct {
	name    string
	server  *ooo.Server
	db      ooo.Database
	sync    pivot.SetupResult
	arrived *arrivals
}

// liveConfig is the config of every stream instance: periodic sync, sync-on-read
// and anti-entropy off, so every figure comes from the stream alone.
func liveConfig(logger *slog.Logger) pivot.Config {
	return pivot.Config{
		Keys:           []pivot.Key{{Path: syncedPath}},
		NodesKey:       nodesPath,
		Token:          "bench-token",
		ClusterID:      "bench",
		SyncInterval:   -1,
		ReadBudget:     -1,
		RepairInterval: -1,
		Logger:         logger,
	}
}

// newLiveCluster starts a pivot holding size entries and n nodes, and waits until
// every node holds them and has its stream open.
func newLiveCluster(n, size int, logger *slog.Logger, deadline time.Duration) (*liveCluster, error) {
	c := &liveCluster{}
	p, err := startLiveInstance("pivot", "", &ooo.MemoryStorage{}, newArrivals(), logger)
	if err != nil {
		return nil, err
	}
	c.pivot = p
	if err := preload(p.db.(storage.Replica), size); err != nil {
		c.close()
		return nil, err
	}
	var filled []<-chan time.Time
	for i := range n {
		db := &ooo.MemoryStorage{}
		arrived := newArrivals()
		var want *distinct
		if size > 0 {
			want = arrived.distinct("users/")
		}
		node, err := startLiveInstance(fmt.Sprintf("node%d", i+1), p.server.Address, db, arrived, logger)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		if want != nil {
			filled = append(filled, want.expect(size))
		}
	}
	for i, ch := range filled {
		if _, err := wait(ch, deadline, c.nodes[i].name+" holding the collection"); err != nil {
			c.close()
			return nil, err
		}
	}
	until := time.Now().Add(deadline)
	for {
		open := 0
		for _, ns := range p.sync.Status().Nodes {
			if ns.Stream {
				open++
			}
		}
		if open == n && c.started() {
			return c, nil
		}
		if time.Now().After(until) {
			c.close()
			return nil, fmt.Errorf("bench: %d of %d streams open after %s", open, n, deadline)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline, not synchronisation
	}
}

// startLiveInstance starts one server on loopback over db, a node of pivotAddr
// unless "", recording its writes into arrived.
func startLiveInstance(name, pivotAddr string, db ooo.Database, arrived *arrivals, logger *slog.Logger) (*liveInstance, error) {
	in := &liveInstance{name: name, db: db, arrived: arrived}
	in.server = &ooo.Server{Silence: true, Storage: db, Pivot: pivotAddr}
	in.server.OnStorageEvent = arrived.event
	in.sync = pivot.Setup(in.server, liveConfig(logger))
	if err := in.server.Start("127.0.0.1:0"); err != nil {
		in.sync.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	return in, nil
}

// started reports whether every node finished its first round: the writer ids
// confirmed and the data compared with the pivot's (each key has a LastCheck), so no
// start-up work runs during the samples.
func (c *liveCluster) started() bool {
	for _, n := range c.nodes {
		for _, k := range n.sync.Status().Keys {
			if k.LastCheck.IsZero() {
				return false
			}
		}
	}
	return true
}

// close stops every instance.
func (c *liveCluster) close() {
	for _, n := range c.nodes {
		n.server.Close(os.Interrupt)
	}
	if c.pivot != nil {
		c.pivot.server.Close(os.Interrupt)
	}
}

// runStreamConvergence measures a write on node A until it is readable on node B, on
// a trigger cluster and a stream cluster of a pivot and two nodes holding 1,000
// entries, one sample on each in turn.
func runStreamConvergence(r *results, o options) error {
	const size = 1000
	trig, err := newCluster(modeDelta, storeMemory, 2, size, o.logger)
	if err != nil {
		return err
	}
	defer trig.close()
	str, err := newLiveCluster(2, size, o.logger, o.deadline)
	if err != nil {
		return err
	}
	defer str.close()
	ft := &figure{name: figStreamNode, size: sizeLabel(size), mode: modeTrigger, unit: unitMs}
	fs := &figure{name: figStreamNode, size: sizeLabel(size), mode: modeStream, unit: unitMs}
	r.add(ft)
	r.add(fs)
	samples, budget := o.convergenceSamples(modeDelta)
	warm := warmUp(modeDelta)
	var spent time.Duration
	for i := 0; i < warm+samples; i++ {
		if i >= warm+minSamples && spent > 2*budget {
			fs.note = fmt.Sprintf("(%s budget)", 2*budget)
			break
		}
		idx := (i*7919 + 1) % size
		k := entryKey(idx)
		t0 := time.Now()
		// Triggers: the cluster of the convergence scenario.
		a, b := trig.nodes[0], trig.nodes[1]
		onB := b.arrived.key(k)
		w0 := time.Now()
		if _, err := a.db.Set(k, entryData(idx, i+1)); err != nil {
			return fmt.Errorf("bench: write on node A: %w", err)
		}
		atB, err := wait(onB, o.deadline, k+" on node B (triggers)")
		if err != nil {
			return err
		}
		if err := trig.settle(o.deadline); err != nil {
			return err
		}
		// Stream.
		sa, sb := str.nodes[0], str.nodes[1]
		onSB := sb.arrived.key(k)
		s0 := time.Now()
		if _, err := sa.db.Set(k, entryData(idx, i+1)); err != nil {
			return fmt.Errorf("bench: write on node A: %w", err)
		}
		atSB, err := wait(onSB, o.deadline, k+" on node B (stream)")
		if err != nil {
			return err
		}
		if i >= warm {
			ft.samples = append(ft.samples, ms(atB.Sub(w0)))
			fs.samples = append(fs.samples, ms(atSB.Sub(s0)))
			spent += time.Since(t0)
		}
	}
	if t, s := ft.median(), fs.median(); s > 0 {
		fs.note = fmt.Sprintf("×%s faster than triggers %s", trim(t/s), fs.note)
	}
	return nil
}

// runStreamFanOut measures one write on the pivot until every one of n stream nodes
// holds it.
func runStreamFanOut(r *results, o options, n int) error {
	c, err := newLiveCluster(n, 0, o.logger, o.deadline)
	if err != nil {
		return err
	}
	defer c.close()
	f := &figure{name: figStreamFan, size: nodesLabel(n), mode: modeStream, unit: unitMs}
	r.add(f)
	samples, budget := o.fanOutCount(modeDelta)
	if n >= 1000 {
		samples = max(minSamples, samples/4)
	}
	const warm = 5
	var began time.Time
	for i := 0; i < warm+samples; i++ {
		if i == warm {
			began = time.Now()
		}
		if i >= warm+minSamples && time.Since(began) > budget {
			f.note = fmt.Sprintf("(%s budget)", budget)
			break
		}
		k := entryKey(i)
		arrivals := make([]<-chan time.Time, len(c.nodes))
		for j, node := range c.nodes {
			arrivals[j] = node.arrived.key(k)
		}
		t0 := time.Now()
		if _, err := c.pivot.db.Set(k, entryData(i, i+1)); err != nil {
			return fmt.Errorf("bench: write on the pivot: %w", err)
		}
		var last time.Time
		for j, ch := range arrivals {
			at, err := wait(ch, o.deadline, fmt.Sprintf("%s on %s", k, c.nodes[j].name))
			if err != nil {
				return err
			}
			if at.After(last) {
				last = at
			}
		}
		if i >= warm {
			f.samples = append(f.samples, ms(last.Sub(t0)))
		}
	}
	return nil
}
