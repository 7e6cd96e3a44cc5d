package chaos_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
)

// The values the workload writes: real application data rather than tiny objects.
// Sizes run from a few bytes to near the ooo server's body limit, and the contents
// carry what encoders like to rewrite: HTML characters, U+2028 and U+2029, non-ASCII
// text, numbers no float64 can hold and deep nesting. The checker compares the stored
// bytes exactly, so any rewriting on the way shows as divergence or loss.

// Value size classes, in bytes of the whole value.
const (
	bigMin   = 100 << 10 // a large document
	bigMax   = 1 << 20
	hugeMin  = 3 << 20 // near the limit of an ooo server's body (ooo.DefaultMaxBodyBytes)
	hugeMax  = 4<<20 - 4<<10
	mediumTo = 16 << 10
)

// valueBudget caps the large values of one seed, so a seed stays fast: most values are
// small, a few are large, and one at most is huge.
type valueBudget struct {
	big, huge int
}

// textPieces are the fragments text values are made of: each one something an
// encoder or a transport might escape, normalise or mangle.
var textPieces = []string{
	"<b>Tom & Jerry</b>", "<script>alert(1)</script>", "a&amp;b", ">", "<", "&",
	"\u2028", "\u2029", "line\u2028separator", "naïve café", "日本語のテキスト", "Ελληνικά",
	"Ünïcödé", "🙂👍🏽", "\\\"quoted\\\"", "tab\\there", "plain words ", "0123456789",
}

// numberPieces are JSON numbers that a float64 or an int64 cannot hold exactly.
var numberPieces = []string{
	"1e400", "-1e400", "12345678901234567890", "98765432109876543210123", "0.1000000000000000000001",
	"-0", "1E-400", "18446744073709551617", "3.14159265358979323846264338327950288",
}

// tinyValues are whole values of a few bytes.
var tinyValues = []string{"0", "7", "[]", "{}", `"<&>"`, "1e400", "true", "\"\u2028\"", `"é"`, "-0.5"}

// newValue draws the data of a write by inst as operation op: a JSON object that names
// them (so every write's data differs) around a payload of a size drawn from rng.
func newValue(rng *rand.Rand, budget *valueBudget, inst string, op int) []byte {
	size := 0
	switch r := rng.IntN(1000); {
	case r < 3 && budget.huge > 0:
		budget.huge--
		size = hugeMin + rng.IntN(hugeMax-hugeMin)
	case r < 30 && budget.big > 0:
		budget.big--
		size = bigMin + rng.IntN(bigMax-bigMin)
	case r < 250:
		size = 200 + rng.IntN(mediumTo)
	case r < 300:
		// A bare value of a few bytes: not every document is an object.
		return []byte(tinyValues[rng.IntN(len(tinyValues))])
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"by":%q,"op":%d,"r":%d`, inst, op, rng.IntN(1000))
	if size == 0 {
		switch rng.IntN(4) {
		case 0:
			fmt.Fprintf(&b, `,"n":%s`, numberPieces[rng.IntN(len(numberPieces))])
		case 1:
			fmt.Fprintf(&b, `,"t":"%s"`, textPieces[rng.IntN(len(textPieces))])
		case 2:
			b.WriteString(`,"deep":`)
			nest(&b, rng, 5+rng.IntN(60))
		}
		b.WriteString("}")
		return b.Bytes()
	}
	b.WriteString(`,"deep":`)
	nest(&b, rng, 10+rng.IntN(200))
	b.WriteString(`,"nums":[`)
	for i := range 1 + rng.IntN(8) {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(numberPieces[rng.IntN(len(numberPieces))])
	}
	b.WriteString(`],"text":"`)
	// Fill to size with text pieces; a value made mostly of one HTML character is the
	// worst case for an escaping encoder (six bytes out for one in).
	fill := textPieces
	if rng.IntN(4) == 0 {
		fill = []string{"<", ">", "&"}
	}
	for b.Len() < size-16 {
		b.WriteString(fill[rng.IntN(len(fill))])
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// nest writes a value nested depth levels deep, alternating objects and arrays.
func nest(b *bytes.Buffer, rng *rand.Rand, depth int) {
	var closing strings.Builder
	for i := range depth {
		if i%2 == 0 {
			b.WriteString(`{"a":`)
			closing.WriteString("}")
		} else {
			b.WriteString(`[`)
			closing.WriteString("]")
		}
	}
	fmt.Fprintf(b, `"%s"`, textPieces[rng.IntN(len(textPieces))])
	s := closing.String()
	for i := len(s) - 1; i >= 0; i-- {
		b.WriteByte(s[i])
	}
}

// newPatch draws the body of a patch: a small merge patch, sometimes with text.
func newPatch(rng *rand.Rand, op int) []byte {
	if rng.IntN(3) == 0 {
		return fmt.Appendf(nil, `{"p":%d,"pt":"%s"}`, op, textPieces[rng.IntN(len(textPieces))])
	}
	return fmt.Appendf(nil, `{"p":%d}`, op)
}
