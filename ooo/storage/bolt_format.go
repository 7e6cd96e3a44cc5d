package storage

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot/ooo/clock"
)

// The layout of a BoltStorage file: buckets and meta entries (records: bolt_record.go).

// Bucket and meta key names of the file format.
var (
	bucketData    = []byte("data")    // key -> record
	bucketFeed    = []byte("feed")    // big-endian seq -> key, current writes only
	bucketTombs   = []byte("tombs")   // big-endian delete stamp + key -> nothing
	bucketMeta    = []byte("meta")    // the names below
	bucketCursors = []byte("cursors") // cursor name -> value

	metaFormat   = []byte("format")
	metaHead     = []byte("head")
	metaHorizon  = []byte("horizon")
	metaEpoch    = []byte("epoch")
	metaInstance = []byte("instance")
	metaStamp    = []byte("stamp")
	metaToken    = []byte("token") // the identity token (Identified)
	metaFile     = []byte("file")  // identity of the file the data lives in (fileIdentity)
)

// boltFormat is the version of the file layout, stored under metaFormat.
const boltFormat = 1

type boltState struct {
	instance uint16
	stamp    int64
	token    string
	fresh    bool // the file was created by this initBolt
}

// initBolt creates the buckets of a new file, or checks those of an existing one, and
// settles the file's identity (initIdentity), all in one transaction.
func initBolt(db *bolt.DB) (boltState, error) {
	var st boltState
	err := db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error {
				empty = false
				return nil
			})
			if !empty {
				return fmt.Errorf("not an ooo storage file: %w", ErrCorrupt)
			}
			for _, name := range [][]byte{bucketData, bucketFeed, bucketTombs, bucketMeta, bucketCursors} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			st.fresh = true
			m = tx.Bucket(bucketMeta)
			var id [2]byte
			binary.BigEndian.PutUint16(id[:], clock.RandomInstanceID())
			if err := m.Put(metaFormat, []byte{boltFormat}); err != nil {
				return err
			}
			if err := m.Put(metaInstance, id[:]); err != nil {
				return err
			}
		}
		if f := m.Get(metaFormat); len(f) != 1 || f[0] != boltFormat {
			return fmt.Errorf("unknown file format %v: %w", f, ErrCorrupt)
		}
		for _, name := range [][]byte{bucketData, bucketFeed, bucketTombs, bucketCursors} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing: %w", name, ErrCorrupt)
			}
		}
		id := m.Get(metaInstance)
		if len(id) != 2 {
			return fmt.Errorf("instance id: %w", ErrCorrupt)
		}
		st.instance = binary.BigEndian.Uint16(id)
		st.stamp = int64(getUint(m, metaStamp))
		return initIdentity(m, db.Path(), &st)
	})
	return st, err
}

func putUint(b *bolt.Bucket, name []byte, v uint64) error {
	return b.Put(name, binary.BigEndian.AppendUint64(nil, v))
}

func getUint(b *bolt.Bucket, name []byte) uint64 {
	v := b.Get(name)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func tombKey(stamp int64, k string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(stamp)), k...)
}
