package ooo

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/storage"
	"github.com/benitogf/pivot/ooo/stream"
)

// Defaults used by Start when the matching Server field is zero.
const (
	DefaultDeadline          = 10 * time.Second // Server.Deadline
	DefaultTick              = time.Second      // Server.Tick
	DefaultReadTimeout       = time.Minute      // Server.ReadTimeout
	DefaultWriteTimeout      = time.Minute      // Server.WriteTimeout
	DefaultReadHeaderTimeout = 10 * time.Second // Server.ReadHeaderTimeout
	DefaultIdleTimeout       = 10 * time.Second // Server.IdleTimeout
	DefaultMaxBodyBytes      = 4 << 20          // Server.MaxBodyBytes, in bytes
	// ShutdownTimeout bounds how long Close waits for HTTP requests in flight and for
	// the event dispatcher.
	ShutdownTimeout = 5 * time.Second
)

// Server is an ooo server. Set the fields, then Start. The zero value works: Start
// fills in every default. Fields must not change while the server is active, except
// the filters and hooks, which may be registered at any time. A Server must not be
// copied.
type Server struct {
	// Router receives ooo's routes at Start, after the routes already on it, so routes
	// added before Start win. nil means a new router.
	Router *mux.Router
	// Stream manages the websocket pools. Start copies OnSubscribe, OnUnsubscribe,
	// ForcePatch, NoPatch and the logger into it.
	Stream stream.Stream
	// NoBroadcastKeys lists keys and globs whose writes produce no storage event,
	// hence no broadcast and no OnStorageEvent. Passed to the storage at Start.
	NoBroadcastKeys []string
	// Audit decides whether a request may use an ooo route (REST, websocket, clock,
	// key list); false answers 401. nil allows everything. A browser websocket client
	// can hand a token in the "Sec-WebSocket-Protocol: bearer, <token>" header.
	Audit func(r *http.Request) bool
	// Workers is kept for compatibility and ignored: storage events are dispatched in
	// order by one goroutine.
	Workers int
	// ForcePatch sends websocket patches even when they are bigger than the value.
	ForcePatch bool
	// NoPatch always sends whole values on websockets. It wins over ForcePatch.
	NoPatch bool
	// OnSubscribe runs before each websocket upgrade ("" for the clock); an error
	// refuses it with 400. nil allows everything.
	OnSubscribe stream.Subscribe
	// OnUnsubscribe runs after each websocket connection ended.
	OnUnsubscribe stream.Unsubscribe
	// OnClose runs inside Close, after the storage is closed.
	OnClose func()
	// OnStart, when set, runs at the end of a successful Start: the storage is
	// started, the server accepts connections and Address is set. It runs under
	// Start's lock: it must not call Start or Close. Not in upstream ooo; extensions
	// such as pivot start their work from it instead of polling.
	OnStart func()
	// OnClosing, when set, runs inside Close after the HTTP server stopped and before
	// the storage is closed, so an extension's last writes (pivot's cursors, its last
	// push) still reach the storage. Not in upstream ooo.
	OnClosing func()
	// Deadline bounds the POST, PUT, PATCH and DELETE handlers; past it the client gets
	// 503 "ooo: server deadline reached". 0 means DefaultDeadline.
	Deadline time.Duration
	// AllowedOrigins for CORS and websocket upgrades: "*" (the default when empty), or
	// origins, each with at most one "*" wildcard ("https://*.example.com").
	AllowedOrigins []string
	// AllowedMethods for CORS; empty means GET, POST, DELETE, PUT, PATCH.
	AllowedMethods []string
	// AllowedHeaders for CORS; empty means Authorization, Content-Type.
	AllowedHeaders []string
	// ExposedHeaders for CORS; empty exposes none.
	ExposedHeaders []string
	// Storage holds the data. nil means a new MemoryStorage. It must be a pointer
	// type. Start starts it; Close closes it; data survives for the next Start.
	Storage Database
	// Address is set by Start to the address actually listened on
	// ("127.0.0.1:54321" for "localhost:0").
	Address string
	// Silence discards the log when Logger is nil.
	Silence bool
	// Static serves a key only when a filter of the matching kind is registered for it.
	Static bool
	// Tick is the clock socket interval; 0 means DefaultTick.
	Tick time.Duration
	// Logger receives the server's log. nil means text on stderr, or nothing when
	// Silence is set.
	Logger *slog.Logger
	// Signal is the channel WaitClose waits on. nil means WaitClose makes one (buffer
	// 1); a channel set before WaitClose is used as it is, and sending on it closes the
	// server like a process signal would.
	Signal chan os.Signal
	// Client is a shared outgoing HTTP client for extensions such as pivot. nil is
	// replaced at Start by NewClient().
	Client *http.Client
	// ReadTimeout and WriteTimeout of the HTTP server; 0 means one minute each.
	ReadTimeout, WriteTimeout time.Duration
	// ReadHeaderTimeout and IdleTimeout of the HTTP server; 0 means 10 s each.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// OnStorageEvent is called for every storage event, after its broadcast, on the
	// single dispatcher goroutine: keep it short (hand slow work to another goroutine),
	// it delays every later broadcast.
	OnStorageEvent StorageEventCallback
	// BeforeRead is passed to the storage at Start (StorageOpt.BeforeRead); it replaces
	// whatever the storage was started with before.
	BeforeRead func(key string)
	// Pivot is not used by ooo; older pivot versions keep the pivot address here.
	Pivot string
	// DbOpt is passed to the storage at Start (StorageOpt.DbOpt).
	DbOpt any
	// TLSConfig, when set, makes Start serve HTTPS and secure websockets (wss) with it
	// instead of plain HTTP; it must hold the server's certificate (Certificates or
	// GetCertificate). Set ClientAuth and ClientCAs to require client certificates.
	// Not in upstream ooo, which serves plain HTTP only.
	TLSConfig *tls.Config
	// MaxBodyBytes bounds request bodies; larger ones get 413 and change nothing.
	// 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	filters filters

	mu       sync.Mutex // serialises Start and Close
	active   atomic.Bool
	rt       atomic.Pointer[runtime]
	routed   *mux.Router // the Router holding keyRoute
	keyRoute *mux.Route
	http     *http.Server
	stop     chan struct{}
	loops    *sync.WaitGroup // the goroutines of the current run
}

// runtime is what Start computed for the handlers; it is replaced on every Start.
type runtime struct {
	log      *slog.Logger
	maxBody  int64
	writes   http.Handler // the write handlers, behind the Deadline
	cors     corsPolicy
	deadline time.Duration
}

// defaults fills in the zero fields. It runs under s.mu.
func (s *Server) defaults() {
	if s.Router == nil {
		s.Router = mux.NewRouter()
	}
	if s.Storage == nil {
		s.Storage = &storage.MemoryStorage{}
	}
	if s.Client == nil {
		s.Client = NewClient()
	}
	positiveOr(&s.Deadline, DefaultDeadline)
	positiveOr(&s.Tick, DefaultTick)
	positiveOr(&s.ReadTimeout, DefaultReadTimeout)
	positiveOr(&s.WriteTimeout, DefaultWriteTimeout)
	positiveOr(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	positiveOr(&s.IdleTimeout, DefaultIdleTimeout)
	positiveOr(&s.MaxBodyBytes, DefaultMaxBodyBytes)
	if s.NoBroadcastKeys == nil {
		s.NoBroadcastKeys = []string{}
	}
	if len(s.AllowedOrigins) == 0 {
		s.AllowedOrigins = []string{"*"}
	}
	if len(s.AllowedMethods) == 0 {
		s.AllowedMethods = []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut, http.MethodPatch}
	}
	if len(s.AllowedHeaders) == 0 {
		s.AllowedHeaders = []string{"Authorization", "Content-Type"}
	}
}

func (s *Server) newLogger() *slog.Logger {
	switch {
	case s.Logger != nil:
		return s.Logger
	case s.Silence:
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	default:
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
}

// NewClient returns the outgoing HTTP client a server gets when it is started
// without one (Server.Client), with upstream's settings: a 10 s timeout, 1 s dial,
// 10 s keep-alive, idle-connection and answer-header timeouts, and large connection
// pools. Extensions share it; pivot shares its Transport (the connection pool) and
// bounds each request by its own RequestTimeout instead of the 10 s.
func NewClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 10 * time.Second}).DialContext,
			IdleConnTimeout:       10 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxConnsPerHost:       3000,
			MaxIdleConns:          10000,
			MaxIdleConnsPerHost:   1000,
		},
	}
}

// logger returns the log of the current run, or a discarding one before Start.
func (s *Server) logger() *slog.Logger {
	if rt := s.rt.Load(); rt != nil {
		return rt.log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Active reports whether the server is started and not closed. Safe for concurrent use.
func (s *Server) Active() bool {
	return s.active.Load()
}

// authorize applies Audit. It answers a refused request itself (401) and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	if s.Audit == nil || s.Audit(r) {
		return true
	}
	httpError(w, http.StatusUnauthorized, ErrNotAuthorized)
	return false
}

// admit runs the checks every read and delete starts with: a valid key (400), then
// Audit (401). It answers the request itself and returns false when one fails.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, k string) bool {
	if !key.IsValid(k) {
		httpError(w, http.StatusBadRequest, ErrInvalidKey)
		return false
	}
	return s.authorize(w, r)
}

// positiveOr sets *v to def when it is zero: the rule every numeric Server setting
// follows (a negative one is refused by checkSettings first).
func positiveOr[T ~int64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// checkSettings refuses a negative numeric setting, naming it. Across ooo and pivot a
// negative value turns off a feature that can be off (pivot's SyncInterval, ReadBudget
// and RepairInterval) and is refused everywhere else.
func (s *Server) checkSettings() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Deadline", int64(s.Deadline)}, {"Tick", int64(s.Tick)}, {"ReadTimeout", int64(s.ReadTimeout)},
		{"WriteTimeout", int64(s.WriteTimeout)}, {"ReadHeaderTimeout", int64(s.ReadHeaderTimeout)},
		{"IdleTimeout", int64(s.IdleTimeout)}, {"MaxBodyBytes", s.MaxBodyBytes},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s must not be negative (got %d); zero means the default", ErrInvalidSetting, f.name, f.v)
		}
	}
	return nil
}
