package ooo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
)

// This file holds the storage test helpers upstream ooo exports for people who write
// their own Database: start a Server with the storage, then call them from a test,
//
//	server := &ooo.Server{Silence: true, Storage: myStorage}
//	server.Start("localhost:0")
//	defer server.Close(os.Interrupt)
//	ooo.StorageObjectTest(server, t)
//	ooo.StorageListTest(server, t)
//
// They check the behaviour servers and clients rely on, through server.Storage and
// through the server's REST routes, and Clear the storage first. Our own storages pass
// the stricter conformance suite of package ooo/storage/storagetest as well. (Package
// ooo imports testing only for these, because upstream's names and signatures put them
// here.)

// TEST_DATA is a JSON document for storage tests: nested objects and arrays, escapes,
// non-ASCII text and numbers too large for a float64. It is upstream ooo's name; treat
// it as read-only.
var TEST_DATA = json.RawMessage(`{
	"name": "conformance",
	"text": "quotes \" backslash \\ tab \t newline \n <tag> & amp",
	"unicode": "naïve café 日本語 🧰",
	"stamp": 1765000000000000001,
	"ratio": 0.125,
	"flags": [true, false, null],
	"items": [
		{"id": 1, "tags": ["a", "b"], "nested": {"deep": {"deeper": [1, 2, {"x": "y"}]}}},
		{"id": 2, "tags": [], "nested": {}}
	],
	"empty": {"object": {}, "array": [], "string": ""}
}`)

// StorageObjectTest checks single keys: Set returns the index and stores the data with
// its stamps, a second Set keeps Created and stamps Updated, Del removes the key
// (ErrNotFound afterwards, and for a second Del), and REST reads agree with Get.
func StorageObjectTest(server *Server, t *testing.T) {
	t.Helper()
	db := server.Storage
	db.Clear()
	index, err := db.Set("test", TEST_DATA)
	if err != nil || index != "test" {
		t.Fatalf("Set(test) = %q, %v; want \"test\", nil", index, err)
	}
	first := conformanceGet(t, db, "test")
	if first.Index != "test" || first.Created == 0 || first.Updated != 0 || !sameJSON(first.Data, TEST_DATA) {
		t.Fatalf("Get(test) after the first Set = %+v", first)
	}
	update := json.RawMessage(`{"name":"updated","n":2}`)
	if index, err = db.Set("test", update); err != nil || index != "test" {
		t.Fatalf("second Set(test) = %q, %v", index, err)
	}
	second := conformanceGet(t, db, "test")
	if second.Created != first.Created || second.Updated == 0 || second.Updated < second.Created || !sameJSON(second.Data, update) {
		t.Fatalf("Get(test) after the second Set = %+v (first created %d)", second, first.Created)
	}
	status, body := conformanceRequest(t, server, http.MethodGet, "/test", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /test: %d %s", status, body)
	}
	if rest, err := meta.Decode(body); err != nil || rest.Created != second.Created || !sameJSON(rest.Data, update) {
		t.Fatalf("GET /test = %s (%v), want the stored object", body, err)
	}
	if err := db.Del("test"); err != nil {
		t.Fatalf("Del(test): %v", err)
	}
	if raw, err := db.Get("test"); !errors.Is(err, ErrNotFound) || len(raw) != 0 {
		t.Fatalf("Get(test) after Del = %q, %v; want nothing and ErrNotFound", raw, err)
	}
	if err := db.Del("test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Del(test) = %v, want ErrNotFound", err)
	}
	if status, body := conformanceRequest(t, server, http.MethodGet, "/test", nil); status != http.StatusNotFound {
		t.Fatalf("GET /test after Del: %d %s, want 404", status, body)
	}
	if _, err := db.Set("test", nil); err == nil {
		t.Fatal("Set(test) with empty data succeeded")
	}
	if _, err := db.Set("a//b", TEST_DATA); !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("Set(a//b) = %v, want ErrInvalidPath", err)
	}
}

// StorageListTest checks globs: lists sorted by Created (ascending for Get, descending
// for GetDescending), "[]" for no match, one-segment '*' matching at every level, Keys,
// a push over REST, and glob deletes that remove exactly the matching keys.
func StorageListTest(server *Server, t *testing.T) {
	t.Helper()
	db := server.Storage
	db.Clear()
	modified := json.RawMessage(`{"modified":true,"data":` + string(TEST_DATA) + `}`)
	for _, w := range []struct {
		k    string
		data json.RawMessage
	}{{"test/123", TEST_DATA}, {"test/456", modified}} {
		if index, err := db.Set(w.k, w.data); err != nil || index != key.LastIndex(w.k) {
			t.Fatalf("Set(%s) = %q, %v", w.k, index, err)
		}
	}
	list := conformanceList(t, db, "test/*", false)
	if len(list) != 2 || list[0].Index != "123" || list[1].Index != "456" || !sameJSON(list[0].Data, TEST_DATA) || !sameJSON(list[1].Data, modified) {
		t.Fatalf("Get(test/*) = %+v; want test/123 then test/456", list)
	}
	if list[0].Created > list[1].Created {
		t.Fatalf("Get(test/*) not sorted by created: %d, %d", list[0].Created, list[1].Created)
	}
	if desc := conformanceList(t, db, "test/*", true); len(desc) != 2 || desc[0].Index != "456" || desc[1].Index != "123" {
		t.Fatalf("GetDescending(test/*) = %+v; want test/456 then test/123", desc)
	}
	for _, o := range list {
		if one := conformanceGet(t, db, "test/"+o.Index); !sameJSON(one.Data, o.Data) || one.Created != o.Created {
			t.Fatalf("Get(test/%s) = %+v, the list holds %+v", o.Index, one, o)
		}
	}
	if keys := conformanceKeys(t, db); fmt.Sprint(keys) != "[test/123 test/456]" {
		t.Fatalf("Keys() = %v", keys)
	}
	if empty, err := db.Get("none/*"); err != nil || string(bytes.TrimSpace(empty)) != "[]" {
		t.Fatalf("Get(none/*) = %q, %v; want []", empty, err)
	}

	status, body := conformanceRequest(t, server, http.MethodPost, "/test/*", []byte(`{"pushed":1}`))
	var pushed struct {
		Index string `json:"index"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &pushed) != nil || pushed.Index == "" {
		t.Fatalf("POST /test/*: %d %s", status, body)
	}
	if list = conformanceList(t, db, "test/*", false); len(list) != 3 || list[2].Index != pushed.Index {
		t.Fatalf("Get(test/*) after a push = %+v; want the pushed item last", list)
	}
	if err := db.Del("test/" + pushed.Index); err != nil {
		t.Fatalf("Del(test/%s): %v", pushed.Index, err)
	}
	if list = conformanceList(t, db, "test/*", false); len(list) != 2 {
		t.Fatalf("Get(test/*) after deleting the push = %+v", list)
	}

	for _, k := range []string{"test/glob1/glob123", "test/glob2/glob456", "test/1/glob/g123", "test/2/glob/g456", "test1", "test2"} {
		if index, err := db.Set(k, TEST_DATA); err != nil || index != key.LastIndex(k) {
			t.Fatalf("Set(%s) = %q, %v", k, index, err)
		}
	}
	for glob, want := range map[string]int{"test/*": 2, "test/*/*": 2, "test/*/glob/*": 2, "*": 2, "test/glob1/*": 1, "*/*/glob/g123": 1} {
		if got := conformanceList(t, db, glob, false); len(got) != want {
			t.Fatalf("Get(%s) = %d items, want %d", glob, len(got), want)
		}
	}
	if err := db.Del("*"); err != nil {
		t.Fatalf("Del(*): %v", err)
	}
	if got := conformanceList(t, db, "*", false); len(got) != 0 {
		t.Fatalf("Get(*) after Del(*) = %+v", got)
	}
	if got := conformanceList(t, db, "test/*", false); len(got) != 2 {
		t.Fatalf("Del(*) removed deeper keys: test/* holds %d", len(got))
	}
	if err := db.Del("test/*/*"); err != nil {
		t.Fatalf("Del(test/*/*): %v", err)
	}
	if err := db.Del("nothing/*"); err != nil {
		t.Fatalf("Del of a glob matching nothing = %v, want nil", err)
	}
	if keys := conformanceKeys(t, db); fmt.Sprint(keys) != "[test/1/glob/g123 test/123 test/2/glob/g456 test/456]" {
		t.Fatalf("Keys() after the glob deletes = %v", keys)
	}
}

// StorageGetNTest checks GetN (newest first), GetNAscending (oldest first) and
// GetNRange (by the hex stamp of the last segment) on n items written with
// SetWithMeta, whose stamps are kept as given. n must be at least 4.
func StorageGetNTest(server *Server, t *testing.T, n int) {
	t.Helper()
	if n < 4 {
		t.Fatalf("StorageGetNTest needs n >= 4, got %d", n)
	}
	db := server.Storage
	db.Clear()
	base := time.Now().UnixNano()
	stamp := func(i int) int64 { return base + int64(i)*1000 }
	// Written out of order, so a storage that returns write order fails.
	for _, i := range conformanceShuffle(n) {
		k := "test/" + key.Encode(stamp(i))
		if _, err := db.SetWithMeta(k, json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), stamp(i), 0); err != nil {
			t.Fatalf("SetWithMeta(%s): %v", k, err)
		}
	}
	if _, err := db.Set("other/x", TEST_DATA); err != nil {
		t.Fatal(err)
	}
	check := func(what string, got []meta.Object, err error, want ...int) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s = %d items, want %d", what, len(got), len(want))
		}
		for j, i := range want {
			if got[j].Created != stamp(i) || got[j].Index != key.Encode(stamp(i)) {
				t.Fatalf("%s: item %d is %+v, want item %d (created %d)", what, j, got[j], i, stamp(i))
			}
		}
	}
	got, err := db.GetN("test/*", 1)
	check("GetN(test/*, 1)", got, err, n-1)
	got, err = db.GetN("test/*", 3)
	check("GetN(test/*, 3)", got, err, n-1, n-2, n-3)
	all := make([]int, n)
	for i := range all {
		all[i] = n - 1 - i
	}
	got, err = db.GetN("test/*", n*2)
	check("GetN(test/*, 2n)", got, err, all...)
	got, err = db.GetNAscending("test/*", 2)
	check("GetNAscending(test/*, 2)", got, err, 0, 1)
	got, err = db.GetNRange("test/*", n, stamp(1), stamp(3))
	check("GetNRange(test/*, n, item 1, item 3)", got, err, 3, 2, 1)
	got, err = db.GetNRange("test/*", 1, stamp(1), stamp(3))
	check("GetNRange(test/*, 1, item 1, item 3)", got, err, 3)
	if _, err := db.GetN("test/1", 1); !errors.Is(err, ErrInvalidPattern) {
		t.Fatalf("GetN of a plain key = %v, want ErrInvalidPattern", err)
	}
	if _, err := db.GetN("test/*", 0); !errors.Is(err, ErrInvalidLimit) {
		t.Fatalf("GetN with limit 0 = %v, want ErrInvalidLimit", err)
	}
	if _, err := db.GetNAscending("test/*", -1); !errors.Is(err, ErrInvalidLimit) {
		t.Fatalf("GetNAscending with limit -1 = %v, want ErrInvalidLimit", err)
	}
}

// StorageKeysRangeTest checks KeysRange: the keys matching a glob whose Created is in
// [from, to], inclusive, on n items written with SetWithMeta. n must be at least 4.
func StorageKeysRangeTest(server *Server, t *testing.T, n int) {
	t.Helper()
	if n < 4 {
		t.Fatalf("StorageKeysRangeTest needs n >= 4, got %d", n)
	}
	db := server.Storage
	db.Clear()
	base := time.Now().UnixNano()
	stamp := func(i int) int64 { return base + int64(i)*1000 }
	for _, i := range conformanceShuffle(n) {
		if _, err := db.SetWithMeta(fmt.Sprintf("test/%d", i), json.RawMessage(`{}`), stamp(i), 0); err != nil {
			t.Fatalf("SetWithMeta(test/%d): %v", i, err)
		}
	}
	if _, err := db.SetWithMeta("other/1", json.RawMessage(`{}`), stamp(1), 0); err != nil {
		t.Fatal(err)
	}
	half := n / 2
	keys, err := db.KeysRange("test/*", stamp(0), stamp(half-1))
	if err != nil {
		t.Fatalf("KeysRange: %v", err)
	}
	sort.Slice(keys, func(i, j int) bool {
		return len(keys[i]) < len(keys[j]) || len(keys[i]) == len(keys[j]) && keys[i] < keys[j]
	})
	if want := conformanceNames("test/%d", 0, half); fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("KeysRange(test/*, item 0, item %d) = %v, want %v", half-1, keys, want)
	}
	if keys, err = db.KeysRange("test/*", stamp(n), stamp(n+10)); err != nil || len(keys) != 0 {
		t.Fatalf("KeysRange past the last item = %v, %v; want none", keys, err)
	}
	if keys, err = db.KeysRange("test/*", stamp(n-1), stamp(n-1)); err != nil || fmt.Sprint(keys) != fmt.Sprintf("[test/%d]", n-1) {
		t.Fatalf("KeysRange of one stamp = %v, %v", keys, err)
	}
	if _, err := db.KeysRange("test/1", stamp(0), stamp(n)); !errors.Is(err, ErrInvalidPattern) {
		t.Fatalf("KeysRange of a plain key = %v, want ErrInvalidPattern", err)
	}
	if _, err := db.KeysRange("test/*", stamp(2), stamp(1)); !errors.Is(err, ErrInvalidRange) {
		t.Fatalf("KeysRange with to < from = %v, want ErrInvalidRange", err)
	}
}

func conformanceGet(t *testing.T, db Database, k string) meta.Object {
	t.Helper()
	raw, err := db.Get(k)
	if err != nil {
		t.Fatalf("Get(%s): %v", k, err)
	}
	o, err := meta.Decode(raw)
	if err != nil {
		t.Fatalf("Get(%s) = %q: %v", k, raw, err)
	}
	return o
}

func conformanceList(t *testing.T, db Database, glob string, descending bool) []meta.Object {
	t.Helper()
	get := db.Get
	if descending {
		get = db.GetDescending
	}
	raw, err := get(glob)
	if err != nil {
		t.Fatalf("Get(%s): %v", glob, err)
	}
	list, err := meta.DecodeList(raw)
	if err != nil {
		t.Fatalf("Get(%s) = %q: %v", glob, raw, err)
	}
	return list
}

func conformanceKeys(t *testing.T, db Database) []string {
	t.Helper()
	raw, err := db.Keys()
	if err != nil {
		t.Fatalf("Keys(): %v", err)
	}
	var st Stats
	if err := json.Unmarshal(raw, &st); err != nil || st.Keys == nil {
		t.Fatalf("Keys() = %q (%v), want {\"keys\":[...]}", raw, err)
	}
	return st.Keys
}

// conformanceRequest sends one real HTTP request to the running server.
func conformanceRequest(t *testing.T, server *Server, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+server.Address+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return res.StatusCode, out
}

// sameJSON reports whether two JSON documents hold the same value, numbers compared
// exactly.
func sameJSON(a, b []byte) bool {
	decode := func(data []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v) == nil
	}
	va, okA := decode(a)
	vb, okB := decode(b)
	if !okA || !okB {
		return false
	}
	ea, errA := json.Marshal(va)
	eb, errB := json.Marshal(vb)
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}

// conformanceShuffle returns 0..n-1 in a fixed order that is neither ascending nor
// descending.
func conformanceShuffle(n int) []int {
	out := make([]int, 0, n)
	for i := 0; i < n; i += 2 {
		out = append(out, i)
	}
	for i := n - 1 - n%2; i > 0; i -= 2 {
		out = append(out, i)
	}
	return out
}

func conformanceNames(format string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(format, i))
	}
	return out
}
