package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/benitogf/pivot/ooo/meta"
)

// Frame is what the patch helpers accept as a message: a decoded Message, or the raw
// bytes of a websocket frame (any byte slice type, such as json.RawMessage), which are
// decoded with DecodeBuffer first. Upstream ooo's helpers take the raw frame; taking
// either keeps both upstream's calls and ours compiling unchanged.
type Frame interface {
	Message | ~[]byte
}

// PatchCache folds msg into cache, the value the client held before msg, and returns the
// new value. A snapshot replaces the cache; an empty patch ("[]") leaves it as it is;
// any other patch is applied with RFC 6902 semantics. cache is not modified. On an error
// the cache is returned unchanged with it, as upstream does, so a caller that keeps the
// result still holds the last good value: a frame that does not decode is
// ErrEmptyData or a decode error, a patch that does not decode or does not apply is
// ErrInvalidPatch.
func PatchCache[F Frame](msg F, cache json.RawMessage) (json.RawMessage, error) {
	m, err := frameMessage(msg)
	if err != nil {
		return cache, err
	}
	out, err := patchCache(m, cache)
	if err != nil {
		return cache, err
	}
	return out, nil
}

// frameMessage decodes a raw frame, or returns a Message as it is.
func frameMessage[F Frame](f F) (Message, error) {
	switch v := any(f).(type) {
	case Message:
		return v, nil
	case []byte:
		return DecodeBuffer(v)
	case json.RawMessage:
		return DecodeBuffer(v)
	default:
		// Another named byte slice type: the constraint admits only those and Message.
		return DecodeBuffer(reflect.ValueOf(f).Bytes())
	}
}

func patchCache(msg Message, cache json.RawMessage) (json.RawMessage, error) {
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
// object, for a subscription to a single key. When the result is not one object it is
// returned with the error, with a zero Object.
func Patch[F Frame](msg F, cache json.RawMessage) (json.RawMessage, meta.Object, error) {
	out, err := PatchCache(msg, cache)
	if err != nil {
		return out, meta.Object{}, err
	}
	obj, err := meta.Decode(out)
	if err != nil {
		return out, meta.Object{}, fmt.Errorf("messages: patch: %w", err)
	}
	return out, obj, nil
}

// PatchList folds msg into cache like PatchCache and decodes the result as a list of
// stored objects, for a subscription to a glob. The list is never nil: empty when the
// list is, or on an error (returned with the value PatchCache gave).
func PatchList[F Frame](msg F, cache json.RawMessage) (json.RawMessage, []meta.Object, error) {
	out, err := PatchCache(msg, cache)
	if err != nil {
		return out, []meta.Object{}, err
	}
	list, err := meta.DecodeList(out)
	if err != nil {
		return out, []meta.Object{}, fmt.Errorf("messages: patch list: %w", err)
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
