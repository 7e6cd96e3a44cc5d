package testcluster

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// DialStream opens a connection for pivot's live stream (pivot.StreamDialer) under the
// link from t's instance to addr: a refused link fails at once, a blackholed one hangs
// until ctx ends, Delay delays the dial. An open connection breaks (it is closed: its
// reads and writes fail) as soon as its link is refused or blackholed, as a partition
// ends a TCP connection once its peer stops answering; the stream then reconnects
// and pulls. The counters of a Link (dropped requests or answers, loss, lies) count
// requests and do not apply to a stream's frames.
func (t *Transport) DialStream(ctx context.Context, network, addr string) (net.Conn, error) {
	l := t.net.linkTo(t.from, addr)
	if l.Delay > 0 {
		t.net.Count.Delayed.Add(1)
		if err := wait(ctx, l.Delay); err != nil {
			return nil, fmt.Errorf("%w from %s: deadline during injected delay", ErrFault, t.from)
		}
	}
	switch l.Mode {
	case LinkRefused:
		t.net.Count.Refused.Add(1)
		return nil, fmt.Errorf("%w from %s: connection refused (link cut)", ErrFault, t.from)
	case LinkBlackhole:
		t.net.Count.Blackholed.Add(1)
		<-ctx.Done()
		return nil, fmt.Errorf("%w from %s: no answer (blackhole): %v", ErrFault, t.from, ctx.Err())
	}
	conn, err := t.Inner.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &streamConn{Conn: conn, from: t.from, addr: addr}
	t.net.track(c)
	return c, nil
}

// streamConn is a stream connection the network can break.
type streamConn struct {
	net.Conn
	from, addr string
	closeOnce  sync.Once
	net        *Network
}

// Close closes the connection once and stops tracking it.
func (c *streamConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		if c.net != nil {
			c.net.untrack(c)
		}
		err = c.Conn.Close()
	})
	return err
}

// linkTo is the link from → the instance at addr (its own link, else AnyPeer),
// without consuming its counters.
func (n *Network) linkTo(from, addr string) Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.linkToLocked(from, addr)
}

func (n *Network) linkToLocked(from, addr string) Link {
	if to, ok := n.names[addr]; ok {
		if l, own := n.links[[2]string{from, to}]; own {
			return l
		}
	}
	return n.links[[2]string{from, AnyPeer}]
}

// track records an open stream connection, so that a link change can break it.
func (n *Network) track(c *streamConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns = map[*streamConn]struct{}{}
	}
	c.net = n
	n.conns[c] = struct{}{}
}

func (n *Network) untrack(c *streamConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, c)
}

// breakLocked lists the open stream connections whose link is now refused or
// blackholed; the caller closes them once it released the lock.
func (n *Network) breakLocked() []*streamConn {
	var out []*streamConn
	for c := range n.conns {
		if n.linkToLocked(c.from, c.addr).Mode != LinkUp {
			out = append(out, c)
		}
	}
	return out
}
