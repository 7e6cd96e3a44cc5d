package storage

// Peek returns the stamps a write of key k at time now would store: (now, 0) when k is
// new (never written, or deleted), (its Created, now) when it holds a value. It reads
// nothing else and changes nothing, started or not. Upstream ooo's MemoryStorage
// exports it; the stamps a real write stores come from the storage's clock (HLC), so a
// caller that wants them should pass a stamp from it (HLC.Now()).
func (s *MemoryStorage) Peek(k string, now int64) (created, updated int64) {
	s.mu.RLock()
	mem := s.mem
	s.mu.RUnlock()
	if mem == nil {
		return now, 0
	}
	_ = mem.view(func(r reader) error {
		c, ok, _ := r.record(k)
		if ok && !c.Deleted {
			created, updated = c.Created, now
		} else {
			created, updated = now, 0
		}
		return nil
	})
	return created, updated
}
