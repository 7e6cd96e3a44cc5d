package pivot

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"slices"
)

// Membership is the set of live pivot processes that serve one cluster over one
// shared data set (for example a storage on NATS JetStream that every process
// reads and writes). Every process sees every change of the data set, but each
// triggers only the nodes it owns: the owner of a node is the live member with the
// highest rendezvous weight for the node's name (highest-random-weight hashing, see
// Owner), so when a member joins or leaves only the nodes that move change owner,
// and the new owner triggers them at once.
//
// Set it in Config.Membership on each pivot process, one value per process (never
// shared by two Setups). The engine calls Join once the server listens, with the
// name the process is known by (Config.Advertise, else the server's address), and
// Close when it stops. Implementations must be safe for concurrent use.
//
// MemoryGroup is an in-memory implementation for tests and for several pivot
// processes in one program; the natshub module has one on a JetStream KV bucket
// whose keys expire when their process stops refreshing them.
type Membership interface {
	// Join registers self as a live member and keeps it registered (refreshing a
	// lease, re-registering after the lease lapsed) until Close. It may block until
	// the registration is written or ctx ends; an error means self is not
	// registered, and the engine calls Join again later (with backoff).
	Join(ctx context.Context, self string) error
	// Members returns the names of the live members, this process included once it
	// joined, in any order. It must not block on the network: return the last
	// known set. The caller may keep the slice.
	Members() []string
	// Changes returns a channel that receives a value (coalesced: a buffer of one
	// is enough) after the set Members returns changed. It is the same channel on
	// every call and is never closed before Close.
	Changes() <-chan struct{}
	// Close leaves the membership (self is removed at once, not after a lease
	// expires, when the implementation can) and stops its background work. A
	// second Close is a no-op.
	Close() error
}

// Owner returns, among members, the one that owns name by rendezvous
// (highest-random-weight) hashing: the member with the highest weight for name, ties
// broken by the smaller member name. "" when members is empty. Every pivot process
// computes it alike from the same member names; a node orders its pivot addresses the
// same way (Config.Pivots), so with the addresses the processes joined under, a node
// syncs first with the process that triggers it.
func Owner(members []string, name string) string {
	best, bestW := "", uint64(0)
	for _, m := range members {
		w := rendezvousWeight(m, name)
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

// rendezvousOrder returns members sorted by decreasing rendezvous weight for name:
// the first is Owner(members, name), the next is who owns name once the first is
// gone, and so on.
func rendezvousOrder(members []string, name string) []string {
	out := slices.Clone(members)
	slices.SortStableFunc(out, func(a, b string) int {
		wa, wb := rendezvousWeight(a, name), rendezvousWeight(b, name)
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return out
}

// rendezvousWeight is the weight of member for name: FNV-1a over both (with their
// lengths, so that no two pairs concatenate alike) and a final mix, since FNV's high
// bits alone spread short similar strings poorly. It must never change: every
// process of a cluster and every node must compute the same weights.
func rendezvousWeight(member, name string) uint64 {
	h := fnv.New64a()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(member)))
	h.Write(n[:])
	h.Write([]byte(member))
	h.Write([]byte(name))
	x := h.Sum64()
	// splitmix64's finaliser.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
