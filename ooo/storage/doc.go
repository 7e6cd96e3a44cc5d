// Package storage defines what an ooo storage is and ships two of them: MemoryStorage,
// held in memory, and BoltStorage, persisted in a bbolt file. Package ooo re-exports the
// names users touch (ooo.Database, ooo.MemoryStorage, ooo.StorageOpt, ...).
//
// Beyond the upstream ooo Database methods, a storage built for replication implements
// Replica: every write is stamped by a hybrid logical clock, deletes leave tombstones,
// every write and tombstone gets a local sequence number in a change feed, and remote
// entries are applied atomically under a caller-supplied order (pivot's last-write-wins).
// Both storages pass the same conformance suite, package storagetest.
//
// # Guarantees
//
// Atomicity. Each write method is atomic: Set, Patch, SetWithMeta, Del and Apply each
// take effect entirely or not at all, and all writes of a storage are serialised. A
// glob Del or Patch, and a whole Apply batch, is one atomic step. Apply compares each
// entry with the key's current state and stores it under the same lock, so a local
// write racing a replication is never lost: it either lands first and is compared, or
// lands after and, being stamped later than every version the clock has observed,
// sorts after what was applied.
//
// Stamps. Created is the stamp of a key's first write (or first after a delete) and is
// kept by later writes, which stamp Updated. Local stamps come from the storage's clock
// and strictly increase. Apply and SetWithMeta store the stamps they are given and let
// the clock observe them; stamps too far ahead of the wall clock are refused with a
// *clock.SkewError.
//
// Data. Stored data is always one valid JSON value (ErrInvalidData otherwise), kept in
// compact form for local writes and byte for byte as given by Apply, so that every
// replica holds identical bytes. Keys follow key.IsValid.
//
// Events. Each successful write yields exactly one Event on the Watch channel (a glob
// Del one event carrying the glob, a glob Patch or an Apply one per key written), in
// the order the writes took effect, which is also their order in the change feed.
// Writes never block on a slow or absent reader: events wait in an unbounded queue until
// the channel is drained. Close closes the channel; events still queued then are
// dropped. A write racing Close either completes before it or fails with ErrNotActive;
// it never hangs or panics. Keys matching Options.NoBroadcastKeys produce no event.
//
// Tombstones and the feed. A delete leaves a tombstone {key, Updated: delete stamp,
// Deleted: true}. Reads never return tombstones; Changes does. Tombstones older than the
// storage's TombstoneRetention are collected (at Start, in the background, or through
// CollectTombstones) and Horizon then reports the highest sequence collected: a peer
// whose cursor is below it must resynchronise. Changes costs O(feed entries read): each
// storage keeps only the latest feed entry per key (memory: an append-only log with
// periodic compaction; bolt: a bucket keyed by sequence whose superseded rows are
// deleted in the same transaction). Epoch changes only with Clear.
//
// Durability. MemoryStorage keeps its data across Close and Start, not across
// processes. BoltStorage groups concurrent writes into one transaction and one fsync; a
// write returns only after the transaction holding it committed, so a write that
// returned nil is on disk. Reads run on a consistent snapshot and never see a
// half-committed batch or a gap in the sequence.
//
// Sizes and identities. A storage given a data limit (DataLimiter, which pivot's Setup
// sets so that every value can replicate) refuses longer data at write time with
// ErrTooLarge; Apply is not limited. Every storage names its copy of the data with a
// random token and stamps with an instance id (Identified): a BoltStorage whose file
// was copied (another device or inode than recorded) takes a fresh token and id before
// Start returns, so a copy never writes with the original's id, and a replication peer
// may give it another id with SetIdentity.
//
// Damage. A BoltStorage checks its file at Start (every page the meta page counts is
// there, the free list and every B+tree page are sound, every record matches its
// CRC-32C) and refuses a damaged one with ErrCorrupt; damage met later gives an error
// wrapping ErrCorrupt, never a crash. An unreadable record is skipped by list reads
// and by Changes, is ErrCorrupt on a read of its key, and is replaced by any valid
// remote entry Apply brings (see DamageReporter).
//
// Differences from upstream ooo, on purpose: writes never block on events; Active is
// false (not a panic) before Start; a second Close is a no-op; Unlock of an unlocked
// key returns ErrLockNotFound; non-JSON data is refused; SetWithMeta sends its event for
// "history" keys too; a glob Patch patches every matching key atomically, skips the
// keys it would not change and sends one event per changed key; a new object-valued key
// counts as a change in Patch; GetAndLock releases the lock when the read fails with
// anything but ErrNotFound; reads and writes on a storage that is not active return
// ErrNotActive.
package storage
