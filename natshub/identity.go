package natshub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// Identities and cursors live in the meta bucket (Config.Bucket+"_meta"), not in the
// data bucket: they are no part of the data set (no events, no change feed entries,
// Clear keeps them), as the Replica contract asks.
//
// An identity is per process (Config.Process): the processes sharing a bucket share
// the data but each stamps with its own clock, so each needs its own instance id, and
// pivot's writer registry tells them apart by token. Cursors are shared by the
// processes: pivot keeps its writer registry in one, and the registry must be one for
// the whole hub so that no two writers of the cluster get the same id.

// identity is the stored identity of one process.
type identity struct {
	Token    string `json:"token"`
	Instance uint16 `json:"instance"`
}

// metaName is the meta bucket key of a name under kind ("i" identity, "c" cursor):
// base64url keeps any name a valid single token.
func metaName(kind, name string) string {
	return kind + "." + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// loadIdentity reads this process's identity, making one the first time, and sets the
// clock (a configured Clock keeps its own instance id). Called by Start with mu held.
func (s *Storage) loadIdentity() error {
	k := metaName("i", s.cfg.Process)
	var id identity
	err := s.try.do(func(ctx context.Context) error {
		m, err := s.meta.get(ctx, k)
		if err != nil {
			return err
		}
		if m != nil {
			return json.Unmarshal(m.Data, &id)
		}
		id = identity{Token: newEpoch(), Instance: clock.RandomInstanceID()}
		raw, _ := json.Marshal(id)
		_, err = s.meta.publish(ctx, s.meta.messageRaw(k, raw), 0, newID())
		return err // a conflict: another process of this name made it; read it
	})
	if err != nil {
		return fmt.Errorf("read identity of %q: %w", s.cfg.Process, err)
	}
	s.identMu.Lock()
	defer s.identMu.Unlock()
	s.token = id.Token
	switch clk := s.clk.Load(); {
	case s.cfg.Clock != nil:
		s.clk.Store(s.cfg.Clock)
	case clk == nil:
		s.clk.Store(clock.New(clock.Options{InstanceID: id.Instance}))
	default:
		clk.SetInstanceID(id.Instance)
	}
	return nil
}

// Identity returns this process's token and the instance id its clock stamps with;
// "" and 0 before the first Start. See storage.Identified.
func (s *Storage) Identity() (string, uint16) {
	s.identMu.Lock()
	defer s.identMu.Unlock()
	var id uint16
	if clk := s.clk.Load(); clk != nil {
		id = clk.InstanceID()
	}
	return s.token, id
}

// SetIdentity replaces this process's token and instance id, stored in the meta bucket
// (replicated and acknowledged) before it returns, so they survive a restart. See
// storage.Identified for the errors.
func (s *Storage) SetIdentity(token string, instance uint16) error {
	if token == "" || len(token) > storage.MaxTokenLength {
		return fmt.Errorf("natshub: set identity: token of %d bytes (1 to %d): %w", len(token), storage.MaxTokenLength, storage.ErrInvalidIdentity)
	}
	if instance > clock.MaxInstanceID {
		return fmt.Errorf("natshub: set identity: instance id %d above %d: %w", instance, clock.MaxInstanceID, storage.ErrInvalidIdentity)
	}
	if err := s.enter(); err != nil {
		return fmt.Errorf("natshub: set identity: %w", err)
	}
	defer s.mu.RUnlock()
	s.identMu.Lock()
	defer s.identMu.Unlock()
	raw, _ := json.Marshal(identity{Token: token, Instance: instance})
	m := s.meta.messageRaw(metaName("i", s.cfg.Process), raw)
	id := newID()
	if err := s.try.do(func(ctx context.Context) error { return s.meta.put(ctx, m, id) }); err != nil {
		return fmt.Errorf("natshub: set identity: %w", err)
	}
	s.token = token
	s.clk.Load().SetInstanceID(instance)
	return nil
}

// LoadCursor returns the value saved under name (shared by the processes of the
// bucket), or nil when there is none.
func (s *Storage) LoadCursor(name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("natshub: load cursor: empty name: %w", storage.ErrInvalidPath)
	}
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("natshub: load cursor %q: %w", name, err)
	}
	defer s.mu.RUnlock()
	var v []byte
	err := s.try.do(func(ctx context.Context) error {
		m, err := s.meta.get(ctx, metaName("c", name))
		if err != nil || m == nil {
			return err
		}
		v = append([]byte{}, m.Data...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("natshub: load cursor %q: %w", name, err)
	}
	return v, nil
}

// SaveCursor stores a copy of value under name in the meta bucket; the last save wins.
func (s *Storage) SaveCursor(name string, value []byte) error {
	if name == "" {
		return fmt.Errorf("natshub: save cursor: empty name: %w", storage.ErrInvalidPath)
	}
	if err := s.enter(); err != nil {
		return fmt.Errorf("natshub: save cursor %q: %w", name, err)
	}
	defer s.mu.RUnlock()
	m := s.meta.messageRaw(metaName("c", name), append([]byte{}, value...))
	id := newID()
	if err := s.try.do(func(ctx context.Context) error { return s.meta.put(ctx, m, id) }); err != nil {
		return fmt.Errorf("natshub: save cursor %q: %w", name, err)
	}
	return nil
}
