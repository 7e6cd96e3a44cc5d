// Package jsonraw diffs and patches JSON documents as bytes: every value a patch carries
// is a slice of the new document as it is (its member order, its escapes, its number
// text), and applying a patch splices those bytes into the old document. A client that
// applies the patches of this package to the bytes it holds therefore ends with exactly
// the bytes the server diffed to, which a generic JSON diff cannot promise (it decodes
// objects into maps and re-encodes them with sorted keys).
//
// The documents are assumed to be valid JSON (servers check what they store); a
// malformed document gives an error or a patch that does not apply, never a panic.
package jsonraw

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrSyntax is returned for a document or patch that is not the JSON it must be.
var ErrSyntax = errors.New("jsonraw: malformed JSON")

// span is a value's place in a document: doc[start:end].
type span struct{ start, end int }

// member is one member of an object: its key decoded, and the spans of its key (quotes
// included) and of its value.
type member struct {
	name string
	key  span
	val  span
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte at or after i that is not JSON
// whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// trim returns b without leading and trailing JSON whitespace.
func trim(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// skipValue returns the end of the value starting at b[i] (no whitespace before it).
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: value expected at %d", ErrSyntax, i)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated container at %d", ErrSyntax, i)
	default:
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ':' || isSpace(c) {
				break
			}
			j++
		}
		if j == i {
			return 0, fmt.Errorf("%w: unexpected %q at %d", ErrSyntax, b[i], i)
		}
		return j, nil
	}
}

// skipString returns the end of the string whose opening quote is b[i].
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated string at %d", ErrSyntax, i)
}

// decodeKey returns the text of the quoted string raw.
func decodeKey(raw []byte) (string, error) {
	plain := true
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: key %s: %v", ErrSyntax, raw, err)
	}
	return s, nil
}

// members lists the members of the object doc (doc[0] is '{', no trailing space).
func members(doc []byte) ([]member, error) {
	var out []member
	i := skipSpace(doc, 1)
	if i < len(doc) && doc[i] == '}' {
		return out, nil
	}
	for i < len(doc) {
		if doc[i] != '"' {
			return nil, fmt.Errorf("%w: member name expected at %d", ErrSyntax, i)
		}
		kend, err := skipString(doc, i)
		if err != nil {
			return nil, err
		}
		name, err := decodeKey(doc[i:kend])
		if err != nil {
			return nil, err
		}
		j := skipSpace(doc, kend)
		if j >= len(doc) || doc[j] != ':' {
			return nil, fmt.Errorf("%w: ':' expected at %d", ErrSyntax, j)
		}
		vstart := skipSpace(doc, j+1)
		vend, err := skipValue(doc, vstart)
		if err != nil {
			return nil, err
		}
		out = append(out, member{name: name, key: span{i, kend}, val: span{vstart, vend}})
		j = skipSpace(doc, vend)
		if j >= len(doc) {
			break
		}
		switch doc[j] {
		case ',':
			i = skipSpace(doc, j+1)
		case '}':
			return out, nil
		default:
			return nil, fmt.Errorf("%w: ',' or '}' expected at %d", ErrSyntax, j)
		}
	}
	return nil, fmt.Errorf("%w: unterminated object", ErrSyntax)
}

// elements lists the element spans of the array doc (doc[0] is '[', no trailing space).
func elements(doc []byte) ([]span, error) {
	var out []span
	i := skipSpace(doc, 1)
	if i < len(doc) && doc[i] == ']' {
		return out, nil
	}
	for i < len(doc) {
		end, err := skipValue(doc, i)
		if err != nil {
			return nil, err
		}
		out = append(out, span{i, end})
		j := skipSpace(doc, end)
		if j >= len(doc) {
			break
		}
		switch doc[j] {
		case ',':
			i = skipSpace(doc, j+1)
		case ']':
			return out, nil
		default:
			return nil, fmt.Errorf("%w: ',' or ']' expected at %d", ErrSyntax, j)
		}
	}
	return nil, fmt.Errorf("%w: unterminated array", ErrSyntax)
}

// Elements returns the elements of the JSON array doc as sub-slices of doc, each exactly
// as it is written there. A document that is not an array is ErrSyntax.
func Elements(doc []byte) ([][]byte, error) {
	d := trim(doc)
	if len(d) == 0 || d[0] != '[' {
		return nil, fmt.Errorf("%w: not an array", ErrSyntax)
	}
	spans, err := elements(d)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(spans))
	for i, s := range spans {
		out[i] = d[s.start:s.end:s.end]
	}
	return out, nil
}

// AppendString appends s as a JSON string the way ooo writes keys, member names and
// paths (meta's objects, this package's patches): quotes, backslashes and control
// characters escaped, everything else as it is.
func AppendString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

// Members returns the values of the named members of the JSON object doc, each exactly
// as written there (nil for a missing member), without decoding the others.
func Members(doc []byte, names ...string) ([][]byte, error) {
	d := trim(doc)
	if len(d) == 0 || d[0] != '{' {
		return nil, fmt.Errorf("%w: not an object", ErrSyntax)
	}
	ms, err := members(d)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(names))
	for _, m := range ms {
		for i, n := range names {
			if m.name == n {
				out[i] = d[m.val.start:m.val.end:m.val.end]
			}
		}
	}
	return out, nil
}
