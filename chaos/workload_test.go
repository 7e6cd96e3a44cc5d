package chaos_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// driver runs one seed's schedule: operations, bursts of concurrent operations, faults
// and pauses, all drawn from rng. Every choice depends only on rng and on the
// schedule's own state (which members run, which keys were made), never on timing, so
// a seed replays the same steps.
type driver struct {
	c    *cluster
	h    *history
	mon  *monitor
	rng  *rand.Rand
	step int
	ops  int // operations run so far
	// keys lists, per list path, the keys the workload made, in the order made.
	keys    map[string][]string
	made    int            // keys made so far (for their names)
	budget  valueBudget    // the large values this seed may still write
	tally   map[string]int // faults injected, by kind
	links   map[[2]string]bool
	skewed  map[string]time.Duration
	damages []*damage // values altered on disk
	copies  int       // copied-folder faults so far
	// killedDuringWrite: a kill -9 landed during a write (process mode).
	killedDuringWrite bool
	kind              scenarioKind
	// problems are failures of the run itself (an instance that would not restart),
	// and losses the data faults find as they happen.
	problems []string
}

func newDriver(c *cluster, seed uint64) *driver {
	return &driver{
		c:      c,
		h:      &history{},
		mon:    newMonitor(),
		rng:    rand.New(rand.NewPCG(seed, 0xc4a05)),
		keys:   map[string][]string{},
		tally:  map[string]int{},
		links:  map[[2]string]bool{},
		skewed: map[string]time.Duration{},
	}
}

// run registers the operator's nodes, then executes steps until ops operations ran. A
// step's failures to observe the replicas end the run with an error.
func (d *driver) run(ops int) error {
	for _, m := range d.c.members[1:] {
		if m.operReg {
			k, data := m.registration()
			d.h.add(d.exec(opSpec{m: d.c.pivot(), kind: opSet, path: pathNodes, key: k, data: data}))
		}
	}
	// Every seed has at least one of each data fault, at an operation count drawn
	// now: a short run of a few seeds covers them all.
	must := []struct {
		at   int
		done func() bool
		run  func()
	}{
		// (not with many nodes, where one more node and its POSTs to all of them
		// would double the cost of the seed)
		{d.rng.IntN(max(1, ops)), func() bool { return d.copies > 0 || d.kind == kindMany }, d.copyOne},
		{d.rng.IntN(max(1, ops)), func() bool { return len(d.damages) > 0 }, d.alterOne},
		{d.rng.IntN(max(1, ops)), func() bool { return !d.c.processes || d.killedDuringWrite }, d.killDuringWrites},
	}
	for d.ops < ops {
		d.step++
		switch r := d.rng.IntN(100); {
		case r < 53:
			d.single()
		case r < 55:
			d.bulk(ops)
		case r < 65:
			d.burst()
		case r < 90:
			d.fault()
		default:
			d.pause()
		}
		for i := range must {
			if d.ops >= must[i].at && !must[i].done() {
				must[i].at = ops + 1 // once: a fault that found nothing to do is not retried
				d.step++
				must[i].run()
			}
		}
		if err := d.mon.observeAll(d.c); err != nil {
			return err
		}
	}
	return nil
}

// running lists the running members, in order.
func (d *driver) running() []*member {
	var out []*member
	for _, m := range d.c.members {
		if m.running {
			out = append(out, m)
		}
	}
	return out
}

// single runs one operation on a random running member.
func (d *driver) single() {
	live := d.running()
	if len(live) == 0 {
		d.startOne()
		return
	}
	spec := d.gen(live[d.rng.IntN(len(live))])
	d.finish(spec, d.exec(spec))
}

// bulk runs 10 to 40 writes in a row on one running member (at most the operations
// left), so that a backlog spans many batches and, with a small batch size, several
// rounds.
func (d *driver) bulk(ops int) {
	live := d.running()
	if len(live) == 0 {
		d.startOne()
		return
	}
	m := live[d.rng.IntN(len(live))]
	n := min(10+d.rng.IntN(31), ops-d.ops)
	d.h.note(d.step, "bulk of %d on %s", n, m.name)
	for range n {
		spec := d.genWrite(m)
		d.finish(spec, d.exec(spec))
	}
}

// burst runs two or three operations at once on distinct running members.
func (d *driver) burst() {
	live := d.running()
	if len(live) < 2 {
		d.single()
		return
	}
	d.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	n := min(len(live), 2+d.rng.IntN(2))
	specs := make([]opSpec, n)
	for i := range specs {
		specs[i] = d.gen(live[i])
	}
	recs := make([]*record, n)
	var wg sync.WaitGroup
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i] = d.exec(specs[i])
		}()
	}
	wg.Wait()
	d.h.note(d.step, "burst of %d", n)
	for i := range specs {
		d.finish(specs[i], recs[i])
	}
}

// pause lets the background sync run for a moment: the workload's think time.
func (d *driver) pause() {
	dur := time.Duration(1+d.rng.IntN(40)) * time.Millisecond
	d.h.note(d.step, "pause %s", dur)
	time.Sleep(dur)
}

// opSpec is an operation chosen by the schedule, before it runs.
type opSpec struct {
	m    *member
	kind string
	path string // the synced path of key
	key  string // key or glob; for a POST, the list
	data []byte
	made bool // the operation makes a new list key
}

// gen chooses an operation for m: a path (the single key, or one of the two lists),
// then a kind and a key. Lists get new keys, and writes to known keys that may be live
// or deleted (updates, deletes, re-creations). users/* lives on an external storage
// the REST API does not serve, so only the storage API reaches it.
func (d *driver) gen(m *member) opSpec {
	d.ops++
	s := opSpec{m: m}
	r := d.rng.IntN(100)
	switch {
	case r < 25:
		s.path = pathSettings
	case r < 60:
		s.path = pathUsers
	default:
		s.path = pathItems
	}
	viaHTTP := s.path != pathUsers && d.rng.IntN(3) == 0
	r = d.rng.IntN(100)
	switch {
	case r < 40:
		s.kind = pick(viaHTTP, opPut, opSet)
	case r < 55:
		s.kind = pick(viaHTTP, opHPatch, opPatch)
	case r < 80:
		s.kind = pick(viaHTTP, opHDel, opDel)
	case r < 82 && s.path != pathSettings:
		s.kind = opDelGlob
	default:
		s.kind = pick(viaHTTP, opHGet, opGet)
	}
	known := d.keys[s.path]
	switch {
	case s.path == pathSettings:
		s.key = pathSettings
	case s.kind == opDelGlob:
		s.key = s.path
	case (s.kind == opSet || s.kind == opPut) && (len(known) == 0 || d.rng.IntN(100) < 30):
		s.made = true
		d.made++
		if s.kind == opPut && d.rng.IntN(2) == 0 {
			s.kind, s.key = opPost, s.path
		} else {
			s.key = fmt.Sprintf("%s%c%03d", strings.TrimSuffix(s.path, "*"), s.path[0], d.made)
		}
	case isRead(s.kind) && d.rng.IntN(3) == 0:
		s.key = s.path
	case len(known) == 0:
		s.key = strings.TrimSuffix(s.path, "*") + "none"
	default:
		s.key = known[d.rng.IntN(len(known))]
	}
	switch s.kind {
	case opSet, opPut, opPost:
		s.data = newValue(d.rng, &d.budget, m.name, d.ops)
	case opPatch, opHPatch:
		s.data = newPatch(d.rng, d.ops)
	}
	return s
}

func pick(viaHTTP bool, ifHTTP, otherwise string) string {
	if viaHTTP {
		return ifHTTP
	}
	return otherwise
}

// finish records an operation and remembers the list keys it made.
func (d *driver) finish(s opSpec, rec *record) {
	if s.made && rec.out == outAck {
		d.keys[s.path] = append(d.keys[s.path], rec.key)
	}
	d.h.add(rec)
}

// exec runs one operation and reads back what it wrote.
func (d *driver) exec(s opSpec) *record {
	return d.execWith(s, d.faultSummary(s.m))
}

// execWith is exec with the faults in force already described: it only reads s and
// the member's instance, so it may run while the driver kills that instance.
func (d *driver) execWith(s opSpec, faults string) *record {
	rec := &record{step: d.step, inst: s.m.name, kind: s.kind, key: s.key, sent: abbrev(s.data), faults: faults}
	before, err := s.m.inst.clockLast(s.key)
	if err != nil {
		rec.out, rec.err = outFailed, err.Error()
		return rec
	}
	start := time.Now()
	key, err := d.call(s)
	rec.latency = time.Since(start)
	after, lerr := s.m.inst.clockLast(s.key)
	if err == nil && lerr != nil {
		err = lerr
	}
	rec.key, rec.before = key, before
	switch {
	case err == nil:
		rec.out, rec.sentOK = outAck, true
	case isRead(s.kind) && d.damagedNow(s.m, key) && (errors.Is(err, storage.ErrCorrupt) || errors.Is(err, errHTTPServer)):
		// A read of a record the schedule damaged, not yet repaired: an error is the
		// documented answer (the rest keeps being served).
		rec.out, rec.err = outUnreadable, err.Error()
	case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrNoop) ||
		errors.Is(err, errHTTPNotFound) || errors.Is(err, errHTTPNoop):
		rec.out = outNoop
		if isRead(s.kind) {
			rec.out = outAck
		}
	default:
		rec.out, rec.err = outFailed, err.Error()
	}
	if rec.out == outAck && !isRead(s.kind) {
		if err := readBack(s.m, rec, before, after); err != nil {
			rec.out, rec.err = outFailed, err.Error()
		}
	}
	return rec
}

// Answers of the REST API the workload tells apart.
var (
	errHTTPNotFound = errors.New("chaos: 404 not found")
	errHTTPServer   = errors.New("chaos: 500 server error")
	// errHTTPNoop is a 409: the write changed nothing (a PATCH of a record that reads
	// as absent, such as one damaged on disk).
	errHTTPNoop = errors.New("chaos: 409 no-op")
)

// call performs s and returns the key it wrote (for a POST, the key the server made).
func (d *driver) call(s opSpec) (string, error) {
	switch s.kind {
	case opSet, opPatch, opDel, opDelGlob, opGet:
		return s.key, s.m.inst.dbCall(s.kind, s.key, s.data)
	case opPut:
		_, err := s.m.restCall(http.MethodPut, s.key, s.data)
		return s.key, err
	case opPost:
		body, err := s.m.restCall(http.MethodPost, s.key, s.data)
		if err != nil {
			return s.key, err
		}
		var out struct {
			Index string `json:"index"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Index == "" {
			return s.key, fmt.Errorf("chaos: POST %s answered %q", s.key, body)
		}
		return strings.TrimSuffix(s.key, "*") + out.Index, nil
	case opHPatch:
		_, err := s.m.restCall(http.MethodPatch, s.key, s.data)
		return s.key, err
	case opHDel:
		_, err := s.m.restCall(http.MethodDelete, s.key, nil)
		return s.key, err
	case opHGet:
		_, err := s.m.restCall(http.MethodGet, s.key, nil)
		return s.key, err
	}
	return s.key, fmt.Errorf("chaos: unknown operation %q", s.kind)
}

// restCall sends one REST request to m and returns the answer's body. 404 is
// errHTTPNotFound; any other status outside 2xx is an error.
func (m *member) restCall(method, key string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+m.addr+"/"+key, rd)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s %s: %w", method, key, err)
	}
	resp, err := m.rest.Do(req)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s %s: %w", method, key, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s %s: read answer: %w", method, key, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return raw, errHTTPNotFound
	case resp.StatusCode == http.StatusConflict:
		return raw, fmt.Errorf("chaos: %s %s: %w: %s", method, key, errHTTPNoop, raw)
	case resp.StatusCode == http.StatusInternalServerError:
		return raw, fmt.Errorf("chaos: %s %s: %w: %s", method, key, errHTTPServer, raw)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return raw, fmt.Errorf("chaos: %s %s: status %d: %s", method, key, resp.StatusCode, raw)
	}
	return raw, nil
}

// readBack finds what an acknowledged write stored: the local, non-replicated entries
// stamped by the instance's clock between before and after. A key whose entry is a
// replicated one by then was overwritten at once by a winning entry, which is kept as
// rec.beatenBy. Finding neither is a lost write.
func readBack(m *member, rec *record, before, after int64) error {
	mine := func(c storage.Change) bool {
		return !c.Remote && c.Version() > before && c.Version() <= after
	}
	if rec.kind == opDelGlob {
		changes, _, err := m.changes(rec.key, 0, 1<<20)
		if err != nil {
			return fmt.Errorf("chaos: read back %s: %w", rec.key, err)
		}
		for _, c := range changes {
			if c.Deleted && mine(c) {
				rec.effects = append(rec.effects, c.Entry)
			}
		}
		sort.Slice(rec.effects, func(i, j int) bool { return rec.effects[i].Key < rec.effects[j].Key })
		return nil
	}
	changes, _, err := m.changes(rec.key, 0, 1)
	if err != nil {
		return fmt.Errorf("chaos: read back %s: %w", rec.key, err)
	}
	if len(changes) == 0 {
		return fmt.Errorf("chaos: acknowledged %s of %s left no entry", rec.kind, rec.key)
	}
	c := changes[0]
	switch {
	case mine(c):
		if wantDeleted := rec.kind == opDel || rec.kind == opHDel; c.Deleted != wantDeleted {
			return fmt.Errorf("chaos: acknowledged %s of %s left %s", rec.kind, rec.key, entryString(c.Entry))
		}
		rec.effects = append(rec.effects, c.Entry)
	case c.Remote && c.Version() > before:
		rec.beatenBy = append(rec.beatenBy, c.Entry)
	default:
		return fmt.Errorf("chaos: acknowledged %s of %s not found: the entry is %s (remote=%v), stamped outside (%d, %d]",
			rec.kind, rec.key, entryString(c.Entry), c.Remote, before, after)
	}
	return nil
}
