package main

import (
	"fmt"
	"io"
	"math"
)

// printTargets checks the figures against the targets of issue 6 (medians, MemoryStorage)
// and prints one line per target.
func printTargets(w io.Writer, r *results, o options) {
	fmt.Fprintln(w, "| target | measured (median) | met |")
	fmt.Fprintln(w, "|---|---|---|")
	line := func(target, measured string, met bool, known bool) {
		verdict := "no"
		switch {
		case !known:
			verdict, measured = "not measured", "-"
		case met:
			verdict = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", target, measured, verdict)
	}
	med := func(name, size string) (float64, bool) {
		f := r.find(name, size, modeDelta)
		if f == nil || len(f.samples) == 0 {
			return math.NaN(), false
		}
		return f.median(), true
	}

	v, ok := med(figConvergeNode, "10k")
	line("convergence node A → node B at 10k entries ≤ 2 ms", format(v, unitMs), v <= 2, ok)

	small, large := sizeLabel(o.sizes[0]), sizeLabel(o.sizes[len(o.sizes)-1])
	for _, fig := range []struct{ name, unit, what string }{
		{figChangeBytes, unitBytes, "wire bytes"},
		{figChangeCPU, unitMs, "CPU time"},
	} {
		a, okA := med(fig.name, small)
		b, okB := med(fig.name, large)
		ratio := b / a
		line(fmt.Sprintf("%s per changed entry flat from %s to %s entries (≤ 1.5×)", fig.what, small, large),
			fmt.Sprintf("%s → %s, ×%.2f", format(a, fig.unit), format(b, fig.unit), ratio), ratio <= 1.5, okA && okB)
	}

	scale := storeMemory + ", " + viaAPI
	v, ok = med(figWrites, scale)
	line("node A accepts ≥ 20,000 writes/s through the storage API while syncing", format(v, unitRate), v >= 20000, ok)
	v, ok = med(figWritesIn, scale)
	if f := r.find(figWritesIn, scale, modeDelta); f != nil && f.note != "" {
		ok = true
		v = math.Inf(1)
	}
	line("node B has them all ≤ 1 s after the last write", format(v, unitMs), v <= 1000, ok)

	v, ok = med(figCatchUp, sizeLabel(o.catchUpSize))
	line(fmt.Sprintf("catch-up of %s entries ≤ 5 s", sizeLabel(o.catchUpSize)), format(v, unitMs), v <= 5000, ok)

	v, ok = med(figFanOut, nodesLabel(50))
	line("fan-out to 50 nodes ≤ 50 ms", format(v, unitMs), v <= 50, ok)
}
