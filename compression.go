package pivot

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Answers are compressed by the ooo server that serves the protocol routes, under its
// one policy (ooo.GzipMinSize); a peer reads them through answerBody.

// answerBody returns the body of resp as pivot reads it: decompressed when the peer
// sent it gzip-compressed and the HTTP client left it so (a transport that set
// Accept-Encoding itself; Go's own transport decompresses it before). The caller still
// bounds what it reads, so MaxBodyBytes limits the decompressed size.
func answerBody(resp *http.Response) (io.Reader, func(), error) {
	if resp.Uncompressed || !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Content-Encoding")), "gzip") {
		return resp.Body, func() {}, nil
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("gzip answer: %w", err)
	}
	return zr, func() { _ = zr.Close() }, nil
}
