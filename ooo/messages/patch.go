package messages

import (
	"bytes"
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/benitogf/pivot/ooo/meta"
)

// PatchCache folds msg into cache, the value the client held before msg, and returns the
// new value. A snapshot replaces the cache; an empty patch ("[]") leaves it as it is;
// any other patch is applied with RFC 6902 semantics. cache is not modified. A patch
// that does not decode or does not apply is ErrInvalidPatch.
func PatchCache(msg Message, cache json.RawMessage) (json.RawMessage, error) {
	if len(msg.Data) == 0 {
		return nil, ErrEmptyData
	}
	if msg.Snapshot {
		return append(json.RawMessage(nil), msg.Data...), nil
	}
	if isEmptyPatch(msg.Data) {
		return cache, nil
	}
	patch, err := jsonpatch.DecodePatch(msg.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrInvalidPatch, err)
	}
	return apply(patch, cache)
}

// apply runs patch on doc. Operations that replace the whole document (path "") are
// done here, because the patch library only applies them to objects.
func apply(patch jsonpatch.Patch, doc []byte) ([]byte, error) {
	start := 0
	for i, op := range patch {
		path, err := op.Path()
		if err != nil || path != "" || (op.Kind() != "add" && op.Kind() != "replace") {
			continue
		}
		value, ok := op["value"]
		if !ok {
			return nil, fmt.Errorf("%w: %s of the whole document without a value", ErrInvalidPatch, op.Kind())
		}
		// The operations before this one are checked (a bad one fails the patch), but
		// their result is replaced whole.
		if _, err := applyRun(patch[start:i], doc); err != nil {
			return nil, err
		}
		if value == nil {
			doc = []byte("null")
		} else {
			doc = append([]byte(nil), *value...)
		}
		start = i + 1
	}
	return applyRun(patch[start:], doc)
}

func applyRun(run jsonpatch.Patch, doc []byte) ([]byte, error) {
	if len(run) == 0 {
		return doc, nil
	}
	out, err := run.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: apply: %v", ErrInvalidPatch, err)
	}
	return out, nil
}

// Patch folds msg into cache like PatchCache and decodes the result as one stored
// object, for a subscription to a single key.
func Patch(msg Message, cache json.RawMessage) (json.RawMessage, meta.Object, error) {
	out, err := PatchCache(msg, cache)
	if err != nil {
		return nil, meta.Object{}, err
	}
	obj, err := meta.Decode(out)
	if err != nil {
		return nil, meta.Object{}, fmt.Errorf("messages: patch: %w", err)
	}
	return out, obj, nil
}

// PatchList folds msg into cache like PatchCache and decodes the result as a list of
// stored objects, for a subscription to a glob. An empty list is a non-nil empty slice.
func PatchList(msg Message, cache json.RawMessage) (json.RawMessage, []meta.Object, error) {
	out, err := PatchCache(msg, cache)
	if err != nil {
		return nil, nil, err
	}
	list, err := meta.DecodeList(out)
	if err != nil {
		return nil, nil, fmt.Errorf("messages: patch list: %w", err)
	}
	if list == nil {
		list = []meta.Object{}
	}
	return out, list, nil
}

func isEmptyPatch(data []byte) bool {
	d := bytes.TrimSpace(data)
	if len(d) < 2 || d[0] != '[' || d[len(d)-1] != ']' {
		return false
	}
	return len(bytes.TrimSpace(d[1:len(d)-1])) == 0
}
