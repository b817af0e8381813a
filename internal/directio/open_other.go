//go:build !linux

package directio

import (
	"errors"
	"os"
)

// OpenDirect fails: direct I/O is Linux's O_DIRECT here, so other systems
// write buffered.
func OpenDirect(string) (*os.File, error) {
	return nil, errors.New("direct I/O is only used on Linux")
}

// Writable is true here: no second handle is opened (see OpenDirect), so
// writes through f fail by themselves if it is read-only.
func Writable(*os.File) bool { return true }
