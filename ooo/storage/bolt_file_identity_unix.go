//go:build unix

package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// fileIdentity names the file itself, not its path or content: its device and inode. A
// copy of the file (or of its folder) is a new inode, or another device, and so has
// another identity; a file renamed or moved within its file system keeps it. nil when
// the OS gives no inode. Where device numbers are not stable across reboots (some
// network or device-mapper volumes), a reboot looks like a copy: the storage then takes
// a fresh identity, which is safe (it only gives up the old token and id), if not needed.
func fileIdentity(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, nil
	}
	// Dev and Ino are not uint64 on every unix: convert both.
	out := binary.BigEndian.AppendUint64(nil, uint64(st.Dev))
	return binary.BigEndian.AppendUint64(out, uint64(st.Ino)), nil
}
