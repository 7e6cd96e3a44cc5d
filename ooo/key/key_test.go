package key_test

import (
	"strings"
	"testing"

	"github.com/benitogf/pivot/ooo/key"
)

func TestIsValid(t *testing.T) {
	valid := []string{"a", "ab", "abc", "*", "a*", "*/a", "a/b/c", "things/*", "a-b_c.d", "a/.x", "v1.2"}
	invalid := []string{"", "/", "/a", "a/", "a//b", "a**", "a:b", "a b", "é", "a/./b", ".", "a/..", "../a",
		strings.Repeat("a", key.MaxLength+1)}
	for _, k := range valid {
		if !key.IsValid(k) {
			t.Errorf("IsValid(%q) = false, want true", k)
		}
	}
	for _, k := range invalid {
		if key.IsValid(k) {
			t.Errorf("IsValid(%q) = true, want false", k)
		}
	}
}

// TestGlobRegex: the exported grammar accepts every valid key, and refuses the
// malformed shapes it covers (empty segments, leading or trailing '/', bad characters);
// the rules it leaves to IsValid ("**", dot segments, length) are the only gap.
func TestGlobRegex(t *testing.T) {
	for _, k := range []string{"a", "ab", "abc", "*", "*/a", "a/b/c", "things/*", "a-b_c.d", "v1.2"} {
		if !key.GlobRegex.MatchString(k) {
			t.Errorf("GlobRegex refuses the valid key %q", k)
		}
	}
	for _, k := range []string{"", "/", "/a", "a/", "a//b", "a:b", "a b", "é", "a\nb"} {
		if key.GlobRegex.MatchString(k) {
			t.Errorf("GlobRegex accepts %q", k)
		}
	}
	for _, k := range []string{"a**", "a/./b", "..", strings.Repeat("a", key.MaxLength+1)} {
		if !key.GlobRegex.MatchString(k) || key.IsValid(k) {
			t.Errorf("%q: GlobRegex %v, IsValid %v; want true, false", k, key.GlobRegex.MatchString(k), key.IsValid(k))
		}
	}
}

func TestIsWritable(t *testing.T) {
	for k, want := range map[string]bool{"a": true, "a/*": true, "*": true, "a/*/b": false, "*/a": false, "a/*/*": false} {
		if got := key.IsWritable(k); got != want {
			t.Errorf("IsWritable(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, k string
		want       bool
	}{
		{"a/b", "a/b", true},
		{"a/*", "a/b", true},
		{"a/*", "a/b/c", false},
		{"a/*/c", "a/b/c", true},
		{"a*", "abc", true},
		{"*", "abc", true},
		{"*", "a/b", false},
		{"a/b", "a/*", false},
		{"a/[", "a/[", true}, // equal strings always match
		{"a/[*", "a/b", false},
	}
	for _, tc := range cases {
		if got := key.Match(tc.pattern, tc.k); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.k, got, tc.want)
		}
	}
	if !key.Peer("a/b", "a/*") || key.Peer("a/b", "c/*") {
		t.Error("Peer must match in either direction and only then")
	}
}

func TestBuildAt(t *testing.T) {
	if got := key.BuildAt("things/*", 255); got != "things/ff" {
		t.Fatalf("BuildAt = %q", got)
	}
	if got := key.BuildAt("a/*/b/*", 16); got != "a/10/b/*" {
		t.Fatalf("BuildAt replaces only the first /*: %q", got)
	}
	if got := key.BuildAt("*", 16); got != "*" {
		t.Fatalf("BuildAt(*) = %q", got)
	}
	if key.Decode(key.Encode(123456789)) != 123456789 || key.Decode("zz") != 0 {
		t.Fatal("Encode/Decode do not round-trip")
	}
	if key.LastIndex("a/b/c") != "c" || key.LastIndex("abc") != "abc" || !key.IsList("a/*") || key.IsList("a/b") {
		t.Fatal("LastIndex/IsList")
	}
}
