package storage

import (
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
// sequence, the epoch, the identity (token and instance id, see Identified) and the
// identity of the file itself, the highest stamp written, and cursors. A new
// BoltStorage on the same Path, in this process or another, sees all of it. Writes are
// grouped: concurrent writes share one transaction and one fsync, and each write
// returns only after its transaction committed, so a write that returned nil survives
// a crash.
type BoltStorage struct {
	// Path is the bbolt file, or an existing directory to hold BoltFileName. The parent
	// directory of a file is created when missing.
	Path string
	// HLC stamps every write. nil means a clock whose instance id is kept in the file
	// (drawn at random when the file is created, drawn again when Start finds the file
	// is a copy, replaced by SetIdentity), made at the first Start. A clock given here
	// keeps its wall clock and max skew; its instance id becomes the file's when the
	// file is new, and otherwise Start makes it stamp with the file's id, so a copied
	// folder never stamps with the original's id.
	HLC *clock.Clock
	// TombstoneRetention is how long a tombstone is kept before it is collected. Zero
	// means DefaultTombstoneRetention; a negative value keeps tombstones forever.
	TombstoneRetention time.Duration
	// OpenTimeout bounds how long Start waits for a file locked by another opener
	// before it fails with ErrLocked. Zero means DefaultOpenTimeout.
	OpenTimeout time.Duration

	engine
	db *bolt.DB // the open file, for SetIdentity; set by Start under the engine's mu
}

var (
	_ Database    = (*BoltStorage)(nil)
	_ Replica     = (*BoltStorage)(nil)
	_ DataLimiter = (*BoltStorage)(nil)
	_ Identified  = (*BoltStorage)(nil)
)

// Start opens the file and makes the storage active with opts; on an active storage it
// only replaces the options. A file held by another opener for longer than OpenTimeout
// gives an error wrapping ErrLocked; a file that is not a valid storage gives one
// wrapping ErrCorrupt. When the file is a copy of another storage's file (its device
// and inode are not those it recorded), Start gives it a fresh identity token and
// instance id, on disk before it returns and before any write.
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
	// initBolt runs after the file passed its check; guard is only insurance that a
	// damaged page it meets still gives an error, not a crash.
	var st boltState
	err = guard("storage: init "+file, func() error {
		var ierr error
		st, ierr = initBolt(db)
		return ierr
	})
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("storage: open %s: %w", file, err)
	}
	switch {
	case s.HLC == nil:
		s.HLC = clock.New(clock.Options{InstanceID: st.instance})
	case st.fresh:
		// A new file takes the id of the clock it was given.
		st.instance = s.HLC.InstanceID()
		if err := putIdentity(db, st.token, st.instance); err != nil {
			_ = db.Close()
			return nil, nil, fmt.Errorf("storage: open %s: %w", file, err)
		}
	default:
		// The file's id is the one it was given last (a fresh one if it was copied,
		// or one set by SetIdentity): a clock passed in stamps with it too, or a
		// copied folder would stamp with the original's id.
		s.HLC.SetInstanceID(st.instance)
	}
	s.db, s.token = db, st.token
	// Resume above every stamp stored, so a write after a restart sorts after the
	// writes before it, even when the wall clock stepped back across the restart.
	s.HLC.Restore(st.stamp)
	return newBoltBackend(db, publish), s.HLC, nil
}

// SetIdentity replaces the token and the instance id, writes both to the file (synced)
// and makes the clock stamp with the new id; see Identified.
func (s *BoltStorage) SetIdentity(token string, instance uint16) error {
	return s.setIdentity(token, instance, func() error { return putIdentity(s.db, token, instance) })
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
// An existing file is first opened read-only and checked (checkBolt), so that damage
// bbolt would only meet later, or meet with a panic while opening for writing (a free
// list page past the end of a truncated file), is reported here as ErrCorrupt. Both
// opens run under guard: a panic or a memory fault inside bbolt is an error, never the
// end of the process.
func openBolt(file string, timeout time.Duration) (*bolt.DB, error) {
	if fi, err := os.Stat(file); err == nil && fi.Size() > 0 {
		ro, err := openBoltWith(file, &bolt.Options{Timeout: timeout, ReadOnly: true})
		if err != nil {
			return nil, err
		}
		err = checkBolt(ro, file)
		if cerr := ro.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("storage: close %s after its check: %w", file, cerr)
		}
		if err != nil {
			return nil, err
		}
	}
	return openBoltWith(file, &bolt.Options{Timeout: timeout})
}

// openBoltWith is one bolt.Open under guard, with its errors translated.
func openBoltWith(file string, opts *bolt.Options) (*bolt.DB, error) {
	var db *bolt.DB
	err := guard("storage: open "+file, func() error {
		var err error
		db, err = bolt.Open(file, 0o600, opts)
		return err
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, ErrCorrupt): // a panic inside bbolt, already worded by guard
		return nil, err
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
