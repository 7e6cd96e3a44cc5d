package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/benitogf/pivot/ooo/meta"
)

// Meta is one stored entry with its data decoded into T. Created and Updated are the
// nanosecond stamps of the storage's clock (0 for a missing key); Index is the last
// segment of the entry's key.
type Meta[T any] struct {
	Created int64  `json:"created"` // stamp of the first write; 0 for a missing key
	Updated int64  `json:"updated"` // stamp of the last write; 0 if written once
	Index   string `json:"index"`   // last segment of the key
	Data    T      `json:"data"`    // the value
}

// OnMessageCallback receives the whole current state after each message: the list of a
// glob subscription (an empty, non-nil slice when it is empty) or a one-element slice for
// a single key. It runs on the subscription's reader goroutine; the slice is the
// callback's to keep.
type OnMessageCallback[T any] func([]Meta[T])

// errSkip marks a single value that does not decode into T: the message is dropped, the
// connection is kept.
var errSkip = errors.New("client: value does not decode into the callback's type")

// FromObject decodes a stored object into a Meta[T]. Data that does not decode into T
// is an error; an object without data leaves Data at T's zero value.
func FromObject[T any](o meta.Object) (Meta[T], error) {
	m := Meta[T]{Created: o.Created, Updated: o.Updated, Index: o.Index}
	if len(o.Data) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(o.Data, &m.Data); err != nil {
		return Meta[T]{}, fmt.Errorf("client: decode data of %q: %w", o.Path, err)
	}
	return m, nil
}

// FromList decodes stored objects into Meta[T], in order, skipping those whose data does
// not decode into T (as upstream ooo does). The result is never nil.
func FromList[T any](list []meta.Object) []Meta[T] {
	out := make([]Meta[T], 0, len(list))
	for _, o := range list {
		if m, err := FromObject[T](o); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// decodeState turns a whole value into the callback's argument.
func decodeState[T any](raw json.RawMessage) ([]Meta[T], error) {
	var s state[T]
	if err := s.reset(raw); err != nil {
		return nil, err
	}
	return s.view()
}

func isArray(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '['
}
