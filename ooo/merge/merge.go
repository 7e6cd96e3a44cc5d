// Package merge merges a JSON object into a JSON document the way an ooo PATCH does, and
// reports what changed. It has upstream ooo's merge API (Merge, MergeBytes,
// MergeBytesIndent, Info); its rules are those of package storage's Patch:
//
//   - an object merged onto an object merges recursively: members the patch does not
//     mention stay, new members are added, mentioned members are merged in turn;
//   - an object merged onto an array addresses its elements by decimal index ("1");
//     indexes that are not in the array are ignored;
//   - an object merged onto a scalar or null replaces it;
//   - a scalar, array or null replaces a scalar, array or null; null does not delete;
//   - a scalar, array or null merged onto an object is ignored, and reported in
//     Info.Errors (an error wrapping ErrPatchObject);
//   - a patch that is not an object changes nothing.
//
// Numbers are kept exact (decoded as json.Number), so 64-bit stamps keep every digit.
package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// Errors returned or reported by this package. Test for them with errors.Is.
var (
	// ErrDataJSON: the document given to MergeBytes is not one JSON value.
	ErrDataJSON = errors.New("merge: error in data JSON")
	// ErrPatchJSON: the patch given to MergeBytes is not one JSON value.
	ErrPatchJSON = errors.New("merge: error in patch JSON")
	// ErrMergedJSON: the merged document could not be encoded.
	ErrMergedJSON = errors.New("merge: error writing merged JSON")
	// ErrPatchObject: a non-object patch value met an object, which it may not replace.
	// It is reported in Info.Errors; the merge goes on without it.
	ErrPatchObject = errors.New("merge: patch value must be object")
)

// Info tells what a merge did.
type Info struct {
	// Errors are the non-fatal problems met: each wraps ErrPatchObject and names the
	// member whose object was kept.
	Errors []error
	// Replaced maps the path of every value the merge set to that value: a member that
	// was added (whatever its value, objects included) or a leaf whose value changed.
	// A path joins member names and array indexes with '.', as "a.b" or "list.1.name".
	// Empty when the merge changed nothing.
	Replaced map[string]any
}

// Merge merges patch into data and returns the result. data and patch are decoded JSON
// values (map[string]any, []any, string, float64 or json.Number, bool, nil); data's maps
// and slices are updated in place and may be shared with the result.
func Merge(data, patch any) (any, *Info) {
	info := &Info{Replaced: make(map[string]any)}
	po, ok := patch.(map[string]any)
	if !ok {
		return data, info
	}
	return info.object(data, po, nil), info
}

// object merges the object patch onto dst, found at path.
func (info *Info) object(dst any, patch map[string]any, path []string) any {
	switch d := dst.(type) {
	case map[string]any:
		for k, pv := range patch {
			at := append(path[:len(path):len(path)], k)
			dv, ok := d[k]
			if !ok {
				d[k] = pv
				info.Replaced[strings.Join(at, ".")] = pv
				continue
			}
			d[k] = info.value(dv, pv, at)
		}
		return d
	case []any:
		for k, pv := range patch {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(d) {
				continue
			}
			d[i] = info.value(d[i], pv, append(path[:len(path):len(path)], k))
		}
		return d
	default:
		info.Replaced[strings.Join(path, ".")] = patch
		return patch
	}
}

// value merges the patch value pv onto the document value dst, found at path.
func (info *Info) value(dst, pv any, path []string) any {
	if po, ok := pv.(map[string]any); ok {
		return info.object(dst, po, path)
	}
	if _, ok := dst.(map[string]any); ok {
		info.Errors = append(info.Errors, fmt.Errorf("%w for key %q", ErrPatchObject, strings.Join(path, ".")))
		return dst
	}
	if !reflect.DeepEqual(dst, pv) {
		info.Replaced[strings.Join(path, ".")] = pv
	}
	return pv
}

// MergeBytes merges the JSON patch into the JSON document data and returns the merged
// document, compact with object members sorted by name and '<', '>', '&' unescaped.
// A document or patch that is not one JSON value is an error wrapping ErrDataJSON or
// ErrPatchJSON.
func MergeBytes(data, patch []byte) ([]byte, *Info, error) {
	return mergeBytes(data, patch, "", "")
}

// MergeBytesIndent is MergeBytes with the result indented as json.MarshalIndent does
// with prefix and indent.
func MergeBytesIndent(data, patch []byte, prefix, indent string) ([]byte, *Info, error) {
	return mergeBytes(data, patch, prefix, indent)
}

func mergeBytes(data, patch []byte, prefix, indent string) ([]byte, *Info, error) {
	var d, p any
	if err := decode(data, &d); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrDataJSON, err)
	}
	if err := decode(patch, &p); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrPatchJSON, err)
	}
	merged, info := Merge(d, p)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, indent)
	if err := enc.Encode(merged); err != nil {
		return nil, info, fmt.Errorf("%w: %w", ErrMergedJSON, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), info, nil
}

// decode reads exactly one JSON value, numbers as json.Number.
func decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}
