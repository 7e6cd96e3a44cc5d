package main

import (
	"fmt"
	"time"
)

// figFanOut names the fan-out figure.
const figFanOut = "fan-out, pivot → every node"

// fanOutSize is the collection the fan-out clusters hold.
const fanOutSize = 1000

// runFanOut measures, on a pivot with n nodes on MemoryStorage holding fanOutSize
// entries, the time from a write on the pivot until every node has it.
func runFanOut(r *results, o options, mode string, n int) error {
	c, err := newCluster(mode, storeMemory, n, fanOutSize, o.logger)
	if err != nil {
		return err
	}
	defer c.close()
	f := &figure{name: figFanOut, size: nodesLabel(n), mode: mode, unit: unitMs}
	r.add(f)
	samples, budget := o.fanOutCount(mode)
	warm := warmUp(mode)
	var began time.Time
	for i := 0; i < warm+samples; i++ {
		if i == warm {
			began = time.Now()
		}
		if i >= warm+minSamples && time.Since(began) > budget {
			f.note = fmt.Sprintf("(%s budget)", budget)
			break
		}
		idx := (i*7919 + 1) % fanOutSize
		k := entryKey(idx)
		arrivals := make([]<-chan time.Time, len(c.nodes))
		for j, node := range c.nodes {
			arrivals[j] = node.arrived.key(k)
		}
		t0 := time.Now()
		if _, err := c.pivot.db.Set(k, entryData(idx, i+1)); err != nil {
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
		if err := c.settle(o.deadline); err != nil {
			return err
		}
		if i >= warm {
			f.samples = append(f.samples, ms(last.Sub(t0)))
		}
	}
	return nil
}

// nodesLabel writes a node count: "1 node", "10 nodes".
func nodesLabel(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}
