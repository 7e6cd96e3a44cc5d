package chaos_test

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo/storage"
)

// fault injects one random fault, or lifts one.
func (d *driver) fault() {
	switch r := d.rng.IntN(100); {
	case r < 42:
		d.linkFault()
	case r < 51:
		d.healLink()
	case r < 60:
		d.stopOne()
	case r < 71:
		d.startOne()
	case r < 74:
		d.wipeOne()
	case r < 84:
		d.skewOne()
	case r < 87:
		d.unskewOne()
	case r < 91:
		d.alterOne()
	case r < 94:
		d.copyOne()
	case r < 97 && d.c.processes:
		d.killDuringWrites()
	default:
		d.healLinksAndClocks()
	}
}

// linkFault breaks the link between the pivot and a node, in one direction or both:
// refused or blackholed, the next requests dropped before they are sent, the answers
// of the next requests dropped after the peer acted, random loss, or a delay.
func (d *driver) linkFault() {
	node := d.c.members[1+d.rng.IntN(len(d.c.members)-1)].name
	var dirs [][2]string
	switch d.rng.IntN(3) {
	case 0:
		dirs = [][2]string{{"pivot", node}}
	case 1:
		dirs = [][2]string{{node, "pivot"}}
	default:
		dirs = [][2]string{{"pivot", node}, {node, "pivot"}}
	}
	var kind string
	var change func(*testcluster.Link)
	switch r := d.rng.IntN(100); {
	case r < 15:
		kind, change = "refused", func(l *testcluster.Link) { l.Mode = testcluster.LinkRefused }
	case r < 30:
		kind, change = "blackhole", func(l *testcluster.Link) { l.Mode = testcluster.LinkBlackhole }
	case r < 45:
		n := 1 + d.rng.IntN(5)
		kind, change = fmt.Sprintf("drop %d requests", n), func(l *testcluster.Link) { l.DropRequests += n }
	case r < 70:
		n := 1 + d.rng.IntN(5)
		kind, change = fmt.Sprintf("drop %d answers", n), func(l *testcluster.Link) { l.DropAnswers += n }
	case r < 85:
		p := 0.1 + 0.4*d.rng.Float64()
		kind, change = fmt.Sprintf("loss %.2f", p), func(l *testcluster.Link) { l.Loss = p }
	default:
		delay := time.Duration(2+d.rng.IntN(60)) * time.Millisecond
		kind, change = fmt.Sprintf("delay %s", delay), func(l *testcluster.Link) { l.Delay = delay }
	}
	for _, dir := range dirs {
		d.c.net.Update(dir[0], dir[1], change)
		d.links[dir] = true
	}
	label := strings.Fields(kind)[0]
	if label == "drop" {
		label += " " + strings.Fields(kind)[2] // "drop requests", "drop answers"
	}
	d.tally["link "+label]++
	d.h.note(d.step, "fault %s %s", linkNames(dirs), kind)
}

func linkNames(dirs [][2]string) string {
	var s []string
	for _, d := range dirs {
		s = append(s, d[0]+"→"+d[1])
	}
	return strings.Join(s, "+")
}

// healLink puts one of the links faulted so far back up.
func (d *driver) healLink() {
	keys := make([][2]string, 0, len(d.links))
	for k := range d.links {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		d.h.note(d.step, "heal: no link to heal")
		return
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	k := keys[d.rng.IntN(len(keys))]
	d.c.net.Update(k[0], k[1], func(l *testcluster.Link) { *l = testcluster.Link{} })
	delete(d.links, k)
	d.h.note(d.step, "heal %s→%s", k[0], k[1])
}

// stopOne stops a running member (the pivot too), keeping at least one running. In
// process mode three stops in four are a SIGKILL.
func (d *driver) stopOne() {
	live := d.running()
	if len(live) < 2 {
		d.h.note(d.step, "stop: too few running")
		return
	}
	m := live[d.rng.IntN(len(live))]
	start := time.Now()
	how := "stop"
	if d.c.processes && d.rng.IntN(4) > 0 {
		how = "kill -9"
		m.kill()
	} else {
		m.stop()
	}
	d.tally[how+" "+kindOf(m)]++
	d.h.note(d.step, "%s %s (%s)", how, m.name, time.Since(start).Round(time.Millisecond))
}

// startOne restarts a stopped member on its address and data.
func (d *driver) startOne() {
	var down []*member
	for _, m := range d.c.members {
		if !m.running {
			down = append(down, m)
		}
	}
	if len(down) == 0 {
		d.h.note(d.step, "start: nothing stopped")
		return
	}
	d.restart(down[d.rng.IntN(len(down))])
}

// restart starts a stopped member; a failure is a problem of the run.
func (d *driver) restart(m *member) {
	start := time.Now()
	if err := m.start(); err != nil {
		d.problems = append(d.problems, fmt.Sprintf("step %d: restart %s: %v", d.step, m.name, err))
		d.h.note(d.step, "start %s FAILED: %v", m.name, err)
		return
	}
	d.h.note(d.step, "start %s (%s)", m.name, time.Since(start).Round(time.Millisecond))
}

// wipeOne replaces a member's disk: it stops (if running), loses its data and starts
// again empty, under a new epoch. What only that member held is lost with it: those
// entries are marked lost in the history. Nodes are wiped twice as often as the pivot.
func (d *driver) wipeOne() {
	m := d.c.members[0]
	if r := d.rng.IntN(3); r > 0 {
		m = d.c.members[1+d.rng.IntN(len(d.c.members)-1)]
	}
	if m.running {
		m.stop()
	}
	if err := d.mon.observeAll(d.c); err != nil {
		d.problems = append(d.problems, fmt.Sprintf("step %d: wipe %s: %v", d.step, m.name, err))
	}
	lost := 0
	for _, r := range d.h.all() {
		keep := func(es []storage.Entry) []storage.Entry {
			var out []storage.Entry
			for _, e := range es {
				if d.heldElsewhere(m, e) {
					out = append(out, e)
				} else {
					r.lost = append(r.lost, e)
					lost++
				}
			}
			return out
		}
		r.effects, r.beatenBy = keep(r.effects), keep(r.beatenBy)
	}
	for _, dmg := range d.damages {
		if !dmg.lost && !d.heldElsewhere(m, dmg.original) {
			dmg.lost = true
		}
	}
	d.mon.forget(m.name)
	if err := m.wipe(); err != nil {
		d.problems = append(d.problems, fmt.Sprintf("step %d: wipe %s: %v", d.step, m.name, err))
		return
	}
	d.tally["wipe "+map[bool]string{true: "pivot", false: "node"}[m.isPivot()]]++
	d.h.note(d.step, "wipe %s: %d entries held nowhere else are lost with it", m.name, lost)
	d.restart(m)
}

// heldElsewhere reports whether a member other than m holds e, or an entry that wins
// over it, as far as the monitor saw (stopped members keep what their disk holds).
func (d *driver) heldElsewhere(m *member, e storage.Entry) bool {
	for _, o := range d.c.members {
		if o != m && d.mon.heldBy(o.name, e) {
			return true
		}
	}
	return false
}

// skewOne moves a member's wall clock forward or backward, within the max skew or
// beyond it (1.5 to 3 times it).
func (d *driver) skewOne() {
	m := d.c.members[d.rng.IntN(len(d.c.members))]
	max := d.c.tm.maxSkew
	var off time.Duration
	kind := "within"
	if d.rng.IntN(2) == 0 {
		off = time.Duration(d.rng.Int64N(int64(max) * 8 / 10))
	} else {
		kind = "beyond"
		off = max*3/2 + time.Duration(d.rng.Int64N(int64(max)*3/2))
	}
	if d.rng.IntN(2) == 0 {
		off = -off
	}
	m.setSkew(off)
	d.skewed[m.name] = off
	d.tally["skew "+kind]++
	d.h.note(d.step, "skew %s clock %+v (%s max skew)", m.name, off.Round(time.Millisecond), kind)
}

// unskewOne puts a skewed member's clock right.
func (d *driver) unskewOne() {
	var names []string
	for n := range d.skewed {
		names = append(names, n)
	}
	if len(names) == 0 {
		d.h.note(d.step, "unskew: no clock skewed")
		return
	}
	sort.Strings(names)
	name := names[d.rng.IntN(len(names))]
	for _, m := range d.c.members {
		if m.name == name {
			m.setSkew(0)
		}
	}
	delete(d.skewed, name)
	d.h.note(d.step, "unskew %s", name)
}

// healLinksAndClocks lifts every link fault and clock skew (stopped members stay down).
func (d *driver) healLinksAndClocks() {
	d.c.net.HealAll()
	d.links = map[[2]string]bool{}
	for _, m := range d.c.members {
		if m.wall.offset.Load() != 0 {
			m.setSkew(0)
		}
	}
	d.skewed = map[string]time.Duration{}
	d.h.note(d.step, "heal all links and clocks")
}

// healEverything lifts every fault and starts every stopped member, the pivot first.
func (d *driver) healEverything() {
	d.step++
	d.healLinksAndClocks()
	for _, m := range d.c.members {
		if !m.running {
			d.restart(m)
		}
	}
}

// faultSummary describes the faults in force that concern m, for the record of an
// operation on m.
func (d *driver) faultSummary(m *member) string {
	var parts []string
	for k := range d.links {
		if k[0] == m.name || k[1] == m.name {
			parts = append(parts, k[0]+"→"+k[1])
		}
	}
	sort.Strings(parts)
	if !m.isPivot() && !d.c.pivot().running {
		parts = append(parts, "pivot stopped")
	}
	if off := d.skewed[m.name]; off != 0 {
		parts = append(parts, fmt.Sprintf("skew %+v", off.Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}
