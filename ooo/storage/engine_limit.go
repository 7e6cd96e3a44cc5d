package storage

import "fmt"

// SetDataLimit sets the longest data a local write may store; see DataLimiter. A value
// of zero or below removes the limit.
func (e *engine) SetDataLimit(limit int64) {
	e.dataLimit.Store(max(limit, 0))
}

// DataLimit returns the limit set by SetDataLimit, 0 when there is none.
func (e *engine) DataLimit() int64 {
	return e.dataLimit.Load()
}

// checkSize refuses data of n bytes when it is over the data limit. The error wraps
// ErrTooLarge and gives both lengths, so the writer learns why and by how much.
func (e *engine) checkSize(n int) error {
	if limit := e.dataLimit.Load(); limit > 0 && int64(n) > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d bytes", ErrTooLarge, n, limit)
	}
	return nil
}
