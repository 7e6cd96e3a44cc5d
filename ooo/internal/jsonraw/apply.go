package jsonraw

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnsupported is returned for an operation this package does not apply ("move",
// "copy", "test"): the caller can fall back to a general patch library.
var ErrUnsupported = errors.New("jsonraw: unsupported patch operation")

// ErrNotApplicable is returned for an operation whose path does not exist in the
// document (or cannot be created there).
var ErrNotApplicable = errors.New("jsonraw: patch does not apply")

// Op is one decoded patch operation.
type Op struct {
	Kind  string   // "add", "remove" or "replace" (others are ErrUnsupported)
	Path  []string // the JSON pointer's reference tokens, unescaped; empty for the root
	Value []byte   // the operation's value as written in the patch; nil for "remove"
}

// ParsePatch decodes an encoded patch (a JSON array of operations). An operation other
// than add, remove and replace is ErrUnsupported.
func ParsePatch(patch []byte) ([]Op, error) {
	d := trim(patch)
	if len(d) == 0 || d[0] != '[' {
		return nil, fmt.Errorf("%w: a patch is an array", ErrSyntax)
	}
	els, err := elements(d)
	if err != nil {
		return nil, err
	}
	ops := make([]Op, 0, len(els))
	for _, e := range els {
		raw := d[e.start:e.end]
		if raw[0] != '{' {
			return nil, fmt.Errorf("%w: an operation is an object", ErrSyntax)
		}
		ms, err := members(raw)
		if err != nil {
			return nil, err
		}
		var op Op
		var path string
		hasPath, hasValue := false, false
		for _, m := range ms {
			v := raw[m.val.start:m.val.end]
			switch m.name {
			case "op":
				if v[0] != '"' {
					return nil, fmt.Errorf("%w: op is a string", ErrSyntax)
				}
				if op.Kind, err = decodeKey(v); err != nil {
					return nil, err
				}
			case "path":
				if v[0] != '"' {
					return nil, fmt.Errorf("%w: path is a string", ErrSyntax)
				}
				if path, err = decodeKey(v); err != nil {
					return nil, err
				}
				hasPath = true
			case "value":
				op.Value, hasValue = v, true
			}
		}
		switch op.Kind {
		case "add", "replace":
			if !hasValue {
				return nil, fmt.Errorf("%w: %s without a value", ErrSyntax, op.Kind)
			}
		case "remove":
			op.Value = nil
		default:
			return nil, fmt.Errorf("%w: %q", ErrUnsupported, op.Kind)
		}
		if !hasPath {
			return nil, fmt.Errorf("%w: %s without a path", ErrSyntax, op.Kind)
		}
		if op.Path, err = ParsePointer(path); err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// ParsePointer splits an RFC 6901 JSON pointer into its unescaped reference tokens.
func ParsePointer(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	if path[0] != '/' {
		return nil, fmt.Errorf("%w: pointer %q does not start with '/'", ErrSyntax, path)
	}
	tokens := strings.Split(path[1:], "/")
	for i, t := range tokens {
		if strings.Contains(t, "~") {
			t = strings.ReplaceAll(t, "~1", "/")
			tokens[i] = strings.ReplaceAll(t, "~0", "~")
		}
	}
	return tokens, nil
}

// Apply applies the encoded patch to doc and returns the new document; doc is not
// modified. Every byte the patch does not address is kept as it is.
func Apply(doc, patch []byte) ([]byte, error) {
	ops, err := ParsePatch(patch)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if doc, err = ApplyOp(doc, op); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// ApplyOp applies one operation to doc and returns the new document (a new slice; doc
// is not modified). Whitespace around the root value is kept.
func ApplyOp(doc []byte, op Op) ([]byte, error) {
	return applyAt(doc, op.Path, op)
}

func applyAt(doc []byte, tokens []string, op Op) ([]byte, error) {
	s := skipSpace(doc, 0)
	e := len(doc)
	for e > s && isSpace(doc[e-1]) {
		e--
	}
	if len(tokens) == 0 {
		if op.Kind == "remove" {
			return nil, fmt.Errorf("%w: remove of the whole document", ErrNotApplicable)
		}
		return splice(doc, s, e, op.Value), nil
	}
	d := doc[s:e]
	if len(d) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrNotApplicable)
	}
	switch d[0] {
	case '{':
		return applyObject(doc, s, d, tokens, op)
	case '[':
		return applyArray(doc, s, d, tokens, op)
	}
	return nil, fmt.Errorf("%w: %q goes through a scalar", ErrNotApplicable, tokens[0])
}

func applyObject(doc []byte, s int, d []byte, tokens []string, op Op) ([]byte, error) {
	ms, err := members(d)
	if err != nil {
		return nil, err
	}
	at := -1
	for i := len(ms) - 1; i >= 0; i-- { // the last of repeated names is the one decoders keep
		if ms[i].name == tokens[0] {
			at = i
			break
		}
	}
	if len(tokens) > 1 {
		if at < 0 {
			return nil, fmt.Errorf("%w: no member %q", ErrNotApplicable, tokens[0])
		}
		v := ms[at].val
		child, err := applyAt(d[v.start:v.end], tokens[1:], op)
		if err != nil {
			return nil, err
		}
		return splice(doc, s+v.start, s+v.end, child), nil
	}
	switch {
	case op.Kind == "remove" && at < 0, op.Kind == "replace" && at < 0:
		return nil, fmt.Errorf("%w: no member %q to %s", ErrNotApplicable, tokens[0], op.Kind)
	case op.Kind == "remove":
		from, to := removal(len(ms), at, func(i int) span { return span{ms[i].key.start, ms[i].val.end} })
		return splice(doc, s+from, s+to, nil), nil
	case at >= 0: // add of an existing member replaces it
		v := ms[at].val
		return splice(doc, s+v.start, s+v.end, op.Value), nil
	}
	ins := make([]byte, 0, len(tokens[0])+len(op.Value)+4)
	pos := len(d) - 1 // the closing brace
	if len(ms) > 0 {
		ins = append(ins, ',')
		pos = ms[len(ms)-1].val.end
	}
	ins = AppendString(ins, tokens[0])
	ins = append(ins, ':')
	ins = append(ins, op.Value...)
	return splice(doc, s+pos, s+pos, ins), nil
}

func applyArray(doc []byte, s int, d []byte, tokens []string, op Op) ([]byte, error) {
	els, err := elements(d)
	if err != nil {
		return nil, err
	}
	i, err := arrayIndex(tokens[0], len(els), len(tokens) == 1 && op.Kind == "add")
	if err != nil {
		return nil, err
	}
	if len(tokens) > 1 {
		v := els[i]
		child, err := applyAt(d[v.start:v.end], tokens[1:], op)
		if err != nil {
			return nil, err
		}
		return splice(doc, s+v.start, s+v.end, child), nil
	}
	switch op.Kind {
	case "remove":
		from, to := removal(len(els), i, func(k int) span { return els[k] })
		return splice(doc, s+from, s+to, nil), nil
	case "replace":
		return splice(doc, s+els[i].start, s+els[i].end, op.Value), nil
	}
	var ins []byte
	var pos int
	switch {
	case len(els) == 0:
		ins, pos = op.Value, len(d)-1
	case i < len(els):
		ins = append(append(make([]byte, 0, len(op.Value)+1), op.Value...), ',')
		pos = els[i].start
	default:
		ins = append(append(make([]byte, 0, len(op.Value)+1), ','), op.Value...)
		pos = els[len(els)-1].end
	}
	return splice(doc, s+pos, s+pos, ins), nil
}

// arrayIndex parses an array reference token: a decimal index below n, or up to n (and
// "-" for n) when the operation adds.
func arrayIndex(t string, n int, adding bool) (int, error) {
	if adding && t == "-" {
		return n, nil
	}
	i, err := strconv.Atoi(t)
	if err != nil || i < 0 || (len(t) > 1 && t[0] == '0') || t[0] == '+' {
		return 0, fmt.Errorf("%w: bad array index %q", ErrNotApplicable, t)
	}
	if i > n || (i == n && !adding) {
		return 0, fmt.Errorf("%w: index %d out of %d", ErrNotApplicable, i, n)
	}
	return i, nil
}

// removal returns the byte range to cut to remove item at of n items, separator
// included: up to the next item, or from the end of the previous one for the last.
func removal(n, at int, item func(int) span) (int, int) {
	switch {
	case n == 1:
		return item(at).start, item(at).end
	case at < n-1:
		return item(at).start, item(at + 1).start
	default:
		return item(at - 1).end, item(at).end
	}
}

// splice returns doc with doc[from:to] replaced by ins, as a new slice.
func splice(doc []byte, from, to int, ins []byte) []byte {
	out := make([]byte, 0, len(doc)-(to-from)+len(ins))
	out = append(out, doc[:from]...)
	out = append(out, ins...)
	return append(out, doc[to:]...)
}

// Equal reports whether two documents have the same bytes, ignoring whitespace around
// the root value.
func Equal(a, b []byte) bool { return bytes.Equal(trim(a), trim(b)) }
