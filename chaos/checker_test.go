package chaos_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
)

// stallLimit is the longest an operation on a running instance may take before it
// counts as stalled (invariant D). It is a hang detector, far above the normal
// latency (a read waits at most Config.ReadBudget for the pivot), not a timing test.
const stallLimit = 3 * time.Second

// convergeBase bounds the time to converge once every fault is healed, before the
// allowance for entries stamped in the future (see convergeDeadline).
const convergeBase = 15 * time.Second

// monitor follows every replica's change feed, step by step. It keeps each replica's
// current state per synced path and checks invariant E on every change it sees: a
// replica never moves backwards, each new state of a key is the same entry or one that
// wins over the previous state under pivot.Wins. A local write is stamped after every
// version its clock has seen, so it must win too; a write that does not lost the order
// of operations on that replica, which is how deletes get undone.
type monitor struct {
	views      map[string]map[string]*view // member name → path → view
	violations []string
}

// view is one replica's state of one synced path, as far as its feed was read.
type view struct {
	epoch   string // the storage's epoch; a new one (data wiped) starts the view again
	since   uint64
	entries map[string]storage.Entry
}

func newMonitor() *monitor {
	return &monitor{views: map[string]map[string]*view{}}
}

func (mo *monitor) view(member, path string) *view {
	byPath, ok := mo.views[member]
	if !ok {
		byPath = map[string]*view{}
		mo.views[member] = byPath
	}
	v, ok := byPath[path]
	if !ok {
		v = &view{entries: map[string]storage.Entry{}}
		byPath[path] = v
	}
	return v
}

// peek returns the entries of member's view of path without making the view: safe
// while other goroutines read the monitor too (no one writes it then).
func (mo *monitor) peek(member, path string) map[string]storage.Entry {
	if v := mo.views[member][path]; v != nil {
		return v.entries
	}
	return nil
}

// observeAll reads the new changes of every running member.
func (mo *monitor) observeAll(c *cluster) error {
	for _, m := range c.members {
		if m.running {
			if err := mo.observe(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// observe reads m's changes since the last observation and checks invariant E.
func (mo *monitor) observe(m *member) error {
	const page = 500
	for _, p := range syncedPaths() {
		v := mo.view(m.name, p)
		ep, err := m.inst.epoch(p)
		if err != nil {
			return fmt.Errorf("chaos: read the epoch of %s on %s: %w", p, m.name, err)
		}
		if ep != v.epoch {
			*v = view{epoch: ep, entries: map[string]storage.Entry{}}
		}
		for range 10000 {
			changes, next, err := m.changes(p, v.since, page)
			if err != nil {
				return fmt.Errorf("chaos: read the feed of %s on %s: %w", p, m.name, err)
			}
			for _, c := range changes {
				prev, seen := v.entries[c.Key]
				if seen && !sameEntry(prev, c.Entry) && !pivot.Wins(c.Entry, prev) {
					mo.violations = append(mo.violations, fmt.Sprintf(
						"E: %s moved backwards on %s: [%s] replaced by [%s] (seq %d, remote=%v)",
						c.Key, m.name, entryString(prev), entryString(c.Entry), c.Seq, c.Remote))
				}
				v.entries[c.Key] = c.Entry
			}
			v.since = next
			if len(changes) < page {
				break
			}
		}
	}
	return nil
}

// forget drops the views of a member whose data was wiped.
func (mo *monitor) forget(member string) {
	delete(mo.views, member)
}

// heldBy reports whether member's view holds e or an entry that wins over it.
func (mo *monitor) heldBy(member string, e storage.Entry) bool {
	v := mo.view(member, pathOf(e.Key))
	x, ok := v.entries[e.Key]
	return ok && (sameEntry(x, e) || pivot.Wins(x, e))
}

// pathOf returns the synced path a key belongs to.
func pathOf(k string) string {
	for _, p := range syncedPaths() {
		if k == p || strings.HasPrefix(k, strings.TrimSuffix(p, "*")) && strings.HasSuffix(p, "*") {
			return p
		}
	}
	return k
}

// converged reports whether every member's view holds the same entries and tombstones.
func (mo *monitor) converged(c *cluster) bool {
	first := c.members[0].name
	for _, m := range c.members[1:] {
		for _, p := range syncedPaths() {
			if !sameState(mo.view(first, p).entries, mo.view(m.name, p).entries) {
				return false
			}
		}
	}
	return true
}

func sameState(a, b map[string]storage.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, ea := range a {
		if eb, ok := b[k]; !ok || !sameEntry(ea, eb) {
			return false
		}
	}
	return true
}

// diff lists the keys on which the members' views differ, with each member's entry.
func (mo *monitor) diff(c *cluster) string {
	var b strings.Builder
	for _, p := range syncedPaths() {
		keys := map[string]bool{}
		for _, m := range c.members {
			for k := range mo.view(m.name, p).entries {
				keys[k] = true
			}
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			first, same := "", true
			lines := make([]string, 0, len(c.members))
			for i, m := range c.members {
				e, ok := mo.view(m.name, p).entries[k]
				s := "absent"
				if ok {
					s = entryString(e)
				}
				if i == 0 {
					first = s
				} else if s != first {
					same = false
				}
				lines = append(lines, fmt.Sprintf("    %-6s %s", m.name, s))
			}
			if !same {
				fmt.Fprintf(&b, "  %s:\n%s\n", k, strings.Join(lines, "\n"))
			}
		}
	}
	return b.String()
}

// divergent counts the keys on which the members' views differ.
func (mo *monitor) divergent(c *cluster) int {
	n := 0
	for _, line := range strings.Split(mo.diff(c), "\n") {
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "    ") {
			n++
		}
	}
	return n
}

// errNotConverged: the replicas still differ at the deadline.
var errNotConverged = errors.New("chaos: replicas did not converge")

// convergeDeadline is when the replicas must have converged: convergeBase from now,
// plus the time until the most future stamp any clock holds comes within the max skew
// of the real clock. An entry stamped further ahead than the max skew of a receiver is
// refused there and retried until the receiver's clock reaches it (the storage
// refuses it, never adopts it); once clocks are healed that takes at most this allowance.
func convergeDeadline(c *cluster) time.Time {
	now := time.Now()
	ahead := int64(0)
	for _, m := range c.members {
		if !m.running {
			continue
		}
		for _, p := range []string{pathUsers, pathItems} { // one path of each storage
			if last, err := m.inst.clockLast(p); err == nil {
				ahead = max(ahead, last-now.UnixNano()-int64(c.tm.maxSkew))
			}
		}
	}
	return now.Add(convergeBase + time.Duration(ahead))
}

// awaitConvergence polls the replicas until they all hold the same state (invariant A)
// or the deadline passes, and returns how long it took.
//
// The monitor's views are read incrementally from each feed; they can agree for a
// moment while a member that just started (a copied folder's new node) has not yet
// been observed in full. Convergence is declared only when a fresh read of every
// member agrees too, so finalChecks judges a settled cluster.
func awaitConvergence(c *cluster, mo *monitor, deadline time.Time) (time.Duration, error) {
	return awaitSettled(c, mo, deadline, nil)
}

// awaitSettled is awaitConvergence that also waits for settled (when not nil) to
// accept the agreed state: the run's own checks of a converged cluster, such as every
// node being registered, which a node that just started may not have written yet.
func awaitSettled(c *cluster, mo *monitor, deadline time.Time, settled func(map[string]storage.Entry) bool) (time.Duration, error) {
	return awaitState(c, mo, deadline, func() bool {
		if !mo.converged(c) {
			return false
		}
		st, ok := freshAgree(c)
		return ok && (settled == nil || settled(st))
	})
}

// freshAgree reports whether every member's whole state, read afresh, is the same,
// and returns it.
func freshAgree(c *cluster) (map[string]storage.Entry, bool) {
	var first map[string]storage.Entry
	for _, m := range c.members {
		st, err := fullState(m)
		if err != nil {
			return nil, false
		}
		if first == nil {
			first = st
		} else if !sameState(first, st) {
			return nil, false
		}
	}
	return first, true
}

// awaitState observes the replicas every few milliseconds until cond holds or the
// deadline passes (errNotConverged), and returns how long it took.
func awaitState(c *cluster, mo *monitor, deadline time.Time, cond func() bool) (time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := mo.observeAll(c); err != nil {
			return time.Since(start), err
		}
		if cond() {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), errNotConverged
		}
		<-tick.C
	}
}

// fullState reads m's whole state of every synced path from the start of its feed.
func fullState(m *member) (map[string]storage.Entry, error) {
	out := map[string]storage.Entry{}
	for _, p := range syncedPaths() {
		changes, _, err := m.changes(p, 0, 1<<30)
		if err != nil {
			return nil, fmt.Errorf("chaos: read the state of %s on %s: %w", p, m.name, err)
		}
		for _, c := range changes {
			out[c.Key] = c.Entry
		}
	}
	return out, nil
}

// workloadKey reports whether k is written by the workload (NodesKey is not).
func workloadKey(k string) bool {
	return k == pathSettings || strings.HasPrefix(k, "users/") || strings.HasPrefix(k, "items/")
}

// checkHistory checks invariants B, C and D of the history against the converged
// final state, and returns the violations.
//
//	B (no unexplained loss): for every acknowledged write, the final entry of its key is
//	  that write, or wins over it under pivot.Wins; a write already replaced by a
//	  replicated entry when it was read back is checked against that entry. And every
//	  final entry is one that an operation of the history wrote: nothing is invented.
//	C (no resurrection): a key whose greatest operation under pivot.Wins is a delete
//	  ends deleted (or with a write of the history that wins over it: one marked lost
//	  with a wiped disk that still made it out).
//	D (availability): every operation on a running instance answered, whatever the
//	  faults, within stallLimit.
func checkHistory(records []*record, final map[string]storage.Entry) []string {
	var out []string
	written := map[string][]storage.Entry{}
	greatest := map[string]storage.Entry{}
	for _, r := range records {
		for _, e := range append(append([]storage.Entry(nil), r.effects...), r.beatenBy...) {
			written[e.Key] = append(written[e.Key], e)
			if g, ok := greatest[e.Key]; !ok || pivot.Wins(e, g) {
				greatest[e.Key] = e
			}
		}
		for _, e := range append(append([]storage.Entry(nil), r.lost...), r.maybe...) {
			written[e.Key] = append(written[e.Key], e)
		}
	}
	for _, r := range records {
		if r.out == outFailed {
			out = append(out, fmt.Sprintf("D: step %d failed on a running instance (faults: %s): %s", r.step, r.faults, r))
		}
		if r.latency > stallLimit && r.out != outInterrupted {
			out = append(out, fmt.Sprintf("D: step %d stalled %s (faults: %s): %s", r.step, r.latency, r.faults, r))
		}
		if r.out != outAck {
			continue
		}
		for _, e := range r.effects {
			if f := final[e.Key]; !sameEntry(f, e) && !pivot.Wins(f, e) {
				out = append(out, fmt.Sprintf("B: step %d acknowledged write lost: %s; final [%s]", r.step, r, entryString(f)))
			}
		}
		for _, e := range r.beatenBy {
			if f := final[e.Key]; !sameEntry(f, e) && !pivot.Wins(f, e) {
				out = append(out, fmt.Sprintf("B: step %d: the entry that beat this write was lost: %s; final [%s]", r.step, r, entryString(f)))
			}
		}
	}
	keys := make([]string, 0, len(final))
	for k := range final {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := final[k]
		if !workloadKey(k) {
			continue
		}
		invented := true
		for _, e := range written[k] {
			if sameEntry(e, f) {
				invented = false
				break
			}
		}
		if invented {
			out = append(out, fmt.Sprintf("B: final [%s] was written by no operation of the history", entryString(f)))
		}
		// An entry marked lost (wiped) may still have survived, through a push in
		// flight at the wipe: a live final entry that wins over the delete is no
		// resurrection (the no-invention check above vouches for it).
		if g, ok := greatest[k]; ok && g.Deleted && !f.Deleted && !pivot.Wins(f, g) {
			out = append(out, fmt.Sprintf("C: %s resurrected: its greatest operation is the delete [%s], final [%s]",
				k, entryString(g), entryString(f)))
		}
	}
	return out
}
