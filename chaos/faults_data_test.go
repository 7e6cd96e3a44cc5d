package chaos_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
)

// Faults on the data itself: a value altered on disk, a data folder copied to a new
// node, and a SIGKILL that lands while writes to the killed process are in flight.

// maxCopies bounds the copied-folder faults of one seed (each adds a node).
const maxCopies = 2

// damage is a value altered on one member's disk while it was stopped. The alteration
// is damage, not a write: the checker requires the original (or an entry that wins
// over it) back everywhere, and never the altered bytes.
type damage struct {
	step     int
	member   string
	original storage.Entry
	altered  []byte
	// lost: when a disk was wiped, no replica but the damaged one held the original.
	lost bool
}

// errNotOnDisk: the record of an entry is not in the file as the monitor saw it (the
// engine wrote a newer state before the stop).
var errNotOnDisk = errors.New("chaos: record not on disk as seen")

// alterOne stops a member (a kill), changes one digit near the end of one stored
// value's data in its bolt file, and starts it again (a member that was stopped stays
// stopped). Only entries another replica holds identically are altered, so that the
// original can be repaired from it.
func (d *driver) alterOne() {
	m := d.c.members[d.rng.IntN(len(d.c.members))]
	wasRunning := m.running
	if wasRunning {
		if err := d.mon.observe(m); err != nil {
			d.problems = append(d.problems, fmt.Sprintf("step %d: alter %s: %v", d.step, m.name, err))
			return
		}
		m.kill()
	}
	cands := d.alterCandidates(m)
	// The candidates depend on what the sync did so far: shuffle them with a generator
	// of their own, so that the seed's later steps do not depend on their number.
	pick := rand.New(rand.NewPCG(d.rng.Uint64(), 0xa17e))
	pick.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	done := false
	for _, e := range cands[:min(len(cands), 8)] {
		altered, err := alterOnDisk(m.storeFile(e.Key), e)
		if errors.Is(err, errNotOnDisk) {
			continue
		}
		if err != nil {
			d.problems = append(d.problems, fmt.Sprintf("step %d: alter %s on %s: %v", d.step, e.Key, m.name, err))
			break
		}
		d.damages = append(d.damages, &damage{step: d.step, member: m.name, original: e, altered: altered})
		// A damaged record counts as absent: the monitor expects the key back as a new
		// change of the feed (a repair), and no longer counts m as holding it.
		delete(d.mon.view(m.name, pathOf(e.Key)).entries, e.Key)
		d.tally["alter value on "+kindOf(m)]++
		d.h.note(d.step, "alter %s on %s's disk: %s → %s", e.Key, m.name, abbrevEnd(e.Data), abbrevEnd(altered))
		done = true
		break
	}
	if !done {
		// Every candidate changed on disk between the observation and the kill (the
		// sync applied a newer state meanwhile): a race of the fault, not a fault of
		// the engine. The seed goes on without this alteration.
		d.h.note(d.step, "alter on %s: nothing to alter (%d candidates changed before the kill)", m.name, len(cands))
	}
	if wasRunning {
		d.restart(m)
	}
}

// damagedNow reports whether key was altered on m's disk and m has not been seen
// to hold it again since (a repair, or a new write, is a new change of its feed).
func (d *driver) damagedNow(m *member, key string) bool {
	for _, dmg := range d.damages {
		if dmg.member == m.name && dmg.original.Key == key {
			if _, ok := d.mon.peek(m.name, pathOf(key))[key]; !ok {
				return true
			}
		}
	}
	return false
}

// abbrevEnd shows the end of data, where the alteration is.
func abbrevEnd(data []byte) string {
	if len(data) > 48 {
		return "…" + string(data[len(data)-48:])
	}
	return string(data)
}

func kindOf(m *member) string {
	if m.isPivot() {
		return "pivot"
	}
	return "node"
}

// alterCandidates lists, sorted by key, the live workload entries of m (as the
// monitor saw them) that hold a digit and that another member holds identically.
func (d *driver) alterCandidates(m *member) []storage.Entry {
	var out []storage.Entry
	for _, p := range []string{pathUsers, pathItems, pathSettings, pathPosts} {
		for _, e := range d.mon.view(m.name, p).entries {
			if e.Deleted || !bytes.ContainsAny(e.Data, "0123456789") {
				continue
			}
			for _, o := range d.c.members {
				if x, ok := d.mon.view(o.name, p).entries[e.Key]; o != m && ok && sameEntry(x, e) {
					out = append(out, e)
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// alterOnDisk changes the last digit of e's data inside its record in the bolt file
// (bucket "data", key e.Key: a binary header holding the stamps, then the data). It
// returns the altered data, or errNotOnDisk when the record does not hold e.
func alterOnDisk(file string, e storage.Entry) ([]byte, error) {
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("chaos: open %s: %w", file, err)
	}
	defer db.Close()
	var altered []byte
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("data"))
		if b == nil {
			return fmt.Errorf("chaos: %s has no data bucket", file)
		}
		rec := b.Get([]byte(e.Key))
		at := bytes.LastIndex(rec, e.Data)
		stamps := func(head []byte) bool {
			return bytes.Contains(head, binary.BigEndian.AppendUint64(nil, uint64(e.Created))) &&
				(e.Updated == 0 || bytes.Contains(head, binary.BigEndian.AppendUint64(nil, uint64(e.Updated))))
		}
		if at < 0 || !stamps(rec[:at]) {
			return errNotOnDisk
		}
		i := bytes.LastIndexAny(e.Data, "0123456789")
		digit := e.Data[i] + 1
		if digit > '9' {
			digit = '8'
		}
		out := bytes.Clone(rec)
		out[at+i] = digit
		altered = bytes.Clone(e.Data)
		altered[i] = digit
		return b.Put([]byte(e.Key), out)
	})
	if err != nil {
		return nil, err
	}
	return altered, nil
}

// copyOne copies a node's data folder, while the node is stopped, to a new node with
// its own name and address, starts both, and has both POST to posts/* at once: every
// acknowledged POST must end everywhere, under a key of its own.
func (d *driver) copyOne() {
	if d.copies >= maxCopies {
		d.h.note(d.step, "copy: already %d copies", d.copies)
		return
	}
	src := d.c.members[1+d.rng.IntN(len(d.c.members)-1)]
	if src.running {
		if err := d.mon.observe(src); err != nil {
			d.problems = append(d.problems, fmt.Sprintf("step %d: copy %s: %v", d.step, src.name, err))
			return
		}
		src.stop()
	}
	dir := d.c.tb.TempDir()
	if err := src.copyDir(dir); err != nil {
		d.problems = append(d.problems, fmt.Sprintf("step %d: %v", d.step, err))
		d.restart(src)
		return
	}
	d.copies++
	cp := d.c.add(fmt.Sprintf("node%d", len(d.c.members)), dir, false)
	// The copy holds the source's damaged records that were not yet repaired: they
	// are its damage too (a read of one is an error until anti-entropy fetches it).
	for _, dmg := range d.damages {
		if dmg.member == src.name && d.damagedNow(src, dmg.original.Key) {
			inherited := *dmg
			inherited.member = cp.name
			d.damages = append(d.damages, &inherited)
		}
	}
	d.tally["copy data folder"]++
	d.h.note(d.step, "copy %s's data folder to a new node %s (%s)", src.name, cp.name, cp.addr)
	d.restart(src)
	d.restart(cp)
	if src.running && cp.running {
		d.concurrentPosts([]*member{src, cp})
	}
}

// concurrentPosts has each member POST 10 to 40 values to posts/*, two writers per
// member, all at once.
func (d *driver) concurrentPosts(ms []*member) {
	type lane struct {
		specs  []opSpec
		faults string
		recs   []*record
	}
	var lanes []*lane
	none := valueBudget{}
	for _, m := range ms {
		n := 10 + d.rng.IntN(31)
		for w := range 2 {
			l := &lane{faults: d.faultSummary(m)}
			for range (n + w) / 2 {
				d.ops++
				l.specs = append(l.specs, opSpec{m: m, kind: opPost, path: pathPosts, key: pathPosts,
					data: newValue(d.rng, &none, m.name, d.ops)})
			}
			lanes = append(lanes, l)
		}
	}
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range l.specs {
				l.recs = append(l.recs, d.execWith(s, l.faults))
			}
		}()
	}
	wg.Wait()
	d.h.note(d.step, "concurrent POSTs to %s on %s", pathPosts, memberNames(ms))
	for _, l := range lanes {
		for i, r := range l.recs {
			d.finish(l.specs[i], r)
		}
	}
}

func memberNames(ms []*member) string {
	var names []string
	for _, m := range ms {
		names = append(names, m.name)
	}
	return strings.Join(names, ", ")
}

// genWrite chooses a write for m (never a read, a glob delete or a POST).
func (d *driver) genWrite(m *member) opSpec {
	s := d.gen(m)
	if isRead(s.kind) || s.kind == opDelGlob || s.kind == opPost {
		s.kind = opSet
		s.data = newValue(d.rng, &d.budget, m.name, d.ops)
		switch {
		case s.path == pathSettings:
			s.key = pathSettings
		case s.key == s.path:
			s.made = true
			d.made++
			s.key = fmt.Sprintf("%s%c%03d", strings.TrimSuffix(s.path, "*"), s.path[0], d.made)
		}
	}
	return s
}

// killDuringWrites runs a few writes on a running member, then kills it (SIGKILL, in
// process mode) while one more is in flight, and starts it again on the same data and
// address. What it acknowledged before the kill must survive.
func (d *driver) killDuringWrites() {
	live := d.running()
	if len(live) == 0 {
		d.startOne()
		return
	}
	m := live[d.rng.IntN(len(live))]
	n := 1 + d.rng.IntN(8)
	d.h.note(d.step, "kill %s during writes: %d, then one in flight", m.name, n)
	for range n {
		spec := d.genWrite(m)
		d.finish(spec, d.exec(spec))
	}
	spec := d.genWrite(m)
	faults := d.faultSummary(m)
	lag := time.Duration(d.rng.IntN(4000)) * time.Microsecond
	done := make(chan *record, 1)
	go func() { done <- d.execWith(spec, faults) }()
	// Where the kill lands in the write (before, during or after it) is part of the
	// fault; the outcome is read from the write's answer, not from this delay.
	time.Sleep(lag)
	m.kill()
	rec := <-done
	d.tally["kill -9 "+kindOf(m)+" during a write"]++
	d.killedDuringWrite = true
	d.restart(m)
	d.settleKilled(m, rec)
	d.finish(spec, rec)
}

// settleKilled decides what a write in flight at a kill did, once the member runs again.
// Acknowledged but not read back: it is read back now and required (a write that
// returned must have been on disk). Not acknowledged: not required, but allowed.
func (d *driver) settleKilled(m *member, rec *record) {
	switch {
	case rec.out == outAck:
		return
	case !m.running:
		rec.out = outInterrupted
	case rec.sentOK:
		rec.effects, rec.beatenBy = nil, nil
		if err := readBack(m, rec, rec.before, math.MaxInt64); err != nil {
			d.problems = append(d.problems, fmt.Sprintf("B: step %d acknowledged write lost at a kill -9: %s: %v", rec.step, rec, err))
			rec.out = outInterrupted
			return
		}
		rec.out, rec.err = outAck, ""
	default:
		rec.out = outInterrupted
		if rec.before == 0 {
			return
		}
		changes, _, err := m.changes(rec.key, 0, 1)
		if err != nil {
			d.problems = append(d.problems, fmt.Sprintf("step %d: read back %s after a kill: %v", rec.step, rec.key, err))
			return
		}
		if len(changes) == 1 && !changes[0].Remote && changes[0].Version() > rec.before {
			rec.maybe = append(rec.maybe, changes[0].Entry)
		}
	}
}

// checkData checks what the data faults require of the final state:
//
//   - no two acknowledged POSTs made the same key (writers that share an identity
//     make equal indexes, and one write silently replaces the other under LWW);
//   - every acknowledged POST to posts/* (which nothing else writes) is in the final
//     state exactly as written;
//   - every altered value is back to its original (or to an entry that wins over it),
//     and the altered bytes are nowhere.
func checkData(records []*record, damages []*damage, final map[string]storage.Entry) []string {
	var out []string
	posted := map[string]*record{}
	for _, r := range records {
		if r.kind != opPost || r.out != outAck {
			continue
		}
		if first, ok := posted[r.key]; ok {
			out = append(out, fmt.Sprintf("B: two acknowledged POSTs made the same key %s: step %d on %s and step %d on %s",
				r.key, first.step, first.inst, r.step, r.inst))
		}
		posted[r.key] = r
		if !strings.HasPrefix(r.key, strings.TrimSuffix(pathPosts, "*")) || len(r.lost) > 0 {
			continue
		}
		if len(r.effects) != 1 || !sameEntry(final[r.key], r.effects[0]) {
			out = append(out, fmt.Sprintf("B: step %d acknowledged POST not in the final state as written: %s; final [%s]",
				r.step, r, entryString(final[r.key])))
		}
	}
	for _, dmg := range damages {
		if dmg.lost {
			continue
		}
		o, f := dmg.original, final[dmg.original.Key]
		switch {
		case f.Created == o.Created && f.Updated == o.Updated && bytes.Equal(f.Data, dmg.altered):
			out = append(out, fmt.Sprintf("damage: the value of %s altered on %s's disk at step %d is in the final state: [%s]",
				o.Key, dmg.member, dmg.step, entryString(f)))
		case !sameEntry(f, o) && !pivot.Wins(f, o):
			out = append(out, fmt.Sprintf("damage: %s altered on %s's disk at step %d is not repaired: original [%s], final [%s]",
				o.Key, dmg.member, dmg.step, entryString(o), entryString(f)))
		}
	}
	return out
}
