package jsonraw

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ErrNeedSnapshot is returned by Diff when the change can only be expressed by
// replacing the whole document (or by addressing an empty member name, which common
// patch libraries mishandle): the caller should send the new document instead.
var ErrNeedSnapshot = errors.New("jsonraw: change needs a snapshot")

// smallObject is the member count up to which objects are matched by linear search.
const smallObject = 8

// Patch builds an RFC 6902 JSON Patch. Its values are slices of the documents given to
// it, copied verbatim. The zero value is an empty patch.
type Patch struct {
	buf []byte // the operations, comma-separated, without the brackets
	ops int
}

// Len returns the number of operations.
func (p *Patch) Len() int { return p.ops }

// Size returns the length in bytes of the encoded patch.
func (p *Patch) Size() int { return len(p.buf) + 2 }

// Bytes returns the encoded patch, "[...]". The result is a new slice.
func (p *Patch) Bytes() []byte {
	out := make([]byte, 0, len(p.buf)+2)
	out = append(out, '[')
	out = append(out, p.buf...)
	return append(out, ']')
}

// Reset empties the patch, keeping its buffer.
func (p *Patch) Reset() {
	p.buf = p.buf[:0]
	p.ops = 0
}

func (p *Patch) start(op, path string) {
	if p.ops > 0 {
		p.buf = append(p.buf, ',')
	}
	p.ops++
	p.buf = append(p.buf, `{"op":"`...)
	p.buf = append(p.buf, op...)
	p.buf = append(p.buf, `","path":`...)
	p.buf = AppendString(p.buf, path)
}

// Add appends an "add" of value (one JSON value, copied verbatim) at path.
func (p *Patch) Add(path string, value []byte) {
	p.start("add", path)
	p.buf = append(p.buf, `,"value":`...)
	p.buf = append(p.buf, value...)
	p.buf = append(p.buf, '}')
}

// Replace appends a "replace" of the value at path by value.
func (p *Patch) Replace(path string, value []byte) {
	p.start("replace", path)
	p.buf = append(p.buf, `,"value":`...)
	p.buf = append(p.buf, value...)
	p.buf = append(p.buf, '}')
}

// Remove appends a "remove" of the value at path.
func (p *Patch) Remove(path string) {
	p.start("remove", path)
	p.buf = append(p.buf, '}')
}

// Diff appends the operations that turn the value from, found at path, into to. Equal
// bytes append nothing. Objects and arrays are compared member by member and element by
// element; a part whose operations would be longer than its new value is replaced whole.
// ErrNeedSnapshot (with nothing appended) when path is "" and the whole document would
// have to be replaced.
func (p *Patch) Diff(path string, from, to []byte) error {
	mark, ops := len(p.buf), p.ops
	if err := p.diff(path, trim(from), trim(to)); err != nil {
		p.buf, p.ops = p.buf[:mark], ops
		return err
	}
	return nil
}

// Diff returns the patch, encoded, that turns the JSON document from into to ("[]"
// when their bytes are equal). See Patch.Diff.
func Diff(from, to []byte) ([]byte, error) {
	var p Patch
	if err := p.Diff("", from, to); err != nil {
		return nil, err
	}
	return p.Bytes(), nil
}

// AppendPath returns the JSON pointer of member name (or array index) below path.
func AppendPath(path, name string) string {
	if !strings.ContainsAny(name, "~/") {
		return path + "/" + name
	}
	name = strings.ReplaceAll(name, "~", "~0")
	return path + "/" + strings.ReplaceAll(name, "/", "~1")
}

// IndexPath returns the JSON pointer of element i below path.
func IndexPath(path string, i int) string {
	return path + "/" + strconv.Itoa(i)
}

func (p *Patch) diff(path string, a, b []byte) error {
	if bytes.Equal(a, b) {
		return nil
	}
	if len(a) > 0 && len(b) > 0 {
		mark, ops := len(p.buf), p.ops
		var err error
		structural := true
		switch {
		case a[0] == '{' && b[0] == '{':
			structural, err = p.diffObject(path, a, b)
		case a[0] == '[' && b[0] == '[':
			structural, err = p.diffArray(path, a, b)
		default:
			structural = false
		}
		if err != nil {
			return err
		}
		// A part whose operations outweigh its new value goes whole (where it can).
		if structural && (path == "" || len(p.buf)-mark <= len(b)+len(path)+32) {
			return nil
		}
		p.buf, p.ops = p.buf[:mark], ops
	}
	if path == "" {
		return ErrNeedSnapshot
	}
	p.Replace(path, b)
	return nil
}

// diffObject appends the member operations from a to b. It reports false (nothing
// appended) when the members cannot be patched in place so that an order-keeping
// applier ends with b's member order, bytes included: a member moved, a new member
// placed before a kept one, a duplicate or empty member name, or a new member name
// written with escapes this package would not write.
func (p *Patch) diffObject(path string, a, b []byte) (bool, error) {
	am, err := members(a)
	if err != nil {
		return false, err
	}
	bm, err := members(b)
	if err != nil {
		return false, err
	}
	find := indexer(am)
	if find == nil || indexer(bm) == nil || !compactObject(a, am) || !compactObject(b, bm) {
		return false, nil
	}
	last, added := -1, false
	inA := make([]int, len(bm)) // index in am of each member of b, -1 when new
	for i, m := range bm {
		j := find(m.name)
		inA[i] = j
		if j < 0 {
			added = true
			if !bytes.Equal(AppendString(nil, m.name), b[m.key.start:m.key.end]) {
				return false, nil
			}
			continue
		}
		if added || j < last {
			return false, nil
		}
		last = j
	}
	kept := make([]bool, len(am))
	for _, j := range inA {
		if j >= 0 {
			kept[j] = true
		}
	}
	for j, m := range am {
		if !kept[j] {
			p.Remove(AppendPath(path, m.name))
		}
	}
	for i, m := range bm {
		if j := inA[i]; j >= 0 {
			if err := p.diff(AppendPath(path, m.name), a[am[j].val.start:am[j].val.end], b[m.val.start:m.val.end]); err != nil {
				return false, err
			}
		}
	}
	for i, m := range bm {
		if inA[i] < 0 {
			p.Add(AppendPath(path, m.name), b[m.val.start:m.val.end])
		}
	}
	return true, nil
}

// indexer returns a lookup from member name to index in ms (-1 when absent), or nil
// when a name is empty or repeated (such objects are replaced whole).
func indexer(ms []member) func(string) int {
	for _, m := range ms {
		if m.name == "" {
			return nil
		}
	}
	if len(ms) <= smallObject {
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				if ms[i].name == ms[j].name {
					return nil
				}
			}
		}
		return func(name string) int {
			for i, m := range ms {
				if m.name == name {
					return i
				}
			}
			return -1
		}
	}
	idx := make(map[string]int, len(ms))
	for i, m := range ms {
		if _, dup := idx[m.name]; dup {
			return nil
		}
		idx[m.name] = i
	}
	return func(name string) int {
		if i, ok := idx[name]; ok {
			return i
		}
		return -1
	}
}

// diffArray appends the element operations from a to b: the common head and tail are
// kept, the middle elements are diffed pairwise, and the surplus is removed or added.
// It reports false (nothing appended) when either array has whitespace between its
// elements, which a patch cannot carry.
func (p *Patch) diffArray(path string, a, b []byte) (bool, error) {
	ae, err := elements(a)
	if err != nil {
		return false, err
	}
	be, err := elements(b)
	if err != nil {
		return false, err
	}
	if !compactArray(a, ae) || !compactArray(b, be) {
		return false, nil
	}
	eq := func(i, j int) bool {
		return bytes.Equal(a[ae[i].start:ae[i].end], b[be[j].start:be[j].end])
	}
	head := 0
	for head < len(ae) && head < len(be) && eq(head, head) {
		head++
	}
	tail := 0
	for tail < len(ae)-head && tail < len(be)-head && eq(len(ae)-1-tail, len(be)-1-tail) {
		tail++
	}
	na, nb := len(ae)-head-tail, len(be)-head-tail
	common := min(na, nb)
	for k := 0; k < common; k++ {
		x, y := ae[head+k], be[head+k]
		if err := p.diff(IndexPath(path, head+k), a[x.start:x.end], b[y.start:y.end]); err != nil {
			return false, err
		}
	}
	for k := common; k < na; k++ {
		p.Remove(IndexPath(path, head+common))
	}
	for k := common; k < nb; k++ {
		y := be[head+k]
		p.Add(IndexPath(path, head+k), b[y.start:y.end])
	}
	return true, nil
}

// compactObject reports whether the object doc has no whitespace around its members,
// so that splicing member bytes rebuilds it exactly.
func compactObject(doc []byte, ms []member) bool {
	if len(ms) == 0 {
		return len(doc) == 2
	}
	if ms[0].key.start != 1 || ms[len(ms)-1].val.end != len(doc)-1 {
		return false
	}
	for i, m := range ms {
		if m.val.start != m.key.end+1 || (i > 0 && m.key.start != ms[i-1].val.end+1) {
			return false
		}
	}
	return true
}

// compactArray reports whether the array doc has no whitespace around its elements.
func compactArray(doc []byte, els []span) bool {
	if len(els) == 0 {
		return len(doc) == 2
	}
	if els[0].start != 1 || els[len(els)-1].end != len(doc)-1 {
		return false
	}
	for i := 1; i < len(els); i++ {
		if els[i].start != els[i-1].end+1 {
			return false
		}
	}
	return true
}
