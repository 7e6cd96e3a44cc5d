package chaos_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/internal/testcluster"
	"github.com/benitogf/pivot/ooo"
	"github.com/benitogf/pivot/ooo/clock"
	"github.com/benitogf/pivot/ooo/storage"
)

// instance is a running member, in this process (local) or in a child process
// (child): what the workload, the monitor and the checker ask of it.
type instance interface {
	// changes reads the change feed of a synced path, or of one key, since seq.
	changes(path string, since uint64, limit int) ([]storage.Change, uint64, error)
	// epoch is the epoch of the storage holding path.
	epoch(path string) (string, error)
	// clockLast is the last stamp of the clock of the storage holding path.
	clockLast(path string) (int64, error)
	// dbCall runs a storage-API operation (opSet, opPatch, opDel, opDelGlob, opGet).
	dbCall(kind, key string, data []byte) error
	status() (pivot.Status, error)
	setSkew(d time.Duration) error
	// stop closes the instance; kill, for a child process, is a SIGKILL.
	stop(kill bool) error
}

// wireTimings are the timings as a child process receives them.
type wireTimings struct {
	MaxSkew, SyncInterval, ReadBudget, RequestTimeout, BackoffMin, BackoffMax, Retention, RepairInterval time.Duration
	BatchSize, FanOut                                                                                    int
}

func (tm timings) wire() wireTimings {
	return wireTimings{
		MaxSkew: tm.maxSkew, SyncInterval: tm.syncInterval, ReadBudget: tm.readBudget,
		RequestTimeout: tm.requestTimeout, BackoffMin: tm.backoffMin, BackoffMax: tm.backoffMax,
		Retention: tm.retention, RepairInterval: tm.repairInterval, BatchSize: tm.batchSize, FanOut: tm.fanOut,
	}
}

// launchSpec is everything one start of an instance needs. A child process receives
// it as JSON.
type launchSpec struct {
	Name, Addr, Dir string
	Pivot           string // the pivot's address; "" on the pivot
	Advertise       string // set on a node that registers itself
	IDs             [2]uint16
	Timings         wireTimings
	Offset          int64  // the wall clock's offset, nanoseconds
	Proxy           string // a child's fault proxy ("host:port")
}

// local is an instance running in this process.
type local struct {
	server *ooo.Server
	main   *storage.BoltStorage // items/*, settings, things/*, posts/*
	ext    *storage.BoltStorage // users/*
	result pivot.SetupResult
	inst   *testcluster.Instance
}

var _ instance = (*local)(nil)

// launch starts an instance in this process: two BoltStorage files in s.Dir, an ooo
// server on s.Addr with pivot set up, its requests made by client. wall is its wall
// clock. routes, if set, adds routes to the server before it starts.
func launch(s launchSpec, wall func() int64, client *http.Client, logs io.Writer, routes ...func(*local)) (*local, error) {
	tm := s.Timings
	newClock := func(id uint16) *clock.Clock {
		return clock.New(clock.Options{Wall: wall, MaxSkew: tm.MaxSkew, InstanceID: id})
	}
	l := &local{
		main: &storage.BoltStorage{Path: filepath.Join(s.Dir, "main.db"), HLC: newClock(s.IDs[0]), TombstoneRetention: tm.Retention},
		ext:  &storage.BoltStorage{Path: filepath.Join(s.Dir, "users.db"), HLC: newClock(s.IDs[1]), TombstoneRetention: tm.Retention},
	}
	l.server = &ooo.Server{Silence: true, Storage: l.main, Pivot: s.Pivot}
	cfg := pivot.Config{
		Keys:           []pivot.Key{{Path: pathUsers, Database: l.ext}, {Path: pathItems}, {Path: pathSettings}, {Path: pathPosts}},
		NodesKey:       pathNodes,
		Token:          "chaos-token",
		ClusterID:      "chaos",
		Advertise:      s.Advertise,
		SyncInterval:   tm.SyncInterval,
		ReadBudget:     tm.ReadBudget,
		RequestTimeout: tm.RequestTimeout,
		RepairInterval: tm.RepairInterval,
		BackoffMin:     tm.BackoffMin,
		BackoffMax:     tm.BackoffMax,
		BatchSize:      tm.BatchSize,
		FanOut:         tm.FanOut,
		Client:         client,
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("inst", s.Name),
	}
	for _, add := range routes {
		add(l)
	}
	inst, err := testcluster.Start(testcluster.Spec{
		Name: s.Name, Addr: s.Addr, Server: l.server, Config: cfg, Watched: []ooo.Database{l.ext},
	})
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	l.inst, l.result = inst, inst.Result
	return l, nil
}

// db returns the storage that holds path.
func (l *local) db(path string) storage.Replica {
	if path == pathUsers || strings.HasPrefix(path, "users/") {
		return l.ext
	}
	return l.main
}

func (l *local) changes(path string, since uint64, limit int) ([]storage.Change, uint64, error) {
	return l.db(path).Changes(path, since, limit)
}

func (l *local) epoch(path string) (string, error) { return l.db(path).Epoch(), nil }

func (l *local) clockLast(path string) (int64, error) { return l.db(path).Clock().Last(), nil }

func (l *local) dbCall(kind, key string, data []byte) error {
	db := l.db(key).(storage.Database)
	var err error
	switch kind {
	case opSet:
		_, err = db.Set(key, data)
	case opPatch:
		_, err = db.Patch(key, data)
	case opDel, opDelGlob:
		err = db.Del(key)
	case opGet:
		_, err = db.Get(key)
	default:
		err = fmt.Errorf("chaos: unknown storage operation %q", kind)
	}
	return err
}

func (l *local) status() (pivot.Status, error) { return l.result.Status(), nil }

func (l *local) setSkew(time.Duration) error { return nil } // the wall clock is the member's

// stop closes server, storages and sync engine.
func (l *local) stop(bool) error {
	l.inst.Close()
	return nil
}

// statusLine formats a pivot status as one line, for traces.
func statusLine(name string, st pivot.Status) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: healthy=%v failures=%d pushed=%d pulled=%d conflicts=%d refused=%d lastError=%q",
		name, st.PivotHealthy, st.ConsecutiveFailures, st.PushedEntries, st.PulledEntries,
		st.Conflicts, st.Refused, st.LastError)
	for _, k := range st.Keys {
		fmt.Fprintf(&b, " [%s pull=%d push=%d]", k.Path, k.PullCursor, k.PushCursor)
	}
	return b.String()
}

// skewClock is an instance's wall clock: the real one plus an offset the schedule sets.
// It is handed to the instance's storage clocks (clock.Options.Wall).
type skewClock struct {
	offset atomic.Int64 // nanoseconds
}

func (c *skewClock) now() int64 { return time.Now().UnixNano() + c.offset.Load() }
