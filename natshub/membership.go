package natshub

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultLease is how long a member stays listed after its last refresh when
// MembershipConfig.Lease is zero.
const DefaultLease = 3 * time.Second

// MembershipConfig configures a Membership. Only Bucket is required.
type MembershipConfig struct {
	// Bucket names the KV bucket of the members; every pivot process of one cluster
	// uses the same one (not the Storage's bucket).
	Bucket string
	// Replicas is the number of servers the bucket is replicated on; zero means 1.
	Replicas int
	// Memory keeps the bucket in memory (a lease is short-lived anyway).
	Memory bool
	// Lease is how long a member that stops refreshing (a killed process, a
	// partition) stays listed; members refresh every third of it. Zero means
	// DefaultLease; at least one second (the servers expire keys with a resolution of
	// about a second). Every process of a cluster should use the same lease; the
	// bucket keeps the lease of the process that created it.
	Lease time.Duration
}

// Membership is the set of live pivot processes, kept in a KV bucket whose keys expire
// a lease after their last write: each joined process rewrites its key every third of
// the lease, and a key that expires leaves a marker that every watcher sees, so a
// killed process leaves the set within about a lease. Close deletes the process's key
// at once. It implements the root package's pivot.Membership. Safe for concurrent use.
//
// Members is the set as this process's watcher last saw it: during a partition from
// the servers it does not change (the lapsed members of the other side stay listed),
// and after it the watcher catches up.
type Membership struct {
	kv    jetstream.KeyValue
	lease time.Duration

	mu      sync.Mutex
	members map[string]bool
	self    string
	closed  bool

	changes chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewMembership binds (creating when missing) the bucket cfg names on js and starts
// watching it. ctx is the parent of the membership's requests for its whole life.
func NewMembership(ctx context.Context, js jetstream.JetStream, cfg MembershipConfig) (*Membership, error) {
	if !bucketName.MatchString(cfg.Bucket) {
		return nil, fmt.Errorf("%w: membership Bucket %q must be letters, digits, '-' and '_'", ErrInvalidConfig, cfg.Bucket)
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < time.Second {
		return nil, fmt.Errorf("%w: membership Lease %s is under one second", ErrInvalidConfig, cfg.Lease)
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	st := jetstream.FileStorage
	if cfg.Memory {
		st = jetstream.MemoryStorage
	}
	octx, cancel := context.WithTimeout(ctx, DefaultRequestTimeout)
	defer cancel()
	kv, err := js.CreateKeyValue(octx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, History: 1, TTL: cfg.Lease, LimitMarkerTTL: cfg.Lease,
		Replicas: cfg.Replicas, Storage: st,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(octx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: membership bucket %q: %w", ErrBucket, cfg.Bucket, err)
	}
	m := &Membership{kv: kv, lease: cfg.Lease, members: map[string]bool{}, changes: make(chan struct{}, 1)}
	m.ctx, m.cancel = context.WithCancel(ctx)
	w, err := kv.WatchAll(m.ctx)
	if err != nil {
		m.cancel()
		return nil, fmt.Errorf("natshub: watch membership %q: %w", cfg.Bucket, err)
	}
	m.wg.Add(1)
	go m.follow(w)
	return m, nil
}

// memberKey is the KV key of a member name (base64url: any name is one valid token).
func memberKey(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

// follow applies the watcher's updates to the member set until Close.
func (m *Membership) follow(w jetstream.KeyWatcher) {
	defer m.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-m.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // the initial values are in
			}
			raw, err := base64.RawURLEncoding.DecodeString(e.Key())
			if err != nil {
				continue
			}
			name := string(raw)
			live := e.Operation() == jetstream.KeyValuePut
			m.mu.Lock()
			changed := m.members[name] != live
			if live {
				m.members[name] = true
			} else {
				delete(m.members, name)
			}
			m.mu.Unlock()
			if changed {
				m.notify()
			}
		}
	}
}

func (m *Membership) notify() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// Join registers self as a live member and keeps it registered, rewriting its key
// every third of the lease (which also registers it again after a lapse, such as a
// partition longer than the lease), until Close. It returns once the first write is
// acknowledged; an error means self is not registered. Joining again under another
// name leaves the first.
func (m *Membership) Join(ctx context.Context, self string) error {
	if self == "" {
		return fmt.Errorf("%w: empty member name", ErrInvalidConfig)
	}
	if m.ctx.Err() != nil {
		return fmt.Errorf("natshub: join as %q: membership closed", self)
	}
	if _, err := m.kv.Put(ctx, memberKey(self), []byte(self)); err != nil {
		return fmt.Errorf("natshub: join as %q: %w", self, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("natshub: join as %q: membership closed", self)
	}
	prev := m.self
	m.self = self
	if prev == "" {
		m.wg.Add(1)
		go m.refresh()
	} else if prev != self {
		go func() { _ = m.kv.Delete(m.ctx, memberKey(prev)) }()
	}
	return nil
}

// refresh rewrites the member's key every third of the lease until Close.
func (m *Membership) refresh() {
	defer m.wg.Done()
	t := time.NewTicker(m.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.mu.Lock()
			self := m.self
			m.mu.Unlock()
			ctx, cancel := context.WithTimeout(m.ctx, m.lease/3)
			// A failed refresh is retried at the next tick; the lease covers two.
			_, _ = m.kv.Put(ctx, memberKey(self), []byte(self))
			cancel()
		}
	}
}

// Members returns the live members' names, sorted, as last seen; it does not block on
// the network.
func (m *Membership) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.members))
	for name := range m.members {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Changes returns the channel that receives a value (coalesced, buffer of one) after
// the set Members returns changed. Always the same channel; never closed.
func (m *Membership) Changes() <-chan struct{} { return m.changes }

// Close stops refreshing and watching, then deletes this process's key (the others see
// it leave at once). A second Close does nothing.
func (m *Membership) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	self := m.self
	m.mu.Unlock()
	m.cancel() // no refresh may land after the delete
	m.wg.Wait()
	if self == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), DefaultRequestTimeout)
	defer cancel()
	if err := m.kv.Delete(ctx, memberKey(self)); err != nil {
		return fmt.Errorf("natshub: leave as %q (its lease will end it): %w", self, err)
	}
	return nil
}
