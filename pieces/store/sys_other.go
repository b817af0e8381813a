//go:build !linux

package store

import (
	"errors"
	"os"
)

// fdatasync is fsync where fdatasync is not offered.
func fdatasync(f *os.File) error { return f.Sync() }

// startWriteback does nothing where sync_file_range is not offered: the
// commit's sync writes everything.
func startWriteback(*os.File, uint64, uint64) {}

// errNoPunch: holes are punched only with Linux's fallocate here.
var errNoPunch = errors.New("punching holes in block files is only done on Linux")

// punchHole fails where fallocate's PUNCH_HOLE is not offered: the dead
// bytes stay on disk.
func punchHole(*os.File, int64, int64) error { return errNoPunch }

// allocated is the file's size where its blocks are not reported.
func allocated(fi os.FileInfo) uint64 { return uint64(fi.Size()) }

// identOf is what says fi is still the file whose bytes were indexed in
// place: where no inode is reported, its size and modification time.
func identOf(fi os.FileInfo) ident {
	return ident{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}
