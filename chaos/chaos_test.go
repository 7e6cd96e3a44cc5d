package chaos_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo/storage"
)

// Flags of the soak. Without them, TestChaos runs the short version.
var (
	flagSeeds    = flag.Int("chaos.seeds", 0, "number of seeds to run, from -chaos.first (0: the short run of 4 seeds, 1 with -short)")
	flagFirst    = flag.Uint64("chaos.first", 1, "first seed of the run")
	flagSeed     = flag.Uint64("chaos.seed", 0, "run this one seed only (replays a failure)")
	flagOps      = flag.Int("chaos.ops", 80, "workload operations per seed")
	flagNodes    = flag.Int("chaos.nodes", 0, "nodes per cluster (0: 3 to 5, drawn from the seed)")
	flagParallel = flag.Int("chaos.parallel", 1, "seeds run at once")
)

// runOptions are the parameters of one seed.
type runOptions struct {
	ops   int
	nodes int
	kind  scenarioKind
}

// scenarioKind is the shape of a seed's cluster, drawn from the seed.
type scenarioKind string

const (
	// kindStandard: a pivot and 3 to 5 nodes in this process.
	kindStandard scenarioKind = "standard"
	// kindMany: a pivot and 20 to 50 nodes in this process, with a slower background
	// sync and smaller values, so that it stays cheap (one seed in ten).
	kindMany scenarioKind = "many"
	// kindProcess: a pivot and 2 or 3 nodes, each a child process; stops are mostly
	// SIGKILLs, some of them while writes to the killed process are in flight (one
	// seed in five).
	kindProcess scenarioKind = "process"
)

// optionsFor draws a seed's scenario: its kind, then its cluster size (-chaos.nodes
// overrides the size).
func optionsFor(seed uint64, ops int) runOptions {
	o := runOptions{ops: ops, kind: kindStandard, nodes: 3 + int(seed%3)}
	switch seed % 10 {
	case 4:
		o.kind, o.nodes = kindMany, 50-10*int(seed/10%4)
	case 2, 7:
		o.kind, o.nodes = kindProcess, 2+int(seed/10%2)
	}
	if *flagNodes > 0 {
		o.nodes = *flagNodes
	}
	return o
}

// timingsOf are the timings of a seed of kind.
func timingsOf(seed uint64, kind scenarioKind) timings {
	tm := timingsFor(seed)
	// A request carries up to one value of nearly 4 MiB, which takes a few hundred
	// milliseconds under -race and through a child's proxy: its deadline must allow
	// that, or the value could never replicate.
	tm.requestTimeout = 2 * time.Second
	if raceEnabled {
		// Under -race the same value takes about a second in this process (3 s
		// between race-built child processes, which therefore get no such value).
		tm.requestTimeout = 4 * time.Second
	}
	if kind == kindMany {
		// Fifty nodes syncing every 150 ms would be thousands of requests a second on
		// two cores: the background round runs every second instead, and triggers
		// carry the writes.
		tm.syncInterval = time.Second
		tm.repairInterval = 3 * time.Second
		tm.fanOut = 8
	}
	return tm
}

// TestChaos runs seeded fault-injection scenarios against a whole cluster and checks
// the invariants of design section 6 over each one's history (see doc.go). It prints
// the run's figures at the end.
func TestChaos(t *testing.T) {
	var seeds []uint64
	switch {
	case *flagSeed != 0:
		seeds = []uint64{*flagSeed}
	case *flagSeeds > 0:
		for i := 0; i < *flagSeeds; i++ {
			seeds = append(seeds, *flagFirst+uint64(i))
		}
	case testing.Short():
		seeds = []uint64{*flagFirst}
	default:
		seeds = []uint64{*flagFirst, *flagFirst + 1, *flagFirst + 2, *flagFirst + 3}
	}
	figs := &figures{start: time.Now()}
	ports := testcluster.NewPorts(uint64(time.Now().UnixNano()) ^ uint64(os.Getpid()))
	slots := make(chan struct{}, max(1, *flagParallel))
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				if cap(slots) > 1 {
					t.Parallel()
				}
				slots <- struct{}{}
				defer func() { <-slots }()
				res := runSeed(t, seed, optionsFor(seed, *flagOps), ports)
				done := figs.add(res)
				if len(seeds) > 1 {
					verdict := "ok"
					if res.failed {
						verdict = "FAILED"
					}
					fmt.Printf("chaos: seed %d %s in %s (%s, %d nodes, converged in %s), %d/%d done\n", seed, verdict,
						res.elapsed.Round(time.Millisecond), res.kind, res.nodes, res.convergence.Round(time.Millisecond), done, len(seeds))
				}
			})
		}
	})
	summary := figs.String()
	t.Log("\n" + summary)
	if len(seeds) > 1 {
		fmt.Println(summary)
	}
}

// runSeed runs one seed: a cluster, the schedule, healing, convergence and the checks.
// On a violation it fails t with the seed, the command that replays it and a trace.
func runSeed(t *testing.T, seed uint64, opts runOptions, ports *testcluster.Ports) seedResult {
	began := time.Now()
	res := seedResult{seed: seed, nodes: opts.nodes, kind: opts.kind}
	c := newClusterOf(t, seed, opts.nodes, timingsOf(seed, opts.kind), ports, opts.kind == kindProcess)
	d := newDriver(c, seed)
	d.kind = opts.kind
	d.budget = valueBudget{big: max(1, opts.ops/40), huge: 1}
	switch {
	case opts.kind == kindMany:
		d.budget = valueBudget{big: 1}
	case opts.kind == kindProcess && raceEnabled:
		d.budget.huge = 0
	}
	var violations []string
	if err := d.run(opts.ops); err != nil {
		violations = append(violations, "run: "+err.Error())
	}
	d.healEverything()
	deadline := convergeDeadline(c)
	conv, err := awaitSettled(c, d.mon, deadline, func(st map[string]storage.Entry) bool {
		_, missing := registrations(c, d.h.all(), st)
		return len(missing) == 0
	})
	res.convergence = conv
	switch {
	case errors.Is(err, errNotConverged):
		violations = append(violations, fmt.Sprintf("A: the replicas still differ %s after healing:\n%s",
			conv.Round(time.Millisecond), d.mon.diff(c)))
	case err != nil:
		violations = append(violations, "A: "+err.Error())
	default:
		violations = append(violations, finalChecks(c, d)...)
	}
	violations = append(violations, d.mon.violations...)
	violations = append(violations, d.problems...)
	if errors.Is(err, errNotConverged) {
		res.divergent = d.mon.divergent(c)
	}
	for _, v := range violations {
		switch {
		case strings.HasPrefix(v, "B: ") && strings.Contains(v, "lost"), strings.HasPrefix(v, "B: two acknowledged POSTs"),
			strings.HasPrefix(v, "B: ") && strings.Contains(v, "POST not in the final state"):
			res.lostWrites++
		case strings.HasPrefix(v, "C: "):
			res.resurrected++
		case strings.HasPrefix(v, "damage: "):
			res.unrepaired++
		}
	}
	res.violations = len(violations)

	for _, r := range d.h.all() {
		res.ops++
		switch {
		case isRead(r.kind):
			res.reads++
		case r.out == outNoop:
			res.noops++
		}
		if r.out == outAck {
			res.acked++
		}
		res.latencies = append(res.latencies, r.latency)
		res.lost += len(r.lost)
		if r.faults != "" {
			res.duringFaults++
		}
	}
	res.faults = d.tally
	n := &c.net.Count
	res.requests = [6]int64{n.Passed.Load(), n.Refused.Load(), n.Blackholed.Load(), n.DroppedRequests.Load(), n.DroppedAnswers.Load(), n.Delayed.Load()}
	for _, m := range c.members {
		res.restarts += m.starts - 1
	}
	res.elapsed = time.Since(began)
	if len(violations) > 0 {
		res.failed = true
		report(t, seed, opts, c, d, violations)
	}
	return res
}

// finalChecks compares every replica's whole state, read afresh, and checks the
// history against it.
func finalChecks(c *cluster, d *driver) []string {
	var out []string
	var final map[string]storage.Entry
	for _, m := range c.members {
		st, err := fullState(m)
		if err != nil {
			return append(out, "A: "+err.Error())
		}
		if final == nil {
			final = st
			continue
		}
		if !sameState(final, st) {
			out = append(out, fmt.Sprintf("A: %s's state read afresh differs from the pivot's", m.name))
		}
	}
	for _, p := range syncedPaths() {
		for k, e := range d.mon.view(c.pivot().name, p).entries {
			if !sameEntry(final[k], e) {
				out = append(out, fmt.Sprintf("A: the monitor's view of %s differs from the pivot's state", k))
			}
		}
	}
	out = append(out, checkHistory(d.h.all(), final)...)
	out = append(out, checkData(d.h.all(), d.damages, final)...)
	return append(out, checkNodes(c, d.h.all(), final)...)
}

// checkNodes checks that every node is registered under NodesKey in the final state
// and, within the convergence bound, known to the pivot's engine (so it gets triggers),
// through restarts and wiped disks. A registration the operator wrote on a pivot whose
// disk was then wiped before any node had it is lost with the disk: that node is not
// required (the operator would register it again).
func checkNodes(c *cluster, records []*record, final map[string]storage.Entry) []string {
	want, out := registrations(c, records, final)
	known := func() bool {
		have := c.pivot().knownNodes()
		for _, m := range want {
			if !have[m.addr] {
				return false
			}
		}
		return true
	}
	if _, err := awaitState(c, newMonitor(), time.Now().Add(convergeBase), known); err != nil {
		out = append(out, fmt.Sprintf("A: the pivot's engine does not know every node: %v", c.pivot().knownNodes()))
	}
	return out
}

// registrations lists the nodes that must be registered under NodesKey in final (all
// but an operator-registered one whose registration a wiped pivot disk took), and a
// violation for each that is not.
func registrations(c *cluster, records []*record, final map[string]storage.Entry) ([]*member, []string) {
	var out []string
	lostReg := map[string]bool{}
	for _, r := range records {
		if strings.HasPrefix(r.key, "things/") && len(r.lost) > 0 {
			lostReg[r.key] = true
		}
	}
	registered := map[string]bool{}
	for k, e := range final {
		if strings.HasPrefix(k, "things/") && !e.Deleted {
			var v struct {
				IP string `json:"ip"`
			}
			if json.Unmarshal(e.Data, &v) == nil {
				registered[v.IP] = true
			}
		}
	}
	var want []*member
	for _, m := range c.members[1:] {
		if k, _ := m.registration(); m.operReg && lostReg[k] && !registered[m.addr] {
			continue
		}
		want = append(want, m)
		if !registered[m.addr] {
			out = append(out, fmt.Sprintf("A: %s (%s) is not registered under %s", m.name, m.addr, pathNodes))
		}
	}
	return want, out
}

// report fails t with everything needed to understand and replay a failed seed, and
// writes the same, with the engines' logs, to a file in the system's temp folder.
func report(t *testing.T, seed uint64, opts runOptions, c *cluster, d *driver, violations []string) {
	var b strings.Builder
	replay := fmt.Sprintf("go test ./chaos -run 'TestChaos/seeds/seed=%d$' -chaos.seed=%d -chaos.ops=%d -chaos.nodes=%d -v",
		seed, seed, opts.ops, opts.nodes)
	fmt.Fprintf(&b, "chaos: seed %d failed (%d nodes, %d operations), %d violations\nreplay: %s\n\nviolations:\n",
		seed, opts.nodes, opts.ops, len(violations), replay)
	for _, v := range violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	fmt.Fprintf(&b, "\nstatus:\n")
	for _, m := range c.members {
		fmt.Fprintf(&b, "  %s\n", m.status())
	}
	fmt.Fprintf(&b, "\ntrace:\n%s\n", d.h)
	short := b.String()
	fmt.Fprintf(&b, "\nengine logs (last lines):\n%s\n", c.logs)
	file := filepath.Join(os.TempDir(), fmt.Sprintf("chaos-seed-%d.txt", seed))
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err == nil {
		short += "\nfull report with the engines' logs: " + file + "\n"
	}
	t.Error(short)
}
