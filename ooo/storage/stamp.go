package storage

import (
	"time"

	"github.com/benitogf/pivot/ooo/clock"
)

// ClockOf returns the clock that stamps db's writes, or nil when db is not a Replica or
// has no clock yet (a storage that was never started and was given none).
func ClockOf(db Database) *clock.Clock {
	if r, ok := db.(Replica); ok {
		return r.Clock()
	}
	return nil
}

// NewStamp returns a stamp to name a new key of db with, such as the index of an item
// pushed to a list. It comes from db's clock when db has one, which makes it unique
// across a cluster and later than every stamp db wrote; otherwise from the wall clock,
// as upstream ooo does (wall-clock stamps can collide). Safe for concurrent use.
func NewStamp(db Database) int64 {
	if c := ClockOf(db); c != nil {
		return c.Now()
	}
	return time.Now().UnixNano()
}
