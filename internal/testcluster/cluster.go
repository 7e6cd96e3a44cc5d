package testcluster

import (
	"context"
	"fmt"
)

// Cluster is a pivot and its nodes.
type Cluster struct {
	Pivot *Instance
	Nodes []*Instance
}

// StartCluster starts a pivot from spec(0), then n nodes from spec(1) … spec(n), each
// pointed at the pivot (Spec.Pivot, or Server.Pivot, when the spec leaves it empty)
// and registered under the pivot's NodesKey unless it advertises itself
// (Config.Advertise) or the pivot has no NodesKey. On failure nothing keeps running.
func StartCluster(n int, spec func(i int) Spec) (*Cluster, error) {
	c := &Cluster{}
	p, err := Start(spec(0))
	if err != nil {
		return nil, err
	}
	c.Pivot = p
	for i := 1; i <= n; i++ {
		s := spec(i)
		if s.Name == "" {
			s.Name = fmt.Sprintf("node%d", i)
		}
		if s.Server != nil && s.Server.Pivot == "" {
			s.Server.Pivot = p.Addr
		} else if s.Server == nil && s.Pivot == "" {
			s.Pivot = p.Addr
		}
		node, err := Start(s)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, node)
		if s.Config.Advertise == "" && p.Spec.Config.NodesKey != "" {
			if err := p.Register(node); err != nil {
				c.Close()
				return nil, err
			}
		}
	}
	return c, nil
}

// All lists the pivot, then the nodes.
func (c *Cluster) All() []*Instance { return append([]*Instance{c.Pivot}, c.Nodes...) }

// Close stops the nodes, then the pivot.
func (c *Cluster) Close() {
	for i := len(c.Nodes) - 1; i >= 0; i-- {
		c.Nodes[i].Close()
	}
	if c.Pivot != nil {
		c.Pivot.Close()
	}
}

// WaitConverged waits until every instance holds the same state under paths (see the
// function WaitConverged).
func (c *Cluster) WaitConverged(ctx context.Context, paths []string, liveOnly bool) error {
	return WaitConverged(ctx, Feeds(c.All()...), paths, liveOnly)
}
