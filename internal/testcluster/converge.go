package testcluster

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/benitogf/pivot"
	"github.com/benitogf/pivot/ooo/storage"
)

// ErrNotConverged is returned by WaitConverged when its context ends first; the error
// wrapping it describes every instance's state.
var ErrNotConverged = errors.New("testcluster: instances did not converge")

// feedLimit reads a whole feed in one call: test clusters hold far fewer keys.
const feedLimit = 1 << 20

// pollEvery is how often WaitConverged compares digests. Digests are cheap (no
// decoding), so polling often does not starve the sync it waits for.
const pollEvery = 2 * time.Millisecond

// Feed is what convergence is read from: a storage.Replica, an *Instance (which reads
// each path on the storage that holds it), or an instance in another process read
// through its debug routes.
type Feed interface {
	Changes(pattern string, since uint64, limit int) ([]storage.Change, uint64, error)
}

// State is the replicated state of every key under paths: key → a line with its
// version, whether it is a tombstone, and its data. liveOnly leaves tombstones out.
// It reads the change feed, so tombstones count and no BeforeRead runs.
func State(f Feed, paths []string, liveOnly bool) (map[string]string, error) {
	out := map[string]string{}
	err := each(f, paths, liveOnly, func(c storage.Change) {
		out[c.Key] = fmt.Sprintf("v=%d deleted=%v data=%s", c.Version(), c.Deleted, c.Data)
	})
	return out, err
}

// Digest hashes what State returns without building it: polling a cluster that holds
// megabytes must not starve the sync it waits for.
func Digest(f Feed, paths []string, liveOnly bool) ([sha256.Size]byte, error) {
	h := sha256.New()
	var out [sha256.Size]byte
	err := each(f, paths, liveOnly, func(c storage.Change) {
		fmt.Fprintf(h, "%s\x00%d\x00%v\x00%d\x00", c.Key, c.Version(), c.Deleted, len(c.Data))
		h.Write(c.Data)
	})
	h.Sum(out[:0])
	return out, err
}

// each calls fn with every change under paths, path by path, in key order.
func each(f Feed, paths []string, liveOnly bool, fn func(storage.Change)) error {
	for _, p := range paths {
		changes, _, err := f.Changes(p, 0, feedLimit)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
		for _, c := range changes {
			if liveOnly && c.Deleted {
				continue
			}
			fn(c)
		}
	}
	return nil
}

// Converged reports whether every feed holds the same entries (and tombstones, unless
// liveOnly) under paths.
func Converged(feeds []Feed, paths []string, liveOnly bool) (bool, error) {
	if len(feeds) == 0 {
		return true, nil
	}
	first, err := Digest(feeds[0], paths, liveOnly)
	if err != nil {
		return false, err
	}
	for _, f := range feeds[1:] {
		d, err := Digest(f, paths, liveOnly)
		if err != nil || d != first {
			return false, err
		}
	}
	return true, nil
}

// WaitConverged polls until every feed holds the same state under paths, or ctx ends;
// then the error wraps ErrNotConverged and describes each feed's state (and its
// status, when the feed has one, as an *Instance does). A feed that cannot be read
// counts as not converged while ctx lasts: an instance may be restarting.
func WaitConverged(ctx context.Context, feeds []Feed, paths []string, liveOnly bool) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, err := Converged(feeds, paths, liveOnly)
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v, last read error %v):\n%s", ErrNotConverged, ctx.Err(), err, Describe(feeds, paths, liveOnly))
		case <-tick.C:
		}
	}
}

// Describe prints each feed's state under paths, long values cut, for a failure
// message.
func Describe(feeds []Feed, paths []string, liveOnly bool) string {
	var b strings.Builder
	for i, f := range feeds {
		label := fmt.Sprintf("feed %d", i)
		if s, ok := f.(fmt.Stringer); ok {
			label = s.String()
		}
		fmt.Fprintf(&b, "%s:\n", label)
		s, err := State(f, paths, liveOnly)
		if err != nil {
			fmt.Fprintf(&b, "  unreadable: %v\n", err)
		}
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			line := s[k]
			if len(line) > 300 {
				line = fmt.Sprintf("%s... (%d bytes)", line[:300], len(line))
			}
			fmt.Fprintf(&b, "  %s %s\n", k, line)
		}
		if st, ok := f.(interface{ Status() pivot.Status }); ok {
			raw, _ := json.Marshal(st.Status())
			fmt.Fprintf(&b, "  status %s\n", raw)
		}
	}
	return b.String()
}

// Feeds lists instances as feeds.
func Feeds(insts ...*Instance) []Feed {
	out := make([]Feed, len(insts))
	for i, in := range insts {
		out[i] = in
	}
	return out
}
