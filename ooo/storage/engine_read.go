package storage

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// Keys returns {"keys":[...]}: every live key, sorted case-insensitively (then
// byte-wise, so the order is total). It does not call BeforeRead.
func (e *engine) Keys() ([]byte, error) {
	if err := e.enter(); err != nil {
		return nil, fmt.Errorf("storage: keys: %w", err)
	}
	defer e.mu.RUnlock()
	keys := []string{}
	err := e.be.view(func(r reader) error {
		return scanLive(r, "", func(c Change) { keys = append(keys, c.Key) })
	})
	if err != nil {
		return nil, fmt.Errorf("storage: keys: %w", err)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := strings.ToLower(keys[i]), strings.ToLower(keys[j])
		if a != b {
			return a < b
		}
		return keys[i] < keys[j]
	})
	out, err := json.Marshal(struct {
		Keys []string `json:"keys"`
	}{keys})
	if err != nil {
		return nil, fmt.Errorf("storage: keys: %w", err)
	}
	return out, nil
}

// KeysRange returns the live keys matching the glob path whose Created is in [from, to],
// sorted. It does not call BeforeRead.
func (e *engine) KeysRange(path string, from, to int64) ([]string, error) {
	if err := checkGlob(path); err != nil {
		return nil, fmt.Errorf("storage: keys range %q: %w", path, err)
	}
	if to < from {
		return nil, fmt.Errorf("storage: keys range %q [%d, %d]: %w", path, from, to, ErrInvalidRange)
	}
	objs, err := e.list(path)
	if err != nil {
		return nil, fmt.Errorf("storage: keys range %q: %w", path, err)
	}
	keys := []string{}
	for _, o := range objs {
		if o.Created >= from && o.Created <= to {
			keys = append(keys, o.Path)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Get calls BeforeRead(k), then returns the stored object of the key k (a meta.Object
// encoded as JSON and followed by a newline; ErrNotFound when missing or deleted), or
// for a glob a JSON array of the matching objects sorted by Created ascending ("[]"
// when none match). The returned slice is the caller's.
func (e *engine) Get(k string) ([]byte, error) {
	return e.getSorted(k, meta.SortAsc)
}

// GetDescending is Get with lists sorted by Created descending.
func (e *engine) GetDescending(k string) ([]byte, error) {
	return e.getSorted(k, meta.SortDesc)
}

func (e *engine) getSorted(k string, order func([]meta.Object) func(i, j int) bool) ([]byte, error) {
	if !key.IsValid(k) {
		return nil, fmt.Errorf("storage: get %q: %w", k, ErrInvalidPath)
	}
	e.beforeRead(k)
	return e.readSorted(k, order)
}

// readSorted is getSorted without the BeforeRead call.
func (e *engine) readSorted(k string, order func([]meta.Object) func(i, j int) bool) ([]byte, error) {
	if !key.IsValid(k) {
		return nil, fmt.Errorf("storage: get %q: %w", k, ErrInvalidPath)
	}
	if !key.IsGlob(k) {
		return e.get(k)
	}
	objs, err := e.list(k)
	if err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", k, err)
	}
	sort.Slice(objs, order(objs))
	out, err := json.Marshal(objs)
	if err != nil {
		return nil, fmt.Errorf("storage: get %q: encode list: %w", k, err)
	}
	return out, nil
}

// get reads one key without calling BeforeRead.
func (e *engine) get(k string) ([]byte, error) {
	if err := e.enter(); err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", k, err)
	}
	defer e.mu.RUnlock()
	var out []byte
	err := e.be.view(func(r reader) error {
		raw, ok, err := r.object(k)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		out = raw
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", k, err)
	}
	return out, nil
}

// list returns the live objects matching the glob pattern, in no particular order.
func (e *engine) list(pattern string) ([]meta.Object, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	defer e.mu.RUnlock()
	objs := []meta.Object{}
	err := e.be.view(func(r reader) error {
		return scanLive(r, pattern, func(c Change) { objs = append(objs, objectOf(c)) })
	})
	return objs, err
}

// scanLive calls fn for every live record (not a tombstone) whose key matches the glob
// pattern ("" matches every key), in no particular order.
func scanLive(r reader, pattern string, fn func(c Change)) error {
	return r.scan(pattern, func(c Change) error {
		if !c.Deleted {
			fn(c)
		}
		return nil
	})
}

// objectOf is the stored object of a live record: the form reads return it in.
func objectOf(c Change) meta.Object {
	return meta.Object{Created: c.Created, Updated: c.Updated, Index: key.LastIndex(c.Key), Path: c.Key, Data: c.Data}
}

// GetN calls BeforeRead(path), then returns the newest limit objects matching the glob
// path, newest first.
func (e *engine) GetN(path string, limit int) ([]meta.Object, error) {
	return e.getN(path, limit, meta.SortDesc, nil)
}

// GetNAscending calls BeforeRead(path), then returns the oldest limit objects matching
// the glob path, oldest first.
func (e *engine) GetNAscending(path string, limit int) ([]meta.Object, error) {
	return e.getN(path, limit, meta.SortAsc, nil)
}

// GetNRange calls BeforeRead(path), then returns up to limit objects matching the glob
// path whose last segment, read as hex (0 when it is not hex), is in [from, to], newest
// first. to < from is ErrInvalidRange.
func (e *engine) GetNRange(path string, limit int, from, to int64) ([]meta.Object, error) {
	if to < from {
		return nil, fmt.Errorf("storage: get range %q [%d, %d]: %w", path, from, to, ErrInvalidRange)
	}
	in := func(o meta.Object) bool {
		v := key.Decode(o.Index)
		return v >= from && v <= to
	}
	return e.getN(path, limit, meta.SortDesc, in)
}

func (e *engine) getN(path string, limit int, order func([]meta.Object) func(i, j int) bool, keep func(meta.Object) bool) ([]meta.Object, error) {
	if err := checkGlob(path); err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", path, err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("storage: get %q limit %d: %w", path, limit, ErrInvalidLimit)
	}
	e.beforeRead(path)
	objs, err := e.list(path)
	if err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", path, err)
	}
	if keep != nil {
		kept := objs[:0]
		for _, o := range objs {
			if keep(o) {
				kept = append(kept, o)
			}
		}
		objs = kept
	}
	sort.Slice(objs, order(objs))
	if len(objs) > limit {
		objs = objs[:limit]
	}
	for i := range objs {
		objs[i].Data = append(json.RawMessage(nil), objs[i].Data...)
	}
	return objs, nil
}

// checkGlob accepts a valid key that contains a '*'.
func checkGlob(path string) error {
	if !key.IsValid(path) || !key.IsGlob(path) {
		return ErrInvalidPattern
	}
	return nil
}
