package testcluster_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo"
)

var paths = []string{"users/*", "things/*"}

func spec(i int) testcluster.Spec {
	return testcluster.Spec{
		Storage: &ooo.MemoryStorage{},
		Config: pivot.Config{
			Keys: []pivot.Key{{Path: "users/*"}}, NodesKey: "things/*", Token: "harness-token", ClusterID: "harness",
			SyncInterval: -1, BackoffMin: 2 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
			RequestTimeout: time.Second,
		},
	}
}

func TestCluster_CutNodeCatchesUpAfterTheLinkHeals(t *testing.T) {
	net := testcluster.NewNetwork(1)
	c, err := testcluster.StartCluster(2, func(i int) testcluster.Spec {
		s := spec(i)
		if i == 1 {
			s.Name = "cut"
			s.Config.Client = net.Transport("cut").Client()
		}
		return s
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	require.NoError(t, c.WaitConverged(ctx, paths, false))

	net.SetMode("cut", testcluster.AnyPeer, testcluster.LinkRefused)
	cut := c.Nodes[0]
	_, err = cut.DB.Set("users/while-cut", []byte(`"kept locally"`))
	require.NoError(t, err)
	_, err = c.Pivot.DB.Set("users/from-pivot", []byte(`1`))
	require.NoError(t, err)
	require.NoError(t, testcluster.WaitConverged(ctx, testcluster.Feeds(c.Pivot, c.Nodes[1]), paths, false))
	for cut.Status().PivotHealthy {
		select {
		case <-ctx.Done():
			t.Fatal("the cut node never noticed the cut")
		case <-time.After(2 * time.Millisecond):
		}
	}
	ok, err := testcluster.Converged(testcluster.Feeds(c.All()...), paths, false)
	require.NoError(t, err)
	require.False(t, ok, "a node that cannot reach the pivot cannot hold its write")
	require.Positive(t, net.Count.Refused.Load())

	net.HealAll()
	require.NoError(t, c.WaitConverged(ctx, paths, false))
}

func TestWaitConverged_DescribesTheDifference(t *testing.T) {
	a, b := &ooo.MemoryStorage{}, &ooo.MemoryStorage{}
	for _, db := range []*ooo.MemoryStorage{a, b} {
		require.NoError(t, db.Start(ooo.StorageOpt{}))
		t.Cleanup(db.Close)
	}
	_, err := a.Set("users/only-here", []byte(`"<b>á</b>"`))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = testcluster.WaitConverged(ctx, []testcluster.Feed{a, b}, paths, false)
	require.ErrorIs(t, err, testcluster.ErrNotConverged)
	require.Contains(t, err.Error(), "users/only-here")
}

func TestNetwork_OwnLinkBeforeAnyPeerAndCountersRunOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(other.Close)
	net := testcluster.NewNetwork(7)
	net.Name(srv.Listener.Addr().String(), "peer")
	net.SetMode("me", testcluster.AnyPeer, testcluster.LinkRefused)
	net.Update("me", "peer", func(l *testcluster.Link) { l.DropRequests = 2 })
	client := net.Transport("me").Client()
	get := func(url string) error {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for range 2 {
		require.True(t, errors.Is(get(srv.URL), testcluster.ErrFault), "dropped by the own link")
	}
	require.ErrorIs(t, get(srv.URL), testcluster.ErrFault, "the own link's counter ran out: AnyPeer applies again")
	require.ErrorIs(t, get(other.URL), testcluster.ErrFault, "every other peer is refused")
	net.Update("me", "peer", func(l *testcluster.Link) { l.Delay = time.Millisecond })
	require.NoError(t, get(srv.URL), "a link of its own that is not cut overrides AnyPeer")
	require.EqualValues(t, 2, net.Count.DroppedRequests.Load())
	require.EqualValues(t, 2, net.Count.Refused.Load())
	require.EqualValues(t, 1, net.Count.Delayed.Load())
}

// until polls cond every 2 ms until it holds or ctx ends.
func until(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("not reached: %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// The live stream dials through the network (pivot.StreamDialer): a cut breaks the
// open stream, the node cannot reopen it while cut, and after the heal it streams
// again and converges.
func TestNetwork_CutBreaksTheLiveStream(t *testing.T) {
	net := testcluster.NewNetwork(2)
	c, err := testcluster.StartCluster(1, func(i int) testcluster.Spec {
		s := spec(i)
		s.Name = []string{"pivot", "streamer"}[i]
		s.Config.Client = net.Transport(s.Name).Client()
		return s
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	net.Name(c.Pivot.Addr, "pivot")
	node := c.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	until(t, ctx, "the node's stream opens", func() bool { return node.Status().Stream })

	net.SetMode("streamer", "pivot", testcluster.LinkRefused)
	until(t, ctx, "the cut closes the stream", func() bool { return !node.Status().Stream })
	_, err = c.Pivot.DB.Set("users/while-cut", []byte(`"<p>ü</p>"`))
	require.NoError(t, err)
	_, err = node.DB.Set("users/on-the-node", []byte(`2`))
	require.NoError(t, err)
	until(t, ctx, "the node fails to reach the pivot", func() bool { return net.Count.Refused.Load() > 0 })
	require.False(t, node.Status().Stream, "no stream opens through a refused link")

	net.HealAll()
	require.NoError(t, c.WaitConverged(ctx, paths, false))
	until(t, ctx, "the stream opens again", func() bool { return node.Status().Stream })
}
