// Package pivot keeps several ooo servers in sync.
//
// One server is the pivot (the hub); the others are nodes. Every instance keeps serving
// reads and accepting writes while the others are unreachable, and when connectivity
// returns the data converges by last-write-wins per entry (see Wins in lww.go).
//
// # Basics
//
// Setup wires an *ooo.Server before it starts: server.Pivot == "" makes it the pivot,
// otherwise it is a node syncing with the pivot at that address. Config.Keys lists the
// paths to sync, each on its own storage or on the server's. Every storage must
// implement storage.Replica (ooo.MemoryStorage and ooo.BoltStorage do): its change feed,
// tombstones and atomic Apply are what make delta sync and LWW possible.
//
// A node pushes its own writes since its push cursor and pulls the pivot's changes
// since its pull cursor; both cursors live beside the data, so a BoltStorage node
// resumes where it stopped. The pivot tells the nodes listed under Config.NodesKey to
// pull after every change, except a node that already holds it (its own push) and a
// node with its live stream open: a node keeps a signed websocket to the pivot, which
// sends it every change as it happens, so a node the pivot cannot dial stays current
// too (Config.DisableStream turns it off). Nodes also sync on start, every
// Config.SyncInterval, with backoff while the pivot is unreachable, and before reads
// (bounded by Config.ReadBudget). Every batch and page
// is bounded by Config.BatchSize entries and by Config.MaxBodyBytes, and entry data
// travels byte for byte. Every Config.RepairInterval a node also compares its data
// with the pivot's by digest trees and repairs what differs (anti-entropy over data,
// not only cursors). The pivot keeps writer ids (the low bits of every stamp and
// index) unique across the cluster.
//
// # Files
//
// Each role in one or two files, each rule in one place:
//
//   - pivot.go: Setup, SetupResult and the engine's life (start, close, events).
//   - config.go: Config, its defaults and Validate, addresses; tunables.go: every
//     internal limit and delay, with its reason.
//   - lww.go: the conflict order (Wins) and its one exception, adopt mode.
//   - nodes.go: the pivot (hub): discovery from NodesKey, triggers, dormant
//     registrations, what each node holds (nodeView, held ranges), who sent a request,
//     ProtectNodesKey.
//   - handlers.go: the protocol routes both roles serve, behind one guard (version,
//     cluster, body, proof).
//   - sync.go: the node: rounds, push, pull, cursors, its own pushes, sync-on-read;
//     failover.go: a node's several pivot addresses (Config.Pivots) and its failover.
//   - membership.go: Membership, the live pivot processes of one shared data set, and
//     rendezvous hashing (Owner); memory_membership.go: MemoryGroup, one in memory;
//     ownership.go: which nodes a pivot process triggers.
//   - stream_hub.go, stream_node.go, stream_frames.go: the live stream, the pivot's
//     side (a websocket per node, changes sent as they happen, pokes), the node's
//     (reconnect, apply through the pull's path, acks) and the signed frames.
//   - reconcile.go: the node's repairs: full reconciliation (merge, prune, adopt) and
//     anti-entropy by digest trees.
//   - protocol.go: the wire format; peer.go: the protocol's client; compression.go:
//     gzip of large answers; feed.go: byte-bounded reads of a change feed;
//     digest_tree.go: the digest trees.
//   - auth.go: the proofs that authenticate the protocol (Token); tls.go: mutual TLS.
//   - writers.go: writer ids; status.go: Status; errors.go: errors.
//   - operate.go: what operators use: the health route, extra routes (Handle), pending
//     writes, WaitAcknowledged, SyncNow, Resync, the outage log lines; observe.go: the
//     counters and histograms behind Metrics; conflicts.go: Conflict and OnConflict;
//     ui.go and ui/status.html: the status page and its read-token route. The
//     metrics subpackage turns Metrics and Status into Prometheus series.
//
// # Caveats
//
//   - Conflicts are settled per entry by the version stamps of a hybrid logical clock:
//     the later write wins, whole. Entries stamped further in the future than the
//     storage's max skew are refused and retried, never adopted.
//   - Several pivot processes can serve one cluster over one shared data set
//     (Config.Membership on each, Config.Pivots on the nodes, a ClusterID on all):
//     each triggers the nodes it owns, and nodes fail over between them keeping their
//     cursors.
//   - After the pivot's data is reset (new epoch), nodes restore it from their copies;
//     a node moved to another cluster (ClusterID) adopts the new cluster's data.
//   - Set Config.Token outside a trusted network: requests and answers then carry
//     HMAC proofs of it, never the secret. Without Config.TLS the data itself crosses
//     the network in clear. A holder of the secret is a member of the cluster and can
//     write anything; the README's Security section says what else it can and cannot
//     do. Protect NodesKey (ProtectNodesKey): it decides which addresses are dialled.
//
// The README describes the protocol routes, the guarantees and the limits.
package pivot
