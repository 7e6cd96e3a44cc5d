package pivot

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/benitogf/pivot/ooo"
)

// FuzzStreamFrame feeds a node arbitrary stream messages, as if they had passed the
// HMAC check (no Token): whatever arrives, the node either refuses it (the stream
// would close) or queues only changes under a synced key within the frame's range,
// and never panics.
func FuzzStreamFrame(f *testing.F) {
	for _, seed := range []string{
		"\n" + `{"type":"changes","key":"users/*","epoch":"e","from":1,"next":3,"changes":[{"key":"users/a","created":5,"data":{"x":1},"seq":2}]}`,
		"\n" + `{"type":"poke","key":""}`,
		"\n" + `{"type":"poke","key":"settings"}`,
		"\n" + `{"type":"ack","key":"users/*","epoch":"e","next":1}`,
		"\n" + `{"type":"changes","key":"users/*","epoch":"e","from":3,"next":1}`,
		"\n" + `{"type":"changes","key":"other/*","epoch":"e","changes":[{"key":"other/a","created":5,"data":1,"seq":2}]}`,
		"nonsense",
		"\n{",
	} {
		f.Add([]byte(seed))
	}
	db := &ooo.MemoryStorage{}
	require.NoError(f, db.Start(ooo.StorageOpt{}))
	f.Cleanup(db.Close)
	keys, err := buildKeys(db, Config{Keys: []Key{{Path: "users/*"}, {Path: "settings"}}})
	require.NoError(f, err)
	cfg := Config{Keys: []Key{{Path: "users/*"}, {Path: "settings"}}}.withDefaults()
	e := newEngine(cfg, "127.0.0.1:1", keys, nil)
	e.node.stream = &nodeStream{n: e.node, wake: make(chan struct{}, 1), inbox: map[*syncKey][]streamFrame{},
		acks: map[*syncKey]streamPos{}, sent: map[*syncKey]streamPos{}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := frameSigner{dir: toNode}
		var fr streamFrame
		if in.check(msg, &fr) != nil {
			return
		}
		if e.node.stream.receive(fr, len(msg)) != nil {
			return
		}
		for sk, frames := range e.node.stream.inbox {
			for _, got := range frames {
				require.Equal(t, sk.path, got.Key)
				for _, c := range got.Changes {
					require.NoError(t, validEntry(sk.path, c.Entry))
					require.True(t, c.Seq > got.From && c.Seq <= got.Next)
				}
			}
			e.node.stream.take(sk)
		}
	})
}
