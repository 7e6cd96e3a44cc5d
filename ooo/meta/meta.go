// Package meta holds the stored object format of ooo: the envelope that wraps every
// value with its creation and update stamps, index and path.
package meta

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/benitogf/pivot/ooo/internal/jsonraw"
)

// Object is one stored entry. Created is the stamp of the first write and never changes
// afterwards; Updated is 0 until the entry is written again. Both are nanosecond stamps
// from the storage's hybrid logical clock. Index is the last path segment of Path.
type Object struct {
	Created int64           `json:"created"` // stamp of the first write
	Updated int64           `json:"updated"` // stamp of the last write; 0 if written once
	Index   string          `json:"index"`   // last segment of Path
	Path    string          `json:"path"`    // the full key
	Data    json.RawMessage `json:"data"`    // the value, one JSON value
}

// Version is the entry's position in time: the later of Created and Updated.
func (o Object) Version() int64 {
	if o.Updated > o.Created {
		return o.Updated
	}
	return o.Created
}

// EmptyObject is what a read of a missing key yields on the wire. Handlers and clients
// compare against it byte for byte, so its spacing is part of the format.
const EmptyObject = `{ "created": 0, "updated": 0, "index": "", "data": {} }`

// New encodes o the way storages keep it: compact JSON followed by a newline, with the
// fields in Object's order and Data exactly as given (storages keep it compacted).
// Unlike encoding/json it does not escape '<', '>' and '&' nor re-scan Data, so a read
// returns the bytes that were written, and a value of megabytes costs one copy.
func New(o *Object) []byte {
	out := make([]byte, 0, len(o.Data)+len(o.Path)+len(o.Index)+96)
	out = append(out, `{"created":`...)
	out = strconv.AppendInt(out, o.Created, 10)
	out = append(out, `,"updated":`...)
	out = strconv.AppendInt(out, o.Updated, 10)
	out = append(out, `,"index":`...)
	out = jsonraw.AppendString(out, o.Index)
	out = append(out, `,"path":`...)
	out = jsonraw.AppendString(out, o.Path)
	out = append(out, `,"data":`...)
	if len(o.Data) == 0 {
		out = append(out, "null"...)
	} else {
		out = append(out, o.Data...)
	}
	return append(out, "}\n"...)
}

// Encode marshals v to JSON.
func Encode(v any) ([]byte, error) {
	return json.Marshal(v)
}

// Decode parses one stored object.
func Decode(data []byte) (Object, error) {
	var o Object
	if err := json.Unmarshal(data, &o); err != nil {
		return Object{}, fmt.Errorf("meta: decode object: %w", err)
	}
	return o, nil
}

// DecodeFromReader parses one stored object from r.
func DecodeFromReader(r io.Reader) (Object, error) {
	var o Object
	if err := json.NewDecoder(r).Decode(&o); err != nil {
		return Object{}, fmt.Errorf("meta: decode object: %w", err)
	}
	return o, nil
}

// DecodeList parses a JSON array of stored objects.
func DecodeList(data []byte) ([]Object, error) {
	var list []Object
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("meta: decode list: %w", err)
	}
	return list, nil
}

// DecodeListFromReader parses a JSON array of stored objects from r.
func DecodeListFromReader(r io.Reader) ([]Object, error) {
	var list []Object
	if err := json.NewDecoder(r).Decode(&list); err != nil {
		return nil, fmt.Errorf("meta: decode list: %w", err)
	}
	return list, nil
}

// SortAsc orders a list by Created, oldest first; equal stamps fall back to Path so the
// order is the same on every replica.
func SortAsc(list []Object) func(i, j int) bool {
	return func(i, j int) bool {
		if list[i].Created != list[j].Created {
			return list[i].Created < list[j].Created
		}
		return list[i].Path < list[j].Path
	}
}

// SortDesc orders a list by Created, newest first, with Path as the tie-break.
func SortDesc(list []Object) func(i, j int) bool {
	return func(i, j int) bool {
		if list[i].Created != list[j].Created {
			return list[i].Created > list[j].Created
		}
		return list[i].Path > list[j].Path
	}
}

// Sort orders list in place with SortAsc.
func Sort(list []Object) {
	sort.Slice(list, SortAsc(list))
}
