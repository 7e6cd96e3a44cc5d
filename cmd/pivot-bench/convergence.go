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

// convergenceRun is the convergence scenario at one collection size.
type convergenceRun struct {
	c               *cluster
	size            int
	toNode, toPivot *figure
	bytes, cpu      *figure
	taken           int           // samples taken, warm-up included
	spent           time.Duration // time spent in recorded samples
	done            bool
}

// runConvergence measures, with the synced collection holding each of sizes entries:
// the time from a write on node A until the entry is readable on node B and on the
// pivot, and the bytes on the wire and the CPU time the whole cluster spends on that one
// changed entry (from the write until every instance has finished syncing it). Each
// sample updates a different existing entry, one at a time, on a cluster of a pivot and
// two nodes on MemoryStorage.
//
// There is one cluster per size, all alive at once, and the samples go round-robin
// from one size to the next: a change in the machine's load, or in the garbage
// collector's pace, hits every size alike, so the ratios between sizes hold.
func runConvergence(r *results, o options, mode string, sizes []int) error {
	var runs []*convergenceRun
	defer func() {
		for _, run := range runs {
			run.c.close()
		}
	}()
	for _, size := range sizes {
		c, err := newCluster(mode, storeMemory, 2, size, o.logger)
		if err != nil {
			return err
		}
		scale := sizeLabel(size)
		run := &convergenceRun{c: c, size: size,
			toNode:  &figure{name: figConvergeNode, size: scale, mode: mode, unit: unitMs},
			toPivot: &figure{name: figConvergePivot, size: scale, mode: mode, unit: unitMs},
			bytes:   &figure{name: figChangeBytes, size: scale, mode: mode, unit: unitBytes},
			cpu:     &figure{name: figChangeCPU, size: scale, mode: mode, unit: unitMs},
		}
		runs = append(runs, run)
	}
	for _, run := range runs {
		for _, f := range []*figure{run.toNode, run.toPivot, run.bytes, run.cpu} {
			r.add(f)
		}
	}
	samples, budget := o.convergenceSamples(mode)
	warm := warmUp(mode)
	for {
		left := false
		for _, run := range runs {
			if run.done {
				continue
			}
			if err := run.sample(o, mode, warm); err != nil {
				return err
			}
			recorded := run.taken - warm
			switch {
			case recorded >= samples:
				run.done = true
			case recorded >= minSamples && run.spent > budget:
				run.done = true
				run.toNode.note = fmt.Sprintf("(%s budget)", budget)
			}
			left = left || !run.done
		}
		if !left {
			return nil
		}
	}
}

// sample takes one sample; the first warm ones are not recorded.
func (run *convergenceRun) sample(o options, mode string, warm int) error {
	c := run.c
	a, b := c.nodes[0], c.nodes[1]
	i := run.taken
	run.taken++
	idx := (i*7919 + 1) % run.size
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
		return nil
	}
	run.spent += time.Since(t0)
	run.toNode.samples = append(run.toNode.samples, ms(atNode.Sub(t0)))
	run.toPivot.samples = append(run.toPivot.samples, ms(atPivot.Sub(t0)))
	run.bytes.samples = append(run.bytes.samples, float64(c.wire.bytes.Load()-bytes0))
	run.cpu.samples = append(run.cpu.samples, ms(cpuTime()-cpu0))
	return nil
}

// sizeLabel writes a collection size as "1k", "10k", "100k".
func sizeLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
