package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// naivePrefix is where the baseline's routes live; "~" is not a key character, so they
// never shadow a key.
const naivePrefix = "/~naive"

// maxNaiveBody bounds every body the baseline reads.
const maxNaiveBody = 1 << 30

// naiveSync is the baseline that delta sync is measured against: a full-collection sync,
// the way the old library worked. It lives in this command only and is not part of the
// library.
//
// A node syncs by reading the pivot's whole list over HTTP (the ooo REST route, GET
// /users/*) and its own whole list, then writing locally every entry the pivot holds
// newer, and posting to the pivot every entry it holds newer. It syncs after each local
// write and when the pivot asks it to; requests that come in while a sync runs are
// coalesced into one more. The pivot asks every node to sync after each write of the
// list, with at most naiveFanOut requests at once. Entries keep their stamps
// (SetWithMeta); the newer version wins. Deletes are not handled: the bench only writes.
type naiveSync struct {
	path   string // the synced list
	db     ooo.Database
	client *http.Client
	pivot  string        // on a node, the pivot's base URL; "" on the pivot
	busy   *atomic.Int64 // syncs and triggers scheduled or running, cluster-wide

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	kick chan struct{} // node: capacity 1

	mu    sync.Mutex
	echo  map[string]int // node: keys written from the pivot, whose events are not local writes
	nodes []*naiveNode   // pivot: the nodes it triggers
	sem   chan struct{}  // pivot: trigger slots
	err   error          // the last error met
}

// naiveFanOut is how many triggers the baseline's pivot sends at once, as pivot's
// DefaultFanOut.
const naiveFanOut = 8

// naiveNode is one node as the baseline's pivot sees it.
type naiveNode struct {
	url  string
	kick chan struct{} // capacity 1
}

func newNaiveSync(path, pivotURL string, db ooo.Database, client *http.Client, busy *atomic.Int64) *naiveSync {
	n := &naiveSync{path: path, db: db, client: client, pivot: pivotURL, busy: busy,
		kick: make(chan struct{}, 1), echo: map[string]int{}, sem: make(chan struct{}, naiveFanOut)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

// setup registers the baseline's route and storage hook on server; call it before
// server.Start.
func (n *naiveSync) setup(server *ooo.Server) {
	if server.Router == nil {
		server.Router = mux.NewRouter()
	}
	prev := server.OnStorageEvent
	server.OnStorageEvent = func(ev ooo.StorageEvent) {
		if prev != nil {
			prev(ev)
		}
		n.event(ev)
	}
	if n.pivot == "" {
		server.Router.HandleFunc(naivePrefix+"/apply", n.handleApply).Methods(http.MethodPost)
		return
	}
	server.Router.HandleFunc(naivePrefix+"/trigger", func(w http.ResponseWriter, _ *http.Request) {
		n.schedule()
		w.WriteHeader(http.StatusAccepted)
	}).Methods(http.MethodPost)
}

// start launches a node's sync loop and its first sync; call it after server.Start.
func (n *naiveSync) start() {
	if n.pivot == "" {
		return
	}
	n.wg.Add(1)
	go n.loop()
	n.schedule()
}

// addNode makes the pivot trigger the node at addr.
func (n *naiveSync) addNode(addr string) {
	nn := &naiveNode{url: "http://" + addr + naivePrefix + "/trigger", kick: make(chan struct{}, 1)}
	n.mu.Lock()
	n.nodes = append(n.nodes, nn)
	n.mu.Unlock()
	n.wg.Add(1)
	go n.triggerLoop(nn)
}

// close stops the goroutines and waits for them.
func (n *naiveSync) close() {
	n.cancel()
	n.wg.Wait()
}

func (n *naiveSync) fail(err error) {
	if err == nil || n.ctx.Err() != nil {
		return
	}
	n.mu.Lock()
	n.err = err
	n.mu.Unlock()
}

// event reacts to a write of the synced list: the pivot triggers every node, a node
// syncs unless the write came from the pivot.
func (n *naiveSync) event(ev ooo.StorageEvent) {
	if ev.Operation != storage.OpSet || !key.Match(n.path, ev.Key) {
		return
	}
	n.mu.Lock()
	if n.pivot == "" {
		nodes := n.nodes
		n.mu.Unlock()
		for _, nn := range nodes {
			n.signal(nn.kick)
		}
		return
	}
	if n.echo[ev.Key] > 0 {
		n.echo[ev.Key]--
		if n.echo[ev.Key] == 0 {
			delete(n.echo, ev.Key)
		}
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	n.schedule()
}

// schedule asks the node for one more sync.
func (n *naiveSync) schedule() { n.signal(n.kick) }

// signal asks a loop for one more run, counting it as busy unless a run is pending.
func (n *naiveSync) signal(kick chan struct{}) {
	n.busy.Add(1)
	select {
	case kick <- struct{}{}:
	default:
		n.busy.Add(-1)
	}
}

// loop runs a node's syncs; a failed sync is retried after a short pause.
func (n *naiveSync) loop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		}
		err := n.syncOnce()
		n.fail(err)
		if err != nil && n.ctx.Err() == nil {
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-n.ctx.Done():
				t.Stop()
			case <-t.C:
				n.schedule()
			}
		}
		n.busy.Add(-1)
	}
}

// triggerLoop sends the pivot's triggers to one node.
func (n *naiveSync) triggerLoop(nn *naiveNode) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-nn.kick:
		}
		select {
		case n.sem <- struct{}{}:
		case <-n.ctx.Done():
			return
		}
		n.fail(n.post(nn.url, nil, nil))
		<-n.sem
		n.busy.Add(-1)
	}
}

// syncOnce reads both whole lists and moves what differs, both ways.
func (n *naiveSync) syncOnce() error {
	var remote []meta.Object
	if err := n.get(n.pivot+"/"+n.path, &remote); err != nil {
		return err
	}
	raw, err := n.db.Get(n.path)
	if err != nil {
		return fmt.Errorf("naive: read local list: %w", err)
	}
	local, err := meta.DecodeList(raw)
	if err != nil {
		return fmt.Errorf("naive: decode local list: %w", err)
	}
	localVersion := make(map[string]int64, len(local))
	for _, o := range local {
		localVersion[o.Path] = o.Version()
	}
	remoteVersion := make(map[string]int64, len(remote))
	for _, o := range remote {
		remoteVersion[o.Path] = o.Version()
		if o.Version() <= localVersion[o.Path] {
			continue
		}
		n.mu.Lock()
		n.echo[o.Path]++
		n.mu.Unlock()
		if _, err := n.db.SetWithMeta(o.Path, o.Data, o.Created, o.Updated); err != nil {
			n.mu.Lock()
			n.echo[o.Path]--
			n.mu.Unlock()
			return fmt.Errorf("naive: write %s: %w", o.Path, err)
		}
	}
	var push []storage.Entry
	for _, o := range local {
		if o.Version() > remoteVersion[o.Path] {
			push = append(push, storage.Entry{Key: o.Path, Created: o.Created, Updated: o.Updated, Data: o.Data})
		}
	}
	if len(push) == 0 {
		return nil
	}
	return n.post(n.pivot+naivePrefix+"/apply", push, nil)
}

// handleApply stores, on the pivot, every posted entry newer than the one it holds.
func (n *naiveSync) handleApply(w http.ResponseWriter, r *http.Request) {
	var entries []storage.Entry
	if err := json.NewDecoder(io.LimitReader(r.Body, maxNaiveBody)).Decode(&entries); err != nil {
		http.Error(w, "naive: malformed body: "+err.Error(), http.StatusBadRequest)
		return
	}
	applied := 0
	for _, en := range entries {
		if !key.Match(n.path, en.Key) {
			continue
		}
		if raw, err := n.db.Get(en.Key); err == nil {
			if cur, err := meta.Decode(raw); err == nil && cur.Version() >= en.Version() {
				continue
			}
		}
		if _, err := n.db.SetWithMeta(en.Key, en.Data, en.Created, en.Updated); err != nil {
			http.Error(w, "naive: write: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		applied++
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"applied":%d}`, applied)
}

// get reads a JSON answer into out.
func (n *naiveSync) get(url string, out any) error {
	return n.do(http.MethodGet, url, nil, out)
}

// post sends in as JSON and reads a JSON answer into out (nil: ignored).
func (n *naiveSync) post(url string, in, out any) error {
	return n.do(http.MethodPost, url, in, out)
}

func (n *naiveSync) do(method, url string, in, out any) error {
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("naive: encode: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("naive: %s %s: %w", method, url, err)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("naive: %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("naive: %s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxNaiveBody))
	} else {
		err = json.NewDecoder(io.LimitReader(resp.Body, maxNaiveBody)).Decode(out)
	}
	if err != nil {
		return fmt.Errorf("naive: %s %s: read answer: %w", method, url, err)
	}
	return nil
}
