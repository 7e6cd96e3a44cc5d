// Package natshub is an ooo storage on a NATS JetStream key-value bucket, shared by
// several pivot processes, and a membership of those processes. It is a module of its
// own (github.com/benitogf/pivot/natshub), so programs that run one pivot process do
// not inherit the NATS dependencies.
//
// A Storage implements storage.Database and storage.Replica (and QuietReader,
// DataLimiter, Identified) and passes the ooo conformance suite. Every process
// serving one cluster opens a Storage on the same bucket with its own
// Config.Process name; each reads and writes the one data set, and each sees every
// change as an event on its Watch channel.
//
//	nc, _ := nats.Connect(url)
//	js, _ := jetstream.New(nc)
//	db, err := natshub.New(ctx, js, natshub.Config{Bucket: "hub", Replicas: 3, Process: "hub-1"})
//	...
//	server.Storage = db // then pivot.Setup as usual
//
// # Layout
//
// The bucket keeps one revision per key (history 1), so its stream is exactly the
// change feed: each key once, at its latest write, in commit order. A record's data is
// the message data, byte for byte (HTML and non-ASCII text untouched); its stamps
// (created, updated), the tombstone and remote flags are message headers. ooo keys map
// to KV keys by '/' to '.' and '.' to '=', a bijection on valid keys under which a glob
// such as "users/*" is the native filter "users.*" (segments such as "us*", which NATS
// cannot express, are filtered again on the client). The data set's epoch and
// tombstone horizon live in the bucket itself, under a key no ooo key maps to, so a
// bucket that was deleted and re-created (its sequences restart at 1) gets a new epoch.
// Cursors and each process's identity live in a second bucket, Bucket+"_meta": they
// are no part of the data set. Cursors there are shared by the processes (pivot's
// writer registry must be one for the whole hub); identities are per process.
//
// # Guarantees
//
// Writes. Every write is a compare-and-set on the key's revision, read from the stream
// leader: a write (Set, Patch, Del, SetWithMeta) or a replicated entry (Apply) decided
// on a state that another process or goroutine replaced meanwhile is refused by the
// servers and decided again on the new state, with jittered backoff, for at most
// Config.RetryFor. So under pivot's last-write-wins no process overwrites a write it
// has not compared with. A write that returned nil was acknowledged by the stream
// leader after a quorum of replicas stored it. Each write of one key is atomic; a
// glob Del or Patch, and an Apply batch, are not atomic as a whole (each key is its
// own compare-and-set), unlike MemoryStorage and BoltStorage.
//
// Reads. Get of one key reads from the stream leader (the storage switches direct
// gets off on its buckets, since a direct get may be answered by a replica that lags),
// so a read after an acknowledged write sees it, from any process. Reads of many keys
// (Keys, Get of a glob, GetN...) read a consumer, placed on any replica, as Changes
// does, and hold every write acknowledged before them the same way. New also allows atomic batch publishing on the buckets (Apply uses it); both
// settings are applied to a bucket that exists without them.
//
// Changes. Changes(pattern, since, limit) reads a consumer over the pattern's
// subjects from since+1: O(changes), not O(data). It first reads the stream's head
// from the stream leader; the servers place the consumer on any replica, whose copy
// may not yet hold the latest acknowledged writes, and what it did not deliver up to
// that head is then read from the leader, one message get per message. A follower
// can apply a write a moment before the leader does, and the watcher (reading any
// replica) deliver its event first: the head is read again until it reaches what this
// process's watcher delivered (at most 2 s). So a read that starts after a write was
// acknowledged, or after this process delivered its event, returns it (or a later
// revision of its key), and next is that head when the limit
// was not reached; next never passes a change not returned. Sequences are the
// stream's: strictly increasing, with gaps (superseded revisions, the storage's own
// keys), and next is never below since. The horizon is read after the changes, so a
// tombstone missing because it was collected meanwhile is covered by the horizon
// reported.
//
// Events. Watch carries one event per change of the bucket, by any process, in the
// bucket's order, with Event.Object filled for sets. Each write of this process yields
// exactly one event (a glob Del one event carrying the glob); a key that another
// process rewrites faster than this process's watcher reads it shows its latest
// state rather than every write (history 1 keeps no other).
//
// Tombstones. Deletes leave tombstones; CollectTombstones raises the horizon in the
// bucket before it removes a tombstone, and removes it only up to its own revision
// (a write that replaced it stays).
//
// # Caveats
//
// Durability is the servers'. A JetStream file store syncs to disk every two minutes
// by default: run the servers with sync_interval: always (server.Options.SyncAlways)
// when an acknowledged write must survive the loss of power of every replica at once.
// Use Replicas: 3 (or 5) on a 3 (or 5) server cluster to survive the loss of one (two)
// servers; Replicas: 1 loses what a lost server held.
//
// Failover. When the stream leader's server dies, writes pause until a new leader is
// elected (a few seconds): writes wait and retry (no responders, timeouts, refused
// compare-and-sets), for at most Config.RetryFor, then fail with an error wrapping
// ErrUnavailable. A write that failed this way may still have been stored (its
// acknowledgement lost); retrying it is safe under LWW. Nothing acknowledged is lost
// while a quorum of replicas survives.
//
// Sizes. One record is one NATS message: data longer than the servers' max_payload
// (1 MiB by default) less 512 bytes of headers is refused with storage.ErrTooLarge, by
// local writes and by Apply (as a refused entry). Pivot's Setup sets a data limit from
// its body limits (DataLimiter); raise max_payload on the servers to at least that
// limit plus 512 bytes, or values a node accepts will be refused by the hub.
//
// Cost. Changes moves an idle consumer of the whole stream to since+1 (a consumer
// reset, a request to that consumer alone) and reads what follows, matching the
// pattern on the client; when many messages were written since, it makes a consumer
// filtered to the pattern instead, which costs the servers a walk of every key the
// filter matches. Keys, list reads (Get of a glob, GetN...) and CollectTombstones read
// every matching record, O(data) as in the other storages, through a new consumer each:
// on a cluster a round through the meta leader (about 25 ms on loopback).
//
// Locks. GetAndLock locks a key within this process only.
//
// Clear purges the bucket for every process; writes racing it may survive it.
//
// A bucket deleted and re-created under running processes gets a new epoch at the next
// Changes, but their watchers keep their old position (past the new sequences) and
// miss events until the processes restart: restart them after re-creating a bucket.
//
// # Membership
//
// Membership keeps the set of live pivot processes in a KV bucket whose keys expire a
// lease after their last refresh: a process killed without Close leaves within about
// a lease (plus the servers' expiry resolution of about a second), one that closes
// leaves at once.
package natshub
