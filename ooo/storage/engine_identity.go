package storage

import (
	"fmt"

	"github.com/benitogf/pivot/ooo/clock"
)

// Identity returns the token naming this copy of the data and the instance id its
// clock stamps with; see Identified.
func (e *engine) Identity() (string, uint16) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	e.identMu.Lock()
	defer e.identMu.Unlock()
	var id uint16
	if e.clk != nil {
		id = e.clk.InstanceID()
	}
	return e.token, id
}

// setIdentity implements SetIdentity for both storages: persist, when not nil, runs
// first and must make the new identity durable; only when it succeeds do the token and
// the clock change, so a failed SetIdentity changes nothing.
func (e *engine) setIdentity(token string, instance uint16, persist func() error) error {
	if token == "" || len(token) > MaxTokenLength {
		return fmt.Errorf("storage: set identity: token of %d bytes (1 to %d): %w", len(token), MaxTokenLength, ErrInvalidIdentity)
	}
	if instance > clock.MaxInstanceID {
		return fmt.Errorf("storage: set identity: instance id %d above %d: %w", instance, clock.MaxInstanceID, ErrInvalidIdentity)
	}
	if err := e.enter(); err != nil {
		return fmt.Errorf("storage: set identity: %w", err)
	}
	defer e.mu.RUnlock()
	e.identMu.Lock()
	defer e.identMu.Unlock()
	if persist != nil {
		if err := persist(); err != nil {
			return fmt.Errorf("storage: set identity: %w", err)
		}
	}
	e.token = token
	e.clk.SetInstanceID(instance)
	return nil
}

// newToken returns a random identity token, in the same form as an epoch.
func newToken() string { return newEpoch() }
