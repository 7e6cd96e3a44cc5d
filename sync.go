package pivot

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// Work bits a round can do for one key.
const (
	needPush uint8 = 1 << iota
	needPull
	needCheck  // compare the data with the pivot's (anti-entropy), after push and pull
	needResync // reconcile with the pivot's snapshot, as on a first sync (SetupResult.Resync)
)

// nodeRole is the node side of the engine: one goroutine runs sync rounds against the
// pivot, scheduled by local writes, pivot triggers, reads, a periodic timer and, while
// the pivot is unreachable, a backoff timer.
type nodeRole struct {
	e *syncEngine
	// pivot is the pivot address in use, one of pivots; the run goroutine alone
	// reads it and moves it to the next one (failover).
	pivot  *peer
	pivots []*peer
	at     int                    // index of pivot in pivots
	using  atomic.Pointer[string] // the address of pivot, for Status
	// active is pivot for other goroutines (the live stream dials it).
	active atomic.Pointer[peer]
	order  atomic.Pointer[[]string] // the addresses of pivots, in order, for Status
	addr   string                   // server.Pivot as given: names the cluster without a ClusterID
	kick   chan struct{}            // capacity 1: a request during a round yields exactly one more

	mu      sync.Mutex
	pending map[*syncKey]uint8       // work asked for and not yet taken by a round
	keyErrs map[*syncKey]errorRecord // the error of each key whose last sync failed

	// shrink halves a key's byte budget once per sync that failed to get an answer,
	// up to maxShrink times, and a sync that succeeds undoes one halving: a link too
	// slow to carry a full body within RequestTimeout still makes progress in smaller
	// batches and pages. Owned by the run goroutine.
	shrink map[*syncKey]int
	next   chan struct{} // closed when the round taking the pending work ends

	down        atomic.Bool // the last round failed to reach the pivot
	failures    atomic.Int64
	lastContact atomic.Int64 // unix ns of the last successful exchange with the pivot

	// Owned by the run goroutine.
	cursors    map[*syncKey]*cursor
	dirty      map[*syncKey]*cursor                  // moved cursors not yet persisted
	pushed     map[*syncKey]*ownPushes               // what was pushed since the last pull to the head
	lostPushes map[*syncKey]map[string]storage.Entry // pushes answered as superseded (conflicts.go)
	lastFlush  time.Time
	registered bool
	// writersConfirmed is set once the pivot confirmed the writer ids of this node's
	// storages (writers.go), and cleared when the pivot was unreachable or a check
	// comes due, so they are confirmed again.
	writersConfirmed bool

	stream *nodeStream // the live stream to the pivot (stream_node.go); nil when off
}

// newNodeRole makes the node side of e, syncing with the pivot at pivotAddr and at
// the addresses of Config.Pivots (failover.go).
func newNodeRole(e *syncEngine, pivotAddr string) *nodeRole {
	addrs := pivotAddresses(pivotAddr, e.cfg.Pivots)
	pivots := make([]*peer, len(addrs))
	for i, a := range addrs {
		pivots[i] = e.peer(a, e.nodeID)
	}
	n := &nodeRole{
		e:       e,
		pivot:   pivots[0],
		pivots:  pivots,
		addr:    pivotAddr,
		kick:    make(chan struct{}, 1),
		pending: map[*syncKey]uint8{},
		keyErrs: map[*syncKey]errorRecord{},
		shrink:  map[*syncKey]int{},
		next:    make(chan struct{}),
		cursors: map[*syncKey]*cursor{},
		dirty:   map[*syncKey]*cursor{},
		pushed:  map[*syncKey]*ownPushes{},

		lostPushes: map[*syncKey]map[string]storage.Entry{},
	}
	n.using.Store(&addrs[0])
	n.order.Store(&addrs)
	n.active.Store(n.pivot)
	n.stream = newNodeStream(n)
	return n
}

// request asks for work on sk (every key when sk is nil) and returns a channel closed
// when the round doing it ends. It never blocks.
func (n *nodeRole) request(sk *syncKey, bits uint8) <-chan struct{} {
	n.mu.Lock()
	if sk == nil {
		for _, k := range n.e.keys {
			n.pending[k] |= bits
		}
	} else {
		n.pending[sk] |= bits
	}
	done := n.next
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
	return done
}

// take hands the pending work to a round, with the channel to close when it ends.
func (n *nodeRole) take() (map[*syncKey]uint8, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	work, done := n.pending, n.next
	n.pending, n.next = map[*syncKey]uint8{}, make(chan struct{})
	return work, done
}

// putBack returns unfinished work to the pending set without scheduling a round.
func (n *nodeRole) putBack(work map[*syncKey]uint8) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, bits := range work {
		n.pending[k] |= bits
	}
}

// triggered is called when the pivot asks for a sync: the pivot is evidently up.
func (n *nodeRole) triggered(keys []*syncKey) {
	n.down.Store(false)
	if len(keys) == 0 {
		n.request(nil, needPull)
		return
	}
	for _, sk := range keys {
		n.request(sk, needPull)
	}
}

// beforeRead pulls the key's synced path before a read, bounded by ReadBudget, so a
// read that starts after a write elsewhere was acknowledged sees it whenever the pivot
// answers in time. The pull is a round that starts after the read asked (reads asking
// during a round share the next one). ooo's own websocket broadcasts do not come here
// (they read without the hook): a node's event means the data is already there.
func (n *nodeRole) beforeRead(k string) {
	budget := n.e.cfg.ReadBudget
	if budget < 0 || n.down.Load() || n.e.ctx.Err() != nil {
		return
	}
	sk := n.e.keyFor(k)
	if sk == nil {
		return
	}
	done := n.request(sk, needPull)
	t := time.NewTimer(budget)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-n.e.ctx.Done():
	}
}

// drain, as the engine stops, sends what is unsent: it asks for a push of every key
// and waits for that round, at most max, unless the pivot is known to be down.
func (n *nodeRole) drain(max time.Duration) {
	select {
	case <-n.e.ready:
	default:
		return // never started: nothing runs the round
	}
	if n.down.Load() {
		return
	}
	done := n.request(nil, needPush)
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// run is the node's sync loop. It syncs every key at once, then whenever asked, every
// SyncInterval, and after a failure with backoff.
func (n *nodeRole) run() {
	ctx := n.e.ctx
	if !n.e.waitReady() {
		return
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	flushTimer := time.NewTimer(time.Hour)
	flushTimer.Stop()
	defer flushTimer.Stop()
	flushArmed := false
	// checkTimer schedules the anti-entropy comparison of every key's data.
	checkTimer := time.NewTimer(time.Hour)
	checkTimer.Stop()
	defer checkTimer.Stop()
	if n.e.cfg.RepairInterval > 0 {
		checkTimer.Reset(n.e.cfg.RepairInterval)
	}
	defer func() {
		// The engine stops before the server closes the storage (OnClosing), so
		// this saves the cursors; when a program closes the storage itself first,
		// a lost cursor only costs a re-send.
		if err := n.flush(); err != nil {
			n.e.fail("save cursors", err)
		}
	}()
	// The first round also compares the data with the pivot's: damage done to the
	// files while the node was stopped is found at once, not a RepairInterval later.
	n.request(nil, needPush|needPull|needCheck)
	// lastFull is when a round last covered every key; the periodic timer counts
	// from it, so a node busy with partial rounds (local writes) still pulls.
	lastFull := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flushTimer.C:
			flushArmed = false
			if err := n.flush(); err != nil {
				n.e.fail("save cursors", err)
			}
			continue
		case <-n.kick:
			if n.down.Load() {
				// The pivot is unreachable: local writes and reads wait for the
				// backoff timer (or a trigger from the pivot) instead of hammering it.
				continue
			}
		case <-timer.C:
			n.request(nil, needPush|needPull)
			<-n.kick
			lastFull = time.Now()
		case <-checkTimer.C:
			checkTimer.Reset(n.e.cfg.RepairInterval)
			n.writersConfirmed = false
			n.request(nil, needPush|needPull|needCheck)
			<-n.kick
			lastFull = time.Now()
		}
		work, done := n.take()
		began := time.Now()
		left, err := n.round(ctx, work)
		n.e.ops.roundEnded(began, err)
		if err == nil {
			n.cameBack() // before done: whoever waits on the round sees the pivot back
		}
		close(done)
		if ctx.Err() != nil {
			return
		}
		if len(n.dirty) > 0 && !flushArmed {
			flushArmed = true
			flushTimer.Reset(max(0, cursorFlushInterval-time.Since(n.lastFlush)))
		}
		switch {
		case err == nil:
			n.down.Store(false)
			n.failures.Store(0)
			if n.e.cfg.SyncInterval > 0 {
				timer.Reset(max(0, n.e.cfg.SyncInterval-time.Since(lastFull)))
			}
		case unreachable(err):
			n.putBack(left)
			n.failover(err)
			n.wentDown(err)
			n.down.Store(true)
			n.writersConfirmed = false
			f := n.failures.Add(1)
			timer.Reset(n.e.backoff(int(f), rand.Int64N))
		default:
			// Refused by the pivot (token, cluster, skew...) or a local storage
			// problem: retry later, without treating the pivot as down.
			n.putBack(left)
			if cannotServe(err) {
				n.failover(err)
			}
			f := n.failures.Add(1)
			n.failedRound(err)
			timer.Reset(n.e.backoff(int(f), rand.Int64N))
		}
	}
}

// round does the work taken from the pending set: for each key, push then pull. A key
// that cannot make progress (refused entries, an error answer of the pivot, a local
// storage problem) is reported for that key (keyError), and its pull and the other keys
// still run: one stuck key never holds back the rest. Only a pivot that does not answer
// at all ends the round early. It returns the work to retry and the errors met.
func (n *nodeRole) round(ctx context.Context, work map[*syncKey]uint8) (map[*syncKey]uint8, error) {
	var errs []error
	left := map[*syncKey]uint8{}
	if !n.registered && n.e.cfg.Advertise != "" {
		if err := n.register(); err != nil {
			errs = append(errs, err)
		}
	}
	if !n.writersConfirmed {
		if err := n.confirmWriters(ctx); err != nil {
			if unreachable(err) {
				return work, err
			}
			errs = append(errs, err)
		}
	}
	for i, sk := range n.e.keys {
		bits := work[sk]
		if bits == 0 {
			continue
		}
		err := n.syncKey(ctx, sk, bits)
		n.setKeyError(sk, err)
		switch {
		case err == nil && n.shrink[sk] > 0:
			n.shrink[sk]--
		case unreachable(err) && n.shrink[sk] < maxShrink:
			n.shrink[sk]++
		}
		if err == nil {
			continue
		}
		left[sk] = bits
		errs = append(errs, err)
		if unreachable(err) {
			for _, rest := range n.e.keys[i+1:] {
				if b := work[rest]; b != 0 {
					left[rest] = b
				}
			}
			break
		}
	}
	return left, errors.Join(errs...)
}

// budget is the byte budget of sk's next batch or page (see shrink).
func (n *nodeRole) budget(sk *syncKey) int64 {
	return max(1, n.e.budget()>>n.shrink[sk])
}

// syncKey pushes then pulls sk, as bits ask. A failed push does not skip the pull
// unless the pivot did not answer: a node whose entries are refused (clock skew, a
// value the pivot will not take) must keep receiving the others' writes meanwhile.
func (n *nodeRole) syncKey(ctx context.Context, sk *syncKey, bits uint8) error {
	if !sk.db.Active() {
		return fmt.Errorf("pivot: sync %s: %w", sk.path, ErrNotActive)
	}
	cur, err := n.cursor(sk)
	if err != nil {
		return err
	}
	if bits&needResync != 0 {
		// As on a first sync: the pull that follows finds no pivot epoch and
		// reconciles (merge mode), after pushing what is unsent.
		cur.PivotEpoch = ""
		bits |= needPull
	}
	var pushErr error
	if bits&needPush != 0 {
		if pushErr = n.push(ctx, sk, cur); pushErr != nil && unreachable(pushErr) {
			return pushErr
		}
	}
	if bits&needStream != 0 {
		if err := n.applyStream(sk, cur); err != nil {
			return errors.Join(pushErr, err)
		}
	}
	if bits&needPull != 0 {
		if err := n.pull(ctx, sk, cur); err != nil {
			return errors.Join(pushErr, err)
		}
		n.stream.ack(sk, cur)
	}
	if pushErr != nil {
		return pushErr
	}
	if bits&needCheck != 0 {
		return n.check(ctx, sk, cur)
	}
	return nil
}

// setKeyError records the outcome of sk's last sync, shown in its KeyStatus.
func (n *nodeRole) setKeyError(sk *syncKey, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		delete(n.keyErrs, sk)
		return
	}
	n.keyErrs[sk] = errorRecord{at: time.Now(), msg: err.Error(), err: err}
}

// keyError returns the error of sk's last sync, if it failed.
func (n *nodeRole) keyError(sk *syncKey) (errorRecord, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rec, ok := n.keyErrs[sk]
	return rec, ok
}

// register writes this node's entry under NodesKey, unless it is already there.
func (n *nodeRole) register() error {
	sk := n.e.keyByPath(n.e.cfg.NodesKey)
	if sk == nil || !sk.db.Active() {
		return nil
	}
	k := nodeEntryKey(n.e.cfg.NodesKey, n.e.cfg.Advertise)
	want, _ := json.Marshal(map[string]string{"ip": n.e.cfg.Advertise})
	current, _, err := sk.rep.Changes(k, 0, 1)
	if err != nil {
		return fmt.Errorf("pivot: read node entry %s: %w", k, err)
	}
	if len(current) == 1 && !current[0].Deleted {
		if addr, ok := nodeAddress(current[0].Data); ok && addr == n.e.cfg.Advertise {
			n.registered = true
			return nil
		}
	}
	if _, err := sk.db.Set(k, want); err != nil {
		return fmt.Errorf("pivot: register node at %s: %w", k, err)
	}
	n.registered = true
	return nil
}

// push sends the local-origin changes of sk after the push cursor, in batches bounded
// by BatchSize and by the pivot's body limit, and advances the cursor as the pivot
// acknowledges them. A refused entry (clock skew) holds the cursor just before it, so it
// is sent again later and never dropped.
func (n *nodeRole) push(ctx context.Context, sk *syncKey, cur *cursor) error {
	local := func(c storage.Change) bool {
		return !c.Remote && !(cur.Adopt && c.Version() < cur.AdoptBefore)
	}
	for i := 0; i < maxBatchesPerRound; i++ {
		page, err := readFeed(sk, cur.Push, n.e.cfg.BatchSize, n.budget(sk), local)
		if err != nil {
			return err
		}
		if len(page.changes) > 0 {
			entries := make([]storage.Entry, len(page.changes))
			seqs := make(map[string]uint64, len(page.changes))
			for j, c := range page.changes {
				entries[j] = c.Entry
				seqs[c.Key] = c.Seq
			}
			pulled := uint64(0)
			if cur.PivotEpoch != "" {
				pulled = cur.Pull
			}
			resp, err := n.pivot.apply(ctx, sk.path, applyRequest{Entries: entries, Pulled: pulled})
			if err != nil {
				n.e.ops.pushFailures.Add(1)
				return err
			}
			n.contact()
			n.acknowledged(sk, entries, resp)
			n.e.counts.pushed.Add(int64(resp.Applied))
			n.e.counts.conflicts.Add(int64(resp.Superseded))
			own := n.ownPushes(sk)
			own.add(entries)
			// The pivot's feed after our last pull holds only our own entries: no
			// need to pull them back. Only from where this node's cursor stands, and
			// only if this node pushed every one of them (see applyResponse).
			if resp.HeldTo > cur.Pull && cur.Pull >= resp.HeldFrom && resp.Epoch == cur.PivotEpoch && cur.PivotEpoch != "" {
				if own.holds(resp.Held) {
					cur.Pull = resp.HeldTo
				} else {
					// The pivot takes this node to hold entries it never pushed:
					// another peer pushed under its name, and the pivot will skip
					// the triggers for them. Pull them now instead.
					n.request(sk, needPull)
				}
			}
			if len(resp.Refused) > 0 {
				n.e.counts.refused.Add(int64(len(resp.Refused)))
				hold := page.next
				for _, r := range resp.Refused {
					if s, ok := seqs[r.Key]; ok && s-1 < hold {
						hold = s - 1
					}
				}
				if hold > cur.Push {
					cur.Push = hold
					if err := n.markMoved(sk, cur); err != nil {
						return err
					}
				}
				return refusedError("push", sk.path, resp.Refused)
			}
		}
		if page.next > cur.Push {
			cur.Push = page.next
			// After an acknowledged push the cursor is saved at once: a stale one
			// would re-send entries after a crash, and one deleted on the pivot
			// meanwhile could come back once its tombstone is collected. A cursor
			// that only skipped received entries can wait for the next flush.
			save := n.markMoved
			if len(page.changes) > 0 {
				save = n.persist
			}
			if err := save(sk, cur); err != nil {
				return err
			}
		}
		if !page.more {
			return nil
		}
	}
	n.request(sk, needPush)
	return nil
}

// pull applies the pivot's changes of sk after the pull cursor under LWW, then advances
// the cursor. A changed pivot epoch or a cursor below the pivot's tombstone horizon
// leads to a full reconciliation instead.
func (n *nodeRole) pull(ctx context.Context, sk *syncKey, cur *cursor) error {
	progress := catchUp{began: time.Now()}
	for i := 0; i < maxBatchesPerRound; i++ {
		resp, err := n.pivot.changes(ctx, sk.path, cur.Pull, n.e.cfg.BatchSize, n.budget(sk))
		if err != nil {
			n.e.ops.pullFailures.Add(1)
			return err
		}
		n.contact()
		if resp.Epoch != cur.PivotEpoch || cur.Pull < resp.Horizon {
			return n.reconcile(ctx, sk, cur, resp.Epoch)
		}
		if !resp.More && cur.Pull > resp.Head {
			// A position past the pivot's head in its own epoch was never given by
			// it: start over from a snapshot, keeping what this node holds.
			n.e.log.Warn("pivot: pull cursor is past the pivot's head, reconciling", "key", sk.path,
				"cursor", cur.Pull, "head", resp.Head)
			cur.PivotEpoch = ""
			return n.reconcile(ctx, sk, cur, resp.Epoch)
		}
		hold, err := n.applyRemote(sk, resp.Changes)
		if err != nil {
			return err
		}
		if hold != nil {
			if *hold > cur.Pull {
				cur.Pull = *hold
				if err := n.markMoved(sk, cur); err != nil {
					return err
				}
			}
			return skewError("pull", sk.path)
		}
		if resp.Next != cur.Pull {
			cur.Pull = resp.Next
			if err := n.markMoved(sk, cur); err != nil {
				return err
			}
		}
		if !resp.More {
			n.ownPushes(sk).reset()
			delete(n.lostPushes, sk)
			n.e.ops.heads.Store(sk, resp.Head)
			progress.done(n.e.log, sk, len(resp.Changes))
			return nil
		}
		progress.page(n.e.log, sk, len(resp.Changes), resp.Next)
	}
	n.request(sk, needPull)
	return nil
}

// ownPushes returns what this node pushed of sk since its last pull to the pivot's
// head.
func (n *nodeRole) ownPushes(sk *syncKey) *ownPushes {
	o := n.pushed[sk]
	if o == nil {
		o = &ownPushes{}
		n.pushed[sk] = o
	}
	return o
}

// applyRemote applies changes from the pivot under LWW. When the local clock refuses
// some of them (skew), it returns the cursor to hold: just before the first refused one.
func (n *nodeRole) applyRemote(sk *syncKey, changes []storage.Change) (*uint64, error) {
	wins, found := lossWatch(OriginPivot, n.lostPushes[sk])
	hold, err := n.applyRemoteWith(sk, changes, wins)
	if err == nil {
		n.e.reportLost(sk, found)
	}
	return hold, err
}

// applyRemoteWith is applyRemote with another conflict rule (used by reconcile).
func (n *nodeRole) applyRemoteWith(sk *syncKey, changes []storage.Change, wins storage.Wins) (*uint64, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	entries := make([]storage.Entry, len(changes))
	for i, c := range changes {
		entries[i] = c.Entry
	}
	results, err := sk.rep.ApplyEach(entries, wins)
	if err != nil {
		return nil, fmt.Errorf("pivot: apply changes of %s: %w", sk.path, err)
	}
	var hold *uint64
	for i, r := range results {
		switch {
		case r.Outcome == storage.Applied:
			n.e.counts.pulled.Add(1)
			n.e.ops.pullBytes.Add(entrySize(entries[i]))
		case r.Outcome == storage.Refused && skewed(r.Err):
			n.e.counts.refused.Add(1)
			if h := changes[i].Seq - 1; hold == nil || h < *hold {
				hold = &h
			}
		case r.Outcome == storage.Refused:
			return nil, fmt.Errorf("pivot: apply changes of %s: %q: %w", sk.path, changes[i].Key, r.Err)
		}
	}
	return hold, nil
}

// refusedError reports that the pivot refused some pushed entries (clock skew) during
// op on path; refused is not empty. The round retries them later.
func refusedError(op, path string, refused []refusal) error {
	return fmt.Errorf("pivot: %s %s: the pivot refused %d entries (first %s: %s); retrying later",
		op, path, len(refused), refused[0].Key, refused[0].Error)
}

// skewError reports that the local clock refused entries from the pivot during op on
// path, as stamped too far ahead. The round retries them later.
func skewError(op, path string) error {
	return fmt.Errorf("pivot: %s %s: entries from the pivot are too far ahead of the local clock; retrying later", op, path)
}

// contact records a successful exchange with the pivot.
func (n *nodeRole) contact() {
	n.lastContact.Store(time.Now().UnixNano())
	n.down.Store(false)
}

// skewed reports whether a refusal is a clock's: the entry is stamped too far ahead,
// and is retried later rather than dropped.
func skewed(err error) bool {
	var se *clock.SkewError
	return errors.As(err, &se)
}

// nodeEntryKey is where a node advertising addr registers under a list path.
func nodeEntryKey(list, addr string) string {
	id := []byte(addr)
	for i, c := range id {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !letter && c != '-' && c != '.' {
			id[i] = '_'
		}
	}
	return strings.TrimSuffix(list, "*") + string(id)
}

// nodeID returns what this node sends in HeaderNode: Config.Advertise when set, else the
// address its server listens on (ooo.Server.Address), which is known once the server
// is started; "" before that. Safe for concurrent use.
func (e *syncEngine) nodeID() string {
	if e.cfg.Advertise != "" {
		return e.cfg.Advertise
	}
	if id := e.listenAddr.Load(); id != nil {
		return *id
	}
	// Start sets Address before it marks the server active, so reading Address after
	// Active reported true does not race with Start.
	if e.server == nil || !e.server.Active() {
		return ""
	}
	addr := e.server.Address
	e.listenAddr.Store(&addr)
	return addr
}

// ownPushes is, on a node, what it pushed of one key since its last pull reached the
// pivot's head: the hashes (hashEntry) of the entries, at most maxOwn of them. A push
// answer's held range is trusted only when every change in it is one of these, so
// nothing another peer put in the pivot's feed, whatever name it claimed, is skipped.
// Owned by the node's run goroutine.
type ownPushes struct {
	hashes   map[entryHash]struct{}
	overflow bool
}

// add records pushed entries.
func (o *ownPushes) add(entries []storage.Entry) {
	if o.overflow {
		return
	}
	if len(o.hashes)+len(entries) > maxOwn {
		o.hashes, o.overflow = nil, true
		return
	}
	if o.hashes == nil {
		o.hashes = make(map[entryHash]struct{}, len(entries))
	}
	for _, e := range entries {
		o.hashes[hashEntry(e)] = struct{}{}
	}
}

// holds reports whether every hash of a held range (hex, as the pivot sent them) is
// of an entry recorded here.
func (o *ownPushes) holds(held []string) bool {
	if o.overflow || len(held) == 0 {
		return false
	}
	for _, s := range held {
		var hh entryHash
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(hh) {
			return false
		}
		copy(hh[:], b)
		if _, ok := o.hashes[hh]; !ok {
			return false
		}
	}
	return true
}

// reset forgets what was pushed: a pull reached the pivot's head, so it is all behind
// the cursor.
func (o *ownPushes) reset() { o.hashes, o.overflow = nil, false }

// cursor is a node's persisted position in the sync of one key path. It lives beside the
// data (storage.Replica.SaveCursor), so a persistent storage keeps it across restarts.
type cursor struct {
	// Cluster is the identity of the cluster the cursor was taken in (see clusterIdentity).
	Cluster string `json:"cluster"`
	// LocalEpoch is the local storage's epoch when Push was taken.
	LocalEpoch string `json:"localEpoch"`
	// PivotEpoch is the pivot's epoch when Pull was taken; "" before the first sync.
	PivotEpoch string `json:"pivotEpoch"`
	// Pull is the pivot's sequence up to which its changes were applied here.
	Pull uint64 `json:"pull"`
	// Push is the local sequence up to which local changes were acknowledged.
	Push uint64 `json:"push"`
	// Adopt is set when the node was re-pointed at another cluster and has not yet
	// replaced the old cluster's data with the new one's.
	Adopt bool `json:"adopt,omitempty"`
	// AdoptBefore, with Adopt, is when the node was set up for the new cluster (unix
	// ns). Entries with an older version belong to the old cluster: they are never
	// pushed. Stamps never run behind the wall clock, so every write made since is newer.
	AdoptBefore int64 `json:"adoptBefore,omitempty"`
}

// clusterIdentity names the cluster a node syncs with: the ClusterID when it is set, else the
// pivot's address. A cursor taken under another identity belongs to another cluster.
func (n *nodeRole) clusterIdentity() string {
	if n.e.cfg.ClusterID != "" {
		return "id:" + n.e.cfg.ClusterID
	}
	return "pivot:" + n.addr
}

// freshCursor is the cursor of sk before its first sync in this cluster: everything
// local is pushed, everything on the pivot is pulled.
func (n *nodeRole) freshCursor(sk *syncKey) *cursor {
	return &cursor{Cluster: n.clusterIdentity(), LocalEpoch: sk.rep.Epoch()}
}

// cursorName is the SaveCursor name of a key path's cursor.
func cursorName(path string) string { return "pivot/" + path }

// cursor returns the cursor of sk, loading it on first use. A cursor taken in another
// cluster, or before the local data was reset, is replaced (see the package doc).
func (n *nodeRole) cursor(sk *syncKey) (*cursor, error) {
	if c, ok := n.cursors[sk]; ok && c.LocalEpoch == sk.rep.Epoch() {
		return c, nil
	}
	raw, err := sk.rep.LoadCursor(cursorName(sk.path))
	if err != nil {
		return nil, fmt.Errorf("pivot: load cursor of %s: %w", sk.path, err)
	}
	c := &cursor{}
	if raw != nil {
		if err := json.Unmarshal(raw, c); err != nil {
			n.e.log.Warn("pivot: unreadable cursor, syncing from scratch", "key", sk.path, "err", err)
			c = n.freshCursor(sk)
		}
	} else {
		c = n.freshCursor(sk)
	}
	switch {
	case c.LocalEpoch != sk.rep.Epoch():
		// The local data was reset: push what is there now, pull everything.
		n.e.log.Info("pivot: local data was reset, syncing from scratch", "key", sk.path)
		c = n.freshCursor(sk)
	case c.Cluster != n.clusterIdentity():
		// Re-pointed at another cluster: the writes made for the old cluster stay
		// out of the new one, and the reconciliation that follows (PivotEpoch is "")
		// replaces them with the new cluster's data.
		n.e.log.Warn("pivot: re-pointed at another cluster, adopting its data", "key", sk.path,
			"from", c.Cluster, "to", n.clusterIdentity())
		c = &cursor{Cluster: n.clusterIdentity(), LocalEpoch: sk.rep.Epoch(), Adopt: true, AdoptBefore: n.e.created}
	}
	n.cursors[sk] = c
	if err := n.persist(sk, c); err != nil {
		return nil, err
	}
	return c, nil
}

// markMoved records that the cursor of sk moved; flush persists it later.
func (n *nodeRole) markMoved(sk *syncKey, c *cursor) error {
	n.dirty[sk] = c
	return nil
}

// flush persists every cursor that moved since the last flush.
func (n *nodeRole) flush() error {
	var errs []error
	for sk, c := range n.dirty {
		if err := n.persist(sk, c); err != nil {
			errs = append(errs, err)
		}
	}
	n.lastFlush = time.Now()
	return errors.Join(errs...)
}

// persist saves the cursor of sk now. Changes of cluster, epoch or mode are saved at
// once; plain moves go through save and flush.
func (n *nodeRole) persist(sk *syncKey, c *cursor) error {
	delete(n.dirty, sk)
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("pivot: encode cursor of %s: %w", sk.path, err)
	}
	if err := sk.rep.SaveCursor(cursorName(sk.path), raw); err != nil {
		return fmt.Errorf("pivot: save cursor of %s: %w", sk.path, err)
	}
	return nil
}
