package pivot

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// MemoryGroup is a Membership of pivot processes that live in one program: for tests,
// and for several pivot servers in one process over one shared storage. Each process
// gets its own member from Member. Vanish removes a member as if its process had
// died without leaving (its lease expired), which tests use to move nodes without
// stopping a server. Safe for concurrent use. The zero value is an empty group.
type MemoryGroup struct {
	mu      sync.Mutex
	live    map[string]int // name → how many members joined under it
	members []*MemoryMember
}

// Member returns a new member of the group for one pivot process (Config.Membership).
func (g *MemoryGroup) Member() *MemoryMember {
	m := &MemoryMember{group: g, changes: make(chan struct{}, 1)}
	g.mu.Lock()
	g.members = append(g.members, m)
	g.mu.Unlock()
	return m
}

// Names returns the live members' names, sorted.
func (g *MemoryGroup) Names() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.namesLocked()
}

// Vanish removes name from the group, as an expired lease would: its member is not
// told and does not join again by itself (Join it again to bring it back). Every
// other member sees the change.
func (g *MemoryGroup) Vanish(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.live[name]; !ok {
		return
	}
	delete(g.live, name)
	for _, m := range g.members {
		if m.self == name {
			m.joined = false
		}
	}
	g.notifyLocked()
}

// namesLocked lists the live names, sorted. g.mu is held.
func (g *MemoryGroup) namesLocked() []string {
	out := make([]string, 0, len(g.live))
	for n := range g.live {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// notifyLocked signals every member that the set changed. g.mu is held.
func (g *MemoryGroup) notifyLocked() {
	for _, m := range g.members {
		select {
		case m.changes <- struct{}{}:
		default:
		}
	}
}

// MemoryMember is one pivot process's member of a MemoryGroup. It implements
// Membership.
type MemoryMember struct {
	group   *MemoryGroup
	changes chan struct{}
	// Guarded by group.mu.
	self   string
	joined bool
	closed bool
}

var _ Membership = (*MemoryMember)(nil)

// Join adds self to the group. It fails after Close, for an empty name, or when the
// member already joined under another name.
func (m *MemoryMember) Join(ctx context.Context, self string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g := m.group
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case m.closed:
		return fmt.Errorf("pivot: membership: join %q: %w", self, ErrClosed)
	case self == "":
		return fmt.Errorf("pivot: membership: join: empty name")
	case m.self != "" && m.self != self:
		return fmt.Errorf("pivot: membership: join %q: already joined as %q", self, m.self)
	case m.joined:
		return nil
	}
	m.self, m.joined = self, true
	if g.live == nil {
		g.live = map[string]int{}
	}
	g.live[self]++
	g.notifyLocked()
	return nil
}

// Members returns the live names of the group, sorted.
func (m *MemoryMember) Members() []string { return m.group.Names() }

// Changes returns the channel signalled after every change of the group.
func (m *MemoryMember) Changes() <-chan struct{} { return m.changes }

// Close leaves the group. A second Close is a no-op.
func (m *MemoryMember) Close() error {
	g := m.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.joined {
		m.joined = false
		if g.live[m.self]--; g.live[m.self] <= 0 {
			delete(g.live, m.self)
		}
		g.notifyLocked()
	}
	return nil
}
