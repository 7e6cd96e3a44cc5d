package messages_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo/messages"
)

// canonical re-encodes a JSON value with sorted object keys and exact numbers, so two
// documents that mean the same compare equal byte for byte.
func canonical(tb testing.TB, data []byte) string {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("canonical: %v (%q)", err, data)
	}
	out, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("canonical: %v", err)
	}
	return string(out)
}

func TestEncode_FieldOrder(t *testing.T) {
	got := string(messages.Encode(true, "1a2b", []byte(`{"a":1}`)))
	want := `{"snapshot":true,"version":"1a2b","data":{"a":1}}`
	if got != want {
		t.Fatalf("Encode = %s, want %s", got, want)
	}
	got = string(messages.Encode(false, "ff", []byte(`[]`)))
	want = `{"snapshot":false,"version":"ff","data":[]}`
	if got != want {
		t.Fatalf("Encode = %s, want %s", got, want)
	}
	msg, err := messages.DecodeBuffer([]byte(got))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Snapshot || msg.Version != "ff" || string(msg.Data) != "[]" {
		t.Fatalf("round trip = %+v", msg)
	}
}

func TestDecodeBuffer_Errors(t *testing.T) {
	if _, err := messages.DecodeBuffer([]byte(`{"snapshot":true,"version":"1"}`)); !errors.Is(err, messages.ErrEmptyData) {
		t.Fatalf("missing data: err = %v, want ErrEmptyData", err)
	}
	if _, err := messages.DecodeBuffer([]byte(`{"snapshot":tru`)); err == nil {
		t.Fatal("malformed message decoded without error")
	}
}

func TestDecodeReader(t *testing.T) {
	cases := []struct {
		name, body, want string
		err              error
	}{
		{"object", `{"a":1}`, `{"a":1}`, nil},
		{"spaces", " \n {\"a\": [1, 2]} \t\n", `{"a": [1, 2]}`, nil},
		{"array", `[1,"x"]`, `[1,"x"]`, nil},
		{"string", `"hi"`, `"hi"`, nil},
		{"number", `-12.5e3`, `-12.5e3`, nil},
		{"null", `null`, `null`, nil},
		{"bool", `true`, `true`, nil},
		{"empty", ``, ``, messages.ErrEmptyBody},
		{"blank", " \n\t", ``, messages.ErrEmptyBody},
		{"malformed", `{"a":`, ``, messages.ErrInvalidJSON},
		{"trailing value", `{"a":1} {"b":2}`, ``, messages.ErrInvalidJSON},
		{"trailing garbage", `{"a":1}x`, ``, messages.ErrInvalidJSON},
		{"two numbers", `1 2`, ``, messages.ErrInvalidJSON},
		{"bare word", `hello`, ``, messages.ErrInvalidJSON},
		{"vertical tab is not JSON space", "\v0", ``, messages.ErrInvalidJSON},
		{"form feed is not JSON space", "1\f", ``, messages.ErrInvalidJSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := messages.DecodeReader(strings.NewReader(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeReader_KeepsReaderError(t *testing.T) {
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(`{"a":"0123456789"}`)), 5)
	_, err := messages.DecodeReader(body)
	var tooBig *http.MaxBytesError
	if !errors.As(err, &tooBig) {
		t.Fatalf("err = %v, want a *http.MaxBytesError inside", err)
	}
}

func TestDiff_PatchCache_RoundTrip(t *testing.T) {
	pairs := [][2]string{
		{`{"a":1}`, `{"a":1}`},
		{`{"a":1}`, `{"a":2}`},
		{`{"a":1}`, `{"b":2,"a":1}`},
		{`{"a":{"b":[1,2,3]}}`, `{"a":{"b":[1]}}`},
		{`[]`, `[{"created":1795626763539324221,"updated":0,"index":"x","path":"t/x","data":{}}]`},
		{`[{"i":1},{"i":2},{"i":3},{"i":4}]`, `[{"i":1}]`},
		{`[{"i":1}]`, `[{"i":0},{"i":1},{"i":2}]`},
		{`{"created":1795626763539324221,"updated":0}`, `{"created":1795626763539324221,"updated":1795626763539324999}`},
		{`{"a":"x/y~z"}`, `{"a/b":"x","c~d":null}`},
		{`"string"`, `{"now":"object"}`},
		{`[1,2]`, `null`},
	}
	for _, p := range [][2]string{{`"string"`, `{"now":"object"}`}, {`{"":[1]}`, `{"":[]}`}, {`[1]`, `{}`}} {
		if _, err := messages.Diff([]byte(p[0]), []byte(p[1])); !errors.Is(err, messages.ErrNeedSnapshot) {
			t.Fatalf("Diff(%s, %s): err = %v, want ErrNeedSnapshot", p[0], p[1], err)
		}
	}
	for _, p := range pairs {
		from, to := []byte(p[0]), []byte(p[1])
		patch, err := messages.Diff(from, to)
		if errors.Is(err, messages.ErrNeedSnapshot) {
			continue
		}
		if err != nil {
			t.Fatalf("Diff(%s, %s): %v", from, to, err)
		}
		got, err := messages.PatchCache(messages.Message{Version: "1", Data: patch}, from)
		if err != nil {
			t.Fatalf("PatchCache(%s) on %s: %v", patch, from, err)
		}
		if canonical(t, got) != canonical(t, to) {
			t.Fatalf("%s + %s = %s, want %s", from, patch, got, to)
		}
		if p[0] == p[1] && string(patch) != "[]" {
			t.Fatalf("Diff of equal values = %s, want []", patch)
		}
	}
}

func TestPatchCache_SnapshotAndEmptyPatch(t *testing.T) {
	cache := json.RawMessage(`{"a":1}`)
	got, err := messages.PatchCache(messages.Message{Snapshot: true, Version: "2", Data: json.RawMessage(`{"b":2}`)}, cache)
	if err != nil || string(got) != `{"b":2}` {
		t.Fatalf("snapshot: got %s, %v", got, err)
	}
	got, err = messages.PatchCache(messages.Message{Version: "3", Data: json.RawMessage(" [ ] ")}, cache)
	if err != nil || string(got) != `{"a":1}` {
		t.Fatalf("empty patch: got %s, %v", got, err)
	}
	if _, err := messages.PatchCache(messages.Message{Data: json.RawMessage(`[{"op":"remove","path":"/nope"}]`)}, cache); !errors.Is(err, messages.ErrInvalidPatch) {
		t.Fatalf("bad patch: err = %v, want ErrInvalidPatch", err)
	}
	if _, err := messages.PatchCache(messages.Message{Data: json.RawMessage(`{"op":1}`)}, cache); !errors.Is(err, messages.ErrInvalidPatch) {
		t.Fatalf("not a patch: err = %v, want ErrInvalidPatch", err)
	}
	if _, err := messages.PatchCache(messages.Message{}, cache); !errors.Is(err, messages.ErrEmptyData) {
		t.Fatalf("no data: err = %v, want ErrEmptyData", err)
	}
}

func TestPatch_And_PatchList(t *testing.T) {
	obj := `{"created":5,"updated":0,"index":"a","path":"t/a","data":{"n":1}}`
	_, o, err := messages.Patch(messages.Message{Snapshot: true, Data: json.RawMessage(obj + "\n")}, nil)
	if err != nil || o.Index != "a" || o.Created != 5 || string(o.Data) != `{"n":1}` {
		t.Fatalf("Patch = %+v, %v", o, err)
	}
	raw, list, err := messages.PatchList(messages.Message{Snapshot: true, Data: json.RawMessage(`[]`)}, nil)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("PatchList(empty) = %v (nil=%v), %v", list, list == nil, err)
	}
	_, list, err = messages.PatchList(messages.Message{Data: json.RawMessage(`[{"op":"add","path":"/-","value":` + obj + `}]`)}, raw)
	if err != nil || len(list) != 1 || list[0].Path != "t/a" {
		t.Fatalf("PatchList(add) = %+v, %v", list, err)
	}
	if _, _, err := messages.PatchList(messages.Message{Snapshot: true, Data: json.RawMessage(`{}`)}, nil); err == nil {
		t.Fatal("PatchList accepted an object")
	}
}
