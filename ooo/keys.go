package ooo

import (
	"strings"

	"github.com/benitogf/pivot/ooo/key"
)

// validKey reports whether k may be used in a URL: a valid key (package key) without
// "." or ".." segments, which HTTP clients resolve away before sending a request.
func validKey(k string) bool {
	return key.IsValid(k) && !hasDotSegment(k)
}

// writableKey is validKey for writes: at most one '*', as the last character.
func writableKey(k string) bool {
	return key.IsWritable(k) && !hasDotSegment(k)
}

func hasDotSegment(k string) bool {
	for _, seg := range strings.Split(k, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
