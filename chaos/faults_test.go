package chaos_test

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

// linkMode is what a link does with every request.
type linkMode int

const (
	linkUp        linkMode = iota // requests pass (subject to the counters below)
	linkRefused                   // requests fail at once, as against a closed port
	linkBlackhole                 // requests hang until their deadline, as in a partition
)

// link is the state of one direction between two instances (from → to).
type link struct {
	mode     linkMode
	dropReq  int           // drop the next dropReq requests before they are sent
	dropResp int           // send the next dropResp requests, then lose their answers
	loss     float64       // probability that a request, or else its answer, is lost
	delay    time.Duration // added before every request is sent
	// lie answers the next lie pushes with a made-up success without sending them: a
	// broken peer that loses acknowledged data. Only the checker's own tests use it,
	// to prove the checker catches a loss.
	lie int
}

func (l link) isUp() bool { return l == link{} }

// faultCounts counts what the fault layer did to requests.
type faultCounts struct {
	passed, refused, blackholed, droppedReq, droppedResp, delayed atomic.Int64
}

// network is the fault layer between the instances of one cluster. Each instance's
// pivot engine sends its requests through a faultTransport that asks the network what
// to do with them. Links are directed and named by instance; addresses map to names.
// It is safe for concurrent use.
type network struct {
	mu    sync.Mutex
	names map[string]string  // "host:port" → instance name
	links map[[2]string]link // {from, to} → state; absent means up
	rng   *rand.Rand         // for loss; guarded by mu
	count faultCounts
}

func newNetwork(seed uint64) *network {
	return &network{
		names: map[string]string{},
		links: map[[2]string]link{},
		rng:   rand.New(rand.NewPCG(seed, 0x5eed)),
	}
}

// name records that addr belongs to the instance called name.
func (n *network) name(addr, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[addr] = name
}

// update changes the link from → to with fn.
func (n *network) update(from, to string, fn func(*link)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[[2]string{from, to}]
	fn(&l)
	if l.isUp() {
		delete(n.links, [2]string{from, to})
		return
	}
	n.links[[2]string{from, to}] = l
}

// healAll puts every link back up.
func (n *network) healAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links = map[[2]string]link{}
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

// decide consumes the link's counters for one request from → the instance at addr.
func (n *network) decide(from, addr, path string) (action, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	to, ok := n.names[addr]
	if !ok {
		return actPass, 0
	}
	key := [2]string{from, to}
	l, ok := n.links[key]
	if !ok {
		return actPass, 0
	}
	act := actPass
	switch {
	case l.mode == linkRefused:
		act = actRefuse
	case l.mode == linkBlackhole:
		act = actBlackhole
	case l.dropReq > 0:
		l.dropReq--
		act = actDropRequest
	case l.dropResp > 0:
		l.dropResp--
		act = actDropAnswer
	case l.lie > 0 && strings.HasSuffix(path, "/apply"):
		l.lie--
		act = actLie
	case l.loss > 0 && n.rng.Float64() < l.loss:
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
	return act, l.delay
}

// errFault is the root of every failure the fault layer makes up.
var errFault = errors.New("chaos: injected fault")

// faultTransport is the http.RoundTripper of one instance's pivot engine.
type faultTransport struct {
	net   *network
	from  string
	inner *http.Transport
}

func newFaultTransport(n *network, from string) *faultTransport {
	inner := http.DefaultTransport.(*http.Transport).Clone()
	inner.MaxIdleConnsPerHost = 16
	inner.IdleConnTimeout = 5 * time.Second
	return &faultTransport{net: n, from: from, inner: inner}
}

// RoundTrip applies the link's faults to req, then sends it for real unless they say
// otherwise. It always closes the request body, as the RoundTripper contract asks.
func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	act, delay := f.net.decide(f.from, req.URL.Host, req.URL.Path)
	fail := func(kind string, counter *atomic.Int64) (*http.Response, error) {
		if counter != nil {
			counter.Add(1)
		}
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s→%s: %s", errFault, f.from, req.URL.Host, kind)
	}
	if delay > 0 {
		f.net.count.delayed.Add(1)
		if err := wait(req.Context(), delay); err != nil {
			return fail("deadline during injected delay", nil)
		}
	}
	switch act {
	case actRefuse:
		return fail("connection refused (link cut)", &f.net.count.refused)
	case actBlackhole:
		<-req.Context().Done()
		return fail("no answer (blackhole): "+req.Context().Err().Error(), &f.net.count.blackholed)
	case actDropRequest:
		return fail("request lost", &f.net.count.droppedReq)
	case actDropAnswer:
		resp, err := f.inner.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		// Read the whole answer so the peer has finished acting on the request.
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		f.net.count.droppedResp.Add(1)
		return nil, fmt.Errorf("%w: %s→%s: answer lost after the peer acted", errFault, f.from, req.URL.Host)
	case actLie:
		return lie(req)
	}
	f.net.count.passed.Add(1)
	return f.inner.RoundTrip(req)
}

// lie answers a push as if every entry had been applied, without sending it.
func lie(req *http.Request) (*http.Response, error) {
	var body struct {
		Entries []json.RawMessage `json:"entries"`
	}
	err := json.NewDecoder(req.Body).Decode(&body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: lie: read the push: %v", errFault, err)
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

// skewClock is an instance's wall clock: the real one plus an offset the schedule sets.
// It is handed to the instance's storage clocks (clock.Options.Wall).
type skewClock struct {
	offset atomic.Int64 // nanoseconds
}

func (c *skewClock) now() int64 { return time.Now().UnixNano() + c.offset.Load() }
