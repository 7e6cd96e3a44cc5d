package jsonraw_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/benitogf/pivot/ooo/internal/jsonraw"
)

// canonical re-encodes JSON with sorted keys and exact numbers.
func canonical(t testing.TB, data []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("canonical %s: %v", data, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// check diffs from → to, applies the patch with this package (bytes must come out
// equal to to) and with a general patch library (the meaning must be equal).
func check(t *testing.T, from, to string) {
	t.Helper()
	patch, err := jsonraw.Diff([]byte(from), []byte(to))
	if errors.Is(err, jsonraw.ErrNeedSnapshot) {
		return
	}
	if err != nil {
		t.Fatalf("diff %s → %s: %v", from, to, err)
	}
	got, err := jsonraw.Apply([]byte(from), patch)
	if err != nil {
		t.Fatalf("apply %s to %s: %v", patch, from, err)
	}
	if string(got) != to {
		t.Fatalf("diff %s → %s\npatch %s\napplied %s", from, to, patch, got)
	}
	if string(patch) == "[]" {
		return // the library refuses even an empty patch on a scalar document
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("library decode %s: %v", patch, err)
	}
	lib, err := p.Apply([]byte(from))
	if err != nil {
		t.Fatalf("library apply %s to %s: %v", patch, from, err)
	}
	if canonical(t, lib) != canonical(t, []byte(to)) {
		t.Fatalf("library applied %s to %s: %s, want %s", patch, from, lib, to)
	}
}

func TestDiff_KeepsBytesAndOrder(t *testing.T) {
	for _, tc := range [][2]string{
		{`{"a":1,"b":2}`, `{"a":1,"b":3}`},
		{`{"created":1,"updated":0,"index":"x","path":"l/x","data":{"z":1,"a":"<&>"}}`, `{"created":1,"updated":2,"index":"x","path":"l/x","data":{"z":1,"a":"<&>","m":"東京"}}`},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`},
		{`{"a":1,"b":2}`, `{"c":9,"a":1}`},
		{`{"a":{"x":[1,2,3]}}`, `{"a":{"x":[1,9,2,3]}}`},
		{`[1,2,3,4]`, `[1,4]`},
		{`[1,2,3,4]`, `[0,1,2,3,4,5]`},
		{`[]`, `[{"k":"v"}]`},
		{`[{"k":"v"}]`, `[]`},
		{`{"n":12345678901234567890}`, `{"n":12345678901234567891}`},
		{`{"n":1e400}`, `{"n":1.0}`},
		{`{"a~b":1,"c/d":2}`, `{"a~b":2,"c/d":3,"e~/f":4}`},
		{`{"":1}`, `{"":2}`},
		{`{"x":{"":1}}`, `{"x":{"":2}}`},
		{`{"esc":"\u003c"}`, `{"esc":"\u003c","new\u00e9":1}`},
		{`"a"`, `"b"`},
		{`{"a":[{"b":1},{"b":2}]}`, `{"a":[{"b":1},{"b":3},{"c":4}]}`},
		{`{"t":"` + strings.Repeat("x", 500) + `","n":1}`, `{"t":"` + strings.Repeat("x", 500) + `","n":2}`},
		{"{\"a\":1}\n", "{\"a\":2}\n"},
	} {
		check(t, tc[0], tc[1])
	}
}

func TestDiff_RootChangesNeedSnapshot(t *testing.T) {
	for _, tc := range [][2]string{{`1`, `2`}, {`{"a":1}`, `[1]`}, {`{"a":1,"b":2}`, `{"b":2,"a":1}`}, {`{"":1}`, `{"":2}`}} {
		if _, err := jsonraw.Diff([]byte(tc[0]), []byte(tc[1])); !errors.Is(err, jsonraw.ErrNeedSnapshot) {
			t.Fatalf("diff %s → %s: err %v, want ErrNeedSnapshot", tc[0], tc[1], err)
		}
	}
	if p, err := jsonraw.Diff([]byte(`{"a":1}`), []byte(`{"a":1}`)); err != nil || string(p) != "[]" {
		t.Fatalf("diff of equal documents = %s, %v", p, err)
	}
}

// randomValue builds a small random JSON value with HTML characters, non-ASCII text,
// big numbers and repeated shapes, so that diffs of neighbours share structure.
func randomValue(r *rand.Rand, depth int) string {
	switch k := r.Intn(8); {
	case depth > 2 || k < 3:
		scalars := []string{`1`, `-0.5`, `12345678901234567890`, `"<b>&amp;</b>"`, `"東京 😀"`, `true`, `null`, `"\u2028"`, `"x"`}
		return scalars[r.Intn(len(scalars))]
	case k < 5:
		n := r.Intn(5)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = randomValue(r, depth+1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		names := []string{"a", "b", "c", "d~", "e/f", "g"}
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		n := r.Intn(len(names))
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `"` + names[i] + `":` + randomValue(r, depth+1)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

func TestDiff_Random(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 3000; i++ {
		a := randomValue(r, 0)
		b := randomValue(r, 0)
		check(t, a, b)
		check(t, `{"x":`+a+`,"y":1}`, `{"x":`+b+`,"y":1}`)
		check(t, `[`+a+`,`+b+`]`, `[`+b+`,`+a+`,`+a+`]`)
		check(t, `{"created":1,"data":`+a+`}`, `{"created":1,"data":`+a+`,"x":`+b+`}`)
	}
}

func TestApply_Errors(t *testing.T) {
	for _, tc := range [][2]string{
		{`{"a":1}`, `[{"op":"replace","path":"/b","value":1}]`},
		{`{"a":1}`, `[{"op":"remove","path":"/b"}]`},
		{`[1]`, `[{"op":"add","path":"/5","value":1}]`},
		{`[1]`, `[{"op":"replace","path":"/01","value":1}]`},
		{`{"a":1}`, `[{"op":"add","path":"/a/b","value":1}]`},
		{`{"a":1}`, `[{"op":"add","path":"a","value":1}]`},
		{`{"a":1}`, `[{"op":"add","path":"/a"}]`},
		{`{"a":1}`, `{}`},
	} {
		if _, err := jsonraw.Apply([]byte(tc[0]), []byte(tc[1])); err == nil {
			t.Fatalf("apply %s to %s succeeded", tc[1], tc[0])
		}
	}
	if _, err := jsonraw.Apply([]byte(`{}`), []byte(`[{"op":"move","from":"/a","path":"/b"}]`)); !errors.Is(err, jsonraw.ErrUnsupported) {
		t.Fatalf("move: %v, want ErrUnsupported", err)
	}
	got, err := jsonraw.Apply([]byte(`{"a":[1,2]}`), []byte(`[{"op":"add","path":"/a/-","value":3},{"op":"add","path":"/b","value":{}},{"op":"add","path":"/b/c","value":1}]`))
	if err != nil || string(got) != `{"a":[1,2,3],"b":{"c":1}}` {
		t.Fatalf("apply = %s, %v", got, err)
	}
}

func TestElements(t *testing.T) {
	els, err := jsonraw.Elements([]byte(` [ {"a":"]"} , 2,"x" ] `))
	if err != nil || len(els) != 3 || string(els[0]) != `{"a":"]"}` || string(els[2]) != `"x"` {
		t.Fatalf("elements = %q, %v", els, err)
	}
	if _, err := jsonraw.Elements([]byte(`{}`)); err == nil {
		t.Fatal("elements of an object")
	}
}

func TestDiff_WhitespaceInsideGoesWhole(t *testing.T) {
	empty := `{ "created": 0, "updated": 0, "index": "", "data": {} }`
	full := "{\"created\":1,\"updated\":0,\"index\":\"a\",\"path\":\"a\",\"data\":{\"x\":1}}\n"
	for _, tc := range [][2]string{{empty, full}, {full, empty}, {`{"a":[1, 2]}`, `{"a":[1, 3]}`}} {
		check(t, tc[0], tc[1])
	}
	if _, err := jsonraw.Diff([]byte(full), []byte(empty)); !errors.Is(err, jsonraw.ErrNeedSnapshot) {
		t.Fatalf("diff to a spaced object: %v, want ErrNeedSnapshot", err)
	}
}
