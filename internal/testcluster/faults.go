package testcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFault is the root of every failure the fault layer makes up: a test can tell an
// injected fault from a real one with errors.Is. Its messages name the sender, not the
// address: the client's own error already carries the URL, and logs must not repeat it.
var ErrFault = errors.New("testcluster: injected fault")

// AnyPeer, as the destination of a link, stands for every destination the sender has
// no link of its own to: Network.Update(name, AnyPeer, ...) cuts an instance off from
// everyone, named or not.
const AnyPeer = "*"

// LinkMode is what a link does with every request.
type LinkMode int

// Link modes.
const (
	LinkUp        LinkMode = iota // requests pass (subject to the link's counters)
	LinkRefused                   // requests fail at once, as against a closed port
	LinkBlackhole                 // requests hang until their deadline, as in a partition
)

// Link is the state of one direction between two instances (from → to). The zero Link
// is up: requests pass unchanged.
type Link struct {
	Mode         LinkMode
	DropRequests int           // drop the next DropRequests requests before they are sent
	DropAnswers  int           // send the next DropAnswers requests, then lose their answers
	Loss         float64       // probability that a request, or else its answer, is lost
	Delay        time.Duration // added before every request is sent
	// Lie answers the next Lie pushes with a made-up success without sending them: a
	// broken peer that loses acknowledged data. Only checkers' own tests use it, to
	// prove that a checker catches a loss.
	Lie int
}

func (l Link) isUp() bool { return l == Link{} }

// Counts counts what a Network did to requests.
type Counts struct {
	Passed, Refused, Blackholed, DroppedRequests, DroppedAnswers, Delayed atomic.Int64
}

// Network is the fault layer between the instances of one cluster. Each instance sends
// its requests through a Transport of the network (Config.Client), which asks the
// network what to do with each one. Links are directed and named by instance;
// addresses map to names (Name). Loss is drawn from the network's seed. It is safe for
// concurrent use.
type Network struct {
	mu    sync.Mutex
	names map[string]string        // "host:port" → instance name
	links map[[2]string]Link       // {from, to} → state; absent means up
	rng   *rand.Rand               // for Loss; guarded by mu
	conns map[*streamConn]struct{} // open stream connections (stream_faults.go)
	// Count is what the network did so far.
	Count Counts
}

// NewNetwork returns a network with every link up, drawing losses from seed.
func NewNetwork(seed uint64) *Network {
	return &Network{
		names: map[string]string{},
		links: map[[2]string]Link{},
		rng:   rand.New(rand.NewPCG(seed, 0x5eed)),
	}
}

// Name records that addr ("host:port") belongs to the instance called name.
func (n *Network) Name(addr, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[addr] = name
}

// Update changes the link from → to with fn (to may be AnyPeer). Stream connections
// the change cuts are closed before it returns.
func (n *Network) Update(from, to string, fn func(*Link)) {
	n.mu.Lock()
	l := n.links[[2]string{from, to}]
	fn(&l)
	if l.isUp() {
		delete(n.links, [2]string{from, to})
	} else {
		n.links[[2]string{from, to}] = l
	}
	broken := n.breakLocked()
	n.mu.Unlock()
	for _, c := range broken {
		_ = c.Close()
	}
}

// SetMode sets the mode of the link from → to, keeping its counters.
func (n *Network) SetMode(from, to string, mode LinkMode) {
	n.Update(from, to, func(l *Link) { l.Mode = mode })
}

// HealAll puts every link back up.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links = map[[2]string]Link{}
}

// action is what to do with one request.
type action int

const (
	actPass action = iota
	actRefuse
	actBlackhole
	actDropRequest
	actDropAnswer
	actLie
)

// decide consumes the counters of the link from → the instance at addr for one
// request to path. A link of its own to that instance comes first, then AnyPeer.
func (n *Network) decide(from, addr, path string) (action, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := [2]string{from, AnyPeer}
	if to, ok := n.names[addr]; ok {
		if _, own := n.links[[2]string{from, to}]; own {
			key = [2]string{from, to}
		}
	}
	l, ok := n.links[key]
	if !ok {
		return actPass, 0
	}
	act := actPass
	switch {
	case l.Mode == LinkRefused:
		act = actRefuse
	case l.Mode == LinkBlackhole:
		act = actBlackhole
	case l.DropRequests > 0:
		l.DropRequests--
		act = actDropRequest
	case l.DropAnswers > 0:
		l.DropAnswers--
		act = actDropAnswer
	case l.Lie > 0 && strings.HasSuffix(path, "/apply"):
		l.Lie--
		act = actLie
	case l.Loss > 0 && n.rng.Float64() < l.Loss:
		act = actDropRequest
		if n.rng.IntN(2) == 0 {
			act = actDropAnswer
		}
	}
	if l.isUp() {
		delete(n.links, key)
	} else {
		n.links[key] = l
	}
	return act, l.Delay
}

// Transport is the http.RoundTripper of one instance: it applies its links' faults to
// every request, then sends it for real unless they say otherwise.
type Transport struct {
	net  *Network
	from string
	// Inner sends the requests that pass. Its idle connections are the instance's:
	// close them when the instance stops.
	Inner *http.Transport
}

// Transport returns the transport of the instance called from.
func (n *Network) Transport(from string) *Transport {
	inner := http.DefaultTransport.(*http.Transport).Clone()
	inner.MaxIdleConnsPerHost = 16
	inner.IdleConnTimeout = 5 * time.Second
	return &Transport{net: n, from: from, Inner: inner}
}

// Client returns an http.Client sending through t, for Config.Client.
func (t *Transport) Client() *http.Client { return &http.Client{Transport: t} }

// RoundTrip applies the link's faults to req. It always closes the request body, as
// the RoundTripper contract asks.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	act, delay := t.net.decide(t.from, req.URL.Host, req.URL.Path)
	count := &t.net.Count
	fail := func(kind string, counter *atomic.Int64) (*http.Response, error) {
		if counter != nil {
			counter.Add(1)
		}
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%w from %s: %s", ErrFault, t.from, kind)
	}
	if delay > 0 {
		count.Delayed.Add(1)
		if err := wait(req.Context(), delay); err != nil {
			return fail("deadline during injected delay", nil)
		}
	}
	switch act {
	case actRefuse:
		return fail("connection refused (link cut)", &count.Refused)
	case actBlackhole:
		<-req.Context().Done()
		return fail("no answer (blackhole): "+req.Context().Err().Error(), &count.Blackholed)
	case actDropRequest:
		return fail("request lost", &count.DroppedRequests)
	case actDropAnswer:
		resp, err := t.Inner.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		// Read the whole answer so the peer has finished acting on the request.
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		count.DroppedAnswers.Add(1)
		return nil, fmt.Errorf("%w from %s: answer lost after the peer acted", ErrFault, t.from)
	case actLie:
		return lie(req)
	}
	count.Passed.Add(1)
	return t.Inner.RoundTrip(req)
}

// lie answers a push as if every entry had been applied, without sending it.
func lie(req *http.Request) (*http.Response, error) {
	var body struct {
		Entries []json.RawMessage `json:"entries"`
	}
	err := json.NewDecoder(req.Body).Decode(&body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: lie: read the push: %v", ErrFault, err)
	}
	answer := fmt.Sprintf(`{"epoch":"lie","applied":%d,"superseded":0}`, len(body.Entries))
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(answer)),
		ContentLength: int64(len(answer)),
		Request:       req,
	}, nil
}

// wait blocks for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
