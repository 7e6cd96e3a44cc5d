// Command pivot-bench measures pivot's sync on loopback, in one process, and prints a
// table: convergence latency, wire bytes and CPU time per changed entry as the synced
// collection grows, write throughput while syncing, catch-up after a node was offline,
// and fan-out to many nodes. Every figure is also measured with a naive full-collection
// sync (naive.go, part of this command only), the way the old library synced, so the
// table shows what delta sync buys.
//
// The hub scenario (hub.go) adds several pivot processes over NATS JetStream (natshub,
// on in-process servers) beside the single-process pivot; it is why this command is a
// module of its own: the root module must not require NATS.
//
// Usage:
//
//	go run ./cmd/pivot-bench          # the full run, several minutes
//	go run ./cmd/pivot-bench -quick   # a shorter run, about a minute and a half
//
// Figures are medians and 99th percentiles (nearest rank) over n samples. They depend
// on the machine and on whatever else runs on it: compare them as ratios within one run.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// minSamples is the fewest samples a figure takes before its time budget can stop it.
const minSamples = 5

// options are the sample counts and bounds of one run.
type options struct {
	quick  bool
	naive  bool
	logger *slog.Logger

	deadline time.Duration // longest wait for any single event

	sizes       []int         // collection sizes of the convergence scenario
	samples     int           // convergence samples, delta
	naiveSample int           // convergence and fan-out samples, naive
	budget      time.Duration // time budget of one convergence or fan-out figure

	rounds      int           // throughput rounds
	perRound    int           // writes per round
	writeFor    time.Duration // longest write phase of a round
	writers     int           // concurrent writers
	convergeFor time.Duration // longest wait for node B to hold every write

	catchUpSize   int
	catchUpRounds int

	fanOut        []int
	fanOutSamples int

	wsSizes         []int         // collection sizes of the websocket scenario
	wsSamples       int           // websocket samples, pools following changes
	wsRereadSamples int           // websocket samples, pools re-reading (FullRead)
	wsBudget        time.Duration // time budget of one websocket figure

	streamFanOut []int // node counts of the stream fan-out figures
}

func defaults(quick bool) options {
	if quick {
		return options{
			quick: true, deadline: 30 * time.Second,
			sizes: []int{1_000, 10_000}, samples: 100, naiveSample: 15, budget: 2 * time.Second,
			rounds: 2, perRound: 10_000, writeFor: time.Second, writers: 4, convergeFor: 15 * time.Second,
			catchUpSize: 100_000, catchUpRounds: 1,
			fanOut: []int{1, 10, 50}, fanOutSamples: 30,
			wsSizes: []int{0, 1_000, 10_000}, wsSamples: 60, wsRereadSamples: 15, wsBudget: 2 * time.Second,
			streamFanOut: []int{10, 100, 1000},
		}
	}
	return options{
		deadline: 60 * time.Second,
		sizes:    []int{1_000, 10_000, 100_000}, samples: 400, naiveSample: 60, budget: 20 * time.Second,
		rounds: 5, perRound: 20_000, writeFor: 3 * time.Second, writers: 4, convergeFor: 60 * time.Second,
		catchUpSize: 100_000, catchUpRounds: 3,
		fanOut: []int{1, 10, 50}, fanOutSamples: 200,
		wsSizes: []int{0, 1_000, 10_000, 100_000}, wsSamples: 200, wsRereadSamples: 40, wsBudget: 20 * time.Second,
		streamFanOut: []int{10, 100, 1000},
	}
}

// convergenceSamples returns how many samples a convergence figure takes at most, and
// its time budget.
func (o options) convergenceSamples(mode string) (int, time.Duration) {
	if mode == modeNaive {
		return o.naiveSample, o.budget
	}
	return o.samples, o.budget
}

// fanOutCount is convergenceSamples for the fan-out figures.
func (o options) fanOutCount(mode string) (int, time.Duration) {
	if mode == modeNaive {
		return o.naiveSample, o.budget
	}
	return o.fanOutSamples, o.budget
}

// wsCount is convergenceSamples for the websocket figures.
func (o options) wsCount(mode string) (int, time.Duration) {
	if mode == modeReread {
		return o.wsRereadSamples, o.wsBudget
	}
	return o.wsSamples, o.wsBudget
}

// Scenario names for -only.
var scenarios = []string{"convergence", "throughput", "catchup", "fanout", "websocket", "stream", "hub"}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pivot-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a shorter run (about a minute and a half): fewer samples, no 100k convergence")
	only := fs.String("only", strings.Join(scenarios, ","), "comma-separated scenarios to run: "+strings.Join(scenarios, ", "))
	naive := fs.Bool("naive", true, "also measure the naive full-collection baseline")
	verbose := fs.Bool("v", false, "log pivot's warnings to stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := defaults(*quick)
	o.naive = *naive
	o.logger = slog.New(slog.DiscardHandler)
	verboseMiss = *verbose
	if *verbose {
		o.logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	selected := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !contains(scenarios, s) {
			return fmt.Errorf("pivot-bench: unknown scenario %q (want %s)", s, strings.Join(scenarios, ", "))
		}
		selected[s] = true
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("pivot-bench: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("pivot-bench: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	modes := []string{modeDelta}
	if o.naive {
		modes = append(modes, modeNaive)
	}
	began := time.Now()
	load := loadAverage()
	r := &results{}
	step := func(what string, fn func() error) error {
		t := time.Now()
		fmt.Fprintf(stderr, "%-58s", what)
		err := fn()
		fmt.Fprintf(stderr, " %6.1fs\n", time.Since(t).Seconds())
		if err != nil {
			return fmt.Errorf("pivot-bench: %s: %w", what, err)
		}
		return nil
	}
	if selected["convergence"] {
		var labels []string
		for _, size := range o.sizes {
			labels = append(labels, sizeLabel(size))
		}
		for _, mode := range modes {
			if err := step(fmt.Sprintf("convergence, %s entries, %s", strings.Join(labels, "/"), mode), func() error {
				return runConvergence(r, o, mode, o.sizes)
			}); err != nil {
				return err
			}
		}
	}
	if selected["throughput"] {
		for _, store := range []string{storeMemory, storeBolt} {
			for _, via := range []string{viaAPI, viaHTTP} {
				for _, mode := range modes {
					if err := step(fmt.Sprintf("throughput, %s, %s, %s", store, via, mode), func() error {
						return runThroughput(r, o, mode, store, via)
					}); err != nil {
						return err
					}
				}
			}
		}
	}
	if selected["catchup"] {
		for _, mode := range modes {
			if err := step(fmt.Sprintf("catch-up, %s entries, %s", sizeLabel(o.catchUpSize), mode), func() error {
				return runCatchUp(r, o, mode)
			}); err != nil {
				return err
			}
		}
	}
	if selected["fanout"] {
		for _, n := range o.fanOut {
			for _, mode := range modes {
				if err := step(fmt.Sprintf("fan-out, %s, %s", nodesLabel(n), mode), func() error {
					return runFanOut(r, o, mode, n)
				}); err != nil {
					return err
				}
			}
		}
	}
	if selected["websocket"] {
		var labels []string
		for _, size := range o.wsSizes {
			labels = append(labels, sizeLabel(size))
		}
		wsModes := []string{modeDelta}
		if o.naive {
			wsModes = append(wsModes, modeReread)
		}
		if err := step(fmt.Sprintf("websocket, %s entries, %s", strings.Join(labels, "/"), strings.Join(wsModes, "/")), func() error {
			return runWebsocket(r, o, wsModes, o.wsSizes)
		}); err != nil {
			return err
		}
	}
	if selected["stream"] {
		if err := step("stream, node A → node B, triggers/stream", func() error {
			return runStreamConvergence(r, o)
		}); err != nil {
			return err
		}
		for _, n := range o.streamFanOut {
			if err := step(fmt.Sprintf("stream, fan-out, %s", nodesLabel(n)), func() error {
				return runStreamFanOut(r, o, n)
			}); err != nil {
				return err
			}
		}
	}

	if selected["hub"] {
		var e *hubEnv
		if err := step("hub, start 3+1 in-process JetStream servers", func() error {
			var err error
			e, err = newHubEnv(o.logger)
			return err
		}); err != nil {
			return err
		}
		defer e.close()
		for _, s := range []struct {
			what string
			fn   func(*results, options, *hubEnv) error
		}{
			{"hub, applies/s: memory, bolt, natshub R1, R3", runHubApplies},
			{"hub, node A → node B and A's writes: 1 pivot, 2 on R3", runHubConvergence},
			{"hub, failover: A's pivot process dies", runHubFailover},
		} {
			if err := step(s.what, func() error { return s.fn(r, o, e) }); err != nil {
				return err
			}
		}
	}

	kind := "full"
	if o.quick {
		kind = "quick"
	}
	fmt.Fprintf(stdout, "pivot-bench (%s run), %s, %s/%s, GOMAXPROCS=%d, %d CPUs, load average %s at start; took %s\n\n",
		kind, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), load,
		time.Since(began).Round(time.Second))
	r.print(stdout)
	fmt.Fprintln(stdout)
	printTargets(stdout, r, o)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loadAverage reads the 1, 5 and 15 minute load averages, "?" when unknown.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 3 {
		return "?"
	}
	return strings.Join(fields[:3], " ")
}
