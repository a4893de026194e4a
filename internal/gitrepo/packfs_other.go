//go:build !unix

package gitrepo

import "os"

// mapFile does not map on this platform: go-git reads the file itself.
func mapFile(string, int64) ([]byte, error) { return nil, nil }

func unmapFile([]byte) error { return nil }

func inode(os.FileInfo) uint64 { return 0 }
