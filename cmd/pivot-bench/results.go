package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Units of the figures.
const (
	unitMs    = "ms"
	unitBytes = "bytes"
	unitRate  = "writes/s"
	unitApply = "applies/s"
)

// figure is one measured quantity of one scenario, in one sync mode: every sample, or a
// note when it could not be measured.
type figure struct {
	name    string // what is measured
	size    string // the collection size or other scale ("1k", "50 nodes", ...)
	mode    string // modeDelta, or a baseline: modeNaive, modeReread
	unit    string
	samples []float64
	note    string // why samples are missing or incomplete
}

// higherIsBetter reports whether a larger value of the figure is the better one.
func (f *figure) higherIsBetter() bool { return f.unit == unitRate || f.unit == unitApply }

// median of the samples; NaN when there are none.
func (f *figure) median() float64 { return percentile(f.samples, 0.50) }

// p99 is the tail of the samples, nearest rank: the 99th percentile, or for a figure
// where higher is better (writes/s) the 1st percentile. NaN when there are none.
func (f *figure) p99() float64 {
	if f.higherIsBetter() {
		return percentile(f.samples, 0.01)
	}
	return percentile(f.samples, 0.99)
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// results collects the figures in the order they were measured.
type results struct {
	figures []*figure
}

// add records a figure.
func (r *results) add(f *figure) { r.figures = append(r.figures, f) }

// find returns the figure with this name, size and mode, or nil.
func (r *results) find(name, size, mode string) *figure {
	for _, f := range r.figures {
		if f.name == name && f.size == size && f.mode == mode {
			return f
		}
	}
	return nil
}

// print writes the table: one row per figure, a baseline row (naive, or reread) under
// its delta twin, saying how many times better delta does on the median. The p99 column holds the tail:
// the 99th percentile, or the 1st for writes/s.
func (r *results) print(w io.Writer) {
	first := map[string]int{}
	for i, f := range r.figures {
		if _, ok := first[f.name+"|"+f.size]; !ok {
			first[f.name+"|"+f.size] = i
		}
	}
	rows := append([]*figure(nil), r.figures...)
	sort.SliceStable(rows, func(i, j int) bool {
		return first[rows[i].name+"|"+rows[i].size] < first[rows[j].name+"|"+rows[j].size]
	})
	const layout = "| %-35s | %-19s | %-6s | %4s | %10s | %10s | %-12s |\n"
	fmt.Fprintf(w, layout, "figure", "scale", "sync", "n", "median", "p99", "delta gain")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 37), strings.Repeat("-", 21),
		strings.Repeat("-", 8), strings.Repeat("-", 5)+":", strings.Repeat("-", 11)+":", strings.Repeat("-", 11)+":", strings.Repeat("-", 14))
	for _, f := range rows {
		gain := ""
		if f.mode != modeDelta {
			gain = r.gain(f)
		}
		med, p99 := format(f.median(), f.unit), format(f.p99(), f.unit)
		if f.note != "" {
			gain = strings.TrimSpace(gain + " " + f.note)
		}
		fmt.Fprintf(w, layout, f.name, f.size, f.mode, fmt.Sprint(len(f.samples)), med, p99, gain)
	}
}

// gain compares a baseline figure (naive or reread) with its delta twin: how many times
// better delta does.
func (r *results) gain(naive *figure) string {
	delta := r.find(naive.name, naive.size, modeDelta)
	if delta == nil {
		return ""
	}
	d, n := delta.median(), naive.median()
	if math.IsNaN(d) || math.IsNaN(n) || d == 0 || n == 0 {
		return ""
	}
	ratio := n / d
	if naive.higherIsBetter() {
		ratio = d / n
	}
	return fmt.Sprintf("×%s", trim(ratio))
}

// format renders a value in its unit.
func format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch unit {
	case unitMs:
		if v >= 1000 {
			return trim(v/1000) + " s"
		}
		return trim(v) + " ms"
	case unitBytes:
		switch {
		case v >= 1e6:
			return trim(v/1e6) + " MB"
		case v >= 1e3:
			return trim(v/1e3) + " kB"
		}
		return trim(v) + " B"
	case unitRate, unitApply:
		return fmt.Sprintf("%.0f/s", v)
	}
	return trim(v)
}

// trim shows three significant digits at most.
func trim(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuTime returns the user plus system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
