package store

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdatasync makes f's data durable, without its metadata but its size.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// startWriteback asks the kernel to start writing n bytes of f at off and
// returns at once; a failure shows in the next fdatasync.
func startWriteback(f *os.File, off, n uint64) {
	unix.SyncFileRange(int(f.Fd()), int64(off), int64(n), unix.SYNC_FILE_RANGE_WRITE)
}

// punchHole gives the filesystem back the blocks of f's n bytes at off,
// which read as zeros from then on; the file keeps its size.
func punchHole(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// allocated is the bytes the filesystem gives f, as du counts them.
func allocated(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Blocks) * 512
	}
	return uint64(fi.Size())
}

// identOf is what says fi is still the file whose bytes were indexed in
// place: its device and inode, size and modification time.
func identOf(fi os.FileInfo) ident {
	id := ident{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
	}
	return id
}
