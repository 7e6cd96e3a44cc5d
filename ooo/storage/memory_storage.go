package storage

import (
	"time"

	"github.com/benitogf/pivot/ooo/clock"
)

// MemoryStorage keeps everything in memory. The zero value is ready: Start fills in the
// defaults. Data, tombstones, the change feed, the epoch and cursors survive Close and a
// later Start, but not the process.
type MemoryStorage struct {
	// HLC stamps every write. nil means a clock with a random instance id, made at the
	// first Start. (It cannot be called Clock: that is the Replica method returning it.)
	HLC *clock.Clock
	// TombstoneRetention is how long a tombstone is kept before it is collected. Zero
	// means DefaultTombstoneRetention; a negative value keeps tombstones forever.
	TombstoneRetention time.Duration

	engine
	mem *memoryBackend
}

var (
	_ Database    = (*MemoryStorage)(nil)
	_ Replica     = (*MemoryStorage)(nil)
	_ DataLimiter = (*MemoryStorage)(nil)
	_ Identified  = (*MemoryStorage)(nil)
)

// Start makes the storage active with opts. On an active storage it only replaces the
// options. The first Start makes the clock (when HLC is nil), the epoch and the identity
// token.
func (s *MemoryStorage) Start(opts Options) error {
	return s.start(opts, s.TombstoneRetention, func(publish func([]Event)) (backend, *clock.Clock, error) {
		if s.mem == nil {
			s.mem = newMemoryBackend(publish)
		}
		if s.HLC == nil {
			s.HLC = clock.New(clock.Options{InstanceID: clock.RandomInstanceID()})
		}
		if s.token == "" {
			s.token = newToken()
		}
		return s.mem, s.HLC, nil
	})
}

// SetIdentity replaces the token and the instance id HLC stamps with; see Identified.
// Both last as long as this value: a later Start keeps them.
func (s *MemoryStorage) SetIdentity(token string, instance uint16) error {
	return s.setIdentity(token, instance, nil)
}
