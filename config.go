package pivot

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
)

// Defaults used for the zero value of each Config field.
const (
	DefaultRoutePrefix    = "/~pivot"
	DefaultSyncInterval   = 10 * time.Second
	DefaultReadBudget     = 50 * time.Millisecond
	DefaultRequestTimeout = 5 * time.Second
	DefaultBackoffMin     = 100 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	DefaultBatchSize      = 500
	DefaultMaxBodyBytes   = 8 << 20
	DefaultFanOut         = 8
	DefaultRepairInterval = time.Minute
	DefaultTokenOverlap   = time.Hour
)

// Key names one path to keep in sync and the storage that holds it.
type Key struct {
	// Path is a key ("settings") or a glob ("users/*"). Every key matching it is synced.
	Path string
	// Database holds the path. nil means the server's own Storage. It must implement
	// storage.Replica (both ooo.MemoryStorage and ooo.BoltStorage do).
	Database ooo.Database
}

// Config tells Setup what to sync and how. The zero value of every field is valid and
// means the default documented on it; only Keys (or NodesKey) must say something.
type Config struct {
	// Keys are the paths to sync. Two keys may not overlap (one matching the other).
	Keys []Key
	// NodesKey is a list path ("things/*") whose entries name the nodes. Each entry's
	// data is an object with "ip" holding "host:port", or a host in "ip" and a "port"
	// given as a number or a string. The pivot sends sync triggers to these addresses.
	// It is synced like any other key, on the server's Storage unless Keys also lists
	// it. "" means no discovery: nodes then rely on their periodic sync.
	NodesKey string
	// RoutePrefix is where the pivot protocol routes live. Its first segment must not be
	// a valid ooo key, so the routes can never shadow a user's key. "" means
	// DefaultRoutePrefix ("/~pivot").
	RoutePrefix string
	// Token is the shared cluster secret. When set, every protocol request and answer
	// is authenticated by an HMAC-SHA256 proof of it that cannot be replayed nor reused
	// for another request (see HeaderSignature); the secret itself never travels. A
	// request without a valid proof gets 401 and changes nothing. Use at least 16
	// random characters. "" means the routes are open: use it only on trusted
	// networks.
	Token string
	// PreviousToken, during a rotation, is the secret the cluster used before Token: it
	// is accepted for TokenOverlap after Setup (and tried when a peer refuses Token),
	// so the instances can move to the new secret one at a time. SetupResult.RotateToken
	// rotates a running instance.
	PreviousToken string
	// TokenOverlap is how long the previous secret stays accepted after Setup or
	// RotateToken. 0 means DefaultTokenOverlap (1 hour).
	TokenOverlap time.Duration
	// TLS, when set, secures the protocol both ways: Setup gives it to the server
	// (ooo.Server.TLSConfig, unless that is set already) so this instance serves
	// https, and to pivot's own HTTP client (unless Config.Client is set) to verify
	// the peers it dials (RootCAs) and to present its certificate when a peer asks for
	// one (mutual TLS). Addresses without a scheme (Advertise, NodesKey entries, the
	// pivot's address) then mean https. With mutual TLS (ClientAuth set to
	// tls.RequireAndVerifyClientCert and ClientCAs on the pivot), a node's certificate
	// must name the host it names itself with (HeaderNode), or its requests get 403.
	TLS *tls.Config
	// ClusterID names the cluster. It travels with every request and a mismatch is
	// refused (409). A node stores it with its cursors: a node re-pointed at a cluster
	// with another id drops the old cluster's data instead of leaking it. "" is a valid
	// id, but then two clusters cannot be told apart.
	ClusterID string
	// Advertise, on a pivot with Membership, is the name the process joins under
	// (nodes list the same strings in Pivots); "" means its listen address.
	//
	// Advertise, on a node, is the "host:port" (or "https://host:port", see TLS) the
	// pivot can reach this node at. When
	// set (and NodesKey is set) the node registers itself by writing {"ip": Advertise}
	// under NodesKey, and names itself with it on every request (HeaderNode). "" means
	// the node does not register itself, and names itself by the address its server
	// listens on.
	Advertise string
	// SyncInterval is how often a node syncs every key when nothing happens (background
	// anti-entropy). 0 means DefaultSyncInterval; a negative value turns it off.
	SyncInterval time.Duration
	// ReadBudget is the longest a read of a synced key on a node waits for a pull from
	// the pivot (through BeforeRead). 0 means DefaultReadBudget; a negative value turns
	// sync-on-read off. Reads never wait while the pivot is known to be down. A read
	// that starts after a write elsewhere was acknowledged sees it, when the pivot
	// answers within the budget.
	ReadBudget time.Duration
	// RequestTimeout bounds every HTTP request pivot makes. 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff (with jitter) between
	// retries while a peer is unreachable. 0 means DefaultBackoffMin and
	// DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// BatchSize is the most entries sent in one push or returned by one pull. 0 means
	// DefaultBatchSize.
	BatchSize int
	// MaxBodyBytes limits the body of every pivot request and response, in bytes, as
	// decoded (a compressed answer is limited by its decompressed size). 0 means
	// DefaultMaxBodyBytes (8 MiB). Larger requests get 413.
	MaxBodyBytes int64
	// FanOut is how many triggers the pivot sends at once. 0 means DefaultFanOut.
	FanOut int
	// RepairInterval is how often a node compares its data with the pivot's by digest
	// trees (anti-entropy over data, not only cursors) and repairs what differs under
	// LWW. 0 means DefaultRepairInterval (1 minute); a negative value turns the
	// periodic comparison off (SetupResult.Repair still runs one on demand).
	RepairInterval time.Duration
	// Client makes every outgoing request. nil means a client on the server's
	// Client's Transport (Setup sets server.Client to ooo.NewClient() when it is nil),
	// or with TLS set, on a Transport of ooo.NewClient()'s settings that uses TLS.
	// Each request is bounded by RequestTimeout. Tests inject a client whose Transport drops,
	// delays or cuts requests. Answers of ooo.GzipMinSize (1 KiB) or more come
	// gzip-compressed when the request accepts it, as Go's http.Transport does (and then decompresses the
	// answer itself) unless DisableCompression is set; a transport that sets
	// Accept-Encoding on its own gets the compressed body, which pivot decompresses.
	Client *http.Client
	// Logger receives pivot's logs. nil means no logs. The token is never logged.
	Logger *slog.Logger
	// OnConflict, when set, is called with every Conflict this instance decides: an
	// entry that lost under last-write-wins to a different value. It runs on a
	// goroutine of its own, off the write and sync paths, one call at a time; it must
	// be quick: while it runs, up to 1024 more conflicts wait, and beyond that they are
	// dropped (Status still counts them and shows the last few).
	OnConflict func(Conflict)
	// Pivots, on a node, are the addresses of the pivot processes of a cluster served
	// by several of them over one shared data set (see Membership), each "host:port"
	// or a base URL, as server.Pivot. A program that sets Pivots may leave
	// server.Pivot empty; when both are set, server.Pivot is one more address. The
	// node syncs with one address at a time and stays on it while it answers; when a
	// round cannot reach it, or it answers 5xx or refuses the node (proof, cluster
	// id, protocol version), the next round (after the usual backoff) goes to the
	// next one. The first is the one that owns this node by rendezvous hashing of its
	// name (Owner; list the names the pivot processes joined under, so the process a
	// node syncs with is the one that triggers it), then the others in the order
	// Owner would pick them. Cursors stay valid on every address: the processes share
	// one data set, so one epoch and one sequence. Setting Pivots requires ClusterID.
	// Empty: the node syncs with server.Pivot only.
	Pivots []string
	// Membership, on a pivot, makes this process one of several serving one cluster
	// over a shared data set: it joins the membership once its server listens, under
	// Advertise (or its listen address), and triggers only the nodes it owns by
	// rendezvous hashing over the live members; when members come or go, the nodes
	// that moved to it are triggered at once. While this process is not among the
	// live members (not joined yet, or its lease lapsed), it triggers every node: a
	// trigger too many costs a round, one too few delays a node until its
	// SyncInterval. One value per Setup; the engine closes it when it stops. Setting
	// Membership requires ClusterID. nil: this pivot triggers every node.
	Membership Membership
	// ReadToken is a read-only credential for operators: with it in an
	// "Authorization: Bearer" header, GET <RoutePrefix>/ui/status answers Status for
	// the status page (<RoutePrefix>/ui). It grants nothing else (the protocol takes
	// Token). Empty: the page's data route answers 404. Printable ASCII without
	// spaces, different from Token.
	ReadToken string
	// DisableStream turns the live stream off (stream_node.go). By default a node
	// keeps one websocket open to the pivot, on which the pivot sends it every change
	// as it happens (or tells it to pull), so a node the pivot cannot dial (behind NAT
	// or a firewall) still gets every change at once, and while it is open the pivot
	// sends that node no triggers. On a node, true means it opens no stream and relies
	// on triggers, SyncInterval and reads; on the pivot, true refuses streams (404),
	// and nodes then fall back to the same. The stream dials with Client's
	// *http.Transport, or through its Transport's DialStream (StreamDialer); a node
	// whose Client has any other Transport opens no stream.
	DisableStream bool
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	orDefault(&c.RoutePrefix, DefaultRoutePrefix)
	orDefault(&c.SyncInterval, DefaultSyncInterval)
	orDefault(&c.ReadBudget, DefaultReadBudget)
	orDefault(&c.RequestTimeout, DefaultRequestTimeout)
	orDefault(&c.BackoffMin, DefaultBackoffMin)
	orDefault(&c.BackoffMax, DefaultBackoffMax)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	orDefault(&c.BatchSize, DefaultBatchSize)
	orDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	orDefault(&c.FanOut, DefaultFanOut)
	orDefault(&c.RepairInterval, DefaultRepairInterval)
	orDefault(&c.TokenOverlap, DefaultTokenOverlap)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// orDefault sets *v to def when *v is the zero value: the one rule by which a zero
// Config field means its default.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports the first problem with c, naming the field. Setup panics with the
// same error, so call Validate first to handle a bad config gracefully. The error
// wraps ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	if len(c.Keys) == 0 && c.NodesKey == "" {
		return bad("Keys", "nothing to sync: give at least one key or a NodesKey")
	}
	paths := make([]string, 0, len(c.Keys)+1)
	for i, k := range c.Keys {
		field := fmt.Sprintf("Keys[%d].Path", i)
		if !key.IsValid(k.Path) {
			return bad(field, "%q is not a valid key or glob", k.Path)
		}
		for j, other := range paths {
			if key.Peer(other, k.Path) {
				return bad(field, "%q overlaps Keys[%d].Path %q", k.Path, j, other)
			}
		}
		paths = append(paths, k.Path)
	}
	if c.NodesKey != "" {
		if !key.IsValid(c.NodesKey) || !key.IsList(c.NodesKey) {
			return bad("NodesKey", "%q is not a list path such as \"things/*\"", c.NodesKey)
		}
		for i, p := range paths {
			if p != c.NodesKey && key.Peer(p, c.NodesKey) {
				return bad("NodesKey", "%q overlaps Keys[%d].Path %q", c.NodesKey, i, p)
			}
		}
	}
	if c.RoutePrefix != "" {
		if err := validPrefix(c.RoutePrefix); err != nil {
			return bad("RoutePrefix", "%v", err)
		}
	}
	if !headerSafe(c.Token) {
		return bad("Token", "must be printable ASCII without spaces")
	}
	if !headerSafe(c.PreviousToken) {
		return bad("PreviousToken", "must be printable ASCII without spaces")
	}
	if !headerSafe(c.ReadToken) {
		return bad("ReadToken", "must be printable ASCII without spaces")
	}
	if c.ReadToken != "" && (c.ReadToken == c.Token || c.ReadToken == c.PreviousToken) {
		return bad("ReadToken", "must differ from Token and PreviousToken: it is shown to operators' browsers")
	}
	if c.PreviousToken != "" && c.Token == "" {
		return bad("PreviousToken", "needs a Token to rotate to")
	}
	if len(c.ClusterID) > maxClusterID || !headerSafe(c.ClusterID) {
		return bad("ClusterID", "must be at most %d printable ASCII characters without spaces", maxClusterID)
	}
	if len(c.Pivots) > 0 || c.Membership != nil {
		field := "Pivots"
		if len(c.Pivots) == 0 {
			field = "Membership"
		}
		if c.ClusterID == "" {
			return bad("ClusterID", "required with %s: with several pivot processes a node's cursors must name the cluster, not one pivot's address (or failing over would look like moving to another cluster)", field)
		}
	}
	seen := map[string]int{}
	for i, p := range c.Pivots {
		field := fmt.Sprintf("Pivots[%d]", i)
		_, hp, err := splitAddress(p)
		if err != nil {
			return bad(field, "%v", err)
		}
		if j, dup := seen[hp]; dup {
			return bad(field, "%q names the same pivot as Pivots[%d]", p, j)
		}
		seen[hp] = i
	}
	if c.Advertise != "" {
		if c.NodesKey == "" {
			return bad("Advertise", "needs a NodesKey to register under")
		}
		if _, _, err := splitAddress(c.Advertise); err != nil {
			return bad("Advertise", "%v", err)
		}
	}
	// SyncInterval, ReadBudget and RepairInterval are not here: a negative value turns
	// them off.
	nonNegative := []struct {
		name     string
		got      any
		negative bool
	}{
		{"RequestTimeout", c.RequestTimeout, c.RequestTimeout < 0},
		{"BackoffMin", c.BackoffMin, c.BackoffMin < 0},
		{"BackoffMax", c.BackoffMax, c.BackoffMax < 0},
		{"BatchSize", c.BatchSize, c.BatchSize < 0},
		{"MaxBodyBytes", c.MaxBodyBytes, c.MaxBodyBytes < 0},
		{"FanOut", c.FanOut, c.FanOut < 0},
		{"TokenOverlap", c.TokenOverlap, c.TokenOverlap < 0},
	}
	for _, f := range nonNegative {
		if f.negative {
			return bad(f.name, "must not be negative (got %v)", f.got)
		}
	}
	return nil
}

// validPrefix checks a route prefix: "/" then segments of URL-safe characters, no
// trailing "/", and a first segment that no ooo key can equal.
func validPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return fmt.Errorf("%q must start with '/', not end with '/' and have no empty segment", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("?#%\\\"'<>", c) >= 0 {
			return fmt.Errorf("%q holds a character not allowed in a route (%q)", p, c)
		}
	}
	first := strings.SplitN(p[1:], "/", 2)[0]
	if key.IsValid(first) {
		return fmt.Errorf("%q could shadow the user key %q: put a character outside [A-Za-z0-9*_.-] in its first segment (e.g. \"/~pivot\")", p, first)
	}
	return nil
}

// headerSafe reports whether s can travel as an HTTP header value unchanged.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// parseHostPort checks a "host:port" address with a numeric port in 1..65535.
func parseHostPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", addr)
	}
	if !validPort(port) {
		return "", fmt.Errorf("%q has no valid port", addr)
	}
	return net.JoinHostPort(host, port), nil
}

// validPort reports whether s is a decimal port in 1..65535.
func validPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n >= 1 && n <= 65535
}

// splitAddress reads an instance's address: "host:port", or a URL "http://host:port"
// or "https://host:port" (a trailing "/" allowed, nothing else after the port). It
// returns the scheme ("" when the address has none: then Config.TLS decides) and the
// "host:port", which is what names a node.
func splitAddress(s string) (scheme, hostport string, err error) {
	rest := s
	if sch, after, ok := strings.Cut(s, "://"); ok {
		if sch != "http" && sch != "https" {
			return "", "", fmt.Errorf("%q: the scheme must be http or https", s)
		}
		scheme, rest = sch, strings.TrimSuffix(after, "/")
	}
	hostport, err = parseHostPort(rest)
	return scheme, hostport, err
}
