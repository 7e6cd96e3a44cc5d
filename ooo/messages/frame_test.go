package messages_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/benitogf/pivot/ooo/messages"
	"github.com/benitogf/pivot/ooo/meta"
)

// The helpers have upstream ooo's shape when given raw frames: these assignments only
// compile if a func value of upstream's exact signature can be made from them.
var (
	_ func([]byte, json.RawMessage) (json.RawMessage, error)                = messages.PatchCache
	_ func([]byte, json.RawMessage) (json.RawMessage, meta.Object, error)   = messages.Patch
	_ func([]byte, json.RawMessage) (json.RawMessage, []meta.Object, error) = messages.PatchList
)

// rawBytes is a byte slice type of the caller's own, which the helpers accept too.
type rawBytes []byte

// TestPatchCache_RawFrames folds a sequence of wire frames (as a server writes them:
// a snapshot, then patches computed by Diff) given as raw bytes, and checks each step
// against the same frames given as decoded Messages.
func TestPatchCache_RawFrames(t *testing.T) {
	values := []string{
		`[]`,
		`[{"created":1,"updated":0,"index":"a","path":"t/a","data":{"n":1}}]`,
		`[{"created":1,"updated":2,"index":"a","path":"t/a","data":{"n":2,"s":"x"}},{"created":3,"updated":0,"index":"b","path":"t/b","data":[1,2]}]`,
		`[{"created":3,"updated":0,"index":"b","path":"t/b","data":[1,2]}]`,
	}
	frames := [][]byte{messages.Encode(true, "1", []byte(values[0]))}
	for i := 1; i < len(values); i++ {
		patch, err := messages.Diff([]byte(values[i-1]), []byte(values[i]))
		if err != nil {
			t.Fatalf("diff %d: %v", i, err)
		}
		frames = append(frames, messages.Encode(false, "2", patch))
	}
	frames = append(frames, messages.Encode(false, "3", []byte(`[]`))) // nothing changed

	var fromBytes, fromRaw, fromNamed, fromMessage json.RawMessage
	for i, frame := range frames {
		var err error
		if fromBytes, err = messages.PatchCache(frame, fromBytes); err != nil {
			t.Fatalf("frame %d as []byte: %v", i, err)
		}
		if fromRaw, err = messages.PatchCache(json.RawMessage(frame), fromRaw); err != nil {
			t.Fatalf("frame %d as json.RawMessage: %v", i, err)
		}
		if fromNamed, err = messages.PatchCache(rawBytes(frame), fromNamed); err != nil {
			t.Fatalf("frame %d as a named byte slice: %v", i, err)
		}
		msg, err := messages.DecodeBuffer(frame)
		if err != nil {
			t.Fatal(err)
		}
		if fromMessage, err = messages.PatchCache(msg, fromMessage); err != nil {
			t.Fatalf("frame %d as Message: %v", i, err)
		}
		want := values[min(i, len(values)-1)]
		for name, got := range map[string]json.RawMessage{"[]byte": fromBytes, "RawMessage": fromRaw, "named": fromNamed, "Message": fromMessage} {
			if canonical(t, got) != canonical(t, []byte(want)) {
				t.Fatalf("frame %d as %s: cache %s, want %s", i, name, got, want)
			}
		}
	}

	_, list, err := messages.PatchList(frames[0], nil)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("PatchList(raw empty snapshot) = %v, %v", list, err)
	}
	cache, list, err := messages.PatchList(frames[1], json.RawMessage(values[0]))
	if err != nil || len(list) != 1 || list[0].Path != "t/a" || string(list[0].Data) != `{"n":1}` {
		t.Fatalf("PatchList(raw patch) = %+v, %v", list, err)
	}
	one := messages.Encode(true, "9", []byte(`{"created":1,"updated":0,"index":"a","path":"t/a","data":{"n":1}}`+"\n"))
	_, obj, err := messages.Patch(one, cache)
	if err != nil || obj.Path != "t/a" || obj.Created != 1 {
		t.Fatalf("Patch(raw snapshot) = %+v, %v", obj, err)
	}
}

// TestPatchCache_ErrorKeepsCache: on every kind of failure the cache comes back as it
// was, so a caller that assigns the result keeps its last good value (upstream's
// behaviour), and the error says why.
func TestPatchCache_ErrorKeepsCache(t *testing.T) {
	cache := json.RawMessage(`{"a":1}`)
	cases := map[string]struct {
		frame []byte
		want  error
	}{
		"not JSON":          {[]byte(`{"snapshot":`), nil},
		"no data":           {[]byte(`{"snapshot":true,"version":"1"}`), messages.ErrEmptyData},
		"patch not applied": {messages.Encode(false, "1", []byte(`[{"op":"remove","path":"/nope"}]`)), messages.ErrInvalidPatch},
		"not a patch":       {messages.Encode(false, "1", []byte(`{"op":1}`)), messages.ErrInvalidPatch},
	}
	for name, c := range cases {
		got, err := messages.PatchCache(c.frame, cache)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
		if string(got) != string(cache) {
			t.Errorf("%s: cache %s after the error, want %s", name, got, cache)
		}
		raw, list, err := messages.PatchList(c.frame, cache)
		if err == nil || list == nil || len(list) != 0 || string(raw) != string(cache) {
			t.Errorf("%s: PatchList = %s, %v, %v", name, raw, list, err)
		}
		raw, obj, err := messages.Patch(c.frame, cache)
		if err == nil || obj.Path != "" || string(raw) != string(cache) {
			t.Errorf("%s: Patch = %s, %+v, %v", name, raw, obj, err)
		}
	}
	// A frame that applies but is not an object: the new value comes back with the error.
	raw, obj, err := messages.Patch(messages.Encode(true, "1", []byte(`[1]`)), cache)
	if err == nil || obj.Path != "" || string(raw) != `[1]` {
		t.Errorf("Patch of a list = %s, %+v, %v", raw, obj, err)
	}
}
