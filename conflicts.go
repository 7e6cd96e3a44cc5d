package pivot

import (
	"bytes"
	"sync"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// recentConflicts is how many conflicts Status keeps, newest first.
const recentConflicts = 10

// conflictQueue is how many conflicts wait for Config.OnConflict before more are
// dropped (and counted): a slow callback never holds back a sync.
const conflictQueue = 1024

// Origins named in Conflict.WinnerFrom and Conflict.LoserFrom, besides a node's name.
const (
	// OriginLocal is the entry this instance held.
	OriginLocal = "local"
	// OriginPivot is an entry pulled from the pivot.
	OriginPivot = "pivot"
	// OriginUnknownNode is an entry pushed by a node the pivot could not name.
	OriginUnknownNode = "unknown node"
)

// Conflict is one entry that lost under last-write-wins to a different value of the same
// key: an entry that arrived (a push on the pivot, a pull on a node) and was older than
// the one held. The loser is gone from this instance; on the instance it came from it is
// replaced when the winner reaches it. Two writes of the same value are no conflict.
//
// Without vector clocks an update made after seeing the previous value and a concurrent
// one look alike when the newer one arrives first, so a Conflict is reported only where
// the older write arrives second: on the pivot for the node whose write lost, on a node
// for a pivot value older than a write the node has not pushed yet.
type Conflict struct {
	// Path is the synced path (Config.Keys) and Key the entry's key.
	Path string `json:"path"`
	Key  string `json:"key"`
	// Winner is the entry kept, Loser the one dropped: stamps (their versions are
	// Version()), tombstone flag and data.
	Winner storage.Entry `json:"winner"`
	Loser  storage.Entry `json:"loser"`
	// WinnerFrom and LoserFrom say where each came from: OriginLocal (held here),
	// OriginPivot (pulled), or on the pivot the name of the node that pushed it.
	WinnerFrom string `json:"winnerFrom"`
	LoserFrom  string `json:"loserFrom"`
	// At is when the conflict was decided here.
	At time.Time `json:"at"`
}

// conflictLog keeps the last conflicts and hands them to Config.OnConflict.
type conflictLog struct {
	mu     sync.Mutex
	recent []Conflict // newest last, at most recentConflicts
	queue  chan Conflict
}

// startConflicts runs Config.OnConflict, when set, on a goroutine of its own, so that
// it never runs inside a storage transaction or a protocol request.
func (e *syncEngine) startConflicts() {
	fn := e.cfg.OnConflict
	if fn == nil {
		return
	}
	q := make(chan Conflict, conflictQueue)
	e.conflicts.mu.Lock()
	e.conflicts.queue = q
	e.conflicts.mu.Unlock()
	e.spawn(func() {
		for {
			select {
			case c := <-q:
				fn(c)
			case <-e.ctx.Done():
				return
			}
		}
	})
}

// lossWatch returns the LWW rule to give ApplyEach for entries arriving from
// arrivedFrom, recording every conflict it decides: an arriving entry that loses to a
// different held value, and, on a node, a held value that mine lists (this node's own
// writes the pivot answered as superseded) replaced by an arriving one. wins runs
// inside the storage's write transaction, so it only records; reportLost hands the
// records on afterwards. A transaction that runs twice records a key once.
func lossWatch(arrivedFrom string, mine map[string]storage.Entry) (storage.Wins, map[string]Conflict) {
	found := map[string]Conflict{}
	wins := func(incoming, current storage.Entry) bool {
		w := Wins(incoming, current)
		switch {
		case !w && current.Version() != 0 && !sameEntry(incoming, current):
			found[incoming.Key] = Conflict{Key: incoming.Key, Winner: current, Loser: incoming, WinnerFrom: OriginLocal, LoserFrom: arrivedFrom}
		case w && mine != nil:
			if own, ok := mine[current.Key]; ok && sameEntry(own, current) {
				found[incoming.Key] = Conflict{Key: incoming.Key, Winner: incoming, Loser: current, WinnerFrom: arrivedFrom, LoserFrom: OriginLocal}
			}
		default:
			delete(found, incoming.Key)
		}
		return w
	}
	return wins, found
}

// sameEntry reports whether a and b are one state of a key.
func sameEntry(a, b storage.Entry) bool {
	return a.Key == b.Key && a.Created == b.Created && a.Updated == b.Updated && a.Deleted == b.Deleted && bytes.Equal(a.Data, b.Data)
}

// reportLost counts the conflicts lossWatch found for sk, keeps the last few for
// Status and queues them for Config.OnConflict (dropping, and counting, what does not
// fit).
func (e *syncEngine) reportLost(sk *syncKey, found map[string]Conflict) {
	if len(found) == 0 {
		return
	}
	now := time.Now()
	e.ops.lost.Add(int64(len(found)))
	e.conflicts.mu.Lock()
	defer e.conflicts.mu.Unlock()
	for _, c := range found {
		c.Path, c.At = sk.path, now
		e.conflicts.recent = append(e.conflicts.recent, c)
		if q := e.conflicts.queue; q != nil {
			select {
			case q <- c:
			default:
				e.ops.conflictsDropped.Add(1)
			}
		}
	}
	if extra := len(e.conflicts.recent) - recentConflicts; extra > 0 {
		e.conflicts.recent = append(e.conflicts.recent[:0:0], e.conflicts.recent[extra:]...)
	}
	e.log.Debug("pivot: conflicts decided by last-write-wins", "key", sk.path, "entries", len(found))
}

// lastConflicts returns the conflicts Status shows, newest first.
func (e *syncEngine) lastConflicts() []Conflict {
	e.conflicts.mu.Lock()
	defer e.conflicts.mu.Unlock()
	out := make([]Conflict, 0, len(e.conflicts.recent))
	for i := len(e.conflicts.recent) - 1; i >= 0; i-- {
		out = append(out, e.conflicts.recent[i])
	}
	return out
}

// nodeName is how a Conflict names the node that pushed an entry.
func nodeName(rn *remoteNode) string {
	if rn == nil {
		return OriginUnknownNode
	}
	return rn.addr
}

// supersededPushes records, on a node, the entries of a push batch the pivot answered
// with superseded entries: one of them may lose to a newer value the next pull brings,
// which is then a Conflict this node reports. The answer does not say which entries
// were superseded, so the whole batch is kept, up to maxOwn entries per key; forgotten
// when a pull reaches the pivot's head. Owned by the run goroutine.
func (n *nodeRole) supersededPushes(sk *syncKey, entries []storage.Entry) {
	m := n.lostPushes[sk]
	if m == nil {
		m = map[string]storage.Entry{}
		n.lostPushes[sk] = m
	}
	for _, en := range entries {
		if len(m) >= maxOwn {
			return
		}
		m[en.Key] = en
	}
}
