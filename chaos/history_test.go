package chaos_test

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// Operation kinds of the workload. The h-prefixed ones go through the instance's REST
// API over HTTP; the others call its storage directly.
const (
	opSet     = "set"     // Database.Set of a key (creates, updates or re-creates it)
	opPut     = "put"     // HTTP PUT of a key
	opPost    = "post"    // HTTP POST to a list: a new key with a server-made index
	opPatch   = "patch"   // Database.Patch of a key
	opHPatch  = "hpatch"  // HTTP PATCH of a key
	opDel     = "del"     // Database.Del of a key
	opHDel    = "hdel"    // HTTP DELETE of a key
	opDelGlob = "delglob" // Database.Del of a list glob: every live entry of the list
	opGet     = "get"     // Database.Get (BeforeRead included)
	opHGet    = "hget"    // HTTP GET
)

// isRead reports whether kind only reads.
func isRead(kind string) bool { return kind == opGet || kind == opHGet }

// outcome is what the instance answered to an operation.
type outcome int

const (
	outAck    outcome = iota // acknowledged: it took effect (or, for a read, it answered)
	outNoop                  // refused without effect: delete or patch of a missing key
	outFailed                // any other error: an availability failure
	// outInterrupted: the instance was killed while the operation ran; it was not
	// acknowledged, so it is not required, but it may have taken effect.
	outInterrupted
	// outUnreadable: a read of a record the schedule damaged on disk, before its
	// repair, answered an error: the documented answer, not an availability failure.
	outUnreadable
)

func (o outcome) String() string {
	switch o {
	case outNoop:
		return "noop"
	case outFailed:
		return "FAILED"
	case outInterrupted:
		return "interrupted by a kill"
	case outUnreadable:
		return "unreadable (damaged on disk)"
	}
	return "ack"
}

// record is one operation of the history.
type record struct {
	step    int
	inst    string
	kind    string
	key     string // the key or glob operated on (for a POST, the key made)
	sent    string // the body sent, if any
	out     outcome
	err     string
	latency time.Duration
	faults  string // the faults in force when it ran, for the availability check
	sentOK  bool   // the instance acknowledged the call (before the read back)
	before  int64  // the instance's clock just before the call
	// maybe holds what an interrupted operation may have written: allowed in the final
	// state (it was written), never required.
	maybe []storage.Entry
	// effects are the entries the operation wrote, read back from the instance right
	// after it returned (one per key; a glob delete writes several tombstones).
	effects []storage.Entry
	// beatenBy holds, for a write that a replicated entry had already replaced when it
	// was read back, that entry: the write's own stamps are then unknown, but it was
	// beaten by this entry, so the final state must be at least this entry.
	beatenBy []storage.Entry
	// lost are the effects and beatenBy entries that were held by no replica but one
	// when that replica's data was wiped (its disk replaced): they may be gone for good,
	// so invariants B and C do not ask for them.
	lost []storage.Entry
}

func (r *record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.inst, r.kind, r.key)
	if r.sent != "" {
		fmt.Fprintf(&b, " %s", r.sent)
	}
	fmt.Fprintf(&b, " → %s", r.out)
	if r.err != "" {
		fmt.Fprintf(&b, " (%s)", r.err)
	}
	for _, e := range r.effects {
		fmt.Fprintf(&b, " [%s]", entryString(e))
	}
	for _, e := range r.beatenBy {
		fmt.Fprintf(&b, " [beaten at once by %s]", entryString(e))
	}
	for _, e := range r.lost {
		fmt.Fprintf(&b, " [lost with a wiped disk: %s]", entryString(e))
	}
	fmt.Fprintf(&b, " %s", r.latency.Round(time.Microsecond))
	return b.String()
}

// entryString formats an entry compactly for traces.
func entryString(e storage.Entry) string {
	if e.Version() == 0 && e.Key == "" {
		return "absent"
	}
	s := fmt.Sprintf("%s c=%d u=%d", e.Key, e.Created, e.Updated)
	if e.Deleted {
		return s + " deleted"
	}
	return s + " " + abbrev(e.Data)
}

// abbrev shortens data for traces: a large value shows its length, its start and its
// end (a trace of a seed with 4 MiB values must stay readable).
func abbrev(data []byte) string {
	const keep = 160
	if len(data) <= 2*keep {
		return string(data)
	}
	return fmt.Sprintf("%s…(%d bytes)…%s", data[:keep], len(data), data[len(data)-keep:])
}

// sameEntry reports whether two entries are identical in what replicas must agree on.
func sameEntry(a, b storage.Entry) bool {
	return a.Key == b.Key && a.Created == b.Created && a.Updated == b.Updated &&
		a.Deleted == b.Deleted && string(a.Data) == string(b.Data)
}

// history is everything one seed did: the trace of its steps and the records of its
// operations. It is safe for concurrent use (a burst runs operations at once).
type history struct {
	mu      sync.Mutex
	trace   []string
	records []*record
}

// note adds a line to the trace.
func (h *history) note(step int, format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trace = append(h.trace, fmt.Sprintf("%04d %s", step, fmt.Sprintf(format, args...)))
}

// add records an operation and traces it.
func (h *history) add(r *record) {
	h.mu.Lock()
	h.records = append(h.records, r)
	h.mu.Unlock()
	h.note(r.step, "%s", r)
}

// all returns the records so far.
func (h *history) all() []*record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*record(nil), h.records...)
}

// String is the whole trace, one step per line.
func (h *history) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.trace, "\n")
}
