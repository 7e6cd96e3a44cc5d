package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// mergePatch merges the JSON object patch into the JSON value doc and returns the merged
// document (compact, object keys sorted) and whether anything changed. The rules:
//
//   - an object patched onto an object merges recursively: keys the patch does not
//     mention stay, new keys are added, mentioned keys are merged in turn;
//   - an object patched onto an array addresses its elements by decimal index ("1");
//     indexes that are not in the array are ignored;
//   - an object patched onto a scalar or null replaces it;
//   - a scalar, array or null replaces a scalar, array or null; null does not delete;
//   - a scalar, array or null patched onto an object is ignored.
//
// A change is any leaf whose value differs or any key that was not there before, whatever
// its value (upstream ooo does not count a new object-valued key; we do). A patch that is
// not a JSON object is refused with ErrInvalidData.
func mergePatch(doc, patch []byte) (merged []byte, changed bool, err error) {
	var p any
	if err := decodeJSON(patch, &p); err != nil {
		return nil, false, fmt.Errorf("storage: patch body: %w", ErrInvalidData)
	}
	po, ok := p.(map[string]any)
	if !ok {
		return nil, false, fmt.Errorf("storage: patch body must be a JSON object: %w", ErrInvalidData)
	}
	var d any
	if err := decodeJSON(doc, &d); err != nil {
		return nil, false, fmt.Errorf("storage: stored data: %w", ErrInvalidData)
	}
	out, changed := mergeObject(d, po)
	if !changed {
		return nil, false, nil
	}
	merged, err = encodeJSON(out)
	if err != nil {
		return nil, false, fmt.Errorf("storage: encode merged data: %w", err)
	}
	return merged, true, nil
}

func mergeObject(dst any, patch map[string]any) (any, bool) {
	switch d := dst.(type) {
	case map[string]any:
		changed := false
		for k, pv := range patch {
			dv, ok := d[k]
			if !ok {
				d[k] = pv
				changed = true
				continue
			}
			nv, c := mergeValue(dv, pv)
			d[k] = nv
			changed = changed || c
		}
		return d, changed
	case []any:
		changed := false
		for k, pv := range patch {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(d) {
				continue
			}
			nv, c := mergeValue(d[i], pv)
			d[i] = nv
			changed = changed || c
		}
		return d, changed
	default:
		return patch, true
	}
}

func mergeValue(dst, patch any) (any, bool) {
	if po, ok := patch.(map[string]any); ok {
		return mergeObject(dst, po)
	}
	if _, ok := dst.(map[string]any); ok {
		return dst, false
	}
	return patch, !reflect.DeepEqual(dst, patch)
}

// decodeJSON decodes one JSON value keeping numbers exact and refusing trailing data.
func decodeJSON(data []byte, v any) error {
	if !json.Valid(data) {
		return fmt.Errorf("not a single JSON value")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// encodeJSON encodes v compactly, object keys sorted, without HTML escaping.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// normalizeData checks that data is one JSON value and returns it compacted. Storages
// keep data in this form so that every replica holds the same bytes for the same value.
func normalizeData(data []byte) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmptyData
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("storage: %v: %w", err, ErrInvalidData)
	}
	return buf.Bytes(), nil
}

// MergePatch is the merge Patch applies, for storages built outside this package (such
// as the natshub module's): it merges the JSON object patch into the JSON value doc and
// returns the merged data, compact with object keys sorted, and whether anything
// changed. A patch that is not a JSON object, or a doc that is not JSON, is
// ErrInvalidData.
func MergePatch(doc, patch []byte) (merged []byte, changed bool, err error) {
	return mergePatch(doc, patch)
}

// NormalizeData is the check Set applies to data, for storages built outside this
// package: one JSON value (ErrEmptyData when blank, ErrInvalidData otherwise), returned
// compacted.
func NormalizeData(data []byte) ([]byte, error) {
	return normalizeData(data)
}
