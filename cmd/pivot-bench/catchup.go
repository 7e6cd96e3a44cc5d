package main

import (
	"fmt"
	"time"
)

// Figure names of the catch-up scenario.
const (
	figCatchUp      = "catch-up after reconnecting"
	figCatchUpBytes = "catch-up wire bytes"
)

// runCatchUp measures how long node B, offline (its server closed) while o.catchUpSize
// entries are written on node A, takes to hold all of them after it starts again on the
// same address over the same MemoryStorage, and the bytes the cluster moves meanwhile.
// The clock starts before B's server starts; the writes have all reached the pivot by
// then. Each sample is a new cluster.
func runCatchUp(r *results, o options, mode string) error {
	scale := sizeLabel(o.catchUpSize)
	lat := &figure{name: figCatchUp, size: scale, mode: mode, unit: unitMs}
	bytes := &figure{name: figCatchUpBytes, size: scale, mode: mode, unit: unitBytes}
	r.add(lat)
	r.add(bytes)
	for rep := range o.catchUpRounds {
		took, moved, err := catchUpOnce(o, mode, rep)
		if err != nil {
			lat.note = err.Error()
			return nil
		}
		lat.samples = append(lat.samples, ms(took))
		bytes.samples = append(bytes.samples, float64(moved))
	}
	return nil
}

func catchUpOnce(o options, mode string, rep int) (time.Duration, int64, error) {
	c, err := newCluster(mode, storeMemory, 2, 0, o.logger)
	if err != nil {
		return 0, 0, err
	}
	defer c.close()
	a, b := c.nodes[0], c.nodes[1]
	// One write that reaches B first, so B has synced once and has a cursor to resume.
	onNode := b.arrived.key("users/warm")
	if _, err := a.db.Set("users/warm", entryData(0, 0)); err != nil {
		return 0, 0, fmt.Errorf("bench: write on node A: %w", err)
	}
	if _, err := wait(onNode, o.deadline, "the first write on node B"); err != nil {
		return 0, 0, err
	}
	if err := c.settle(o.deadline); err != nil {
		return 0, 0, err
	}
	b.stop()
	prefix := fmt.Sprintf("users/c%d-", rep)
	onPivot := c.pivot.arrived.distinct(prefix)
	for i := range o.catchUpSize {
		if _, err := a.db.Set(fmt.Sprintf("%s%d", prefix, i), entryData(i, 1)); err != nil {
			return 0, 0, fmt.Errorf("bench: write on node A: %w", err)
		}
	}
	if _, err := wait(onPivot.expect(o.catchUpSize), o.convergeFor, "the writes on the pivot"); err != nil {
		return 0, 0, err
	}
	if err := c.settle(o.convergeFor); err != nil {
		return 0, 0, err
	}
	bytes0 := c.wire.bytes.Load()
	t0 := time.Now()
	done, err := b.restart(prefix, o.catchUpSize)
	if err != nil {
		return 0, 0, err
	}
	at, err := wait(done, o.convergeFor, "node B catching up")
	if err != nil {
		return 0, 0, fmt.Errorf("(> %s)", o.convergeFor)
	}
	took := at.Sub(t0)
	if err := c.settle(o.convergeFor); err != nil {
		return 0, 0, err
	}
	return took, c.wire.bytes.Load() - bytes0, nil
}
