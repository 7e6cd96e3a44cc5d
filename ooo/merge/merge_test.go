package merge_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo/merge"
	"github.com/benitogf/pivot/ooo/storage"
)

func replacedPaths(info *merge.Info) []string {
	out := make([]string, 0, len(info.Replaced))
	for p := range info.Replaced {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func TestMergeBytes(t *testing.T) {
	cases := []struct {
		name, data, patch, want string
		replaced                string // sorted paths, comma separated
		errors                  int
	}{
		{"member changed", `{"a":1,"b":2}`, `{"a":3}`, `{"a":3,"b":2}`, "a", 0},
		{"same value", `{"a":1,"b":2}`, `{"a":1}`, `{"a":1,"b":2}`, "", 0},
		{"member added", `{"a":1}`, `{"c":"x"}`, `{"a":1,"c":"x"}`, "c", 0},
		{"object member added", `{"a":1}`, `{"o":{"x":1}}`, `{"a":1,"o":{"x":1}}`, "o", 0},
		{"nested", `{"o":{"x":1,"y":2}}`, `{"o":{"y":3,"z":4}}`, `{"o":{"x":1,"y":3,"z":4}}`, "o.y,o.z", 0},
		{"array by index", `{"l":[1,2,3]}`, `{"l":{"1":9,"7":0,"x":0}}`, `{"l":[1,9,3]}`, "l.1", 0},
		{"array element object", `{"l":[{"n":1}]}`, `{"l":{"0":{"n":2}}}`, `{"l":[{"n":2}]}`, "l.0.n", 0},
		{"array replaced", `{"l":[1,2]}`, `{"l":[3]}`, `{"l":[3]}`, "l", 0},
		{"object onto scalar", `{"a":1}`, `{"a":{"x":1}}`, `{"a":{"x":1}}`, "a", 0},
		{"null replaces, does not delete", `{"a":1}`, `{"a":null}`, `{"a":null}`, "a", 0},
		{"scalar onto object ignored", `{"o":{"x":1}}`, `{"o":5}`, `{"o":{"x":1}}`, "", 1},
		{"patch not an object", `{"a":1}`, `[1]`, `{"a":1}`, "", 0},
		{"document a scalar", `7`, `{"a":1}`, `{"a":1}`, "", 0},
		{"exact numbers", `{"s":1765000000000000001}`, `{"s":1765000000000000002}`, `{"s":1765000000000000002}`, "s", 0},
		{"html kept", `{"a":"x"}`, `{"a":"<&>"}`, `{"a":"<&>"}`, "a", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, info, err := merge.MergeBytes([]byte(c.data), []byte(c.patch))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("merged %s, want %s", got, c.want)
			}
			if p := strings.Join(replacedPaths(info), ","); p != c.replaced {
				t.Errorf("replaced %q, want %q", p, c.replaced)
			}
			if len(info.Errors) != c.errors {
				t.Errorf("errors %v, want %d", info.Errors, c.errors)
			}
			for _, e := range info.Errors {
				if !errors.Is(e, merge.ErrPatchObject) {
					t.Errorf("error %v does not wrap ErrPatchObject", e)
				}
			}
		})
	}
}

func TestMergeBytes_Errors(t *testing.T) {
	for _, c := range []struct {
		data, patch string
		want        error
	}{
		{``, `{}`, merge.ErrDataJSON},
		{`{"a":`, `{}`, merge.ErrDataJSON},
		{`{} x`, `{}`, merge.ErrDataJSON},
		{`{}`, `{"a"}`, merge.ErrPatchJSON},
		{`{}`, `{} {}`, merge.ErrPatchJSON},
	} {
		if _, _, err := merge.MergeBytes([]byte(c.data), []byte(c.patch)); !errors.Is(err, c.want) {
			t.Errorf("MergeBytes(%q, %q): err %v, want %v", c.data, c.patch, err, c.want)
		}
	}
}

func TestMergeBytesIndent(t *testing.T) {
	got, info, err := merge.MergeBytesIndent([]byte(`{"a":1}`), []byte(`{"b":[2]}`), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}"; string(got) != want {
		t.Fatalf("indented %q, want %q", got, want)
	}
	if !reflect.DeepEqual(replacedPaths(info), []string{"b"}) {
		t.Fatalf("replaced %v", info.Replaced)
	}
}

func TestMerge_Values(t *testing.T) {
	data := map[string]any{"a": 1.0, "o": map[string]any{"x": "y"}}
	got, info := merge.Merge(data, map[string]any{"a": 2.0, "o": map[string]any{"z": true}})
	want := map[string]any{"a": 2.0, "o": map[string]any{"x": "y", "z": true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(replacedPaths(info), []string{"a", "o.z"}) || info.Replaced["o.z"] != true {
		t.Fatalf("replaced %v", info.Replaced)
	}
	if got, info := merge.Merge(data, "not an object"); !reflect.DeepEqual(got, data) || len(info.Replaced) != 0 {
		t.Fatalf("Merge with a scalar patch = %v, %v", got, info.Replaced)
	}
}

// TestMergeBytes_AgreesWithStoragePatch: on random documents and patches, MergeBytes
// changes something exactly when a storage Patch does (it answers ErrNoop otherwise),
// and yields the data the storage then holds.
func TestMergeBytes_AgreesWithStoragePatch(t *testing.T) {
	s := &storage.MemoryStorage{}
	if err := s.Start(storage.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	go func() {
		for range s.Watch() {
		}
	}()
	rng := rand.New(rand.NewSource(16))
	for i := range 2000 {
		doc := randomValue(rng, 3, true)
		patch := randomValue(rng, 3, true)
		docJSON, _ := json.Marshal(doc)
		patchJSON, _ := json.Marshal(patch)
		k := fmt.Sprintf("m/%d", i)
		if _, err := s.Set(k, docJSON); err != nil {
			t.Fatal(err)
		}
		merged, info, err := merge.MergeBytes(docJSON, patchJSON)
		if err != nil {
			t.Fatalf("%s + %s: %v", docJSON, patchJSON, err)
		}
		_, perr := s.Patch(k, patchJSON)
		switch {
		case errors.Is(perr, storage.ErrNoop):
			if len(info.Replaced) != 0 {
				t.Fatalf("%s + %s: storage saw no change, merge replaced %v", docJSON, patchJSON, info.Replaced)
			}
		case perr != nil:
			t.Fatalf("%s + %s: patch: %v", docJSON, patchJSON, perr)
		default:
			if len(info.Replaced) == 0 {
				t.Fatalf("%s + %s: storage changed it, merge replaced nothing", docJSON, patchJSON)
			}
			raw, err := s.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			var stored struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(raw, &stored); err != nil {
				t.Fatal(err)
			}
			if string(stored.Data) != string(merged) {
				t.Fatalf("%s + %s: storage holds %s, merge gave %s", docJSON, patchJSON, stored.Data, merged)
			}
		}
	}
}

// randomValue draws a JSON value over a small alphabet of names and values, so that
// documents and patches often share members and sometimes agree on them.
func randomValue(rng *rand.Rand, depth int, object bool) any {
	kind := rng.Intn(6)
	if object || (depth > 0 && kind == 0) {
		m := map[string]any{}
		for range rng.Intn(4) {
			m[[]string{"a", "b", "c", "0", "1"}[rng.Intn(5)]] = randomValue(rng, depth-1, false)
		}
		return m
	}
	switch {
	case depth > 0 && kind == 1:
		l := []any{}
		for range rng.Intn(3) {
			l = append(l, randomValue(rng, depth-1, false))
		}
		return l
	case kind == 2:
		return nil
	case kind == 3:
		return rng.Intn(2) == 0
	case kind == 4:
		return []string{"x", "y"}[rng.Intn(2)]
	default:
		return rng.Intn(3)
	}
}
