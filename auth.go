package pivot

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Authentication of the protocol (Config.Token). The secret never travels: a request
// carries a proof instead, an HMAC-SHA256 keyed by the secret over everything the
// request means (method, route, query, protocol version, cluster id, the sender's
// name, a timestamp, a random nonce and the body). The receiver recomputes it, refuses
// a timestamp further than proofWindow from its own clock and a nonce it has already
// accepted (a replay), and signs its answer over the request's proof, the status and
// the body, so the requester knows the answer comes from a holder of the secret and
// answers this very request. A proof given to a wrong or hostile address is of no use
// there: it covers one request, which the address can only send again, once, to
// another instance within the window (for a trigger: a sync that instance would have
// made anyway).
//
// During a rotation an instance signs with its current secret and accepts the
// previous one for Config.TokenOverlap; when a peer refuses the current secret it
// tries the previous one, so a cluster moves to a new secret one instance at a time.

// Headers of an authenticated request (and HeaderSignature of its answer).
const (
	// HeaderTime carries the time a request was signed, in Unix milliseconds.
	HeaderTime = "X-Pivot-Time"
	// HeaderNonce carries a random value that makes each request's proof unique.
	HeaderNonce = "X-Pivot-Nonce"
	// HeaderSignature carries the proof of a request, or of an answer: the hex
	// HMAC-SHA256 of Config.Token over what it authenticates.
	HeaderSignature = "X-Pivot-Signature"
)

// Domain labels keep a request's proof from ever being taken for an answer's.
const (
	requestLabel = "pivot request"
	answerLabel  = "pivot answer"
)

// keyring holds the secrets an instance signs with and accepts: the current one and,
// during a rotation, the previous one until its overlap ends. Safe for concurrent use.
type keyring struct {
	overlap time.Duration

	mu       sync.RWMutex
	current  []byte
	previous []byte
	until    time.Time // previous is accepted before until
}

// newKeyring returns the keyring of Config: nil when Token is empty (no
// authentication).
func newKeyring(cfg Config, now time.Time) *keyring {
	if cfg.Token == "" {
		return nil
	}
	k := &keyring{overlap: cfg.TokenOverlap, current: []byte(cfg.Token)}
	if cfg.PreviousToken != "" && cfg.PreviousToken != cfg.Token {
		k.previous, k.until = []byte(cfg.PreviousToken), now.Add(cfg.TokenOverlap)
	}
	return k
}

// secrets returns the secrets to sign with, in order: the current one, then the
// previous one while its overlap lasts. nil on a nil keyring.
func (k *keyring) secrets(now time.Time) [][]byte {
	if k == nil {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.previous != nil && now.Before(k.until) {
		return [][]byte{k.current, k.previous}
	}
	return [][]byte{k.current}
}

// retired reports whether secret is a previous secret whose overlap has ended.
func (k *keyring) retired(now time.Time, match func([]byte) bool) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.previous != nil && !now.Before(k.until) && match(k.previous)
}

// rotate makes token the current secret; the one it replaces is accepted for the
// overlap from now.
func (k *keyring) rotate(token string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if token == string(k.current) {
		return
	}
	k.previous, k.until = k.current, now.Add(k.overlap)
	k.current = []byte(token)
}

// proof is what a request's HMAC covers.
type proof struct {
	method, route, query string
	cluster, node        string
	at                   int64 // unix ms
	nonce                string
	body                 []byte
}

// mac returns the proof's HMAC under secret.
func (p proof) mac(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, f := range []string{requestLabel, ProtocolVersion, p.method, p.route, p.query, p.cluster, p.node, strconv.FormatInt(p.at, 10), p.nonce} {
		writeField(m, []byte(f))
	}
	writeField(m, p.body)
	return m.Sum(nil)
}

// answerMAC returns the HMAC under secret of an answer with status and body to the
// request whose proof is requestSig (hex).
func answerMAC(secret []byte, requestSig string, status int, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, f := range []string{answerLabel, ProtocolVersion, requestSig, strconv.Itoa(status)} {
		writeField(m, []byte(f))
	}
	writeField(m, body)
	return m.Sum(nil)
}

// writeField writes b with its length first, so that no two lists of fields feed the
// HMAC the same bytes.
func writeField(m hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	m.Write(n[:])
	m.Write(b)
}

// newNonce returns a fresh random nonce.
func newNonce() string {
	var b [nonceBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// signRequest sets the proof headers of req, sent to route with body, under secret.
// The sender's name is req's HeaderNode, set before. It returns the proof (hex), which
// the answer's signature covers.
func signRequest(req *http.Request, route string, body []byte, secret []byte, now time.Time) string {
	p := proof{
		method:  req.Method,
		route:   route,
		query:   req.URL.Query().Encode(),
		cluster: req.Header.Get(HeaderCluster),
		node:    req.Header.Get(HeaderNode),
		at:      now.UnixMilli(),
		nonce:   newNonce(),
		body:    body,
	}
	sig := hex.EncodeToString(p.mac(secret))
	req.Header.Set(HeaderTime, strconv.FormatInt(p.at, 10))
	req.Header.Set(HeaderNonce, p.nonce)
	req.Header.Set(HeaderSignature, sig)
	return sig
}

// SignRequest authenticates req as a peer configured with cfg would, for programs and
// tests that call the protocol routes themselves: it sets HeaderVersion and
// HeaderCluster and, when cfg.Token is set, a proof of the secret over req and body
// (the bytes req sends; nil for none). The sender's name is req's HeaderNode, set
// before; req's path must lie under cfg.RoutePrefix. The proof is good for one request
// within a minute; the answer's HeaderSignature can be checked with VerifyAnswer.
func SignRequest(req *http.Request, body []byte, cfg Config) error {
	cfg = cfg.withDefaults()
	route, ok := strings.CutPrefix(req.URL.Path, cfg.RoutePrefix)
	if !ok {
		return fmt.Errorf("pivot: sign request: path %q is not under %q", req.URL.Path, cfg.RoutePrefix)
	}
	req.Header.Set(HeaderVersion, ProtocolVersion)
	req.Header.Set(HeaderCluster, cfg.ClusterID)
	if cfg.Token != "" {
		signRequest(req, route, body, []byte(cfg.Token), time.Now())
	}
	return nil
}

// VerifyAnswer checks that an answer with status and body to req, signed by
// SignRequest with cfg, carries a valid HeaderSignature in header. It returns an error
// wrapping ErrUnauthorized when it does not, and nil when cfg.Token is empty.
func VerifyAnswer(req *http.Request, status int, header http.Header, body []byte, cfg Config) error {
	if cfg.Token == "" {
		return nil
	}
	if !answerValid([]byte(cfg.Token), req.Header.Get(HeaderSignature), status, header, body) {
		return fmt.Errorf("%w: the answer carries no valid %s", ErrUnauthorized, HeaderSignature)
	}
	return nil
}

// answerValid reports whether header carries the signature of an answer with status
// and body to the request whose proof is requestSig.
func answerValid(secret []byte, requestSig string, status int, header http.Header, body []byte) bool {
	got, err := hex.DecodeString(header.Get(HeaderSignature))
	return err == nil && hmac.Equal(got, answerMAC(secret, requestSig, status, body))
}

// verifier checks the proofs of incoming requests. Safe for concurrent use.
type verifier struct {
	keys   *keyring
	nonces nonceCache
	// since is when this verifier started remembering nonces: a proof signed before
	// it could be a replay of a request accepted before a restart, which it cannot
	// tell, so it is refused (the sender signs its retry anew).
	since time.Time
}

// authError is why a request's proof was refused: status and a message for the
// requester, which reveals nothing about the secret.
type authError struct {
	status int
	msg    string
}

// verify checks the proof of r, received for route with body, and returns the secret
// it was made with.
func (v *verifier) verify(r *http.Request, route string, body []byte, now time.Time) ([]byte, *authError) {
	refuse := func(format string, args ...any) ([]byte, *authError) {
		return nil, &authError{http.StatusUnauthorized, fmt.Sprintf(format, args...)}
	}
	sig, err := hex.DecodeString(r.Header.Get(HeaderSignature))
	if err != nil || len(sig) != sha256.Size {
		return refuse("missing or malformed %s: this instance needs requests signed with the cluster's Token", HeaderSignature)
	}
	at, err := strconv.ParseInt(r.Header.Get(HeaderTime), 10, 64)
	if err != nil {
		return refuse("missing or malformed %s", HeaderTime)
	}
	if d := now.Sub(time.UnixMilli(at)); d > proofWindow || d < -proofWindow {
		return refuse("request signed at %s, %s away from this instance's clock (more than %s): check the clocks", time.UnixMilli(at).UTC().Format(time.RFC3339Nano), d.Round(time.Millisecond), proofWindow)
	}
	if !v.since.IsZero() && time.UnixMilli(at).Before(v.since.Truncate(time.Millisecond)) {
		return refuse("request signed before this instance started, which cannot tell it from a replay: sign it again")
	}
	nonce := r.Header.Get(HeaderNonce)
	if len(nonce) != 2*nonceBytes {
		return refuse("missing or malformed %s", HeaderNonce)
	}
	p := proof{method: r.Method, route: route, query: r.URL.Query().Encode(), cluster: r.Header.Get(HeaderCluster),
		node: r.Header.Get(HeaderNode), at: at, nonce: nonce, body: body}
	match := func(secret []byte) bool { return hmac.Equal(sig, p.mac(secret)) }
	var secret []byte
	for _, s := range v.keys.secrets(now) {
		if match(s) {
			secret = s
			break
		}
	}
	if secret == nil {
		if v.keys.retired(now, match) {
			return refuse("signed with a retired secret (its overlap has ended): use the cluster's current Token")
		}
		return refuse("the proof does not match: wrong Token, or the request was changed after it was signed")
	}
	switch v.nonces.add(nonce, now) {
	case nonceReplayed:
		return refuse("replayed request: this %s was already used", HeaderNonce)
	case nonceFull:
		return nil, &authError{http.StatusServiceUnavailable, "too many requests in the replay window, retry later"}
	}
	return secret, nil
}

// Results of nonceCache.add.
const (
	nonceFresh = iota
	nonceReplayed
	nonceFull
)

// nonceCache remembers the nonces of accepted requests long enough to refuse every
// replay within proofWindow: in two generations, each spanning twice the window, so a
// nonce is kept at least that long after it was accepted.
type nonceCache struct {
	mu    sync.Mutex
	cur   map[string]struct{}
	old   map[string]struct{}
	since time.Time // when cur was started
}

// add records nonce, unless it was recorded before or the cache is full.
func (c *nonceCache) add(nonce string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	span := 2 * proofWindow
	switch age := now.Sub(c.since); {
	case c.cur == nil || age >= 2*span:
		c.cur, c.old, c.since = map[string]struct{}{}, nil, now
	case age >= span:
		c.cur, c.old, c.since = map[string]struct{}{}, c.cur, now
	}
	if _, ok := c.cur[nonce]; ok {
		return nonceReplayed
	}
	if _, ok := c.old[nonce]; ok {
		return nonceReplayed
	}
	if len(c.cur)+len(c.old) >= maxNonces {
		return nonceFull
	}
	c.cur[nonce] = struct{}{}
	return nonceFresh
}

// certNames reports whether a verified client certificate names the node called name
// ("host:port", or a URL): its host must be one of the certificate's DNS names or IP
// addresses.
func certNames(cert *x509.Certificate, name string) bool {
	if _, rest, ok := strings.Cut(name, "://"); ok {
		name = rest
	}
	host, _, err := net.SplitHostPort(name)
	if err != nil {
		return false
	}
	return cert.VerifyHostname(host) == nil
}
