package stream

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
)

// TestOrderTree_MatchesASortedSlice runs random inserts, replaces and removes on the tree
// and on a sorted slice and compares positions and contents after every step.
func TestOrderTree_MatchesASortedSlice(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	tree := newOrderTree()
	var ref []entry
	find := func(path string) int {
		for i, e := range ref {
			if e.path == path {
				return i
			}
		}
		return -1
	}
	for step := 0; step < 5000; step++ {
		path := fmt.Sprintf("l/%d", r.Intn(300))
		switch i := find(path); {
		case i >= 0 && r.Intn(3) == 0:
			if got := tree.remove(path); got != i {
				t.Fatalf("step %d: remove %s at %d, want %d", step, path, got, i)
			}
			ref = append(ref[:i], ref[i+1:]...)
		case i >= 0:
			raw := []byte(fmt.Sprint(step))
			if got := tree.replace(path, raw); got != i {
				t.Fatalf("step %d: replace %s at %d, want %d", step, path, got, i)
			}
			ref[i].raw = raw
		default:
			e := entry{created: int64(r.Intn(50)), path: path, raw: []byte(fmt.Sprint(step))}
			ref = append(ref, e)
			sort.Slice(ref, func(a, b int) bool { return ref[a].before(ref[b].created, ref[b].path) })
			if got, want := tree.insert(e), find(path); got != want {
				t.Fatalf("step %d: insert %s at %d, want %d", step, path, got, want)
			}
		}
		if tree.remove("absent") != -1 {
			t.Fatal("remove of an absent path")
		}
		if step%97 == 0 || step == 4999 {
			want := "["
			n := 0
			for i, e := range ref {
				if i > 0 {
					want += ","
				}
				want += string(e.raw)
				n += len(e.raw)
			}
			want += "]"
			if got := string(tree.encode()); got != want || tree.Len() != len(ref) || tree.encodedLen() != len(want) {
				t.Fatalf("step %d: tree %s (len %d, encoded %d), want %s", step, got, tree.Len(), tree.encodedLen(), want)
			}
		}
	}
}
