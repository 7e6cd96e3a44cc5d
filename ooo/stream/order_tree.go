package stream

// entry is one element of a glob pool's list: its sort key and its bytes as a list read
// writes them.
type entry struct {
	created int64
	path    string
	raw     []byte
}

// before reports whether a sorts before b in a list read's order: Created ascending,
// then Path (meta.SortAsc).
func (a *entry) before(created int64, path string) bool {
	if a.created != created {
		return a.created < created
	}
	return a.path < path
}

// treeNode is a node of orderTree: a treap node with the size of its subtree.
type treeNode struct {
	e           entry
	prio        uint64
	size        int
	left, right *treeNode
}

func sizeOf(n *treeNode) int {
	if n == nil {
		return 0
	}
	return n.size
}

func (n *treeNode) fix() { n.size = 1 + sizeOf(n.left) + sizeOf(n.right) }

// orderTree keeps a glob pool's entries in served order and finds an entry's position
// in O(log n) (expected): a treap ordered by (created, path) whose nodes count their
// subtree, plus an index by path. It is not safe for concurrent use (the pool's lock
// guards it).
type orderTree struct {
	root   *treeNode
	byPath map[string]*treeNode
	bytes  int    // sum of the entries' lengths
	rng    uint64 // xorshift state for priorities
}

func newOrderTree() *orderTree {
	return &orderTree{byPath: make(map[string]*treeNode), rng: 0x9e3779b97f4a7c15}
}

// Len returns the number of entries.
func (t *orderTree) Len() int { return sizeOf(t.root) }

// encodedLen is the length of the list encoded as a JSON array.
func (t *orderTree) encodedLen() int {
	n := t.Len()
	if n == 0 {
		return 2
	}
	return t.bytes + n - 1 + 2
}

func (t *orderTree) nextPrio() uint64 {
	t.rng ^= t.rng << 13
	t.rng ^= t.rng >> 7
	t.rng ^= t.rng << 17
	return t.rng
}

// find returns the entry of path, or nil.
func (t *orderTree) find(path string) *entry {
	if n := t.byPath[path]; n != nil {
		return &n.e
	}
	return nil
}

// rank returns how many entries sort before (created, path).
func (t *orderTree) rank(created int64, path string) int {
	r := 0
	for n := t.root; n != nil; {
		if n.e.before(created, path) {
			r += sizeOf(n.left) + 1
			n = n.right
		} else {
			n = n.left
		}
	}
	return r
}

// split cuts n into the entries before (created, path) and the others.
func split(n *treeNode, created int64, path string) (*treeNode, *treeNode) {
	if n == nil {
		return nil, nil
	}
	if n.e.before(created, path) {
		l, r := split(n.right, created, path)
		n.right = l
		n.fix()
		return n, r
	}
	l, r := split(n.left, created, path)
	n.left = r
	n.fix()
	return l, n
}

// merge joins two treaps whose entries all sort a before b.
func merge(a, b *treeNode) *treeNode {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		a.right = merge(a.right, b)
		a.fix()
		return a
	default:
		b.left = merge(a, b.left)
		b.fix()
		return b
	}
}

// insert adds e, whose path must not be in the tree, and returns its position.
func (t *orderTree) insert(e entry) int {
	n := &treeNode{e: e, prio: t.nextPrio(), size: 1}
	l, r := split(t.root, e.created, e.path)
	pos := sizeOf(l)
	t.root = merge(merge(l, n), r)
	t.byPath[e.path] = n
	t.bytes += len(e.raw)
	return pos
}

// remove deletes the entry of path and returns its position, or -1 when absent.
func (t *orderTree) remove(path string) int {
	n := t.byPath[path]
	if n == nil {
		return -1
	}
	pos := t.rank(n.e.created, n.e.path)
	t.root = removeNode(t.root, n)
	delete(t.byPath, path)
	t.bytes -= len(n.e.raw)
	return pos
}

// removeNode removes target from the subtree n and returns the new subtree.
func removeNode(n, target *treeNode) *treeNode {
	if n == target {
		return merge(n.left, n.right)
	}
	if n.e.before(target.e.created, target.e.path) {
		n.right = removeNode(n.right, target)
	} else {
		n.left = removeNode(n.left, target)
	}
	n.fix()
	return n
}

// replace swaps the bytes of the entry of path (which must be there, with an unchanged
// sort key) and returns its position.
func (t *orderTree) replace(path string, raw []byte) int {
	n := t.byPath[path]
	t.bytes += len(raw) - len(n.e.raw)
	n.e.raw = raw
	return t.rank(n.e.created, n.e.path)
}

// each calls fn with every entry in order.
func (t *orderTree) each(fn func(e *entry)) {
	var walk func(n *treeNode)
	walk = func(n *treeNode) {
		for n != nil {
			walk(n.left)
			fn(&n.e)
			n = n.right
		}
	}
	walk(t.root)
}

// encode returns the list as a JSON array, the entries' bytes joined by commas.
func (t *orderTree) encode() []byte {
	out := make([]byte, 0, t.encodedLen())
	out = append(out, '[')
	first := true
	t.each(func(e *entry) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, e.raw...)
	})
	return append(out, ']')
}
