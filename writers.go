package pivot

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// Writer identities. Every write is stamped by its storage's clock, whose instance id
// sits in the low bits of each stamp (and so of each index a POST makes): two storages
// of one cluster must never share an id, or their acknowledged writes can land on one
// key and overwrite each other. A storage draws a random id when it is created and a
// BoltStorage draws a new one when it finds it was copied (storage.Identified); the
// pivot makes ids unique across the cluster: it keeps a registry of which storage
// (named by its identity token) holds which id, and a node confirms the id of each of
// its storages at every engine start, after the pivot was unreachable, and at every
// anti-entropy check. An id held by another token is replaced by a free one, and a
// token seen under two node names (a copied data folder that escaped detection) gets a
// fresh token and id. Until its first confirmation a new storage writes with its random
// id: the one window in which two writers can share one.

// routeWriter is POST writer: confirm a storage's instance id.
const routeWriter = "/writer"

// writersCursor is the SaveCursor name of the pivot's registry.
const writersCursor = "pivot/writers"

// writerRequest asks the pivot to confirm that the storage named by Token may stamp
// with Instance.
type writerRequest struct {
	Token    string `json:"token"`
	Instance uint16 `json:"instance"`
}

// writerResponse is the id the storage must stamp with from now on; Renew tells it to
// take a fresh token too (its token was seen under another node's name).
type writerResponse struct {
	Instance uint16 `json:"instance"`
	Renew    bool   `json:"renew,omitempty"`
}

// writerHolder is who holds one id in the registry.
type writerHolder struct {
	Token string    `json:"token"`
	Node  string    `json:"node"`
	Seen  time.Time `json:"seen"`
}

// writerRegistry is the pivot's table of instance ids. Safe for concurrent use.
type writerRegistry struct {
	mu      sync.Mutex
	loaded  bool
	holders map[uint16]writerHolder
}

// confirm settles the id of the storage token, asking for want, from node name: want
// when it is free or already the token's, else a free id; renew when the token is
// registered under another node name. It reports whether the registry changed.
func (w *writerRegistry) confirm(token, node string, want uint16, now time.Time) (writerResponse, bool, error) {
	if h, ok := w.holders[want]; ok && h.Token == token && (h.Node == node || h.Node == "" || node == "") {
		h.Seen = now
		if h.Node == "" {
			h.Node = node
		}
		w.holders[want] = h
		return writerResponse{Instance: want}, false, nil
	}
	renew := false
	for _, h := range w.holders {
		if h.Token == token && h.Node != "" && node != "" && h.Node != node {
			renew = true // one token under two names: a copied data folder
			break
		}
	}
	id := want
	if h, taken := w.holders[id]; taken && (h.Token != token || renew) {
		var ok bool
		if id, ok = w.free(now); !ok {
			return writerResponse{}, false, fmt.Errorf("pivot: every one of the %d writer ids is in use", clock.MaxInstanceID+1)
		}
	}
	w.holders[id] = writerHolder{Token: token, Node: node, Seen: now}
	return writerResponse{Instance: id, Renew: renew}, true, nil
}

// free returns an id nobody holds, or one unconfirmed for writerIdleReuse.
func (w *writerRegistry) free(now time.Time) (uint16, bool) {
	start := rand.N(clock.MaxInstanceID + 1)
	for i := range clock.MaxInstanceID + 1 {
		id := uint16((start + i) % (clock.MaxInstanceID + 1))
		if _, taken := w.holders[id]; !taken {
			return id, true
		}
	}
	for id, h := range w.holders {
		if now.Sub(h.Seen) > writerIdleReuse {
			return id, true
		}
	}
	return 0, false
}

// load reads the registry from the pivot's first synced storage once, and registers
// the pivot's own storages in it (renumbering one that shares an id with another).
func (h *pivotRole) loadWriters() error {
	w := &h.writers
	if w.loaded {
		return nil
	}
	w.holders = map[uint16]writerHolder{}
	rep := h.e.keys[0].rep
	raw, err := rep.LoadCursor(writersCursor)
	if err != nil {
		return fmt.Errorf("pivot: load writer registry: %w", err)
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &w.holders); err != nil {
			h.e.log.Warn("pivot: unreadable writer registry, starting a new one", "err", err)
			w.holders = map[uint16]writerHolder{}
		}
	}
	for _, id := range distinctIdentified(h.e.keys) {
		token, instance := id.Identity()
		resp, _, err := w.confirm(token, "", instance, time.Now())
		if err != nil {
			return err
		}
		if resp.Instance != instance {
			if err := id.SetIdentity(token, resp.Instance); err != nil {
				return fmt.Errorf("pivot: renumber a storage of the pivot: %w", err)
			}
			h.e.log.Info("pivot: a storage of the pivot shared its writer id, renumbered", "from", instance, "to", resp.Instance)
		}
	}
	w.loaded = true
	return h.saveWriters()
}

// saveWriters persists the registry.
func (h *pivotRole) saveWriters() error {
	raw, err := json.Marshal(h.writers.holders)
	if err != nil {
		return fmt.Errorf("pivot: encode writer registry: %w", err)
	}
	if err := h.e.keys[0].rep.SaveCursor(writersCursor, raw); err != nil {
		return fmt.Errorf("pivot: save writer registry: %w", err)
	}
	return nil
}

// handleWriter confirms the instance id of one of a node's storages.
func (e *syncEngine) handleWriter(w http.ResponseWriter, r *http.Request) {
	var req writerRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Token == "" || len(req.Token) > storage.MaxTokenLength || req.Instance > clock.MaxInstanceID {
		writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("token must have 1..%d bytes and instance be at most %d", storage.MaxTokenLength, clock.MaxInstanceID))
		return
	}
	for _, sk := range e.keys {
		if !sk.db.Active() {
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, "storage not active")
			return
		}
	}
	h := e.pivotRole
	h.writers.mu.Lock()
	defer h.writers.mu.Unlock()
	if e.cfg.Membership != nil {
		// The registry lives in the shared data set, which the other pivot processes
		// change too: read it again for each confirmation.
		h.writers.loaded = false
	}
	if err := h.loadWriters(); err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	resp, changed, err := h.writers.confirm(req.Token, r.Header.Get(HeaderNode), req.Instance, time.Now())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	if changed {
		if err := h.saveWriters(); err != nil {
			writeError(w, http.StatusServiceUnavailable, codeUnavailable, err.Error())
			return
		}
	}
	if resp.Instance != req.Instance || resp.Renew {
		e.log.Info("pivot: gave a node's storage another writer id", "node", r.Header.Get(HeaderNode), "from", req.Instance, "to", resp.Instance, "renew", resp.Renew)
	}
	h.contact(h.identify(r), false)
	writeJSON(w, http.StatusOK, resp)
}

// distinctIdentified lists the storages of keys that have a writer identity, each once.
func distinctIdentified(keys []*syncKey) []storage.Identified {
	var out []storage.Identified
	seen := map[storage.Identified]bool{}
	for _, sk := range keys {
		if id, ok := sk.db.(storage.Identified); ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// confirmWriters has the pivot confirm the writer id of each of this node's storages,
// and adopts the id (and token) it answers.
func (n *nodeRole) confirmWriters(ctx context.Context) error {
	complete := true
	for _, id := range distinctIdentified(n.e.keys) {
		token, instance := id.Identity()
		if token == "" {
			complete = false // not started yet: confirmed in a later round
			continue
		}
		var resp writerResponse
		if err := n.pivot.do(ctx, "writer", http.MethodPost, routeWriter, nil, writerRequest{Token: token, Instance: instance}, &resp); err != nil {
			return err
		}
		if resp.Instance > clock.MaxInstanceID {
			return &RemoteError{Op: "writer", Peer: n.pivot.base, Status: http.StatusOK, Message: "instance id out of range", kind: ErrBadRequest}
		}
		if resp.Instance == instance && !resp.Renew {
			continue
		}
		if resp.Renew {
			token = freshToken()
		}
		if err := id.SetIdentity(token, resp.Instance); err != nil {
			return fmt.Errorf("pivot: adopt writer id %d: %w", resp.Instance, err)
		}
		n.e.log.Info("pivot: the pivot gave a storage another writer id", "from", instance, "to", resp.Instance, "renew", resp.Renew)
	}
	n.writersConfirmed = complete
	return nil
}

// freshToken is a new random storage identity token.
func freshToken() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
