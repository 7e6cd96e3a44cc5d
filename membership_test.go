package pivot_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/benitogf/pivot"
	"github.com/stretchr/testify/require"
)

// Owner spreads names evenly over the members, and when a member goes only the names
// it owned move, each to one of the others.
func TestOwner_SpreadsNamesAndMovesOnlyTheGoneMembersShare(t *testing.T) {
	members := []string{"10.0.0.1:8800", "10.0.0.2:8800", "10.0.0.3:8800"}
	const names = 3000
	owner := map[string]string{}
	count := map[string]int{}
	for i := range names {
		name := fmt.Sprintf("10.1.%d.%d:8801", i/250, i%250)
		o := pivot.Owner(members, name)
		require.Equal(t, o, pivot.Owner([]string{members[2], members[0], members[1]}, name), "the order of the members does not matter")
		owner[name] = o
		count[o]++
	}
	for _, m := range members {
		require.InDelta(t, names/3, count[m], names/10, "%s owns about a third: %v", m, count)
	}
	rest := members[1:]
	for name, o := range owner {
		now := pivot.Owner(rest, name)
		if o != members[0] {
			require.Equal(t, o, now, "%s stays where it was", name)
		}
		require.True(t, slices.Contains(rest, now))
	}
	require.Equal(t, "", pivot.Owner(nil, "x"))
}

// A MemoryGroup's members see each other join, leave and vanish, each change signalled
// on Changes.
func TestMemoryGroup_JoinLeaveVanish(t *testing.T) {
	g := &pivot.MemoryGroup{}
	a, b := g.Member(), g.Member()
	ctx := context.Background()
	require.NoError(t, a.Join(ctx, "a"))
	require.NoError(t, b.Join(ctx, "b"))
	require.NoError(t, b.Join(ctx, "b"), "joining again is a no-op")
	require.Error(t, b.Join(ctx, "other"), "one member, one name")
	require.Equal(t, []string{"a", "b"}, a.Members())
	<-a.Changes()

	g.Vanish("a")
	<-b.Changes()
	require.Equal(t, []string{"b"}, b.Members())
	require.NoError(t, a.Join(ctx, "a"), "a vanished member joins again")
	<-b.Changes()
	require.Equal(t, []string{"a", "b"}, g.Names())

	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	<-a.Changes()
	require.Equal(t, []string{"a"}, a.Members())
	require.ErrorIs(t, b.Join(ctx, "b"), pivot.ErrClosed)
}
