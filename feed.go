package pivot

import (
	"fmt"

	"github.com/benitogf/pivot/ooo/storage"
)

// feedPage is one batch or page read from a storage's change feed: the changes kept, the
// feed position it covers (pass it as since next time), and whether the feed goes on.
type feedPage struct {
	changes []storage.Change
	next    uint64
	more    bool
	bytes   int64  // the entrySize total of changes
	head    uint64 // when more is false, the head of the feed as the storage gave it
}

// readFeed reads sk's feed after since into a page of at most limit changes whose
// entrySize total stays within budget, keeping only the changes keep accepts (nil keeps
// all). A page always holds at least one kept change when the feed has one, even one
// bigger than budget: the peer then refuses it (413), which is reported for its key,
// instead of the sync stalling on an empty page. Cutting after any change is safe:
// each key appears once, at its latest sequence, so every feed position up to the last
// change read is covered.
func readFeed(sk *syncKey, since uint64, limit int, budget int64, keep func(storage.Change) bool) (feedPage, error) {
	page := feedPage{next: since}
	chunk := min(limit, feedChunk)
	for reads := 0; reads < maxFeedReads; reads++ {
		changes, next, err := sk.rep.Changes(sk.path, page.next, chunk)
		if err != nil {
			return page, fmt.Errorf("pivot: read changes of %s: %w", sk.path, err)
		}
		for _, c := range changes {
			if keep == nil || keep(c) {
				size := entrySize(c.Entry)
				if len(page.changes) > 0 && (len(page.changes) >= limit || page.bytes+size > budget) {
					page.more = true
					return page, nil
				}
				page.changes = append(page.changes, c)
				page.bytes += size
			}
			page.next = c.Seq
		}
		if len(changes) < chunk {
			// The feed is exhausted: next is its head, past positions of keys that
			// changed again later (and so were not listed at their old place).
			page.next, page.head = max(page.next, next), next
			return page, nil
		}
		page.next = max(page.next, next)
		if len(page.changes) >= limit {
			page.more = true
			return page, nil
		}
		// Size the next read by what the values weigh so far, so a page of large
		// values does not read many more of them than it can carry.
		if n := int64(len(page.changes)); n > 0 {
			room := (budget - page.bytes) / (page.bytes / n)
			chunk = int(min(int64(limit-len(page.changes)), max(1, room+1)))
		}
	}
	page.more = true
	return page, nil
}

// scanFeed calls fn for the current state of every key of sk, tombstones included,
// reading at most maxSnapshotPages pages of page changes, and returns the feed position
// it read up to (the head, unless the bound cut the scan).
func scanFeed(sk *syncKey, page int, fn func(storage.Change) error) (uint64, error) {
	var since uint64
	for i := 0; i < maxSnapshotPages; i++ {
		changes, next, err := sk.rep.Changes(sk.path, since, page)
		if err != nil {
			return since, fmt.Errorf("pivot: read changes of %s: %w", sk.path, err)
		}
		for _, c := range changes {
			if err := fn(c); err != nil {
				return since, err
			}
		}
		since = next
		if len(changes) < page {
			return since, nil
		}
	}
	return since, nil
}

// splitBatches cuts entries into batches of at most limit entries whose entrySize total
// stays within budget (a batch holds at least one entry).
func splitBatches(entries []storage.Entry, limit int, budget int64) [][]storage.Entry {
	var out [][]storage.Entry
	start, size := 0, int64(0)
	for i, en := range entries {
		s := entrySize(en)
		if i > start && (i-start >= limit || size+s > budget) {
			out = append(out, entries[start:i])
			start, size = i, 0
		}
		size += s
	}
	if start < len(entries) {
		out = append(out, entries[start:])
	}
	return out
}
