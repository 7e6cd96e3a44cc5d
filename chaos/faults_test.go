package chaos_test

import (
	"sync/atomic"
	"time"
)

// skewClock is an instance's wall clock: the real one plus an offset the schedule sets.
// It is handed to the instance's storage clocks (clock.Options.Wall).
type skewClock struct {
	offset atomic.Int64 // nanoseconds
}

func (c *skewClock) now() int64 { return time.Now().UnixNano() + c.offset.Load() }
