package natshub

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/benitogf/pivot/ooo/storage/storagetest"
)

// TestStorage_Conformance runs the ooo storage conformance suite on one in-process
// server, each subtest on its own bucket.
func TestStorage_Conformance(t *testing.T) {
	ns := startServer(t)
	_, js := connect(t, ns.ClientURL())
	var n atomic.Int64
	storagetest.Run(t, func(tb testing.TB) storagetest.Harness {
		bucket := fmt.Sprintf("suite%d", n.Add(1))
		return storagetest.Harness{
			Persistent: true,
			Open: func(cfg storagetest.Config) storagetest.Storage {
				return newStorage(tb, js, Config{Bucket: bucket, Clock: cfg.Clock, TombstoneRetention: cfg.TombstoneRetention})
			},
		}
	})
}
