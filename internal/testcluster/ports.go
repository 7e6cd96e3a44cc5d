package testcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// ErrNoPort is returned when no free loopback port could be found.
var ErrNoPort = errors.New("testcluster: no free loopback port")

// FreeAddr returns a loopback address nothing listens on right now. The kernel picks
// the port from its ephemeral range, so another process may take it before it is used:
// fine for an address that is listened on at once, not for one that must stay free
// across a restart (use Ports for that).
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testcluster: free address: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("testcluster: free address: %w", err)
	}
	return addr, nil
}

// Ports hands out loopback ports below the kernel's ephemeral range, so that a port an
// instance will listen on again after a restart is never taken meanwhile by the local
// end of an outgoing connection. Ports drawn from one seed come in the same order on
// every run. It is safe for concurrent use; share one between clusters of a test run so
// they never draw the same port.
type Ports struct {
	mu   sync.Mutex
	used map[int]bool
	rng  *rand.Rand
}

// NewPorts returns a Ports drawing from seed.
func NewPorts(seed uint64) *Ports {
	return &Ports{used: map[int]bool{}, rng: rand.New(rand.NewPCG(seed, 0x90e7))}
}

// Take returns a "127.0.0.1:port" that was free when drawn and that no other Take of p
// returns.
func (p *Ports) Take() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 1000 {
		port := 20000 + p.rng.IntN(12000)
		if p.used[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		p.used[port] = true
		return addr, nil
	}
	return "", ErrNoPort
}
