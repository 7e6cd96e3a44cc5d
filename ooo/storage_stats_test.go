package ooo_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/benitogf/pivot/ooo"
)

// TestStats_DecodesKeyList: GET / and Database.Keys both decode into ooo.Stats, with
// the keys written, sorted case-insensitively, and an empty list when there are none.
func TestStats_DecodesKeyList(t *testing.T) {
	s := start(t, nil)
	var empty ooo.Stats
	if err := json.Unmarshal([]byte(expect(t, s, "GET", "/", "", 200, "").body), &empty); err != nil {
		t.Fatal(err)
	}
	if empty.Keys == nil || len(empty.Keys) != 0 {
		t.Fatalf("empty storage: %#v", empty)
	}
	for _, k := range []string{"b", "A/1", "c/x"} {
		expect(t, s, "POST", "/"+k, `{"k":"`+k+`"}`, 200, "")
	}
	var got ooo.Stats
	if err := json.Unmarshal([]byte(expect(t, s, "GET", "/", "", 200, "").body), &got); err != nil {
		t.Fatal(err)
	}
	if want := []string{"A/1", "b", "c/x"}; !reflect.DeepEqual(got.Keys, want) {
		t.Fatalf("GET / keys %v, want %v", got.Keys, want)
	}

	st := ooo.Storage{Active: s.Storage.Active(), Db: s.Storage}
	raw, err := st.Db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	var direct ooo.Stats
	if err := json.Unmarshal(raw, &direct); err != nil {
		t.Fatal(err)
	}
	if !st.Active || !reflect.DeepEqual(direct, got) {
		t.Fatalf("Storage{%v}.Db.Keys() = %v, want %v", st.Active, direct, got)
	}
}
