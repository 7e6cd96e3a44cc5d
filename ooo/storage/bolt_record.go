package storage

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
)

// The encoding of one record of a BoltStorage file.

// A record is the value stored under its key in bucketData. Two formats exist; every
// write stores format 2, and format 1 records written by earlier versions stay readable.
//
//	format 2: [0] 2, [1:5] CRC-32C (Castagnoli, big endian) of the key's bytes followed
//	          by the record from offset 5 on, [5:13] seq, [13:21] created, [21:29]
//	          updated (big endian), [29] flags, [30:] data (none for a tombstone)
//	format 1: [0] 1, [1:9] seq, [9:17] created, [17:25] updated, [25] flags, [26:] data
//
// The checksum covers the key, so a record damaged anywhere, or moved under another key,
// fails it. A format 1 record has no checksum: its data must at least be one JSON value.
// A record that fails either check is unreadable (errUnreadable).
const (
	recordFormat1 = 1
	recordHeader1 = 1 + 8 + 8 + 8 + 1
	recordFormat  = 2
	recordHeader  = 1 + 4 + 8 + 8 + 8 + 1
	flagDeleted   = 1 << 0
	flagRemote    = 1 << 1
)

// castagnoli is the CRC-32C table; the polynomial has hardware support on amd64 and
// arm64, which keeps the checksum far below the cost of a bbolt lookup.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errUnreadable marks a stored record that fails its checksum or does not decode. It
// wraps ErrCorrupt, so callers outside the package see ErrCorrupt.
var errUnreadable = fmt.Errorf("unreadable record: %w", ErrCorrupt)

// recordSum is the checksum of a format 2 record v stored under k.
func recordSum(k, v []byte) uint32 {
	return crc32.Update(crc32.Checksum(k, castagnoli), castagnoli, v[5:])
}

func encodeRecord(c *Change) []byte {
	out := make([]byte, recordHeader, recordHeader+len(c.Data))
	out[0] = recordFormat
	binary.BigEndian.PutUint64(out[5:], c.Seq)
	binary.BigEndian.PutUint64(out[13:], uint64(c.Created))
	binary.BigEndian.PutUint64(out[21:], uint64(c.Updated))
	if c.Deleted {
		out[29] |= flagDeleted
	}
	if c.Remote {
		out[29] |= flagRemote
	}
	if !c.Deleted {
		out = append(out, c.Data...)
	}
	binary.BigEndian.PutUint32(out[1:], recordSum([]byte(c.Key), out))
	return out
}

// recordFields reads the header fields of a record at offset off (1 for format 1, 5
// for format 2) without any check.
func recordFields(k, v []byte, off int) Change {
	return Change{
		Entry: Entry{
			Key:     string(k),
			Created: int64(binary.BigEndian.Uint64(v[off+8:])),
			Updated: int64(binary.BigEndian.Uint64(v[off+16:])),
			Deleted: v[off+24]&flagDeleted != 0,
		},
		Seq:    binary.BigEndian.Uint64(v[off:]),
		Remote: v[off+24]&flagRemote != 0,
	}
}

// checkRecord decodes a stored record without copying its data: the returned Data
// aliases v. It fails with errUnreadable when the record does not pass its check.
func checkRecord(k, v []byte) (Change, error) {
	var (
		c    Change
		data []byte
	)
	switch {
	case len(v) >= recordHeader && v[0] == recordFormat:
		if binary.BigEndian.Uint32(v[1:]) != recordSum(k, v) {
			return Change{}, fmt.Errorf("record %q: checksum mismatch: %w", k, errUnreadable)
		}
		c, data = recordFields(k, v, 5), v[recordHeader:]
	case len(v) >= recordHeader1 && v[0] == recordFormat1:
		c, data = recordFields(k, v, 1), v[recordHeader1:]
		// Format 1 has no checksum; data that is not JSON is the damage it can show, and
		// would break every read that encodes the object.
		if !c.Deleted && !json.Valid(data) {
			return Change{}, fmt.Errorf("record %q: data is not JSON: %w", k, errUnreadable)
		}
	default:
		return Change{}, fmt.Errorf("record %q: unknown format or short header: %w", k, errUnreadable)
	}
	if !c.Deleted {
		c.Data = data
	}
	return c, nil
}

// decodeRecord decodes a stored record; the data is copied out of bbolt's memory.
func decodeRecord(k, v []byte) (Change, error) {
	c, err := checkRecord(k, v)
	if err != nil {
		return Change{}, err
	}
	if !c.Deleted {
		c.Data = append(json.RawMessage(nil), c.Data...)
	}
	return c, nil
}

// recordHeaderOf reads the header of a record that may be unreadable, for the one use
// of cleaning up after it: the caller must confirm each field against the feed and
// tombstone index before acting on it. ok is false when v has no header to read.
func recordHeaderOf(k, v []byte) (c Change, ok bool) {
	switch {
	case len(v) >= recordHeader && v[0] == recordFormat:
		return recordFields(k, v, 5), true
	case len(v) >= recordHeader1 && v[0] == recordFormat1:
		return recordFields(k, v, 1), true
	}
	return Change{}, false
}
