package storage

import (
	"fmt"
	"sync"
)

// keyLocks is the per-key lock table behind GetAndLock, SetAndUnlock and Unlock. A key
// is in the table only while it is locked, so the table does not grow with the keys
// ever locked.
type keyLocks struct {
	mu   sync.Mutex
	cond *sync.Cond
	held map[string]bool
}

// lock blocks until k is free, then holds it.
func (l *keyLocks) lock(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cond == nil {
		l.cond = sync.NewCond(&l.mu)
		l.held = make(map[string]bool)
	}
	for l.held[k] {
		l.cond.Wait()
	}
	l.held[k] = true
}

// unlock frees k; ErrLockNotFound when k is not locked.
func (l *keyLocks) unlock(k string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[k] {
		return fmt.Errorf("storage: unlock %q: %w", k, ErrLockNotFound)
	}
	delete(l.held, k)
	l.cond.Broadcast()
	return nil
}

// isHeld reports whether k is locked.
func (l *keyLocks) isHeld(k string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[k]
}
