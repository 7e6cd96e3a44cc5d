package pivot

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// routes registers the protocol routes on r. Every route, and every other path under
// the prefix, answers JSON; errors are errorBody.
func (e *syncEngine) routes(r *mux.Router) {
	p := e.cfg.RoutePrefix
	e.own = map[string]bool{}
	handle := func(route, method string, h http.HandlerFunc) {
		e.own[route] = true
		r.HandleFunc(p+route, e.guard(route, method, h))
	}
	handle(routeChanges, http.MethodGet, e.pivotOnly(e.handleChanges))
	handle(routeApply, http.MethodPost, e.pivotOnly(e.handleApply))
	handle(routeDigest, http.MethodGet, e.pivotOnly(e.handleDigest))
	handle(routeTree, http.MethodGet, e.pivotOnly(e.handleTree))
	handle(routeEntries, http.MethodPost, e.pivotOnly(e.handleEntries))
	handle(routeWriter, http.MethodPost, e.pivotOnly(e.handleWriter))
	handle(routeStream, http.MethodGet, e.pivotOnly(e.handleStream))
	handle(routeTrigger, http.MethodPost, e.handleTrigger)
	handle(routeStatus, http.MethodGet, e.handleStatus)
	e.operatorRoutes(r)
	notFound := e.guard("", "", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no pivot route "+r.URL.Path)
	})
	r.PathPrefix(p + "/").HandlerFunc(notFound)
	r.Handle(p, notFound)
}

// guard checks, in order: protocol version and cluster id (400 when missing, 409 when
// different), method (405), the body (413 past MaxBodyBytes, 408 when it does not
// arrive within RequestTimeout), then, with a Token, the request's proof (401, see
// auth.go) and, under mutual TLS, that the client certificate names the sender (403).
// The handler gets the body as read and an answer writer that signs its answer. An
// empty route stands for the path under the prefix (the not-found handler).
func (e *syncEngine) guard(route, method string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch v := r.Header.Get(HeaderVersion); {
		case v == "":
			writeError(w, http.StatusBadRequest, codeVersion, "missing "+HeaderVersion+" (this pivot speaks version "+ProtocolVersion+")")
			return
		case v != ProtocolVersion:
			writeError(w, http.StatusConflict, codeVersion, fmt.Sprintf("protocol version %q is not supported (this pivot speaks version %s)", v, ProtocolVersion))
			return
		}
		if c := r.Header.Get(HeaderCluster); c != e.cfg.ClusterID {
			writeError(w, http.StatusConflict, codeCluster, fmt.Sprintf("cluster id %q does not match this instance's cluster", c))
			return
		}
		if method != "" && r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, codeBadRequest, r.Method+" not allowed, use "+method)
			return
		}
		body, ok := e.readBody(w, r)
		if !ok {
			return
		}
		aw := answerWriter{ResponseWriter: w, sent: &e.traffic.sent}
		if e.secrets != nil {
			if route == "" {
				route = strings.TrimPrefix(r.URL.Path, e.cfg.RoutePrefix)
			}
			secret, refused := e.verify.verify(r, route, body, time.Now())
			if refused != nil {
				code := codeUnauthorized
				if refused.status == http.StatusServiceUnavailable {
					code = codeUnavailable
				}
				writeError(w, refused.status, code, refused.msg)
				return
			}
			aw.secret, aw.proof = secret, r.Header.Get(HeaderSignature)
		}
		if name := r.Header.Get(HeaderNode); name != "" && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 &&
			!certNames(r.TLS.VerifiedChains[0][0], name) {
			writeError(aw, http.StatusForbidden, codeForbidden, fmt.Sprintf("the client certificate does not name %q (%s)", name, HeaderNode))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next(aw, r)
	}
}

// readBody reads r's whole body, at most MaxBodyBytes of it and within RequestTimeout,
// so a proof can cover it and a slow sender holds nothing for long. It answers the
// error itself when it reports false.
func (e *syncEngine) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(e.cfg.RequestTimeout)) // unsupported: the server's ReadTimeout bounds it
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, e.cfg.MaxBodyBytes))
	e.traffic.received.Add(int64(len(b)))
	if err == nil {
		_ = rc.SetReadDeadline(time.Time{})
		return b, true
	}
	// The deadline stays and the connection closes: the server must not wait for the
	// rest of a stalled body after the answer.
	w.Header().Set("Connection", "close")
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("body exceeds %d bytes", e.cfg.MaxBodyBytes))
	case errors.As(err, &netErr) && netErr.Timeout():
		writeError(w, http.StatusRequestTimeout, codeBadRequest, fmt.Sprintf("the body did not arrive within %s", e.cfg.RequestTimeout))
	default:
		writeError(w, http.StatusBadRequest, codeBadRequest, "read body: "+err.Error())
	}
	return nil, false
}

// answerWriter counts the bytes of an answer and, for a signed request, lets
// writeBody sign the answer (signAnswer).
type answerWriter struct {
	http.ResponseWriter
	sent   *atomic.Int64
	secret []byte // the secret the request was signed with; nil when unsigned
	proof  string // the request's proof, which the answer's signature covers
}

// Write writes to the answer and counts what it wrote.
func (a answerWriter) Write(p []byte) (int, error) {
	n, err := a.ResponseWriter.Write(p)
	a.sent.Add(int64(n))
	return n, err
}

// Unwrap gives http.ResponseController the underlying writer.
func (a answerWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// signAnswer sets the signature of the answer body b with status, when w answers a
// signed request. Every answer passes here before its header is written.
func signAnswer(w http.ResponseWriter, status int, b []byte) {
	if a, ok := w.(answerWriter); ok && a.secret != nil {
		w.Header().Set(HeaderSignature, hex.EncodeToString(answerMAC(a.secret, a.proof, status, b)))
	}
}

// pivotOnly refuses the data routes on a node.
func (e *syncEngine) pivotOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if e.role != RolePivot {
			writeError(w, http.StatusConflict, codeRole, "this instance is a node, not the pivot")
			return
		}
		next(w, r)
	}
}

// syncedKey reads the "key" query parameter: exactly one configured path.
func (e *syncEngine) syncedKey(w http.ResponseWriter, r *http.Request) *syncKey {
	path := r.URL.Query().Get("key")
	if path == "" {
		writeError(w, http.StatusBadRequest, codeBadRequest, "missing key parameter")
		return nil
	}
	sk := e.keyByPath(path)
	if sk == nil {
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("key %q is not synced here", path))
		return nil
	}
	if !sk.db.Active() {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "storage not active")
		return nil
	}
	return sk
}

// uintParam reads an optional integer query parameter in [lo, hi]; def when absent.
// Every numeric parameter of every route goes through it, so each is refused the same
// way: 400 with the name and the range.
func uintParam(r *http.Request, name string, def, lo, hi uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s must be an integer in %d..%d, got %q", name, lo, hi, s)
	}
	return v, nil
}

// handleChanges serves the change feed of one key path (pull): a page of at most limit
// changes, and at most bytes bytes of entries (the node's budget; the pivot's own is
// the cap), but never an empty page while changes remain.
func (e *syncEngine) handleChanges(w http.ResponseWriter, r *http.Request) {
	sk := e.syncedKey(w, r)
	if sk == nil {
		return
	}
	since, err := uintParam(r, "since", 0, 0, math.MaxUint64)
	if err == nil {
		var limit, budget uint64
		limit, err = uintParam(r, "limit", uint64(e.cfg.BatchSize), 1, maxLimit)
		if err == nil {
			budget, err = uintParam(r, "bytes", uint64(e.budget()), 1, math.MaxInt64)
		}
		if err == nil {
			e.serveChanges(w, r, sk, since, int(limit), min(int64(budget), e.budget()))
			return
		}
	}
	writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
}

// serveChanges answers one page of sk's feed after since.
func (e *syncEngine) serveChanges(w http.ResponseWriter, r *http.Request, sk *syncKey, since uint64, limit int, budget int64) {
	epoch := sk.rep.Epoch()
	page, err := readFeed(sk, since, limit, budget, nil)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	if sk.rep.Epoch() != epoch {
		writeReset(w)
		return
	}
	if page.changes == nil {
		page.changes = []storage.Change{}
	}
	// A since at or past the head is an empty page that stays where the node is:
	// next never goes below since.
	resp := changesResponse{Epoch: epoch, Horizon: sk.rep.Horizon(), Next: max(page.next, since), More: page.more, Changes: page.changes}
	if !page.more {
		resp.Head = page.head
	}
	e.counts.served.Add(int64(len(page.changes)))
	rn := e.pivotRole.identify(r)
	// Only a pull from a position the feed has is a pull to its head: a since past
	// the head is a cursor from another epoch (or a stale copy), and recording it
	// would let the node's next push move its cursor over changes it never saw.
	atHead := !resp.More && since <= page.head
	if atHead {
		e.pivotRole.recordPull(rn, sk, epoch, page.head)
	}
	e.pivotRole.contact(rn, atHead)
	writeJSON(w, http.StatusOK, resp)
}

// handleApply applies a node's entries under LWW (push). The batch is validated whole
// first: one bad entry refuses it all (400) and nothing is applied. Entries refused for
// clock skew are reported one by one; the rest are applied.
func (e *syncEngine) handleApply(w http.ResponseWriter, r *http.Request) {
	sk := e.syncedKey(w, r)
	if sk == nil {
		return
	}
	var req applyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if len(req.Entries) > maxLimit {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("at most %d entries per batch", maxLimit))
		return
	}
	seen := make(map[string]struct{}, len(req.Entries))
	for i, en := range req.Entries {
		if err := validEntry(sk.path, en); err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("entries[%d]: %v", i, err))
			return
		}
		if _, dup := seen[en.Key]; dup {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("entries[%d]: key %q appears twice", i, en.Key))
			return
		}
		seen[en.Key] = struct{}{}
	}
	rn := e.pivotRole.identify(r)
	e.pivotRole.recordPush(rn, sk, req.Entries)
	wins, found := lossWatch(nodeName(rn), nil)
	results, err := sk.rep.ApplyEach(req.Entries, wins)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "apply: "+err.Error())
		return
	}
	e.reportLost(sk, found)
	resp := applyResponse{Epoch: sk.rep.Epoch()}
	for i, r := range results {
		switch r.Outcome {
		case storage.Applied:
			resp.Applied++
		case storage.Superseded:
			resp.Superseded++
		case storage.Refused:
			why := r.Err.Error()
			if skewed(r.Err) {
				why = "stamped too far ahead of the pivot's clock"
			}
			resp.Refused = append(resp.Refused, refusal{Key: req.Entries[i].Key, Version: req.Entries[i].Version(), Error: why})
		}
	}
	if len(resp.Refused) > 0 {
		e.counts.refused.Add(int64(len(resp.Refused)))
		e.log.Warn("pivot: refused entries stamped in the future", "key", sk.path, "count", len(resp.Refused))
	}
	if from, to, held, ok := e.pivotRole.heldRange(rn, sk, req.Pulled); ok && sk.rep.Epoch() == resp.Epoch {
		resp.HeldFrom, resp.HeldTo, resp.Held = from, to, held
	}
	e.counts.pushed.Add(int64(resp.Applied))
	e.counts.conflicts.Add(int64(resp.Superseded))
	e.pivotRole.contact(rn, false)
	writeJSON(w, http.StatusOK, resp)
}

// validEntry checks one entry the protocol carries for path: storage.ValidEntry, the
// rule Apply follows too, and a key under path.
func validEntry(path string, en storage.Entry) error {
	if err := storage.ValidEntry(en); err != nil {
		return err
	}
	if !key.Match(path, en.Key) {
		return fmt.Errorf("key %q is not under %q", en.Key, path)
	}
	return nil
}

// handleDigest serves the digest of one key path (reconcile).
func (e *syncEngine) handleDigest(w http.ResponseWriter, r *http.Request) {
	sk := e.syncedKey(w, r)
	if sk == nil {
		return
	}
	epoch := sk.rep.Epoch()
	d, err := digestOf(sk, e.cfg.BatchSize)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	if sk.rep.Epoch() != epoch {
		writeReset(w)
		return
	}
	e.pivotRole.contact(e.pivotRole.identify(r), false)
	writeJSON(w, http.StatusOK, digestResponse{Epoch: epoch, Head: d.head, Count: d.count, Digest: d.String()})
}

// handleTree serves one node of the digest tree of a key path (anti-entropy).
func (e *syncEngine) handleTree(w http.ResponseWriter, r *http.Request) {
	sk := e.syncedKey(w, r)
	if sk == nil {
		return
	}
	value, digits, err := parsePrefix(r.URL.Query().Get("prefix"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	t := &sk.tree
	t.mu.Lock()
	err = t.refresh(sk, e.cfg.BatchSize, e.budget(), digits == 0)
	var resp treeResponse
	if err == nil {
		resp = t.answer(value, digits, t.seq)
	}
	t.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	e.pivotRole.contact(e.pivotRole.identify(r), false)
	writeJSON(w, http.StatusOK, resp)
}

// handleEntries serves the whole entries of the keys asked for (anti-entropy repair),
// in the order asked, as many as fit the node's budget (bytes) and always one.
func (e *syncEngine) handleEntries(w http.ResponseWriter, r *http.Request) {
	sk := e.syncedKey(w, r)
	if sk == nil {
		return
	}
	budget, err := uintParam(r, "bytes", uint64(e.budget()), 1, math.MaxInt64)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	var req entriesRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if len(req.Keys) == 0 || len(req.Keys) > maxLimit {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("keys must list 1..%d keys", maxLimit))
		return
	}
	for i, k := range req.Keys {
		if !key.IsValid(k) || key.IsGlob(k) || !key.Match(sk.path, k) {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("keys[%d]: %q is not a concrete key under %q", i, k, sk.path))
			return
		}
	}
	limit := min(int64(budget), e.budget())
	resp := entriesResponse{Epoch: sk.rep.Epoch(), Entries: []storage.Entry{}}
	var size int64
	for _, k := range req.Keys {
		changes, _, err := sk.rep.Changes(k, 0, 1)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, fmt.Sprintf("read %s: %v", k, err))
			return
		}
		if len(changes) == 1 {
			s := entrySize(changes[0].Entry)
			if resp.Next > 0 && size+s > limit {
				break
			}
			size += s
			resp.Entries = append(resp.Entries, changes[0].Entry)
		}
		resp.Next++
	}
	e.pivotRole.contact(e.pivotRole.identify(r), false)
	writeJSON(w, http.StatusOK, resp)
}

// handleTrigger schedules a pull of the given key paths on a node. It answers at once
// (202); a trigger during a running round schedules exactly one more.
func (e *syncEngine) handleTrigger(w http.ResponseWriter, r *http.Request) {
	if e.role != RoleNode {
		writeError(w, http.StatusConflict, codeRole, "this instance is the pivot, not a node")
		return
	}
	var req triggerRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if len(req.Keys) > len(e.keys) {
		writeError(w, http.StatusBadRequest, codeBadRequest, "more keys than are synced")
		return
	}
	keys := make([]*syncKey, 0, len(req.Keys))
	for _, p := range req.Keys {
		sk := e.keyByPath(p)
		if sk == nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("key %q is not synced here", p))
			return
		}
		keys = append(keys, sk)
	}
	e.node.triggered(keys)
	writeJSON(w, http.StatusAccepted, struct {
		Scheduled bool `json:"scheduled"`
	}{true})
}

// handleStatus serves Status.
func (e *syncEngine) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.status())
}

// decodeBody reads one JSON object from the (size-limited) body into v, answering 413
// or 400 on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("body exceeds %d bytes", tooBig.Limit))
			return false
		}
		writeError(w, http.StatusBadRequest, codeBadRequest, "malformed body: "+err.Error())
		return false
	}
	return true
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := encodeBody(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeUnavailable, "encode answer: "+err.Error())
		return
	}
	writeBody(w, status, b)
}

// writeError answers an errorBody with status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := encodeBody(errorBody{Error: msg, Code: code})
	writeBody(w, status, b)
}

// writeReset answers 503 to a read during which the storage's data was reset (its
// epoch changed): what was read may mix two epochs, so the peer must retry.
func writeReset(w http.ResponseWriter) {
	writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the data was reset during the read, retry")
}

// writeBody answers the JSON body b, as is, with status.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	signAnswer(w, status, b)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
