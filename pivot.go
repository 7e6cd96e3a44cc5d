package pivot

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
)

// Roles reported in Status.Role.
const (
	RolePivot = "pivot"
	RoleNode  = "node"
)

// SetupResult is what Setup hands back: the hooks to wire into storages the server does
// not own, and the handles to observe and stop the sync engine.
type SetupResult struct {
	// BeforeRead, on a node, pulls a synced key from the pivot before it is read,
	// waiting at most Config.ReadBudget, and not at all while the pivot is known to be
	// down. On the pivot it does nothing. Setup hooks it into server.BeforeRead; pass
	// it to the StorageOpt of every external storage. Safe for concurrent use; never blocks
	// longer than the budget.
	BeforeRead func(key string)
	// SyncCallback takes the Watch() events of external storages, so their writes are
	// synced at once. It never blocks. Events of the server's own Storage arrive through
	// server.OnStorageEvent, which Setup hooks.
	SyncCallback func(event ooo.StorageEvent)

	engine *syncEngine
}

// Status reports the engine's state. Safe for concurrent use.
func (r SetupResult) Status() Status {
	if r.engine == nil {
		return Status{}
	}
	return r.engine.status()
}

// Repair, on a node, compares the data of every synced key with the pivot's now
// (anti-entropy, as every Config.RepairInterval does) and repairs what differs, then
// returns; the outcome is in Status (Checks, Repairs, each key's LastCheck and
// LastError). A key whose cursors are not at rest (writes in flight) is synced instead
// and compared next time. It returns ctx's error if ctx ends first. On the pivot it
// does nothing.
func (r SetupResult) Repair(ctx context.Context) error {
	if r.engine == nil || r.engine.node == nil {
		return nil
	}
	select {
	case <-r.engine.node.request(nil, needPush|needPull|needCheck):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.engine.ctx.Done():
		return nil
	}
}

// RotateToken makes token the secret this instance signs its requests with and
// accepts; the secret it replaces stays accepted, and is tried when a peer refuses the
// new one, for Config.TokenOverlap from now. Rotate every instance of the cluster,
// one at a time, within the overlap: nothing is refused meanwhile and nothing written
// is lost. It returns an error wrapping ErrInvalidConfig when token is empty or not
// printable ASCII without spaces, or when the instance was set up without a Token.
// Safe for concurrent use.
func (r SetupResult) RotateToken(token string) error {
	if r.engine == nil || r.engine.secrets == nil {
		return fmt.Errorf("%w: RotateToken: the instance was set up without a Token", ErrInvalidConfig)
	}
	if token == "" || !headerSafe(token) {
		return fmt.Errorf("%w: RotateToken: the token must be non-empty printable ASCII without spaces", ErrInvalidConfig)
	}
	r.engine.secrets.rotate(token, time.Now())
	r.engine.log.Info("pivot: token rotated", "overlap", r.engine.cfg.TokenOverlap)
	return nil
}

// Close stops the engine: on a node it first waits, up to 2 s and unless the pivot is
// known to be down, for a round that pushes every unsent local write; then it stops
// every background goroutine, saves the node's cursors and returns. The server's Close
// calls it before closing the storage (Setup hooks ooo.Server.OnClosing); calling it
// again is a no-op.
func (r SetupResult) Close() {
	if r.engine != nil {
		r.engine.close()
	}
}

// Setup makes server a pivot (when server.Pivot is "") or a node syncing with the pivot
// at server.Pivot ("host:port" or a base URL), for the keys in config. Call it before
// server.Start: it registers the protocol routes under config.RoutePrefix on
// server.Router (making a Router if there is none), hooks server.OnStorageEvent so
// writes to server.Storage are synced, server.BeforeRead so its reads sync first, and
// server.OnClose to stop the engine. Existing callbacks are kept and still called
// (first); assigning result.BeforeRead to server.BeforeRead afterwards, as older
// programs do, changes nothing.
//
// Setup panics when the config is invalid, with the error Config.Validate returns,
// like net/http does for a bad pattern; call Validate first to handle it gracefully.
// Background work waits until the synced storages are started.
func Setup(server *ooo.Server, config Config) SetupResult {
	if server == nil {
		panic("pivot: Setup: nil server")
	}
	if err := config.Validate(); err != nil {
		panic(err)
	}
	cfg := config.withDefaults()
	if server.Storage == nil {
		server.Storage = &ooo.MemoryStorage{}
	}
	keys, err := buildKeys(server.Storage, cfg)
	if err != nil {
		panic(err)
	}
	if err := limitValues(server, keys, cfg); err != nil {
		panic(err)
	}
	if server.Router == nil {
		server.Router = mux.NewRouter()
	}
	if cfg.TLS != nil && server.TLSConfig == nil {
		server.TLSConfig = cfg.TLS
	}
	client := cfg.Client
	if client == nil && cfg.TLS != nil {
		client = tlsClient(cfg.TLS)
	}
	if client == nil {
		// The server's shared connection pool, made now if need be (Start keeps
		// it); each request's deadline is RequestTimeout, not the client's.
		if server.Client == nil {
			server.Client = ooo.NewClient()
		}
		client = &http.Client{Transport: server.Client.Transport}
	}
	e := newEngine(cfg, server.Pivot, keys, client)
	if e.node != nil && cfg.Membership != nil {
		panic(fmt.Errorf("%w: Membership: set on a node (server.Pivot or Pivots is set); it is for pivot processes", ErrInvalidConfig))
	}
	e.server = server
	e.routes(server.Router)

	prevEvent := server.OnStorageEvent
	server.OnStorageEvent = func(ev ooo.StorageEvent) {
		if prevEvent != nil {
			prevEvent(ev)
		}
		e.onEvent(ev)
	}
	if prevRead := server.BeforeRead; prevRead == nil {
		server.BeforeRead = e.beforeRead
	} else {
		server.BeforeRead = func(k string) {
			prevRead(k)
			e.beforeRead(k)
		}
	}
	prevStart := server.OnStart
	server.OnStart = func() {
		if prevStart != nil {
			prevStart()
		}
		e.markReady()
	}
	if server.Active() {
		e.markReady()
	}
	// The engine stops before the storage closes: its last push and cursors reach it.
	prevClosing := server.OnClosing
	server.OnClosing = func() {
		e.close()
		if prevClosing != nil {
			prevClosing()
		}
	}
	prevClose := server.OnClose
	server.OnClose = func() {
		e.close()
		if prevClose != nil {
			prevClose()
		}
	}
	switch {
	case cfg.Token == "":
		e.log.Warn("pivot: no Token set, the protocol routes are open to anyone who can reach them")
	case len(cfg.Token) < minTokenLength:
		e.log.Warn("pivot: the Token is short, use at least 16 random characters", "length", len(cfg.Token))
	}
	e.start()
	return SetupResult{BeforeRead: e.beforeRead, SyncCallback: e.onEvent, engine: e}
}

// syncKey is one synced path with its storage.
type syncKey struct {
	path string
	db   ooo.Database
	rep  storage.Replica
	// tree is the digest tree of the path's data (anti-entropy), built on first use.
	tree digestTree
	// lastCheck is, on a node, when the data was last compared with the pivot's
	// (unix ns), and inSync whether it then matched.
	lastCheck atomic.Int64
	inSync    atomic.Bool
}

// buildKeys resolves every configured key to its storage and checks it can replicate.
// The NodesKey is synced on the server's storage unless Keys lists it.
func buildKeys(serverStorage ooo.Database, cfg Config) ([]*syncKey, error) {
	var keys []*syncKey
	add := func(field, path string, db ooo.Database) error {
		if db == nil {
			db = serverStorage
		}
		rep, ok := db.(storage.Replica)
		if !ok {
			return fmt.Errorf("%w: %s: storage %T does not implement storage.Replica (use ooo.MemoryStorage or ooo.BoltStorage)", ErrInvalidConfig, field, db)
		}
		keys = append(keys, &syncKey{path: path, db: db, rep: rep})
		return nil
	}
	nodesListed := false
	for i, k := range cfg.Keys {
		if err := add(fmt.Sprintf("Keys[%d].Database", i), k.Path, k.Database); err != nil {
			return nil, err
		}
		nodesListed = nodesListed || k.Path == cfg.NodesKey
	}
	if cfg.NodesKey != "" && !nodesListed {
		if err := add("Storage", cfg.NodesKey, nil); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// limitValues makes sure every value a synced storage accepts can replicate: the
// server's REST body limit must fit in one batch under MaxBodyBytes, and each synced
// storage is told to refuse larger values when they are written (storage.DataLimiter),
// so a value that could never be sent is refused at once, with its reason, instead of
// being acknowledged and then stuck.
func limitValues(server *ooo.Server, keys []*syncKey, cfg Config) error {
	budget := batchBudget(cfg.MaxBodyBytes)
	accepted := server.MaxBodyBytes
	if accepted <= 0 {
		accepted = ooo.DefaultMaxBodyBytes
	}
	if accepted > budget {
		return fmt.Errorf("%w: MaxBodyBytes: %d leaves %d bytes for a value, less than the %d bytes the server accepts (ooo.Server.MaxBodyBytes); raise MaxBodyBytes to at least %d",
			ErrInvalidConfig, cfg.MaxBodyBytes, budget, accepted, accepted+envelopeReserve)
	}
	for _, sk := range keys {
		if l, ok := sk.db.(storage.DataLimiter); ok {
			l.SetDataLimit(budget)
		}
	}
	return nil
}

// tlsClient is pivot's own client when Config.TLS is set: it verifies peers with the
// config's RootCAs and presents its certificates when a peer asks for one.
func tlsClient(c *tls.Config) *http.Client {
	t := ooo.NewClient().Transport.(*http.Transport)
	t.TLSClientConfig = c.Clone()
	return &http.Client{Transport: t}
}

// engine is the sync engine behind one Setup.
type syncEngine struct {
	cfg     Config
	created int64 // unix ns when Setup ran
	role    string
	keys    []*syncKey
	log     *slog.Logger
	client  *http.Client
	traffic traffic
	counts  counters
	ops     ops             // what the metrics add to counts (observe.go)
	extra   extraRoutes     // routes added by SetupResult.Handle (operate.go)
	own     map[string]bool // the routes pivot registered itself, set once by routes

	conflicts conflictLog
	// server is the server Setup wired (nil in some internal tests); a node reads its
	// Address for nodeID, cached in listenAddr.
	server     *ooo.Server
	listenAddr atomic.Pointer[string]

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup

	lastErr atomic.Pointer[errorRecord]

	// secrets are what requests are signed with and accepted under (nil without a
	// Token); verify checks incoming proofs with them (auth.go).
	secrets *keyring
	verify  verifier

	// ready is closed once the server is started (ooo.Server.OnStart).
	ready     chan struct{}
	readyOnce sync.Once

	node      *nodeRole  // set on a node
	pivotRole *pivotRole // set on the pivot
}

// errorRecord is the last error the engine met.
type errorRecord struct {
	at  time.Time
	msg string
	err error
}

// newEngine makes the engine of the role pivotAddr implies (the pivot when "", else a
// node of the pivot at pivotAddr). Nothing runs before start.
func newEngine(cfg Config, pivotAddr string, keys []*syncKey, client *http.Client) *syncEngine {
	now := time.Now()
	e := &syncEngine{cfg: cfg, created: now.UnixNano(), keys: keys, log: cfg.Logger, client: client}
	e.secrets = newKeyring(cfg, now)
	e.verify.keys, e.verify.since = e.secrets, now
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.ready = make(chan struct{})
	if pivotAddr == "" && len(cfg.Pivots) == 0 {
		e.role = RolePivot
		e.pivotRole = newPivotRole(e)
	} else {
		e.role = RoleNode
		e.node = newNodeRole(e, pivotAddr)
	}
	return e
}

// markReady tells the engine's goroutines that the server is started (its storage
// too, and its Address known). A node first orders its pivot addresses, which needs
// its name (the Address): so Status shows the address in use from the moment the
// server's Start returns. Safe to call more than once.
func (e *syncEngine) markReady() {
	e.readyOnce.Do(func() {
		if e.node != nil {
			e.node.orderPivots()
		}
		close(e.ready)
	})
}

// waitReady waits until the server is started; false when the engine stops first.
func (e *syncEngine) waitReady() bool {
	select {
	case <-e.ready:
		return true
	case <-e.ctx.Done():
		return false
	}
}

// start launches the background goroutines of the role.
func (e *syncEngine) start() {
	e.startConflicts()
	if e.pivotRole != nil {
		e.spawn(e.pivotRole.run)
	} else {
		e.spawn(e.node.run)
		if e.node.stream != nil {
			e.spawn(e.node.stream.run)
		}
	}
}

// spawn runs fn in a goroutine that close waits for. After close it does nothing.
func (e *syncEngine) spawn(fn func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
	return true
}

// close stops the engine and waits for its goroutines.
func (e *syncEngine) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.mu.Unlock()
	if e.node != nil {
		e.node.drain(closeDrain)
	}
	if e.pivotRole != nil && e.cfg.Membership != nil {
		// Leave first: the other processes take this one's nodes over at once.
		if err := e.cfg.Membership.Close(); err != nil {
			e.fail("pivot: leave the pivot processes", err)
		}
	}
	e.cancel()
	if e.pivotRole != nil {
		e.pivotRole.stopTimers()
	}
	e.wg.Wait()
}

// peer returns a client for the instance at addr. self, when not nil, names this
// instance in every request (a node's nodeID).
func (e *syncEngine) peer(addr string, self func() string) *peer {
	return &peer{
		base:    baseURL(addr, e.cfg.RoutePrefix, e.scheme()),
		client:  e.client,
		keys:    e.secrets,
		cluster: e.cfg.ClusterID,
		self:    self,
		timeout: e.cfg.RequestTimeout,
		maxBody: e.cfg.MaxBodyBytes,
		traffic: &e.traffic,
	}
}

// scheme is the URL scheme of peer addresses given without one: https when Config.TLS
// is set.
func (e *syncEngine) scheme() string {
	if e.cfg.TLS != nil {
		return "https"
	}
	return "http"
}

// budget is the most bytes of entries one batch or page carries (see batchBudget).
func (e *syncEngine) budget() int64 { return batchBudget(e.cfg.MaxBodyBytes) }

// keyFor returns the synced key an event or read key belongs to, or nil. A glob (a list
// read or a glob delete) belongs to the synced key it overlaps.
func (e *syncEngine) keyFor(k string) *syncKey {
	for _, sk := range e.keys {
		if key.Peer(sk.path, k) {
			return sk
		}
	}
	return nil
}

// keyByPath returns the synced key configured with exactly path, or nil.
func (e *syncEngine) keyByPath(path string) *syncKey {
	for _, sk := range e.keys {
		if sk.path == path {
			return sk
		}
	}
	return nil
}

// onEvent schedules sync work for a storage event. It never blocks.
func (e *syncEngine) onEvent(ev ooo.StorageEvent) {
	sk := e.keyFor(ev.Key)
	if sk == nil {
		return
	}
	if e.pivotRole != nil {
		e.pivotRole.changed(sk, ev)
		return
	}
	e.node.request(sk, needPush)
}

// beforeRead is SetupResult.BeforeRead.
func (e *syncEngine) beforeRead(k string) {
	if e.node != nil {
		e.node.beforeRead(k)
	}
}

// fail records err as the engine's last error and logs it. msg names what was being
// done ("sync round"); err carries the "pivot: ..." context already.
func (e *syncEngine) fail(msg string, err error) {
	e.lastErr.Store(&errorRecord{at: time.Now(), msg: fmt.Sprintf("%s: %v", msg, err), err: err})
	level := slog.LevelWarn
	if errors.Is(err, context.Canceled) {
		level = slog.LevelDebug
	}
	e.log.Log(context.Background(), level, msg, "err", err)
}

// backoff returns the delay before retry number n (n >= 1): exponential from
// BackoffMin, capped at BackoffMax, with up to 50% of random jitter taken off.
func (e *syncEngine) backoff(n int, jitter func(int64) int64) time.Duration {
	d := e.cfg.BackoffMin
	for i := 1; i < n && d < e.cfg.BackoffMax; i++ {
		d *= 2
	}
	if d > e.cfg.BackoffMax {
		d = e.cfg.BackoffMax
	}
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(jitter(half))
	}
	return d
}
