package natshub

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// waitMembers waits until m lists want, woken by its Changes channel.
func waitMembers(t testing.TB, m *Membership, want ...string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if got := m.Members(); slices.Equal(got, want) {
			return
		}
		select {
		case <-m.Changes():
		case <-deadline:
			t.Fatalf("members %v, want %v", m.Members(), want)
		}
	}
}

// TestMembership_JoinLeaveExpire: processes see each other join, a closed one leave at
// once, and one that stops refreshing (killed) leave after its lease.
func TestMembership_JoinLeaveExpire(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns.ClientURL())
	open := func(ctx context.Context) *Membership {
		m, err := NewMembership(ctx, js, MembershipConfig{Bucket: "members", Lease: time.Second, Memory: true})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := open(t.Context()), open(t.Context())
	t.Cleanup(func() { _ = a.Close() })
	if err := a.Join(t.Context(), "127.0.0.1:7001"); err != nil {
		t.Fatal(err)
	}
	if err := b.Join(t.Context(), "127.0.0.1:7002"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, a, "127.0.0.1:7001", "127.0.0.1:7002")
	waitMembers(t, b, "127.0.0.1:7001", "127.0.0.1:7002")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, a, "127.0.0.1:7001")

	// A process that dies without Close: its context ends, nothing deletes its key.
	ctx, kill := context.WithCancel(t.Context())
	c := open(ctx)
	if err := c.Join(ctx, "127.0.0.1:7003"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, a, "127.0.0.1:7001", "127.0.0.1:7003")
	killed := time.Now()
	kill()
	c.wg.Wait()
	waitMembers(t, a, "127.0.0.1:7001")
	if gone := time.Since(killed); gone < 500*time.Millisecond {
		t.Fatalf("the killed member left after %s, before its lease could end", gone)
	}
	if !strings.Contains(strings.Join(a.Members(), ","), "7001") {
		t.Fatal("the refreshing member lapsed")
	}
}
