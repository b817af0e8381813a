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
