package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// jsonSpace is the whitespace JSON allows around a value (RFC 8259); bytes.TrimSpace
// would also drop characters such as '\v' that make a body invalid JSON.
const jsonSpace = " \t\r\n"

// DecodeReader reads all of r and returns the single JSON value it holds, without the
// surrounding whitespace. Any JSON type is accepted (object, array, string, number,
// true, false, null). An empty body is ErrEmptyBody; malformed JSON, or anything after
// the value, is ErrInvalidJSON with the parser's explanation. Errors from r itself (for
// example *http.MaxBytesError) are returned wrapped, so errors.As finds them.
//
// DecodeReader does not limit how much it reads; wrap r (http.MaxBytesReader,
// io.LimitReader) to bound it.
func DecodeReader(r io.Reader) (json.RawMessage, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("messages: read body: %w", err)
	}
	body = bytes.Trim(body, jsonSpace)
	if len(body) == 0 {
		return nil, ErrEmptyBody
	}
	var probe json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	return json.RawMessage(body), nil
}
