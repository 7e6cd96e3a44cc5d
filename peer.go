package pivot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// peer makes the pivot protocol's requests to one other instance. It is safe for
// concurrent use.
type peer struct {
	base    string // scheme://host:port + route prefix
	client  *http.Client
	keys    *keyring // nil: requests are not signed
	cluster string
	self    func() string // this node's name, sent in HeaderNode; nil on the pivot
	timeout time.Duration
	maxBody int64
	traffic *traffic
}

// traffic counts the bytes moved by a set of peers.
type traffic struct {
	sent, received atomic.Int64
}

// baseURL turns a peer address ("host:port" or a URL) and the route prefix into the
// base of every request URL; an address without a scheme gets scheme.
func baseURL(addr, prefix, scheme string) string {
	addr = strings.TrimSuffix(addr, "/")
	if !strings.Contains(addr, "://") {
		addr = scheme + "://" + addr
	}
	return addr + prefix
}

// do sends one request to route and decodes a JSON answer into out. With a Token the
// request carries a proof of it and the answer must carry a valid signature; when the
// peer refuses the current secret during a rotation, the previous one is tried. Every
// failure is a *RemoteError.
func (p *peer) do(ctx context.Context, op, method, route string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		b, err := encodeBody(in)
		if err != nil {
			return p.fail(op, 0, codeBadRequest, fmt.Sprintf("encode request: %v", err))
		}
		if int64(len(b)) > p.maxBody {
			return &RemoteError{Op: op, Peer: p.base, Message: fmt.Sprintf("request of %d bytes exceeds MaxBodyBytes", len(b)), kind: ErrTooLarge}
		}
		body = b
	}
	secrets := p.keys.secrets(time.Now())
	if len(secrets) == 0 {
		secrets = [][]byte{nil}
	}
	var err error
	for i, secret := range secrets {
		err = p.exchange(ctx, op, method, route, query, body, secret, out)
		if i+1 == len(secrets) || !errors.Is(err, ErrUnauthorized) {
			break
		}
	}
	return err
}

// fail returns the *RemoteError of op for an answer with status and code (status 0:
// no answer).
func (p *peer) fail(op string, status int, code, msg string) error {
	return &RemoteError{Op: op, Peer: p.base, Status: status, Message: msg, kind: kindOf(status, code)}
}

// exchange makes one attempt of do, signed with secret (nil: unsigned).
func (p *peer) exchange(ctx context.Context, op, method, route string, query url.Values, body, secret []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	u := p.base + route
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return p.fail(op, 0, codeBadRequest, fmt.Sprintf("build request: %v", err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		p.traffic.sent.Add(int64(len(body)))
	}
	// Every pivot request is idempotent (a push is applied under LWW, a trigger is
	// coalesced): a nil X-Idempotency-Key lets the transport retry one that met a
	// stale keep-alive connection, without sending the header. The retry sends the
	// same proof: the peer never accepted it (the connection was dead), so its nonce
	// is still fresh there.
	req.Header["X-Idempotency-Key"] = nil
	req.Header.Set(HeaderVersion, ProtocolVersion)
	req.Header.Set(HeaderCluster, p.cluster)
	if p.self != nil {
		if id := p.self(); id != "" {
			req.Header.Set(HeaderNode, id)
		}
	}
	var sig string
	if secret != nil {
		sig = signRequest(req, route, body, secret, time.Now())
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return p.fail(op, 0, codeUnavailable, transportError(err))
	}
	defer resp.Body.Close()
	raw, err := p.readAnswer(op, resp)
	if err != nil {
		return err
	}
	signed := secret == nil || answerValid(secret, sig, resp.StatusCode, resp.Header, raw)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb errorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(raw))
		}
		if !signed && resp.StatusCode != http.StatusUnauthorized {
			eb.Error += " (answer not signed with the cluster's Token)"
		}
		return p.fail(op, resp.StatusCode, eb.Code, eb.Error)
	}
	if !signed {
		// Whoever answered does not hold the secret: a wrong address, or a
		// tampered answer. Nothing of it is used.
		return &RemoteError{Op: op, Peer: p.base, Status: resp.StatusCode,
			Message: "the answer carries no valid " + HeaderSignature + ": the peer does not hold the cluster's Token, or the answer was changed on the way",
			kind:    ErrUnauthorized}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &RemoteError{Op: op, Peer: p.base, Status: resp.StatusCode, Message: fmt.Sprintf("decode answer: %v", err), kind: ErrUnavailable}
	}
	return nil
}

// readAnswer reads the body of resp, decompressed, at most MaxBodyBytes of it.
func (p *peer) readAnswer(op string, resp *http.Response) ([]byte, error) {
	body, done, err := answerBody(resp)
	if err != nil {
		return nil, p.fail(op, 0, codeUnavailable, fmt.Sprintf("read answer: %v", err))
	}
	defer done()
	// The limit applies to the body as decoded: a small compressed answer cannot
	// expand past MaxBodyBytes in memory.
	raw, err := io.ReadAll(io.LimitReader(body, p.maxBody+1))
	if err != nil {
		return nil, p.fail(op, 0, codeUnavailable, fmt.Sprintf("read answer: %v", err))
	}
	p.traffic.received.Add(int64(len(raw)))
	if int64(len(raw)) > p.maxBody {
		return nil, &RemoteError{Op: op, Peer: p.base, Status: resp.StatusCode, Message: "answer exceeds MaxBodyBytes", kind: ErrTooLarge}
	}
	return raw, nil
}

// changes pulls the peer's feed for path after since: at most limit changes whose
// entries weigh at most budget bytes (see entrySize), or one bigger change.
func (p *peer) changes(ctx context.Context, path string, since uint64, limit int, budget int64) (changesResponse, error) {
	var out changesResponse
	q := url.Values{"key": {path}, "since": {strconv.FormatUint(since, 10)}, "limit": {strconv.Itoa(limit)},
		"bytes": {strconv.FormatInt(budget, 10)}}
	err := p.do(ctx, "pull", http.MethodGet, routeChanges, q, nil, &out)
	return out, err
}

// apply pushes entries of path to the peer.
func (p *peer) apply(ctx context.Context, path string, req applyRequest) (applyResponse, error) {
	var out applyResponse
	err := p.do(ctx, "push", http.MethodPost, routeApply, url.Values{"key": {path}}, req, &out)
	if err == nil && out.Applied+out.Superseded+len(out.Refused) != len(req.Entries) {
		err = &RemoteError{Op: "push", Peer: p.base, Status: http.StatusOK,
			Message: fmt.Sprintf("answer accounts for %d of %d entries", out.Applied+out.Superseded+len(out.Refused), len(req.Entries)),
			kind:    ErrUnavailable}
	}
	return out, err
}

// digest asks for the peer's digest of path.
func (p *peer) digest(ctx context.Context, path string) (digestResponse, error) {
	var out digestResponse
	err := p.do(ctx, "digest", http.MethodGet, routeDigest, url.Values{"key": {path}}, nil, &out)
	return out, err
}

// tree asks for the node of the peer's digest tree of path named by prefix.
func (p *peer) tree(ctx context.Context, path, prefix string) (treeResponse, error) {
	var out treeResponse
	err := p.do(ctx, "tree", http.MethodGet, routeTree, url.Values{"key": {path}, "prefix": {prefix}}, nil, &out)
	return out, err
}

// entries asks for the peer's entries of keys under path, at most budget bytes of them.
func (p *peer) entries(ctx context.Context, path string, keys []string, budget int64) (entriesResponse, error) {
	var out entriesResponse
	q := url.Values{"key": {path}, "bytes": {strconv.FormatInt(budget, 10)}}
	err := p.do(ctx, "entries", http.MethodPost, routeEntries, q, entriesRequest{Keys: keys}, &out)
	return out, err
}

// trigger asks the peer (a node) to sync paths now.
func (p *peer) trigger(ctx context.Context, paths []string) error {
	return p.do(ctx, "trigger", http.MethodPost, routeTrigger, nil, triggerRequest{Keys: paths}, nil)
}

// unreachable reports whether err holds a failure to reach a peer at all (no answer:
// refused, timed out, cut), as opposed to an answer the peer gave.
func unreachable(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Status == 0 && re.kind == ErrUnavailable
}
