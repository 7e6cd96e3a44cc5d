package meta_test

import (
	"bytes"
	"sort"
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo/meta"
)

func TestNew_EncodesFieldsInOrderWithNewline(t *testing.T) {
	o := &meta.Object{Created: 2, Updated: 3, Index: "b", Path: "a/b", Data: []byte(`{"x":1}`)}
	got := meta.New(o)
	want := `{"created":2,"updated":3,"index":"b","path":"a/b","data":{"x":1}}` + "\n"
	if string(got) != want {
		t.Fatalf("New = %q, want %q", got, want)
	}
	back, err := meta.Decode(got)
	if err != nil || back.Path != "a/b" || back.Version() != 3 || !bytes.Equal(back.Data, o.Data) {
		t.Fatalf("Decode(New) = %+v, %v", back, err)
	}
}

func TestDecode_Errors(t *testing.T) {
	if _, err := meta.Decode([]byte(`{`)); err == nil {
		t.Fatal("Decode accepted malformed JSON")
	}
	if _, err := meta.DecodeList([]byte(`{}`)); err == nil {
		t.Fatal("DecodeList accepted an object")
	}
	list, err := meta.DecodeListFromReader(strings.NewReader(`[{"created":1,"path":"a"}]`))
	if err != nil || len(list) != 1 || list[0].Path != "a" {
		t.Fatalf("DecodeListFromReader = %+v, %v", list, err)
	}
	if _, err := meta.DecodeFromReader(strings.NewReader(``)); err == nil {
		t.Fatal("DecodeFromReader accepted an empty reader")
	}
}

func TestSort_IsDeterministicOnTies(t *testing.T) {
	list := []meta.Object{{Created: 2, Path: "b"}, {Created: 1, Path: "z"}, {Created: 2, Path: "a"}}
	meta.Sort(list)
	if list[0].Path != "z" || list[1].Path != "a" || list[2].Path != "b" {
		t.Fatalf("ascending order = %+v", list)
	}
	sort.Slice(list, meta.SortDesc(list))
	if list[0].Path != "b" || list[1].Path != "a" || list[2].Path != "z" {
		t.Fatalf("descending order = %+v", list)
	}
}

func TestObject_Version(t *testing.T) {
	if (meta.Object{Created: 5}).Version() != 5 || (meta.Object{Created: 5, Updated: 9}).Version() != 9 {
		t.Fatal("Version must be the later of Created and Updated")
	}
}

// New carries the data byte for byte (no HTML escaping, no re-encoding), escapes what a
// JSON string needs in the path, and decodes back to the same object.
func TestNew_KeepsDataVerbatim(t *testing.T) {
	for _, data := range []string{
		`{"h":"<b>Tom & Jerry</b>"}`,
		`"a` + "\u2028" + `b"`,
		`{"n":1e400,"id":12345678901234567890}`,
		`{"t":"東京 😀"}`,
		`{"escaped":"\u003c"}`,
	} {
		o := &meta.Object{Created: 1, Updated: -2, Index: `x"y`, Path: "a/x\"y\\\x01", Data: []byte(data)}
		raw := meta.New(o)
		if !bytes.Contains(raw, []byte(`"data":`+data+"}\n")) {
			t.Fatalf("data not verbatim in %s", raw)
		}
		back, err := meta.Decode(raw)
		if err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		if back.Path != o.Path || back.Index != o.Index || back.Created != 1 || back.Updated != -2 || string(back.Data) != data {
			t.Fatalf("round trip of %s: %+v", raw, back)
		}
	}
	if got := string(meta.New(&meta.Object{Path: "k"})); got != `{"created":0,"updated":0,"index":"","path":"k","data":null}`+"\n" {
		t.Fatalf("no data: %s", got)
	}
}
