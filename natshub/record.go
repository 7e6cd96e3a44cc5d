package natshub

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/benitogf/pivot/ooo/key"
	"github.com/benitogf/pivot/ooo/meta"
	"github.com/benitogf/pivot/ooo/storage"
)

// Message headers carrying a record's stamps. The message data is the record's data,
// byte for byte (empty for a tombstone).
const (
	hdrCreated = "Ooo-Created" // decimal stamp
	hdrUpdated = "Ooo-Updated" // decimal stamp
	hdrDeleted = "Ooo-Deleted" // "1" on a tombstone
	hdrRemote  = "Ooo-Remote"  // "1" when applied from a peer (Replica.Apply)
	hdrGlob    = "Ooo-Glob"    // on a glob delete's tombstones and its globKey marker: the glob
	hdrWriter  = "Ooo-Writer"  // the Storage value that wrote the message (events.go)
	// hdrKVOp is the header NATS KV clients put on their delete and purge markers; a
	// key whose last message carries it reads as absent.
	hdrKVOp = "KV-Operation"
)

// record is a key's state as its last message holds it.
type record struct {
	storage.Change        // Seq is the message's stream sequence: the key's revision
	glob           string // hdrGlob: the tombstone of a glob delete
}

// message encodes c as the message to publish on the key's subject.
func (b *bucket) message(c storage.Change, glob, writer string) *nats.Msg {
	m := nats.NewMsg(b.prefix + subjectKey(c.Key))
	m.Header.Set(hdrWriter, writer)
	m.Header.Set(hdrCreated, strconv.FormatInt(c.Created, 10))
	m.Header.Set(hdrUpdated, strconv.FormatInt(c.Updated, 10))
	if c.Deleted {
		m.Header.Set(hdrDeleted, "1")
	} else {
		m.Data = c.Data
	}
	if c.Remote {
		m.Header.Set(hdrRemote, "1")
	}
	if glob != "" {
		m.Header.Set(hdrGlob, glob)
	}
	return m
}

// decode reads the record of ooo key k from a message's headers and data. A NATS KV
// delete or purge marker reads as absent (ok false).
func decode(k string, seq uint64, h nats.Header, data []byte) (record, bool, error) {
	if h.Get(hdrKVOp) != "" {
		return record{}, false, nil
	}
	created, err := strconv.ParseInt(h.Get(hdrCreated), 10, 64)
	if err != nil {
		return record{}, false, fmt.Errorf("record %q at %d: created stamp: %w", k, seq, err)
	}
	updated, err := strconv.ParseInt(h.Get(hdrUpdated), 10, 64)
	if err != nil {
		return record{}, false, fmt.Errorf("record %q at %d: updated stamp: %w", k, seq, err)
	}
	r := record{Change: storage.Change{
		Entry:  storage.Entry{Key: k, Created: created, Updated: updated, Deleted: h.Get(hdrDeleted) == "1"},
		Seq:    seq,
		Remote: h.Get(hdrRemote) == "1",
	}, glob: h.Get(hdrGlob)}
	if !r.Deleted {
		r.Data = data
	}
	return r, true, nil
}

// decodeRaw decodes a message read by get.
func decodeRaw(k string, m *jetstream.RawStreamMsg) (record, bool, error) {
	if m == nil {
		return record{}, false, nil
	}
	return decode(k, m.Sequence, m.Header, m.Data)
}

// keyOf is the ooo key whose message has the subject sub; ok is false for a subject
// outside the bucket or not the image of a valid ooo key.
func (b *bucket) keyOf(sub string) (string, bool) {
	if len(sub) <= len(b.prefix) {
		return "", false
	}
	return ooKey(sub[len(b.prefix):])
}

// decodeMsg decodes a message read by scan or the watcher; ok is false for a subject
// that is not the image of a valid ooo key, or a KV marker.
func (b *bucket) decodeMsg(m jetstream.Msg) (record, bool, error) {
	k, ok := b.keyOf(m.Subject())
	if !ok {
		return record{}, false, nil
	}
	md, err := m.Metadata()
	if err != nil {
		return record{}, false, fmt.Errorf("record %q: metadata: %w", k, err)
	}
	return decode(k, md.Sequence.Stream, m.Headers(), m.Data())
}

// object is the stored object of a live record, as reads return it.
func (r record) object() meta.Object { return objectOf(r.Change) }

// objectOf is the stored object of a live change.
func objectOf(c storage.Change) meta.Object {
	return meta.Object{Created: c.Created, Updated: c.Updated, Index: key.LastIndex(c.Key), Path: c.Key, Data: c.Data}
}

// messageRaw is a message of data on the KV key k (a reserved or meta key, no stamps).
func (b *bucket) messageRaw(k string, data []byte) *nats.Msg {
	m := nats.NewMsg(b.prefix + k)
	m.Data = data
	return m
}
