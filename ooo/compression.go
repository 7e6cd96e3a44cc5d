package ooo

import (
	"net/http"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
)

// GzipMinSize is the smallest answer body the server compresses, in bytes; it applies
// to every route the server serves, ooo's and those of extensions on its Router
// (pivot's protocol). A smaller body fits in one or two packets, so compressing it
// saves no round trip and costs CPU on both ends; a larger one (a list, a page of
// changes) shrinks several times, JSON being repetitive.
const GzipMinSize = 1 << 10

// compression is the one compression policy of the server: gzip at the fastest
// level, for requests whose Accept-Encoding allows gzip (by name or by "*"), bodies of
// GzipMinSize bytes or more. Only gzip, which every HTTP client decodes (Go's
// transport included); websocket upgrades bypass it.
func compression() func(http.Handler) http.HandlerFunc {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(GzipMinSize),
		gzhttp.CompressionLevel(gzip.BestSpeed),
		gzhttp.EnableZstd(false),
		gzhttp.AcceptWildcards(true),
	)
	if err != nil { // only for invalid options, which these are not
		panic(err)
	}
	return wrap
}
