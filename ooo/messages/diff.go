package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wI2L/jsondiff"
)

// Diff returns the RFC 6902 JSON Patch that turns the JSON value from into to, encoded
// as a JSON array ("[]" when they are equal). Numbers are compared and copied as their
// JSON text, so 64-bit stamps keep every digit. When the patch would replace the whole
// document or address an empty member name, Diff returns ErrNeedSnapshot instead.
func Diff(from, to []byte) ([]byte, error) {
	patch, err := jsondiff.CompareJSON(from, to, jsondiff.UnmarshalFunc(unmarshalNumbers))
	if err != nil {
		return nil, fmt.Errorf("messages: diff: %w", err)
	}
	if len(patch) == 0 {
		return []byte("[]"), nil
	}
	for _, op := range patch {
		if p := op.Path; p == "" || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
			return nil, ErrNeedSnapshot
		}
	}
	out, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("messages: encode diff: %w", err)
	}
	return out, nil
}

func unmarshalNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
