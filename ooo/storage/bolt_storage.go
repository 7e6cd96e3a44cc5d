package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/benitogf/pivot/ooo/clock"
)

// BoltFileName is the file BoltStorage uses when its Path is a directory.
const BoltFileName = "ooo.db"

// DefaultOpenTimeout is how long Start waits for another process to release the file
// when OpenTimeout is zero.
const DefaultOpenTimeout = time.Second

// BoltStorage keeps everything in a bbolt file: data, tombstones, the change feed and its
// sequence, the epoch, the clock's instance id and the highest stamp written, and
// cursors. A new BoltStorage on the same Path, in this process or another, sees all of
// it. Writes are grouped: concurrent writes share one transaction and one fsync, and
// each write returns only after its transaction committed, so a write that returned nil
// survives a crash.
type BoltStorage struct {
	// Path is the bbolt file, or an existing directory to hold BoltFileName. The parent
	// directory of a file is created when missing.
	Path string
	// HLC stamps every write. nil means a clock whose instance id is kept in the file
	// (drawn at random when the file is created), made at the first Start.
	HLC *clock.Clock
	// TombstoneRetention is how long a tombstone is kept before it is collected. Zero
	// means DefaultTombstoneRetention; a negative value keeps tombstones forever.
	TombstoneRetention time.Duration
	// OpenTimeout bounds how long Start waits for a file locked by another opener
	// before it fails with ErrLocked. Zero means DefaultOpenTimeout.
	OpenTimeout time.Duration

	engine
}

var (
	_ Database = (*BoltStorage)(nil)
	_ Replica  = (*BoltStorage)(nil)
)

// Start opens the file and makes the storage active with opts; on an active storage it
// only replaces the options. A file held by another opener for longer than OpenTimeout
// gives an error wrapping ErrLocked; a file that is not a valid storage gives one
// wrapping ErrCorrupt.
func (s *BoltStorage) Start(opts Options) error {
	return s.start(opts, s.TombstoneRetention, s.open)
}

func (s *BoltStorage) open(publish func([]Event)) (backend, *clock.Clock, error) {
	file, err := s.file()
	if err != nil {
		return nil, nil, err
	}
	timeout := s.OpenTimeout
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	db, err := openBolt(file, timeout)
	if err != nil {
		return nil, nil, err
	}
	st, err := initBolt(db)
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("storage: open %s: %w", file, err)
	}
	if s.HLC == nil {
		s.HLC = clock.New(clock.Options{InstanceID: st.instance})
	}
	// Resume above every stamp stored, so a write after a restart sorts after the
	// writes before it, even when the wall clock stepped back across the restart.
	s.HLC.Restore(st.stamp)
	return newBoltBackend(db, publish), s.HLC, nil
}

// file resolves Path to the bbolt file.
func (s *BoltStorage) file() (string, error) {
	if s.Path == "" {
		return "", errors.New("storage: bolt storage: Path is empty")
	}
	if fi, err := os.Stat(s.Path); err == nil && fi.IsDir() {
		return filepath.Join(s.Path, BoltFileName), nil
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o750); err != nil {
		return "", fmt.Errorf("storage: bolt storage: create directory: %w", err)
	}
	return s.Path, nil
}

// openBolt opens the file, translating bbolt's failures into ErrLocked and ErrCorrupt.
func openBolt(file string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		// bbolt panics on some kinds of damage instead of returning an error.
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("storage: open %s: %v: %w", file, p, ErrCorrupt)
		}
	}()
	db, err = bolt.Open(file, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("storage: open %s: %w: %w", file, ErrLocked, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, fmt.Errorf("storage: open %s: %w: %w", file, ErrCorrupt, err)
	default:
		// A file too short to hold bbolt's meta pages is reported by its size.
		if fi, serr := os.Stat(file); serr == nil && fi.Size() > 0 && fi.Size() < 4096 {
			return nil, fmt.Errorf("storage: open %s: %w: %w", file, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w", file, err)
	}
}

// Bucket and meta key names of the file format.
var (
	bucketData    = []byte("data")    // key -> record
	bucketFeed    = []byte("feed")    // big-endian seq -> key, current writes only
	bucketTombs   = []byte("tombs")   // big-endian delete stamp + key -> nothing
	bucketMeta    = []byte("meta")    // the names below
	bucketCursors = []byte("cursors") // cursor name -> value

	metaFormat   = []byte("format")
	metaHead     = []byte("head")
	metaHorizon  = []byte("horizon")
	metaEpoch    = []byte("epoch")
	metaInstance = []byte("instance")
	metaStamp    = []byte("stamp")
)

// boltFormat is the version of the file layout, stored under metaFormat.
const boltFormat = 1

type boltState struct {
	instance uint16
	stamp    int64
}

// initBolt creates the buckets of a new file, or checks those of an existing one.
func initBolt(db *bolt.DB) (boltState, error) {
	var st boltState
	err := db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error {
				empty = false
				return nil
			})
			if !empty {
				return fmt.Errorf("not an ooo storage file: %w", ErrCorrupt)
			}
			for _, name := range [][]byte{bucketData, bucketFeed, bucketTombs, bucketMeta, bucketCursors} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			m = tx.Bucket(bucketMeta)
			var id [2]byte
			binary.BigEndian.PutUint16(id[:], clock.RandomInstanceID())
			if err := m.Put(metaFormat, []byte{boltFormat}); err != nil {
				return err
			}
			if err := m.Put(metaInstance, id[:]); err != nil {
				return err
			}
		}
		if f := m.Get(metaFormat); len(f) != 1 || f[0] != boltFormat {
			return fmt.Errorf("unknown file format %v: %w", f, ErrCorrupt)
		}
		for _, name := range [][]byte{bucketData, bucketFeed, bucketTombs, bucketCursors} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing: %w", name, ErrCorrupt)
			}
		}
		id := m.Get(metaInstance)
		if len(id) != 2 {
			return fmt.Errorf("instance id: %w", ErrCorrupt)
		}
		st.instance = binary.BigEndian.Uint16(id)
		st.stamp = int64(getUint(m, metaStamp))
		return nil
	})
	return st, err
}

func putUint(b *bolt.Bucket, name []byte, v uint64) error {
	return b.Put(name, binary.BigEndian.AppendUint64(nil, v))
}

func getUint(b *bolt.Bucket, name []byte) uint64 {
	v := b.Get(name)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
