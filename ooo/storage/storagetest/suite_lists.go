package storagetest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

func runLists(t *testing.T, newHarness func(t testing.TB) Harness) {
	s := fresh(t, newHarness)
	empty, err := s.Get("items/*")
	if err != nil || string(empty) != "[]" {
		t.Fatalf("empty list: %q %v", empty, err)
	}
	keys, err := s.Keys()
	if err != nil || string(keys) != `{"keys":[]}` {
		t.Fatalf("empty keys: %s %v", keys, err)
	}
	order := []string{"items/c", "items/a", "items/B", "items/d"}
	for _, k := range order {
		mustSet(t, s, k, `1`)
	}
	mustSet(t, s, "items/x/deep", `1`)
	mustSet(t, s, "other", `1`)
	mustSet(t, s, "items/a", `2`) // an update keeps the creation order

	t.Run("GetAscendingAndDescending", func(t *testing.T) {
		if got := paths(getList(t, s, "items/*", false)); !equalStrings(got, order) {
			t.Fatalf("ascending %v, want %v", got, order)
		}
		desc := []string{"items/d", "items/B", "items/a", "items/c"}
		if got := paths(getList(t, s, "items/*", true)); !equalStrings(got, desc) {
			t.Fatalf("descending %v, want %v", got, desc)
		}
		if got := paths(getList(t, s, "items/*/deep", false)); !equalStrings(got, []string{"items/x/deep"}) {
			t.Fatalf("two-level glob %v", got)
		}
	})
	t.Run("Keys", func(t *testing.T) {
		raw, err := s.Keys()
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Keys []string }
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		want := []string{"items/a", "items/B", "items/c", "items/d", "items/x/deep", "other"}
		if !equalStrings(got.Keys, want) {
			t.Fatalf("keys %v, want %v", got.Keys, want)
		}
	})
	t.Run("KeysRange", func(t *testing.T) {
		all := getList(t, s, "items/*", false)
		got, err := s.KeysRange("items/*", all[1].Created, all[2].Created)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"items/B", "items/a"}; !equalStrings(got, want) {
			t.Fatalf("range %v, want %v", got, want)
		}
		_, err = s.KeysRange("items/a", 0, 1)
		wantErr(t, "range without glob", err, storage.ErrInvalidPattern)
		_, err = s.KeysRange("items/*", 2, 1)
		wantErr(t, "reversed range", err, storage.ErrInvalidRange)
	})
	t.Run("GetN", func(t *testing.T) {
		list, err := s.GetN("items/*", 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := paths(list); !equalStrings(got, []string{"items/d", "items/B"}) {
			t.Fatalf("GetN %v", got)
		}
		list, err = s.GetNAscending("items/*", 3)
		if err != nil {
			t.Fatal(err)
		}
		if got := paths(list); !equalStrings(got, []string{"items/c", "items/a", "items/B"}) {
			t.Fatalf("GetNAscending %v", got)
		}
		if list, _ := s.GetN("items/*", 100); len(list) != 4 {
			t.Fatalf("GetN beyond the size: %v", paths(list))
		}
		_, err = s.GetN("items/*", 0)
		wantErr(t, "limit 0", err, storage.ErrInvalidLimit)
		_, err = s.GetNAscending("items/a", 1)
		wantErr(t, "no glob", err, storage.ErrInvalidPattern)
	})
	t.Run("GetNRange", func(t *testing.T) {
		var idx []int64
		for i := int64(1); i <= 5; i++ {
			stamp := i * 1000
			mustSet(t, s, key.BuildAt("ranged/*", stamp), fmt.Sprint(i))
			idx = append(idx, stamp)
		}
		mustSet(t, s, "ranged/nothex", `0`)
		list, err := s.GetNRange("ranged/*", 2, idx[1], idx[3])
		if err != nil {
			t.Fatal(err)
		}
		want := []string{key.BuildAt("ranged/*", idx[3]), key.BuildAt("ranged/*", idx[2])}
		if got := paths(list); !equalStrings(got, want) {
			t.Fatalf("GetNRange %v, want %v", got, want)
		}
		_, err = s.GetNRange("ranged/*", 1, 5, 1)
		wantErr(t, "reversed range", err, storage.ErrInvalidRange)
		_, err = s.GetNRange("ranged/*", -1, 0, 1)
		wantErr(t, "negative limit", err, storage.ErrInvalidLimit)
	})
}
