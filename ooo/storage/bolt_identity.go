package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/benitogf/pivot/ooo/clock"
)

// initIdentity settles the identity of a bolt file at Start, inside initBolt's
// transaction, so it is on disk before Start returns and before any write:
//
//   - a file without a token (new, or written before tokens existed) gets one;
//   - a file whose recorded file identity differs from the file it is read from was
//     copied (or its folder was): it gets a fresh token and a fresh instance id, other
//     than the one it had, so the copy never stamps with the original's id;
//   - the actual file identity is then recorded, when the OS gives one.
//
// A file that lacks a recorded identity cannot tell whether it is a copy; it keeps its
// instance id, and the fresh token it gets (when it had none) tells it apart from any
// other copy, so the cluster can still notice two writers sharing an id.
func initIdentity(m *bolt.Bucket, file string, st *boltState) error {
	actual, err := fileIdentity(file)
	if err != nil {
		return fmt.Errorf("file identity: %w", err)
	}
	recorded := m.Get(metaFile)
	token := string(m.Get(metaToken))
	copied := actual != nil && recorded != nil && !bytes.Equal(recorded, actual)
	if copied {
		old := st.instance
		for st.instance == old {
			st.instance = clock.RandomInstanceID()
		}
		if err := m.Put(metaInstance, binary.BigEndian.AppendUint16(nil, st.instance)); err != nil {
			return err
		}
	}
	if token == "" || copied {
		token = newToken()
		if err := m.Put(metaToken, []byte(token)); err != nil {
			return err
		}
	}
	if actual != nil && !bytes.Equal(recorded, actual) {
		if err := m.Put(metaFile, actual); err != nil {
			return err
		}
	}
	st.token = token
	return nil
}

// putIdentity records a token and an instance id set by SetIdentity.
func putIdentity(db *bolt.DB, token string, instance uint16) error {
	err := db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if err := m.Put(metaToken, []byte(token)); err != nil {
			return err
		}
		return m.Put(metaInstance, binary.BigEndian.AppendUint16(nil, instance))
	})
	if err != nil {
		return fmt.Errorf("write identity to %s: %w", db.Path(), err)
	}
	return nil
}
