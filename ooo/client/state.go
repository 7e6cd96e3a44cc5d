package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/benitogf/pivot/ooo/internal/jsonraw"
	"github.com/benitogf/pivot/ooo/messages"
)

// state is what a subscription holds between messages: the value's bytes as the server
// sent them and their decoded form. A list is held entry by entry, so that a patch
// costs only the entries it touches: an operation on entry i decodes entry i alone.
type state[T any] struct {
	has   bool
	list  bool
	items []item[T] // the entries of a list
	raw   []byte    // the object of a single key
	one   item[T]   // raw decoded
}

// item is one stored object: its bytes and, when they decode into T, its Meta.
type item[T any] struct {
	raw  []byte
	meta Meta[T]
	ok   bool // raw decodes into Meta[T]
	// empty marks a single key's missing-key object whose data does not fit T: it reads
	// as the zero Meta (see decodeOne).
	empty bool
}

// decodeItem decodes one stored object held as raw.
func decodeItem[T any](raw []byte) item[T] {
	var o struct {
		Created int64           `json:"created"`
		Updated int64           `json:"updated"`
		Index   string          `json:"index"`
		Data    json.RawMessage `json:"data"`
	}
	it := item[T]{raw: raw}
	if err := json.Unmarshal(raw, &o); err != nil {
		return it
	}
	it.meta = Meta[T]{Created: o.Created, Updated: o.Updated, Index: o.Index}
	if len(o.Data) > 0 {
		if err := json.Unmarshal(o.Data, &it.meta.Data); err != nil {
			// A missing key arrives as the empty object; "{}" may not fit T (a number,
			// a string...), and the zero value says "nothing here" just as well.
			it.empty = o.Created == 0 && o.Index == ""
			it.meta = Meta[T]{}
			return it
		}
	}
	it.ok = true
	return it
}

// apply folds one server message into the state.
func (s *state[T]) apply(msg messages.Message) error {
	if msg.Snapshot {
		return s.reset(msg.Data)
	}
	if !s.has {
		return errNoSnapshot
	}
	ops, err := jsonraw.ParsePatch(msg.Data)
	if errors.Is(err, jsonraw.ErrUnsupported) {
		// Operations this client does not patch in place (move, copy, test): apply the
		// whole patch to the whole value and start over from the result.
		next, err := messages.PatchCache(msg, s.bytes())
		if err != nil {
			return fmt.Errorf("client: apply message: %w", err)
		}
		return s.reset(next)
	}
	if err != nil {
		return fmt.Errorf("client: decode patch: %w", err)
	}
	if !s.list {
		raw := s.raw
		for _, op := range ops {
			if raw, err = jsonraw.ApplyOp(raw, op); err != nil {
				return fmt.Errorf("client: apply patch: %w", err)
			}
		}
		return s.reset(raw)
	}
	// Operations inside one entry are applied to its bytes, and the entry is decoded
	// once after the last of a run of them (a write usually changes two members).
	dirty := -1
	flush := func() {
		if dirty >= 0 {
			s.items[dirty] = decodeItem[T](s.items[dirty].raw)
			dirty = -1
		}
	}
	for _, op := range ops {
		if len(op.Path) > 1 {
			i, err := listIndex(op.Path[0], len(s.items), false)
			if err != nil {
				return fmt.Errorf("client: apply patch: %w", err)
			}
			if i != dirty {
				flush()
			}
			raw, err := jsonraw.ApplyOp(s.items[i].raw, jsonraw.Op{Kind: op.Kind, Path: op.Path[1:], Value: op.Value})
			if err != nil {
				return fmt.Errorf("client: apply patch: %w", err)
			}
			s.items[i].raw, dirty = raw, i
			continue
		}
		flush()
		if err := s.applyToList(op); err != nil {
			return fmt.Errorf("client: apply patch: %w", err)
		}
	}
	flush()
	return nil
}

// applyToList applies one operation on a whole entry of a list (its path has one
// token, or none), decoding only that entry.
func (s *state[T]) applyToList(op jsonraw.Op) error {
	if len(op.Path) == 0 {
		if op.Kind == "remove" {
			return fmt.Errorf("%w: remove of the whole document", jsonraw.ErrNotApplicable)
		}
		return s.reset(op.Value)
	}
	n := len(s.items)
	i, err := listIndex(op.Path[0], n, op.Kind == "add")
	if err != nil {
		return err
	}
	switch op.Kind {
	case "add":
		s.items = append(s.items, item[T]{})
		copy(s.items[i+1:], s.items[i:n])
		s.items[i] = decodeItem[T](op.Value)
	case "replace":
		s.items[i] = decodeItem[T](op.Value)
	case "remove":
		copy(s.items[i:], s.items[i+1:])
		s.items[n-1] = item[T]{}
		s.items = s.items[:n-1]
	}
	return nil
}

// listIndex parses an array index token: below n, or up to n ("-" for n) for an add.
func listIndex(t string, n int, adding bool) (int, error) {
	if adding && t == "-" {
		return n, nil
	}
	i, err := strconv.Atoi(t)
	if err != nil || i < 0 || i > n || (i == n && !adding) || (len(t) > 1 && t[0] == '0') || t[0] == '+' {
		return 0, fmt.Errorf("%w: index %q of a list of %d", jsonraw.ErrNotApplicable, t, n)
	}
	return i, nil
}

// reset makes the whole value data, decoding it: a JSON array is a list, anything else
// a single key's object.
func (s *state[T]) reset(data []byte) error {
	if isArray(data) {
		els, err := jsonraw.Elements(data)
		if err != nil {
			return fmt.Errorf("client: decode list: %w", err)
		}
		items := make([]item[T], len(els))
		for i, e := range els {
			items[i] = decodeItem[T](e)
		}
		*s = state[T]{has: true, list: true, items: items}
		return nil
	}
	var probe json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("client: decode object: %w", err)
	}
	*s = state[T]{has: true, raw: data, one: decodeItem[T](data)}
	return nil
}

// bytes returns the whole value as JSON (for a list, its entries joined).
func (s *state[T]) bytes() []byte {
	if !s.list {
		return s.raw
	}
	size := 2
	for _, it := range s.items {
		size += len(it.raw) + 1
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for i, it := range s.items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it.raw...)
	}
	return append(out, ']')
}

// view returns the callback's argument, a new slice: the entries that decode into T,
// in order, or the single key's one Meta. errSkip when a single key's value does not
// decode into T.
func (s *state[T]) view() ([]Meta[T], error) {
	if !s.list {
		switch {
		case s.one.ok, s.one.empty:
			return []Meta[T]{s.one.meta}, nil
		default:
			return nil, errSkip
		}
	}
	out := make([]Meta[T], 0, len(s.items))
	for i := range s.items {
		if s.items[i].ok {
			out = append(out, s.items[i].meta)
		}
	}
	return out, nil
}
