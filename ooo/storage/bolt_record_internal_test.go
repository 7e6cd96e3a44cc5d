package storage

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRecord measures what a record costs to encode and decode, by data size:
// format 2 (CRC-32C over key, header and data) against format 1, whose data is now
// checked to be JSON, and against format 1 as it was decoded before (no check at all).
func BenchmarkRecord(b *testing.B) {
	for _, size := range []int{64, 4096, 512 << 10} {
		data := json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", size-10)))
		c := &Change{Entry: Entry{Key: "users/000001", Created: 1, Updated: 2, Data: data}, Seq: 3}
		k := []byte(c.Key)
		v2 := encodeRecord(c)
		v1 := append([]byte{recordFormat1}, v2[5:]...)
		b.Run(fmt.Sprintf("encode/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				_ = encodeRecord(c)
			}
		})
		b.Run(fmt.Sprintf("decode2/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				if _, err := decodeRecord(k, v2); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("decode1/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				if _, err := decodeRecord(k, v1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("decode1-unchecked/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				c := recordFields(k, v1, 1)
				c.Data = append(json.RawMessage(nil), v1[recordHeader1:]...)
			}
		})
	}
}
