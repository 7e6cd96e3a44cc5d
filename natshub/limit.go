package natshub

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/benitogf/pivot/ooo/storage"
)

// headerRoom is what a record's headers, and those the client adds (message id,
// expected sequence), may take of a message, in bytes. The servers' max_payload bounds
// headers and data together.
const headerRoom = 512

// SetDataLimit sets the longest data a local write may store (see storage.DataLimiter);
// zero or below removes it. Whatever the limit, data that would not fit in one NATS
// message (the servers' max_payload, 1 MiB unless raised, less headerRoom) is refused
// with storage.ErrTooLarge too.
func (s *Storage) SetDataLimit(limit int64) {
	s.dataLimit.Store(max(limit, 0))
}

// DataLimit returns the limit set by SetDataLimit, 0 when there is none.
func (s *Storage) DataLimit() int64 {
	return s.dataLimit.Load()
}

// checkSize refuses data of n bytes over the data limit, or too long for one message.
func (s *Storage) checkSize(n int) error {
	if limit := s.dataLimit.Load(); limit > 0 && int64(n) > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d bytes", storage.ErrTooLarge, n, limit)
	}
	return s.checkPayload(n)
}

// checkPayload refuses data of n bytes that cannot travel in one message.
func (s *Storage) checkPayload(n int) error {
	if limit := s.maxData(); limit > 0 && int64(n) > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d bytes (the NATS servers' max_payload less %d for headers; raise max_payload to store more)",
			storage.ErrTooLarge, n, limit, headerRoom)
	}
	return nil
}

// maxData is the longest data one message can carry (0 when unknown).
func (s *Storage) maxData() int64 {
	var nc *nats.Conn = s.data.js.Conn()
	if nc == nil {
		return 0
	}
	if p := nc.MaxPayload(); p > headerRoom {
		return p - headerRoom
	}
	return 0
}

// keyLocks is the table of keys held by GetAndLock, in this process only.
type keyLocks struct {
	mu   sync.Mutex
	cond *sync.Cond
	held map[string]bool
}

func (l *keyLocks) lock(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
		l.held = map[string]bool{}
	}
	for l.held[k] {
		l.cond.Wait()
	}
	l.held[k] = true
}

func (l *keyLocks) unlock(k string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[k] {
		return fmt.Errorf("natshub: unlock %q: %w", k, storage.ErrLockNotFound)
	}
	delete(l.held, k)
	l.cond.Broadcast()
	return nil
}

func (l *keyLocks) isHeld(k string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[k]
}
