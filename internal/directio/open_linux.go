package directio

import (
	"os"

	"golang.org/x/sys/unix"
)

// OpenDirect opens name for writing past the page cache (O_DIRECT). It
// fails where the filesystem refuses it (tmpfs: EINVAL): write buffered
// there.
func OpenDirect(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_WRONLY|unix.O_DIRECT, 0)
}

// Writable reports whether f was opened for writing: a second handle
// opened through /proc/self/fd could write a file its opener meant to
// read only.
func Writable(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && (fl&unix.O_ACCMODE == unix.O_WRONLY || fl&unix.O_ACCMODE == unix.O_RDWR)
}
