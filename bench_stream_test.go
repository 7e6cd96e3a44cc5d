package pivot_test

import (
	"fmt"
	"testing"
)

// BenchmarkConvergence_Stream is BenchmarkConvergence (a write on node A until its
// storage event on node B) with the live stream on, beside the trigger path in the
// same run: push and one frame on the stream, against push, trigger and pull.
func BenchmarkConvergence_Stream(b *testing.B) {
	for _, kind := range kinds() {
		for _, size := range []int{0, 10000} {
			for _, path := range []string{"triggers", "stream"} {
				b.Run(fmt.Sprintf("%s/entries=%d/%s", kind.name, size, path), func(b *testing.B) {
					cfg := streamConfig()
					cfg.DisableStream = path == "triggers"
					benchConvergenceWith(b, kind, size, cfg)
				})
			}
		}
	}
}
