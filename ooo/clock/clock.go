// Package clock provides the hybrid logical clock that stamps every storage write.
//
// A stamp is a count of nanoseconds since the Unix epoch, like time.Time.UnixNano, with
// two extra guarantees: stamps from one Clock strictly increase even when the wall clock
// stalls or steps back, and a stamp taken after Observe(v) is greater than v. The low
// InstanceBits bits of every stamp hold the clock's instance id, so two clocks with
// different ids never produce the same stamp: indexes built from stamps are unique
// across a cluster and remain time-ordered and hex-parsable.
package clock

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// InstanceBits is how many low bits of a stamp carry the instance id. 12 bits allow
// 4096 distinct ids at a resolution of 4096 ns, about 250,000 stamps per second per
// clock before stamps run ahead of the wall clock.
const InstanceBits = 12

// MaxInstanceID is the largest valid instance id.
const MaxInstanceID = 1<<InstanceBits - 1

// DefaultMaxSkew is how far in the future a remote stamp may be before Observe refuses it.
const DefaultMaxSkew = time.Second

const idMask = int64(MaxInstanceID)

// SkewError reports a remote stamp too far ahead of the local wall clock. Adopting it
// would drag every later local write into the future, so it is refused instead.
type SkewError struct {
	Remote  int64         // the refused stamp
	Local   int64         // the local wall clock when it was seen
	MaxSkew time.Duration // the limit in force
}

// Error describes the refused stamp and how far ahead it was.
func (e *SkewError) Error() string {
	return fmt.Sprintf("clock: remote stamp %d is %s ahead of the local clock (max skew %s)",
		e.Remote, time.Duration(e.Remote-e.Local), e.MaxSkew)
}

var _ error = (*SkewError)(nil)

// Options configures a Clock. The zero value is valid.
type Options struct {
	// Wall returns the current wall-clock time in Unix nanoseconds. nil means
	// time.Now().UnixNano(). Tests inject their own to step the clock.
	Wall func() int64
	// MaxSkew bounds how far ahead of Wall a remote stamp passed to Observe may be.
	// Zero means DefaultMaxSkew; a negative value disables the check.
	MaxSkew time.Duration
	// InstanceID is stored in the low InstanceBits bits of every stamp. Values above
	// MaxInstanceID are reduced modulo MaxInstanceID+1.
	InstanceID uint16
}

// Clock is a hybrid logical clock. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	last    int64
	wall    func() int64
	maxSkew time.Duration
	id      int64
}

// New returns a clock with the given options.
func New(opts Options) *Clock {
	c := &Clock{wall: opts.Wall, maxSkew: opts.MaxSkew, id: int64(opts.InstanceID) & idMask}
	if c.wall == nil {
		c.wall = func() int64 { return time.Now().UnixNano() }
	}
	if c.maxSkew == 0 {
		c.maxSkew = DefaultMaxSkew
	}
	return c
}

// RandomInstanceID returns an instance id drawn from crypto/rand.
func RandomInstanceID() uint16 {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to the wall clock.
		return uint16(time.Now().UnixNano() & idMask)
	}
	return binary.LittleEndian.Uint16(b[:]) & uint16(idMask)
}

// InstanceID returns the id carried in the low bits of this clock's stamps.
func (c *Clock) InstanceID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint16(c.id)
}

// SetInstanceID makes every later stamp carry id in its low bits (reduced modulo
// MaxInstanceID+1, as Options.InstanceID is). It may be called at any time, also while
// other goroutines take stamps: each stamp carries either the old or the new id, and
// stamps keep strictly increasing across the change, since a stamp is always above the
// last one whatever its low bits. Stamps taken before the change keep the old id, so
// an id given up should not be handed to another clock at once: that clock, if its wall
// clock were behind, could issue a stamp equal to one issued here before the change.
func (c *Clock) SetInstanceID(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id = int64(id) & idMask
}

// Now returns a new stamp, strictly greater than every stamp this clock returned or
// observed before.
func (c *Clock) Now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.wall()
	if next <= c.last {
		next = c.last + 1
	}
	stamp := next&^idMask | c.id
	if stamp < next {
		stamp += idMask + 1
	}
	c.last = stamp
	return stamp
}

// Observe records a stamp seen from another instance, so that later local stamps sort
// after it. A stamp further ahead of the wall clock than MaxSkew is refused with a
// *SkewError and not adopted.
func (c *Clock) Observe(remote int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxSkew > 0 {
		if wall := c.wall(); remote > wall+int64(c.maxSkew) {
			return &SkewError{Remote: remote, Local: wall, MaxSkew: c.maxSkew}
		}
	}
	if remote > c.last {
		c.last = remote
	}
	return nil
}

// Restore adopts a stamp this instance issued itself before a restart (a persistent
// storage keeps its highest stamp), so stamps keep increasing across restarts even when
// the wall clock stepped back meanwhile. Unlike Observe it skips the skew check: the
// stamp is our own, and refusing it would let new writes sort before old ones.
func (c *Clock) Restore(stamp int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stamp > c.last {
		c.last = stamp
	}
}

// Last returns the greatest stamp this clock has returned or observed.
func (c *Clock) Last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
