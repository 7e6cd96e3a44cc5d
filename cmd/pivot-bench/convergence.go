package main

import (
	"fmt"
	"time"
)

// Figure names of the convergence scenario.
const (
	figConvergeNode  = "convergence, node A → node B"
	figConvergePivot = "convergence, node A → pivot"
	figChangeBytes   = "wire bytes per changed entry"
	figChangeCPU     = "CPU time per changed entry"
)

// warmUp is how many samples a latency figure takes before it records any: delta sync
// samples are short and plenty, a naive one can take seconds.
func warmUp(mode string) int {
	if mode == modeNaive {
		return 3
	}
	return 20
}

// runConvergence measures, with the synced collection holding size entries: the time
// from a write on node A until the entry is readable on node B and on the pivot, and the
// bytes on the wire and the CPU time the whole cluster spends on that one changed entry
// (from the write until every instance has finished syncing it). Each sample updates a
// different existing entry, one at a time, on a cluster of a pivot and two nodes on
// MemoryStorage.
func runConvergence(r *results, o options, mode string, size int) error {
	c, err := newCluster(mode, storeMemory, 2, size, o.logger)
	if err != nil {
		return err
	}
	defer c.close()
	a, b := c.nodes[0], c.nodes[1]
	scale := sizeLabel(size)
	toNode := &figure{name: figConvergeNode, size: scale, mode: mode, unit: unitMs}
	toPivot := &figure{name: figConvergePivot, size: scale, mode: mode, unit: unitMs}
	bytes := &figure{name: figChangeBytes, size: scale, mode: mode, unit: unitBytes}
	cpu := &figure{name: figChangeCPU, size: scale, mode: mode, unit: unitMs}
	for _, f := range []*figure{toNode, toPivot, bytes, cpu} {
		r.add(f)
	}
	samples, budget := o.convergenceSamples(mode)
	warm := warmUp(mode)
	var began time.Time
	for i := 0; i < warm+samples; i++ {
		if i == warm {
			began = time.Now()
		}
		if i >= warm+minSamples && time.Since(began) > budget {
			toNode.note = fmt.Sprintf("(%s budget)", budget)
			break
		}
		idx := (i*7919 + 1) % size
		k := entryKey(idx)
		onNode, onPivot := b.arrived.key(k), c.pivot.arrived.key(k)
		bytes0, cpu0 := c.wire.bytes.Load(), cpuTime()
		t0 := time.Now()
		if _, err := a.db.Set(k, entryData(idx, i+1)); err != nil {
			return fmt.Errorf("bench: write on node A: %w", err)
		}
		atPivot, err := wait(onPivot, o.deadline, k+" on the pivot")
		if err != nil {
			return err
		}
		atNode, err := wait(onNode, o.deadline, k+" on node B")
		if err != nil {
			return err
		}
		if err := c.settle(o.deadline); err != nil {
			return err
		}
		if i < warm {
			continue
		}
		toNode.samples = append(toNode.samples, ms(atNode.Sub(t0)))
		toPivot.samples = append(toPivot.samples, ms(atPivot.Sub(t0)))
		bytes.samples = append(bytes.samples, float64(c.wire.bytes.Load()-bytes0))
		cpu.samples = append(cpu.samples, ms(cpuTime()-cpu0))
	}
	return nil
}

// sizeLabel writes a collection size as "1k", "10k", "100k".
func sizeLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
