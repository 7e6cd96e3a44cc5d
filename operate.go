package pivot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo/storage"
)

// Operator routes, under Config.RoutePrefix. Unlike the protocol routes they take no
// protocol headers: health is open, the page is static, and its data route takes
// Config.ReadToken.
const (
	routeHealth   = "/health"    // GET: 200 or 503 with a one-line JSON reason
	routeUI       = "/ui"        // GET: the status page (ui.go)
	routeUIStatus = "/ui/status" // GET: Status, for the page, with the ReadToken
)

// maxPendingScan bounds how many feed entries one count of a key's pending writes reads:
// beyond it Status says "at least" (KeyStatus.PendingCapped).
const maxPendingScan = 100_000

// pendingPage is how many feed entries one read of that count takes at a time.
const pendingPage = 1000

// extraRoutes are the routes SetupResult.Handle added under the prefix.
type extraRoutes struct {
	m sync.Map // route ("/metrics") → http.Handler
}

// operatorRoutes registers the operator routes on r, before the protocol's catch-all.
func (e *syncEngine) operatorRoutes(r *mux.Router) {
	p := e.cfg.RoutePrefix
	for route, h := range map[string]http.HandlerFunc{routeHealth: e.handleHealth, routeUI: e.handleUI, routeUIStatus: e.handleUIStatus} {
		e.own[route] = true
		r.HandleFunc(p+route, h)
	}
	r.MatcherFunc(func(req *http.Request, _ *mux.RouteMatch) bool {
		_, ok := e.extraFor(req.URL.Path)
		return ok
	}).HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if h, ok := e.extraFor(req.URL.Path); ok {
			h.ServeHTTP(w, req)
		}
	})
}

// extraFor returns the handler SetupResult.Handle registered for path, if any.
func (e *syncEngine) extraFor(path string) (http.Handler, bool) {
	route, ok := strings.CutPrefix(path, e.cfg.RoutePrefix)
	if !ok {
		return nil, false
	}
	h, ok := e.extra.m.Load(route)
	if !ok {
		return nil, false
	}
	return h.(http.Handler), true
}

// Handle serves h at Config.RoutePrefix + route (for example "/metrics", served at
// "/~pivot/metrics"), outside the protocol's guard: h answers as it is, without
// protocol headers or proofs, so it does its own authentication (the metrics package's
// handler takes a bearer credential). It may be called before or after the server
// starts. A route must start with "/" and must not be one pivot serves itself; it
// returns an error wrapping ErrInvalidConfig otherwise. Safe for concurrent use.
func (r SetupResult) Handle(route string, h http.Handler) error {
	if r.engine == nil {
		return fmt.Errorf("%w: Handle: the result is not from Setup", ErrInvalidConfig)
	}
	if r.engine.own[route] {
		return fmt.Errorf("%w: Handle: %q is one of pivot's own routes", ErrInvalidConfig, route)
	}
	if !strings.HasPrefix(route, "/") || strings.ContainsAny(route, "?#") || h == nil {
		return fmt.Errorf("%w: Handle: the route must start with / and the handler must not be nil, got %q", ErrInvalidConfig, route)
	}
	r.engine.extra.m.Store(route, h)
	return nil
}

// healthAnswer is the one line the health route answers.
type healthAnswer struct {
	Status string `json:"status"` // "ok" or "unavailable"
	Reason string `json:"reason,omitempty"`
}

// handleHealth answers 200 {"status":"ok"} when the engine runs, its storages are
// started and, on a node, the pivot answered recently; 503 with the reason otherwise.
// It reveals no data and no address, so it needs no credential.
func (e *syncEngine) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	reason := e.unhealthy(time.Now())
	status, a := http.StatusOK, healthAnswer{Status: "ok"}
	if reason != "" {
		status, a = http.StatusServiceUnavailable, healthAnswer{Status: "unavailable", Reason: reason}
	}
	b, _ := encodeBody(a)
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, status, append(b, '\n')) // one line, as probes print it
}

// unhealthy says why the instance is not healthy at now, or "" when it is.
func (e *syncEngine) unhealthy(now time.Time) string {
	if e.ctx.Err() != nil {
		return "the sync engine is stopped"
	}
	for _, sk := range e.keys {
		if !sk.db.Active() {
			return "a synced storage is not started"
		}
	}
	n := e.node
	if n == nil {
		return ""
	}
	if since := e.ops.downSince.Load(); since != 0 {
		return "the pivot is unreachable for " + readable(now.Sub(time.Unix(0, since)))
	}
	last := n.lastContact.Load()
	if last == 0 {
		return "the pivot was not reached yet"
	}
	// A node in contact syncs at least every SyncInterval; two missed syncs and a
	// request timeout later, the pivot is no longer "reached recently".
	if si := e.cfg.SyncInterval; si > 0 {
		if ago := now.Sub(time.Unix(0, last)); ago > 2*si+e.cfg.RequestTimeout {
			return "the pivot was last reached " + readable(ago) + " ago"
		}
	}
	return ""
}

// record keeps err as the engine's last error without logging it.
func (e *syncEngine) record(msg string, err error) {
	e.lastErr.Store(&errorRecord{at: time.Now(), msg: fmt.Sprintf("%s: %v", msg, err), err: err})
}

// wentDown is a round that could not reach the pivot: one warning when the pivot
// becomes unreachable, debug lines for the retries after it.
func (n *nodeRole) wentDown(err error) {
	n.e.record("sync with pivot", err)
	if n.e.ops.downSince.CompareAndSwap(0, time.Now().UnixNano()) {
		n.e.log.Warn("pivot: pivot unreachable, retrying with backoff", "err", err)
		return
	}
	n.e.log.Debug("pivot: pivot still unreachable", "err", err)
}

// cameBack is a round that succeeded: after an outage, one line with its duration.
func (n *nodeRole) cameBack() {
	n.e.ops.lastFailure.Store(nil)
	if since := n.e.ops.downSince.Swap(0); since != 0 {
		n.e.log.Info("pivot: pivot reachable again", "pivot", n.addr, "outage", readable(time.Since(time.Unix(0, since))))
	}
}

// failedRound is a round the pivot answered with errors (refused entries, a refused
// proof): a warning when the error is new, debug lines while it repeats.
func (n *nodeRole) failedRound(err error) {
	n.e.record("sync round", err)
	msg := err.Error()
	level := slog.LevelDebug
	if prev := n.e.ops.lastFailure.Swap(&msg); prev == nil || *prev != msg {
		level = slog.LevelWarn
	}
	n.e.log.Log(context.Background(), level, "pivot: sync round failed, retrying with backoff", "err", err)
}

// outageSince is, for a log line, how long ago last was ("" when never).
func outageSince(last time.Time) string {
	if last.IsZero() {
		return ""
	}
	return readable(time.Since(last))
}

// transportError is the message of a request (or stream) that got no answer, without
// the URL the http client puts in front of it nor the addresses a connection error
// names: RemoteError and the log lines name the peer already.
func transportError(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Op + ": " + oe.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// roundEnded records one of a node's sync rounds.
func (o *ops) roundEnded(began time.Time, err error) {
	o.rounds.Add(1)
	if err != nil {
		o.failedRounds.Add(1)
	}
	o.roundTime.observe(time.Since(began))
}

// acknowledged records, on a node, the pivot's answer to a push of entries: what it
// acknowledged (every entry it did not refuse) and, when some were superseded, the
// batch, so a pull that replaces one of them reports the conflict.
func (n *nodeRole) acknowledged(sk *syncKey, entries []storage.Entry, resp applyResponse) {
	acked := entries
	if len(resp.Refused) > 0 {
		refused := make(map[string]bool, len(resp.Refused))
		for _, r := range resp.Refused {
			refused[r.Key] = true
		}
		acked = make([]storage.Entry, 0, len(entries))
		for _, en := range entries {
			if !refused[en.Key] {
				acked = append(acked, en)
			}
		}
	}
	n.e.ops.acknowledged(acked, time.Now())
	if resp.Superseded > 0 {
		n.supersededPushes(sk, acked)
	}
}

// pendingCount is what a node holds of one key that the pivot has not acknowledged.
type pendingCount struct {
	count  int
	oldest int64  // the oldest version among them (unix ns)
	last   uint64 // the highest sequence among them
	capped bool   // the count stopped at maxPendingScan
}

// pending counts the local writes of sk after its saved push cursor with a sequence of
// at most upTo: the writes the pivot has not acknowledged. It reads only the feed after
// the cursor, at most maxPendingScan entries.
func (e *syncEngine) pending(sk *syncKey, upTo uint64) (pendingCount, error) {
	var p pendingCount
	if !sk.db.Active() {
		return p, fmt.Errorf("pivot: pending writes of %s: %w", sk.path, ErrNotActive)
	}
	var cur cursor
	raw, err := sk.rep.LoadCursor(cursorName(sk.path))
	if err != nil {
		return p, fmt.Errorf("pivot: pending writes of %s: %w", sk.path, err)
	}
	if raw != nil && json.Unmarshal(raw, &cur) == nil && cur.LocalEpoch != sk.rep.Epoch() {
		cur = cursor{} // the data was reset: everything there is unsent
	}
	since := cur.Push
	for scanned := 0; scanned < maxPendingScan; {
		changes, next, err := sk.rep.Changes(sk.path, since, pendingPage)
		if err != nil {
			return p, fmt.Errorf("pivot: pending writes of %s: %w", sk.path, err)
		}
		for _, c := range changes {
			if c.Seq > upTo {
				return p, nil
			}
			if c.Remote || (cur.Adopt && c.Version() < cur.AdoptBefore) {
				continue
			}
			p.count++
			p.last = max(p.last, c.Seq)
			if v := c.Version(); p.oldest == 0 || v < p.oldest {
				p.oldest = v
			}
		}
		scanned += len(changes)
		if len(changes) < pendingPage {
			return p, nil
		}
		since = next
	}
	p.capped = true
	return p, nil
}

// WaitAcknowledged, on a node, waits until the pivot has acknowledged every local write
// made to a synced key before the call (a write replaced by a later one counts as
// acknowledged when the later one is), asking for pushes meanwhile. It returns nil
// then, ctx's error if ctx ends first, and an error wrapping ErrClosed if the engine
// stops. While the pivot is unreachable it waits for it (pushes are retried with
// backoff); an entry the pivot refuses (see KeyStatus.LastError) is never acknowledged.
// On the pivot it returns nil at once. Safe for concurrent use.
func (r SetupResult) WaitAcknowledged(ctx context.Context) error {
	e := r.engine
	if e == nil || e.node == nil {
		return nil
	}
	targets := map[*syncKey]uint64{}
	for _, sk := range e.keys {
		p, err := e.pending(sk, math.MaxUint64)
		if err != nil {
			return err
		}
		if p.count > 0 {
			targets[sk] = p.last
		}
	}
	for len(targets) > 0 {
		select {
		case <-e.node.request(nil, needPush):
		case <-ctx.Done():
			return ctx.Err()
		case <-e.ctx.Done():
			return fmt.Errorf("pivot: wait for acknowledgements: %w", ErrClosed)
		}
		for sk, last := range targets {
			p, err := e.pending(sk, last)
			if err != nil {
				return err
			}
			if p.count == 0 {
				delete(targets, sk)
			}
		}
	}
	return nil
}

// SyncNow, on a node, pushes and pulls every synced key now, even while the pivot is
// taken to be unreachable (the backoff is cut short), and returns when that round ends;
// its outcome is in Status. It returns ctx's error if ctx ends first. On the pivot it
// does nothing.
func (r SetupResult) SyncNow(ctx context.Context) error {
	e := r.engine
	if e == nil || e.node == nil {
		return nil
	}
	e.node.down.Store(false)
	return e.node.wait(ctx, e.node.request(nil, needPush|needPull))
}

// Resync, on a node, reconciles one synced path (as configured in Config.Keys, or
// Config.NodesKey) with the pivot as on a first sync: it pushes what is unsent,
// compares digests and, when they differ, applies the pivot's snapshot under LWW and
// pushes back what the pivot lacks. Nothing local is removed. It returns when the round
// doing it ends (its outcome is in Status), ctx's error if ctx ends first, and an error
// wrapping ErrInvalidConfig when path is not synced. On the pivot it does nothing.
func (r SetupResult) Resync(ctx context.Context, path string) error {
	e := r.engine
	if e == nil || e.node == nil {
		return nil
	}
	sk := e.keyByPath(path)
	if sk == nil {
		return fmt.Errorf("%w: Resync: %q is not a synced path", ErrInvalidConfig, path)
	}
	e.node.down.Store(false)
	return e.node.wait(ctx, e.node.request(sk, needPush|needPull|needResync))
}

// wait waits for done, ctx or the engine's end (nil then: Close was asked for).
func (n *nodeRole) wait(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.e.ctx.Done():
		return nil
	}
}

// pendingStatus fills the pending writes of sk in ks.
func (e *syncEngine) pendingStatus(sk *syncKey, ks *KeyStatus) {
	p, err := e.pending(sk, math.MaxUint64)
	if err != nil || p.count == 0 {
		return
	}
	ks.PendingWrites, ks.PendingSince, ks.PendingCapped = p.count, time.Unix(0, p.oldest), p.capped
}

// progressEvery is the least time between two progress lines of one catch-up.
const progressEvery = 5 * time.Second

// catchUp logs the progress of one long pull (a catch-up after an outage, a new node):
// entries applied and their rate, at most every progressEvery, and one line at the end
// when it logged any. Owned by the pull that made it.
type catchUp struct {
	began, logged time.Time
	entries       int
}

// page records one page of the pull, which goes on after it.
func (c *catchUp) page(log *slog.Logger, sk *syncKey, entries int, next uint64) {
	c.entries += entries
	now := time.Now()
	last := c.logged
	if last.IsZero() {
		last = c.began
	}
	if now.Sub(last) < progressEvery {
		return
	}
	c.logged = now
	log.Info("pivot: catching up with the pivot", "key", sk.path, "entries", c.entries, "position", next,
		"rate", fmt.Sprintf("%.0f/s", float64(c.entries)/now.Sub(c.began).Seconds()))
}

// done records the last page; after a logged catch-up, one line with the totals.
func (c *catchUp) done(log *slog.Logger, sk *syncKey, entries int) {
	c.entries += entries
	if c.logged.IsZero() {
		return
	}
	took := time.Since(c.began)
	log.Info("pivot: caught up with the pivot", "key", sk.path, "entries", c.entries, "took", readable(took),
		"rate", fmt.Sprintf("%.0f/s", float64(c.entries)/took.Seconds()))
}
