package pivot_test

import (
	"context"
	"fmt"

	"github.com/benitogf/pivot"
)

// Two pivot processes join one MemoryGroup; each node is triggered by its owner, and
// when a process vanishes its nodes move to the other.
func ExampleMemoryGroup() {
	group := &pivot.MemoryGroup{}
	a, b := group.Member(), group.Member()
	ctx := context.Background()
	_ = a.Join(ctx, "10.0.0.1:8800")
	_ = b.Join(ctx, "10.0.0.2:8800")
	node := "10.0.1.7:8801"
	before := pivot.Owner(group.Names(), node)
	group.Vanish(before)
	after := pivot.Owner(group.Names(), node)
	fmt.Println(len(group.Names()), before != after)
	// Output: 1 true
}
