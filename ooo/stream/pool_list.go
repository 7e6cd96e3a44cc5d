package stream

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/benitogf/pivot/ooo/internal/jsonraw"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// emptyObject is a single-key pool's value while its key is missing (what a read of a
// missing key gives clients).
const emptyObject = meta.EmptyObject

// encodeObject is a single key's value as a read returns it.
func encodeObject(o *meta.Object) []byte { return meta.New(o) }

// encodeEntry is one entry of a glob's value as a list read writes it: encoding/json's
// encoding of the stored object, fields in the order created, updated, index, path,
// data.
func encodeEntry(o *meta.Object) ([]byte, error) { return json.Marshal(o) }

// listOf builds the ordered entries of a glob's value as a list read returned it. It
// reports false when data is not a list of stored objects in the read order, which
// then cannot be followed from changes.
func listOf(data []byte) (*orderTree, bool) {
	els, err := jsonraw.Elements(data)
	if err != nil {
		return nil, false
	}
	t := newOrderTree()
	var last *entry
	for _, raw := range els {
		f, err := jsonraw.Members(raw, "created", "path")
		if err != nil || f[0] == nil || f[1] == nil {
			return nil, false
		}
		created, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return nil, false
		}
		var path string
		if err := json.Unmarshal(f[1], &path); err != nil || t.find(path) != nil {
			return nil, false
		}
		e := entry{created: created, path: path, raw: raw}
		if last != nil && !last.before(created, path) {
			return nil, false
		}
		t.insert(e)
		last = &e
	}
	return t, true
}

// applyChange applies ch to the list t and appends to patch the operations that take a
// client holding t's old value to its new one, each at the index it has when applied
// in order. It reports false, with t and patch unchanged, when the written object
// cannot be encoded.
func applyChange(t *orderTree, ch Change, patch *jsonraw.Patch) bool {
	switch {
	case ch.Deleted && key.IsGlob(ch.Key):
		var gone []string
		for path := range t.byPath {
			if key.Match(ch.Key, path) {
				gone = append(gone, path)
			}
		}
		for _, path := range gone {
			patch.Remove(jsonraw.IndexPath("", t.remove(path)))
		}
	case ch.Deleted:
		if pos := t.remove(ch.Key); pos >= 0 {
			patch.Remove(jsonraw.IndexPath("", pos))
		}
	default:
		raw, err := encodeEntry(ch.Object)
		if err != nil {
			return false
		}
		old := t.find(ch.Key)
		if old != nil && old.created == ch.Object.Created {
			if bytes.Equal(old.raw, raw) {
				return true
			}
			prev := old.raw
			path := jsonraw.IndexPath("", t.replace(ch.Key, raw))
			if patch.Diff(path, prev, raw) != nil {
				patch.Replace(path, raw)
			}
			return true
		}
		if old != nil {
			patch.Remove(jsonraw.IndexPath("", t.remove(ch.Key)))
		}
		patch.Add(jsonraw.IndexPath("", t.insert(entry{created: ch.Object.Created, path: ch.Key, raw: raw})), raw)
	}
	return true
}
