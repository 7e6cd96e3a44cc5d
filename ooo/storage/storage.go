package storage

import (
	"encoding/json"
	"errors"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/meta"
)

// Errors returned by storages, wrapped with the operation and key. Test for them with
// errors.Is. Their texts are upstream ooo's where upstream has the error.
var (
	// ErrInvalidPath: the key is not valid (key.IsValid), or is a glob where only a
	// plain key is allowed (SetWithMeta, Apply, an empty cursor name).
	ErrInvalidPath = errors.New("ooo: invalid path")
	// ErrNotFound: the key is missing, or deleted (Get, Patch, Del, GetAndLock).
	ErrNotFound = errors.New("ooo: not found")
	// ErrNoop: a Patch would change nothing; nothing was stored.
	ErrNoop = errors.New("ooo: noop")
	// ErrEmptyData: a write without data.
	ErrEmptyData = errors.New("ooo: invalid storage data (empty)")
	// ErrInvalidData: data that is not one JSON value, a Patch body that is not a JSON
	// object, or a remote entry without data or stamp.
	ErrInvalidData = errors.New("ooo: invalid storage data (not JSON)")
	// ErrInvalidPattern: an operation on lists (GetN, KeysRange, ...) given a plain key
	// or an invalid glob.
	ErrInvalidPattern = errors.New("ooo: invalid pattern")
	// ErrInvalidRange: a range whose end is before its start.
	ErrInvalidRange = errors.New("ooo: invalid range")
	// ErrInvalidLimit: a limit that is not positive.
	ErrInvalidLimit = errors.New("ooo: invalid limit")
	// ErrGlobLock: GetAndLock or SetAndUnlock given a glob.
	ErrGlobLock = errors.New("ooo: can't lock a glob pattern path")
	// ErrLockNotFound: SetAndUnlock or Unlock of a key that is not locked.
	ErrLockNotFound = errors.New("ooo: lock not found can't unlock")
	// ErrNotActive: the storage was not started, or was closed. Nothing was done.
	ErrNotActive = errors.New("ooo: storage is not active")
	// ErrLocked: Start could not open a storage file held by another opener within its
	// timeout.
	ErrLocked = errors.New("ooo: storage file is locked by another process")
	// ErrCorrupt: a storage file that is damaged, or is not a storage file.
	ErrCorrupt = errors.New("ooo: storage file is corrupt")
	// ErrTooLarge: a write whose data (as stored: compacted, or merged for a Patch) is
	// longer than the storage's data limit (DataLimiter). Nothing was stored.
	ErrTooLarge = errors.New("ooo: data too large")
	// ErrInvalidIdentity: SetIdentity given an empty or over-long token, or an instance
	// id above clock.MaxInstanceID. Nothing was changed.
	ErrInvalidIdentity = errors.New("ooo: invalid storage identity")
)

// Operation names carried by events.
const (
	// OpSet: the key was written (Set, Patch, SetWithMeta, or a live entry applied).
	OpSet = "set"
	// OpDel: the key, or every key matching a glob, was deleted.
	OpDel = "del"
)

// Event tells that a key was written ("set") or deleted ("del"). For a glob delete, Key
// is the glob.
//
// Object lets a reader follow the data without reading it back: on a "set" event of
// MemoryStorage and BoltStorage it is the key's stored object as the write left it (the
// one a Get of the key returns, decoded), and it is nil on every "del" event. Storages
// of other kinds may leave it nil on "set" events too; a reader must then read the key.
// Object and its Data are shared by every reader of the event and must not be modified.
type Event struct {
	Key       string       // the key written or deleted, or the glob of a glob delete
	Operation string       // OpSet or OpDel
	Object    *meta.Object // the stored object after a "set"; nil for "del" (see above)
}

// EventChan is the channel a storage hands out from Watch.
type EventChan chan Event

// Options are passed to Start. Each Start replaces the options of the previous one.
type Options struct {
	// NoBroadcastKeys lists keys and globs whose writes produce no event.
	NoBroadcastKeys []string
	// BeforeRead, when set, is called with the key or glob as given before every read
	// (Get, GetDescending, GetN, GetNAscending, GetNRange, GetAndLock), on the caller's
	// goroutine. QuietReader's GetQuiet, the read of websocket broadcasts, skips it.
	BeforeRead func(key string)
	// DbOpt is opaque and storage specific; kept for compatibility with older servers.
	DbOpt any
}

// Database is an ooo storage. Implementations are safe for concurrent use.
type Database interface {
	// Active reports whether the storage was started and not closed.
	Active() bool
	// Start opens the storage. It may be called again after Close; data survives.
	Start(Options) error
	// Close stops the storage and closes the Watch channel. A second Close is a no-op.
	Close()
	// Keys returns {"keys":[...]}: every live key, sorted case-insensitively.
	Keys() ([]byte, error)
	// KeysRange returns the live keys matching a glob whose Created is in [from, to].
	KeysRange(path string, from, to int64) ([]string, error)
	// Get returns the stored bytes of a key (ErrNotFound when missing), or for a glob a
	// JSON array of the matching objects sorted by Created ascending ("[]" when none).
	Get(key string) ([]byte, error)
	// GetDescending is Get with lists sorted by Created descending.
	GetDescending(key string) ([]byte, error)
	// GetN returns the newest limit objects matching a glob, newest first.
	GetN(path string, limit int) ([]meta.Object, error)
	// GetNAscending returns the oldest limit objects matching a glob, oldest first.
	GetNAscending(path string, limit int) ([]meta.Object, error)
	// GetNRange returns up to limit objects matching a glob whose last segment, read as
	// hex, is in [from, to], newest first.
	GetNRange(path string, limit int, from, to int64) ([]meta.Object, error)
	// Set stores data (a JSON value) at key and returns the key's index. A glob is a
	// no-op that returns (key, nil).
	Set(key string, data json.RawMessage) (string, error)
	// Patch merges a JSON object into the stored object's data. ErrNotFound when the key
	// is missing, ErrNoop when nothing changes. Returns the key.
	Patch(key string, data json.RawMessage) (string, error)
	// SetWithMeta stores data with the given stamps, as they are.
	SetWithMeta(key string, data json.RawMessage, created, updated int64) (string, error)
	// GetAndLock locks a key (not a glob) and reads it.
	GetAndLock(key string) ([]byte, error)
	// SetAndUnlock writes a key locked by GetAndLock and unlocks it.
	SetAndUnlock(key string, data json.RawMessage) (string, error)
	// Unlock releases a key locked by GetAndLock.
	Unlock(key string) error
	// Del deletes a key (ErrNotFound when missing) or every key matching a glob.
	Del(key string) error
	// Clear removes every key and tombstone and starts a new epoch. No events.
	Clear()
	// Watch returns the event channel; nil before Start and after Close.
	Watch() EventChan
}

// DataLimiter is implemented by storages that can refuse writes whose data is too long,
// such as values too big to replicate in one request. MemoryStorage and BoltStorage
// implement it.
type DataLimiter interface {
	// SetDataLimit sets the longest data, in bytes, that Set, SetWithMeta, SetAndUnlock
	// and Patch accept (the length as stored: compacted JSON, or for a Patch the merged
	// data of every key it changes). A longer write fails with an error wrapping
	// ErrTooLarge that gives both lengths, and stores nothing. Zero or a negative value
	// means no limit, the default. Replica.Apply is never limited: a remote entry was
	// accepted by the storage that wrote it. Safe for concurrent use, started or not;
	// writes that begin after it returns see the new limit.
	SetDataLimit(limit int64)
	// DataLimit returns the limit in force (0 for none).
	DataLimit() int64
}

// MaxTokenLength is the longest identity token SetIdentity accepts, in bytes.
const MaxTokenLength = 256

// Identified is implemented by storages that name their copy of the data, so that a
// cluster can tell two writers apart and give each a unique instance id. MemoryStorage
// and BoltStorage implement it.
//
// The token is random, made when the data set is created, and kept with the data:
// BoltStorage keeps it in its file across restarts, and draws a fresh token and
// instance id at Start when it finds that its file is a copy of another (the file's
// device and inode changed), so two copies of a data folder never share either. A file
// moved within one file system keeps its identity.
type Identified interface {
	// Identity returns the token naming this copy of the data and the instance id its
	// clock stamps with; before the first Start, "" and 0. Safe for concurrent use.
	Identity() (token string, instance uint16)
	// SetIdentity replaces the token and the instance id, and makes the clock stamp
	// with the new id from then on; stamps keep strictly increasing across the change.
	// The storage must be active (ErrNotActive otherwise). BoltStorage writes both to
	// its file, synced to disk, before it returns, so they survive a restart (a
	// configured HLC still decides the id a restarted storage stamps with). An empty
	// token, a token over MaxTokenLength bytes or an id above clock.MaxInstanceID is
	// ErrInvalidIdentity. Safe for concurrent use with every other method.
	SetIdentity(token string, instance uint16) error
}

// Entry is the replicated state of one key: a live object, or a tombstone that records
// when the key was deleted. A tombstone has Deleted set, Updated holding the delete
// stamp and no Data.
type Entry struct {
	Key     string          `json:"key"`               // a plain key, never a glob
	Created int64           `json:"created"`           // stamp of the key's first write
	Updated int64           `json:"updated"`           // stamp of the last write or of the delete; 0 if none
	Deleted bool            `json:"deleted,omitempty"` // a tombstone
	Data    json.RawMessage `json:"data,omitempty"`    // one JSON value; nil for a tombstone
}

// Version is the entry's position in time: the later of Created and Updated.
func (e Entry) Version() int64 {
	if e.Updated > e.Created {
		return e.Updated
	}
	return e.Created
}

// Outcome is what Replica.ApplyEach did with one entry.
type Outcome int

// Outcomes of ApplyEach.
const (
	Applied    Outcome = iota + 1 // stored
	Superseded                    // the current state wins under the Wins given (or is identical)
	Refused                       // not valid, or stamped too far ahead of the clock: see Result.Err
)

// Result is the fate of one entry given to ApplyEach.
type Result struct {
	Outcome Outcome
	// Err, for a refused entry, says why: wraps ValidEntry's error (ErrInvalidPath,
	// ErrInvalidData) or is a *clock.SkewError.
	Err error
}

// Change is an Entry as it stands in a storage's change feed.
type Change struct {
	Entry
	// Seq is the local sequence number of the write that produced this state.
	Seq uint64 `json:"seq"`
	// Remote is true when the state was applied from a peer through Apply rather than
	// written locally. Replication uses it to avoid echoing a peer's writes back.
	Remote bool `json:"remote,omitempty"`
}

// Wins decides a conflict for Apply: it reports whether incoming must replace current.
// current is the zero Entry when the key has never been seen. Pivot passes its
// last-write-wins order (pivot.Wins); the storage never decides on its own.
type Wins func(incoming, current Entry) bool

// Replica is implemented by storages that can be replicated.
type Replica interface {
	// Epoch identifies this storage's data set. It is random, kept with the data, and
	// changes only when the data is reset (Clear). A peer whose cursor was taken in
	// another epoch must resynchronise.
	Epoch() string
	// Changes returns, in sequence order, the current state of every key matching
	// pattern that changed after sequence since, at most limit of them, and the cursor
	// to pass next time. Each key appears once, at its latest sequence. The cost is
	// proportional to the changes scanned, not to the data held. When fewer than limit
	// changes are returned the feed is exhausted and next is its head.
	Changes(pattern string, since uint64, limit int) (changes []Change, next uint64, err error)
	// Horizon is the highest sequence of a tombstone that was collected. A cursor below
	// it may have missed deletes and must resynchronise from a full snapshot.
	Horizon() uint64
	// Apply stores each remote entry for which wins(entry, current) is true, atomically
	// per key with respect to local writes, marks it Remote, emits the usual event and
	// returns the entries it stored. Entries stamped further ahead than the clock's max
	// skew are refused: they are skipped and reported in err (errors.As a
	// *clock.SkewError); the rest of the batch is still applied.
	Apply(entries []Entry, wins Wins) (applied []Entry, err error)
	// ApplyEach is Apply reporting what became of each entry, in the order given:
	// applied, superseded (wins said no), or refused with the reason (ValidEntry's
	// error, or a *clock.SkewError). err reports only a failure of the whole batch
	// (the storage could not write), and then nothing was applied.
	ApplyEach(entries []Entry, wins Wins) (results []Result, err error)
	// Clock returns the clock that stamps this storage's writes.
	Clock() *clock.Clock
	// LoadCursor returns a value saved by SaveCursor, or nil when there is none.
	// Cursors live beside the data (persistent storages keep them across restarts) but
	// are not part of it: they have no events and no change feed entries.
	LoadCursor(name string) ([]byte, error)
	// SaveCursor stores a small value under name.
	SaveCursor(name string, value []byte) error
}
