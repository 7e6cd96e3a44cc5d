package pivot

import (
	"bytes"
	"encoding/json"

	"github.com/benitogf/pivot/ooo/storage"
)

// ProtocolVersion is the version of the pivot HTTP protocol. Peers with another version
// refuse each other's requests with 409.
const ProtocolVersion = "2"

// Headers carried by every pivot request (and, with a Token, those of auth.go).
const (
	// HeaderVersion carries ProtocolVersion.
	HeaderVersion = "X-Pivot-Version"
	// HeaderCluster carries Config.ClusterID.
	HeaderCluster = "X-Pivot-Cluster"
	// HeaderNode carries the requesting node's name: Config.Advertise when set, else
	// the address its server listens on (ooo.Server.Address) once it is started. The
	// pivot matches it to the NodesKey addresses for per-node status and to skip the
	// triggers a node does not need. Absent before a node's server is started.
	HeaderNode = "X-Pivot-Node"
)

// Route paths under Config.RoutePrefix.
const (
	routeChanges = "/changes" // GET: the pivot's change feed for one key path (pull)
	routeApply   = "/apply"   // POST: apply a node's entries under LWW (push)
	routeDigest  = "/digest"  // GET: a digest of one key path's entries (reconcile)
	routeTrigger = "/trigger" // POST: pivot → node, "sync now"
	routeStatus  = "/status"  // GET: Status
	routeTree    = "/tree"    // GET: a node of the digest tree of one key path (anti-entropy)
	routeEntries = "/entries" // POST: whole entries of given keys (anti-entropy repair)
	routeStream  = "/stream"  // GET, upgraded to a websocket: the node's live stream (stream_hub.go)
)

// Error codes in errorBody.Code.
const (
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeVersion      = "version"
	codeCluster      = "cluster"
	codeBadRequest   = "bad_request"
	codeTooLarge     = "too_large"
	codeNotFound     = "not_found"
	codeRole         = "role"
	codeUnavailable  = "unavailable"
)

// errorBody is every error answer of a pivot route.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// changesResponse answers GET changes?key=&since=&limit=. Changes is the pivot's feed
// for the key path after since: each key once, at its latest state, tombstones
// included. Next is the cursor for the following call; More tells that the feed was cut
// at limit. A node whose cursor was taken in another Epoch, or is below Horizon, must
// reconcile instead of applying the changes.
//
// Head, on the last page (More false), is the head of the pivot's feed. A node whose
// cursor in Epoch is past it holds a position the pivot never gave (its data was
// restored from an older copy under the same epoch): it must reconcile.
type changesResponse struct {
	Epoch   string           `json:"epoch"`
	Horizon uint64           `json:"horizon"`
	Head    uint64           `json:"head,omitempty"`
	Next    uint64           `json:"next"`
	More    bool             `json:"more"`
	Changes []storage.Change `json:"changes"`
}

// applyRequest is the body of POST apply?key=: a node's local entries for one key path.
type applyRequest struct {
	Entries []storage.Entry `json:"entries"`
	// Pulled is where the pushing node's pull cursor stands in the pivot's feed (0
	// when it has none): the answer's held range then starts there at the earliest.
	Pulled uint64 `json:"pulled,omitempty"`
}

// refusal tells that one pushed entry was not applied, and why (clock skew).
type refusal struct {
	Key     string `json:"key"`
	Version int64  `json:"version"`
	Error   string `json:"error"`
}

// applyResponse answers a push: how many entries were stored, how many lost to a
// stored entry under LWW (or were already there), and which were refused.
//
// HeldFrom and HeldTo, when set, tell the pushing node that the pivot's feed of the key
// path, in Epoch, holds nothing after HeldFrom (where the last pull under the node's
// name ended) up to HeldTo (its head) but entries pushed under that name, and Held
// lists the hashes (hashEntry, hex) of every change in that range. A node whose pull
// cursor is at HeldFrom or later in that epoch, and that pushed every entry of Held
// itself since its last pull to the head, may move its cursor to HeldTo instead of
// pulling its own entries back. The node checks Held because a name is only a claim:
// any holder of the secret can push under another node's name. Absent when the pivot
// cannot tell who pushed (see HeaderNode) or anything else reached the feed.
type applyResponse struct {
	Epoch      string    `json:"epoch"`
	Applied    int       `json:"applied"`
	Superseded int       `json:"superseded"`
	Refused    []refusal `json:"refused,omitempty"`
	HeldFrom   uint64    `json:"heldFrom,omitempty"`
	HeldTo     uint64    `json:"heldTo,omitempty"`
	Held       []string  `json:"held,omitempty"`
}

// digestResponse answers GET digest?key=: a hash over (key, version, data) of every
// entry, tombstones included, the count of live entries, and the feed head at the time.
type digestResponse struct {
	Epoch  string `json:"epoch"`
	Head   uint64 `json:"head"`
	Count  int    `json:"count"`
	Digest string `json:"digest"`
}

// triggerRequest is the body of POST trigger: the key paths that changed on the pivot.
// An empty list means every key.
type triggerRequest struct {
	Keys []string `json:"keys"`
}

// encodeBody is the one encoder of every protocol body. Unlike json.Marshal it never
// escapes '<', '>' and '&': entry data travels as the writer's storage holds it
// (storages keep data compacted, and compacting compact JSON changes nothing), so
// every replica stores the same bytes and digests agree.
func encodeBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Size bounds of protocol bodies. A batch or page is cut before its encoded size passes
// the peer's MaxBodyBytes minus envelopeReserve; entryOverhead bounds what one entry
// adds besides its data and key (field names, stamps, seq, flags, separators).
const (
	// envelopeReserve is kept free in every body for its envelope (epoch, cursors,
	// counts) and an entry's key: the largest value that replicates is
	// MaxBodyBytes - envelopeReserve.
	envelopeReserve = 64 << 10
	entryOverhead   = 128
)

// entrySize bounds the encoded size of e in a batch or page: its data as is, and its
// key escaped at worst (6 bytes a byte, as \u00XX).
func entrySize(e storage.Entry) int64 {
	return int64(len(e.Data)) + 6*int64(len(e.Key)) + entryOverhead
}

// batchBudget is the most bytes of entries one batch or page may carry under a body
// limit of maxBody: at least 1, so that a batch always carries one entry.
func batchBudget(maxBody int64) int64 {
	return max(1, maxBody-envelopeReserve)
}

// treeBucket is one child of a digest tree node: how many entries (tombstones
// included) it covers and the XOR of their hashes.
type treeBucket struct {
	Count  int    `json:"count"`
	Digest string `json:"digest"`
}

// leafEntry is one entry of a digest tree leaf, without its data.
type leafEntry struct {
	Key     string `json:"key"`
	Version int64  `json:"version"`
	Deleted bool   `json:"deleted,omitempty"`
	Hash    string `json:"hash"`
}

// treeResponse answers GET tree?key=P&prefix=X: the digest tree node named by the
// prefix (0 to 3 hex digits) as the pivot's data stands at Head: its count and digest,
// and its 16 children, or for a leaf (3 digits) its entries.
type treeResponse struct {
	Epoch    string       `json:"epoch"`
	Head     uint64       `json:"head"`
	Prefix   string       `json:"prefix"`
	Count    int          `json:"count"`
	Digest   string       `json:"digest"`
	Children []treeBucket `json:"children,omitempty"`
	Entries  []leafEntry  `json:"entries,omitempty"`
}

// entriesRequest is the body of POST entries?key=P: keys whose full entries a node
// wants (anti-entropy repair).
type entriesRequest struct {
	Keys []string `json:"keys"`
}

// entriesResponse answers POST entries: the pivot's entries of the keys asked for that
// it holds, tombstones included, in the order asked, cut to fit the node's budget
// (always one at least); Next is how many of the keys asked for the answer covers.
type entriesResponse struct {
	Epoch   string          `json:"epoch"`
	Entries []storage.Entry `json:"entries"`
	Next    int             `json:"next"`
}

// The live stream (stream_hub.go, stream_node.go). A node opens GET stream as a
// websocket, signed like every request; the pivot's 101 answer is signed like every
// answer. Each message is then one frame: the hex HMAC of the frame (empty without a
// Token), a newline, and the frame's JSON (streamFrame). The HMAC (streamMAC) covers
// the upgrade request's proof, the direction, the frame's number on the connection in
// that direction (from 1) and the JSON, so a frame cannot be forged, altered,
// replayed, reordered, dropped unnoticed or moved to another connection.
const (
	// frameChanges (pivot → node) carries the changes of Key after From up to Next,
	// in the pivot's Epoch: each key once at its latest state, as a pull page does.
	frameChanges = "changes"
	// framePoke (pivot → node) tells the node to pull Key ("" for every key): a change
	// too big to inline, a node behind or of unknown position, or a slow node.
	framePoke = "poke"
	// frameAck (node → pivot) tells where the node's pull cursor of Key stands (Epoch,
	// Next): the pivot sends the changes after it.
	frameAck = "ack"
)

// streamFrame is one frame of the live stream.
type streamFrame struct {
	Type    string `json:"type"`
	Key     string `json:"key,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	Horizon uint64 `json:"horizon,omitempty"`
	From    uint64 `json:"from,omitempty"`
	Next    uint64 `json:"next,omitempty"`
	// Head is the head of the pivot's feed when the frame was read (Next, for a
	// frame that reaches it).
	Head    uint64           `json:"head,omitempty"`
	Changes []storage.Change `json:"changes,omitempty"`
}
