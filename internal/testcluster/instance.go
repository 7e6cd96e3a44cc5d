package testcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/storage"
)

// ErrNoStorage is returned by Start for a Spec without a storage.
var ErrNoStorage = errors.New("testcluster: spec has no storage")

// listenRetry bounds how long Start waits for a fixed address still held by a stopped
// instance (the kernel may keep it a moment after the listener closes).
const listenRetry = 5 * time.Second

// Spec says how to start one instance.
type Spec struct {
	// Name names the instance in errors, traces and fault links.
	Name string
	// Addr is where it listens: "" for any loopback port, or a fixed "127.0.0.1:port"
	// (a restart reuses its address).
	Addr string
	// Pivot is the pivot's address, "" for the pivot itself. Ignored when Server is set.
	Pivot string
	// Storage is the server's storage. Ignored when Server is set.
	Storage ooo.Database
	// Server, when set, is the server to start, with its Storage, Pivot and any other
	// field (a Router with routes of the test's own, say) already set. nil means a
	// silent server over Storage and Pivot.
	Server *ooo.Server
	// Config is given to pivot.Setup.
	Config pivot.Config
	// Watched are storages of Config.Keys other than the server's: Start starts each
	// with the instance's BeforeRead and feeds its events to SyncCallback, as a program
	// wiring an external storage does; Close closes them.
	Watched []ooo.Database
}

// Instance is one running ooo server with pivot set up.
type Instance struct {
	// Spec is what the instance was started from; Spec.Addr is the address it got.
	Spec   Spec
	Server *ooo.Server
	// DB is the server's storage.
	DB     ooo.Database
	Result pivot.SetupResult
	// Addr is the address the server listens on ("127.0.0.1:port").
	Addr string

	stopOnce sync.Once
	watching sync.WaitGroup
}

// Start starts an instance from spec. On failure nothing keeps running.
func Start(spec Spec) (*Instance, error) {
	server := spec.Server
	if server == nil {
		server = &ooo.Server{Silence: true, Storage: spec.Storage, Pivot: spec.Pivot}
	}
	if server.Storage == nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, ErrNoStorage)
	}
	in := &Instance{Spec: spec, Server: server, DB: server.Storage}
	in.Result = pivot.Setup(server, spec.Config)
	for _, db := range spec.Watched {
		if err := db.Start(storage.Options{BeforeRead: in.Result.BeforeRead}); err != nil {
			in.Close()
			return nil, fmt.Errorf("start %s: watched storage: %w", spec.Name, err)
		}
		in.watching.Add(1)
		go func(events storage.EventChan) {
			defer in.watching.Done()
			for ev := range events {
				in.Result.SyncCallback(ev)
			}
		}(db.Watch())
	}
	addr := spec.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := listen(server, addr); err != nil {
		in.Close()
		return nil, fmt.Errorf("start %s on %s: %w", spec.Name, addr, err)
	}
	in.Addr = server.Address
	in.Spec.Addr = in.Addr
	return in, nil
}

// listen starts server on addr, retrying for a while when a fixed port is still held
// (a restart right after a stop).
func listen(server *ooo.Server, addr string) error {
	deadline := time.Now().Add(listenRetry)
	for {
		err := server.Start(addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return err
		}
		_ = wait(context.Background(), 20*time.Millisecond)
	}
}

// Close stops the server (and with it its storage and the sync engine), then the
// watched storages. A second Close does nothing.
func (in *Instance) Close() {
	in.stopOnce.Do(func() {
		if in.Server.Active() {
			in.Server.Close(os.Interrupt)
		}
		in.Result.Close()
		for _, db := range in.Spec.Watched {
			if db.Active() {
				db.Close()
			}
		}
		in.watching.Wait()
	})
}

// Restart closes in and starts an instance of the same spec on the same address over
// db (the same storage value when its data survives Close, as MemoryStorage's does, or
// a new storage over the same files). Spec.Server must be nil: a server cannot start
// twice.
func (in *Instance) Restart(db ooo.Database) (*Instance, error) {
	in.Close()
	spec := in.Spec
	spec.Storage = db
	spec.Pivot = in.Server.Pivot
	spec.Server = nil
	return Start(spec)
}

// IsPivot reports whether the instance is the pivot.
func (in *Instance) IsPivot() bool { return in.Server.Pivot == "" }

// String names the instance and its address.
func (in *Instance) String() string { return fmt.Sprintf("%s (%s)", in.Spec.Name, in.Addr) }

// Status is the instance's pivot status.
func (in *Instance) Status() pivot.Status { return in.Result.Status() }

// RegistrationKey is the key under nodesKey ("things/*") at which a node listening on
// addr is registered: one segment made of the address.
func RegistrationKey(nodesKey, addr string) string {
	return strings.TrimSuffix(nodesKey, "*") + strings.NewReplacer(".", "-", ":", "-").Replace(addr)
}

// Register writes node's address under the pivot's NodesKey, on the pivot's storage,
// as an operator would.
func (in *Instance) Register(node *Instance) error {
	nodesKey := in.Spec.Config.NodesKey
	if nodesKey == "" {
		return fmt.Errorf("register %s on %s: the pivot has no NodesKey", node, in)
	}
	k := RegistrationKey(nodesKey, node.Addr)
	if _, err := in.DB.Set(k, json.RawMessage(fmt.Sprintf(`{"ip":%q}`, node.Addr))); err != nil {
		return fmt.Errorf("register %s on %s: %w", node, in, err)
	}
	return nil
}

// Changes reads the change feed of pattern on the storage that holds it (the Config
// key's Database, or the server's storage), so that an Instance is a Feed.
func (in *Instance) Changes(pattern string, since uint64, limit int) ([]storage.Change, uint64, error) {
	db := in.DB
	for _, k := range in.Spec.Config.Keys {
		if k.Database != nil && matches(k.Path, pattern) {
			db = k.Database
		}
	}
	rep, ok := db.(storage.Replica)
	if !ok {
		return nil, 0, fmt.Errorf("changes of %s on %s: %T is not a storage.Replica", pattern, in, db)
	}
	return rep.Changes(pattern, since, limit)
}

// matches reports whether pattern (a key or glob read from a feed) lies under the
// synced path: the path itself, or a key its glob covers.
func matches(path, pattern string) bool {
	if path == pattern {
		return true
	}
	prefix, isGlob := strings.CutSuffix(path, "*")
	return isGlob && strings.HasPrefix(pattern, prefix)
}
