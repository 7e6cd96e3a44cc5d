package pivot

import (
	"encoding/json"
	"sort"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot/ooo/storage"
)

// counters are the engine's running totals.
type counters struct {
	pushed    atomic.Int64 // entries stored by pushes (node: acknowledged; pivot: received)
	pulled    atomic.Int64 // entries stored by pulls (node)
	served    atomic.Int64 // changes served to pulls (pivot)
	conflicts atomic.Int64 // pushed entries that lost to a stored entry under LWW
	refused   atomic.Int64 // entries refused for clock skew
	checks    atomic.Int64 // anti-entropy comparisons made at rest (node)
	repaired  atomic.Int64 // entries repaired by anti-entropy, in either direction (node)
	failovers atomic.Int64 // moves to the next pivot address (node, Config.Pivots)
}

// Status is a snapshot of the engine's state, served by the status route and
// SetupResult.Status.
type Status struct {
	// Role is RolePivot or RoleNode.
	Role string `json:"role"`
	// ClusterID is Config.ClusterID.
	ClusterID string `json:"clusterId"`
	// Pivot is, on a node, the address of the pivot it syncs with now: one of Pivots
	// when Config.Pivots is set.
	Pivot string `json:"pivot,omitempty"`
	// Pivots is, on a node with several pivot addresses (Config.Pivots), all of them
	// in the order the node tries them, and Failovers how many times it moved to
	// the next one because the one in use did not answer.
	Pivots    []string `json:"pivots,omitempty"`
	Failovers int64    `json:"failovers,omitempty"`
	// Members is, on a pivot process with Config.Membership, the live pivot
	// processes as it last read them, and MovedNodes how many nodes moved to this
	// process when members came or went.
	Members    []string `json:"members,omitempty"`
	MovedNodes int64    `json:"movedNodes,omitempty"`
	// PivotHealthy is, on a node, whether the last exchange with the pivot succeeded.
	PivotHealthy bool `json:"pivotHealthy,omitempty"`
	// LastContact is, on a node, when the pivot last answered.
	LastContact time.Time `json:"lastContact,omitzero"`
	// ConsecutiveFailures is, on a node, how many rounds in a row failed.
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
	// Nodes are, on the pivot, the nodes known from NodesKey, sorted by address.
	Nodes []NodeStatus `json:"nodes,omitempty"`
	// Keys are the synced paths and, on a node, its cursors.
	Keys []KeyStatus `json:"keys"`
	// PushedEntries counts entries stored through pushes: on a node, those the pivot
	// acknowledged as applied; on the pivot, those it applied.
	PushedEntries int64 `json:"pushedEntries"`
	// PulledEntries counts, on a node, entries stored from pulls; on the pivot, the
	// changes it served.
	PulledEntries int64 `json:"pulledEntries"`
	// BytesSent and BytesReceived count the protocol bodies this instance sent and
	// received, as client and as server, uncompressed: the gzip the server applies to
	// large answers on the wire is not counted.
	BytesSent     int64 `json:"bytesSent"`
	BytesReceived int64 `json:"bytesReceived"`
	// Conflicts counts pushed entries that were not applied because the stored entry
	// wins under LWW (or was identical).
	Conflicts int64 `json:"conflicts"`
	// Refused counts entries refused because their stamp was too far in the future.
	Refused int64 `json:"refused"`
	// Checks counts, on a node, the anti-entropy comparisons of a key's data with the
	// pivot's (made while both sides were at rest), and Repairs the entries they
	// repaired, here or on the pivot.
	Checks  int64 `json:"checks,omitempty"`
	Repairs int64 `json:"repairs,omitempty"`
	// LastError is the last sync error met, with when it happened, and LastErr the
	// error itself: test it with errors.Is against ErrUnauthorized, ErrUnavailable and
	// the other sentinel errors (a failed exchange is a *RemoteError).
	LastError   string    `json:"lastError,omitempty"`
	LastErr     error     `json:"-"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// ConflictsLost counts entries that lost under LWW to a different value here
	// (see Conflict), and RecentConflicts are the last 10 of them, newest first.
	ConflictsLost   int64      `json:"conflictsLost"`
	RecentConflicts []Conflict `json:"recentConflicts,omitempty"`
	// Unreachable is, on a node while the pivot is unreachable, for how long, as
	// text ("12.5s").
	Unreachable string `json:"unreachable,omitempty"`
	// Stream is, on a node, whether its live stream to the pivot is open (see
	// Config.DisableStream), and StreamSince since when.
	Stream      bool      `json:"stream,omitempty"`
	StreamSince time.Time `json:"streamSince,omitzero"`
}

// NodeStatus is one node as the pivot sees it.
type NodeStatus struct {
	// Address is the node's "host:port", as read from its NodesKey entry (without
	// the scheme, when the entry has one).
	Address string `json:"address"`
	// Healthy is false after a trigger to the node failed, until it answers again.
	Healthy bool `json:"healthy"`
	// LastContact is the last successful exchange with the node, in either direction
	// (its requests are matched by the name it sends in HeaderNode).
	LastContact time.Time `json:"lastContact,omitzero"`
	// LastTrigger is when the pivot last asked the node to sync.
	LastTrigger time.Time `json:"lastTrigger,omitzero"`
	// SkippedTriggers counts the keys left out of a trigger to the node because it
	// already held every change of them: they were its own pushes.
	SkippedTriggers int64 `json:"skippedTriggers"`
	// UpToDate tells that the node holds every change of every synced key, as far as
	// the pivot knows: after its last pull to the head of the pivot's feed, the feed
	// holds only entries it pushed itself. False for a node the pivot has not seen
	// pull since it started (or cannot identify: see HeaderNode).
	UpToDate bool `json:"upToDate"`
	// Lag is how long the node may have been behind: when the pivot's latest change of
	// a synced key came after the node's last pull to the head of the feed (or the
	// last trigger skipped because the node held every change), the time since that
	// change; 0 otherwise, and for a node another pivot process owns (Owned false):
	// this process neither triggers it nor necessarily serves it, its owner reports
	// its lag.
	Lag time.Duration `json:"lag"`
	// LagText is Lag as text ("1.5s"); "" for none.
	LagText string `json:"lagText,omitempty"`
	// ConsecutiveFailures counts failed triggers in a row.
	ConsecutiveFailures int `json:"consecutiveFailures"`
	// LastError is why the last trigger failed; empty once the node answers a
	// trigger or makes a request again.
	LastError string `json:"lastError,omitempty"`
	// Dormant tells that the node failed 10 triggers in a row: the pivot now dials it
	// only every 5 minutes, until it answers or makes a request of its own.
	Dormant bool `json:"dormant,omitempty"`
	// NextTrigger is, after a failure, the earliest time the pivot dials the node
	// again.
	NextTrigger time.Time `json:"nextTrigger,omitzero"`
	// Stream tells that the node has its live stream open to the pivot (see
	// Config.DisableStream): it gets every change on it and no triggers. A node with a
	// stream is listed whether or not it has a NodesKey entry (without one, Address is
	// the name it sends in HeaderNode), and LastContact counts its stream messages.
	Stream bool `json:"stream,omitempty"`
	// StreamSince is when the open stream was opened.
	StreamSince time.Time `json:"streamSince,omitzero"`
	// StreamFrames counts the frames of changes sent on the open stream, StreamPokes
	// the pokes (the node pulled instead), and StreamDegraded the times the node read
	// too slowly and its queued frames became pokes.
	StreamFrames   int64 `json:"streamFrames,omitempty"`
	StreamPokes    int64 `json:"streamPokes,omitempty"`
	StreamDegraded int64 `json:"streamDegraded,omitempty"`
	// Owned tells that this pivot process triggers the node: always without
	// Config.Membership, else when the node's owner among the live pivot processes
	// is this one (Owner).
	Owned bool `json:"owned"`
}

// KeyStatus is one synced path.
type KeyStatus struct {
	// Path is the synced path, as configured in Config.Keys (or Config.NodesKey).
	Path string `json:"path"`
	// Epoch is the local storage's epoch.
	Epoch string `json:"epoch"`
	// PullCursor, PushCursor and PivotEpoch are, on a node, the persisted cursors.
	PullCursor uint64 `json:"pullCursor,omitempty"`
	PushCursor uint64 `json:"pushCursor,omitempty"`
	PivotEpoch string `json:"pivotEpoch,omitempty"`
	// LastError is, on a node, why the path's last sync failed, with when; empty once
	// a sync of the path succeeds. A path that cannot make progress shows here while
	// the other paths go on syncing.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// LastErr is the error behind LastError, for errors.Is.
	LastErr error `json:"-"`
	// Unreadable counts the path's records the local storage found damaged and that
	// no write or repair has replaced yet (storage.DamageReporter): a node's are
	// fetched again at its next anti-entropy check.
	Unreadable int `json:"unreadable,omitempty"`
	// LastCheck is, on a node, when the path's data was last compared with the
	// pivot's, and InSync whether it then matched (before any repair).
	LastCheck time.Time `json:"lastCheck,omitzero"`
	InSync    bool      `json:"inSync,omitempty"`
	// PivotHead is, on a node, the head of the pivot's feed of the path when a pull
	// last reached it: PivotHead − PullCursor is how far the node is behind in the
	// pivot's sequence numbers (0 once caught up; not an entry count).
	PivotHead uint64 `json:"pivotHead,omitempty"`
	// PendingWrites is, on a node, how many local writes of the path the pivot has not
	// acknowledged yet, PendingSince the stamp of the oldest of them, and
	// PendingCapped tells that the count stopped at 100,000 (there are more).
	PendingWrites int       `json:"pendingWrites,omitempty"`
	PendingSince  time.Time `json:"pendingSince,omitzero"`
	PendingCapped bool      `json:"pendingCapped,omitempty"`
}

// status builds the Status.
func (e *syncEngine) status() Status {
	s := Status{
		Role:          e.role,
		ClusterID:     e.cfg.ClusterID,
		PushedEntries: e.counts.pushed.Load(),
		BytesSent:     e.traffic.sent.Load(),
		BytesReceived: e.traffic.received.Load(),
		Conflicts:     e.counts.conflicts.Load(),
		Refused:       e.counts.refused.Load(),
		Keys:          make([]KeyStatus, 0, len(e.keys)),

		ConflictsLost:   e.ops.lost.Load(),
		RecentConflicts: e.lastConflicts(),
	}
	if last := e.lastErr.Load(); last != nil {
		s.LastError, s.LastErrorAt, s.LastErr = last.msg, last.at, last.err
	}
	for _, sk := range e.keys {
		ks := KeyStatus{Path: sk.path}
		if sk.db.Active() {
			ks.Epoch = sk.rep.Epoch()
		}
		if d, ok := sk.db.(storage.DamageReporter); ok {
			if keys, err := d.Damaged(sk.path); err == nil {
				ks.Unreadable = len(keys)
			}
		}
		if e.node != nil {
			if raw, err := sk.rep.LoadCursor(cursorName(sk.path)); err == nil && raw != nil {
				var c cursor
				if json.Unmarshal(raw, &c) == nil {
					ks.PullCursor, ks.PushCursor, ks.PivotEpoch = c.Pull, c.Push, c.PivotEpoch
				}
			}
			if at := sk.lastCheck.Load(); at != 0 {
				ks.LastCheck, ks.InSync = time.Unix(0, at), sk.inSync.Load()
			}
			e.pendingStatus(sk, &ks)
			if h, ok := e.ops.heads.Load(sk); ok {
				// A push can move the cursor past the head last seen (its own entries).
				ks.PivotHead = max(h.(uint64), ks.PullCursor)
			}
			if rec, ok := e.node.keyError(sk); ok {
				ks.LastError, ks.LastErrorAt, ks.LastErr = rec.msg, rec.at, rec.err
			}
		}
		s.Keys = append(s.Keys, ks)
	}
	if n := e.node; n != nil {
		s.Pivot = *n.using.Load()
		if order := *n.order.Load(); len(order) > 1 {
			s.Pivots = order
		}
		s.Failovers = e.counts.failovers.Load()
		s.PulledEntries = e.counts.pulled.Load()
		s.PivotHealthy = !n.down.Load() && n.lastContact.Load() != 0
		if lc := n.lastContact.Load(); lc != 0 {
			s.LastContact = time.Unix(0, lc)
		}
		s.ConsecutiveFailures = int(n.failures.Load())
		if since := e.ops.downSince.Load(); since != 0 {
			s.Unreachable = readable(time.Since(time.Unix(0, since)))
		}
		s.Checks, s.Repairs = e.counts.checks.Load(), e.counts.repaired.Load()
		s.Stream, s.StreamSince = n.streamStatus()
	}
	if h := e.pivotRole; h != nil {
		s.PulledEntries = e.counts.served.Load()
		s.Nodes = h.streams.status(h.nodeStatus())
		if m := h.owners.members.Load(); m != nil {
			s.Members = *m
		}
		s.MovedNodes = h.owners.moved.Load()
	}
	return s
}

// nodeStatus lists the known nodes, sorted by address.
func (h *pivotRole) nodeStatus() []NodeStatus {
	nodes := h.nodeList()
	lastChange := h.lastChange.Load()
	now := time.Now()
	out := make([]NodeStatus, 0, len(nodes))
	for _, rn := range nodes {
		upToDate := h.upToDate(rn)
		rn.mu.Lock()
		ns := NodeStatus{
			UpToDate:            upToDate,
			Address:             rn.addr,
			Healthy:             rn.failures == 0,
			LastContact:         rn.lastContact,
			LastTrigger:         rn.lastTrigger,
			SkippedTriggers:     rn.skipped,
			ConsecutiveFailures: rn.failures,
			LastError:           rn.lastError,
			Dormant:             rn.failures >= dormantAfter,
			NextTrigger:         rn.nextTry,
			Owned:               !rn.elsewhere,
		}
		if lastChange != 0 && rn.lastPull.UnixNano() < lastChange && !rn.elsewhere {
			ns.Lag = now.Sub(time.Unix(0, lastChange))
			ns.LagText = readable(ns.Lag)
		}
		rn.mu.Unlock()
		out = append(out, ns)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}
