package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// printTargets checks the figures against the targets of issues 6 and 11 (medians,
// MemoryStorage) and prints one line per target.
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

	ts := r.find(figStreamNode, "1k", modeTrigger)
	ss := r.find(figStreamNode, "1k", modeStream)
	known := ts != nil && ss != nil && len(ts.samples) > 0 && len(ss.samples) > 0
	sv, tv := math.NaN(), math.NaN()
	if known {
		sv, tv = ss.median(), ts.median()
	}
	line("stream: write on A → readable on B ≤ 0.25 ms", format(sv, unitMs), sv <= 0.25, known)
	line("stream: at least 1.5× better than triggers", fmt.Sprintf("%s vs %s, ×%.2f", format(sv, unitMs), format(tv, unitMs), tv/sv), tv/sv >= 1.5, known)
	fan := r.find(figStreamFan, nodesLabel(1000), modeStream)
	fv := math.NaN()
	if fan != nil && len(fan.samples) > 0 {
		fv = fan.median()
	}
	line("stream: one write on the pivot on the last of 1,000 nodes ≤ 100 ms", format(fv, unitMs), fv <= 100, fan != nil && len(fan.samples) > 0)

	small, large = sizeLabel(o.wsSizes[0]), sizeLabel(o.wsSizes[len(o.wsSizes)-1])
	worst, all := 0.0, true
	var measured []string
	for _, size := range o.wsSizes {
		v, ok := med(figWebsocket, sizeLabel(size))
		all = all && ok
		worst = math.Max(worst, v)
		measured = append(measured, format(v, unitMs))
	}
	line(fmt.Sprintf("write on A → websocket subscriber on B ≤ 1 ms at every size from %s to %s", small, large),
		strings.Join(measured, ", "), worst <= 1, all)
	a, okA := med(figWebsocket, small)
	b, okB := med(figWebsocket, large)
	line(fmt.Sprintf("write on A → websocket subscriber on B within 1.5× between %s and %s", small, large),
		fmt.Sprintf("%s → %s, ×%.2f", format(a, unitMs), format(b, unitMs), b/a), b/a <= 1.5, okA && okB)
}
