//go:build !unix

package storage

// fileIdentity gives no identity where the OS has no inodes to read through os.Stat:
// copy detection is off there, and a copied file keeps its token and instance id.
func fileIdentity(string) ([]byte, error) { return nil, nil }
