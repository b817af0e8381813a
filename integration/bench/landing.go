//go:build linux

package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ddc-project/ddc/internal/directio"
)

// landing writes what it is given to a new file the way the store writes
// blocks and an in-place get writes its output: O_DIRECT (where the
// filesystem allows it) in aligned 4 MiB writes, two in flight, then one
// fdatasync at close. It is the disk half of the "raw stream into disk"
// baseline: moving and landing the bytes, with no protocol, hashing or
// index.
type landing struct {
	f *os.File
	w io.Writer        // dw, or f where O_DIRECT is refused
	d *directio.Writer // nil: buffered
	n int64            // bytes written
}

func newLanding(path string) (*landing, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	l := &landing{f: f, w: f}
	if d, err := directio.OpenDirect(path); err == nil { // tmpfs refuses: the page cache, as the store does
		if l.d, err = directio.NewWriter(d, 0, f); err != nil {
			d.Close()
			f.Close()
			return nil, err
		}
		l.w = l.d
	}
	return l, nil
}

func (l *landing) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// Close writes the rest (padded to the alignment; the file is cut back to
// its length after), syncs and closes.
func (l *landing) Close() error {
	var err error
	if l.d != nil {
		err = l.d.Flush()
		if cerr := l.d.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = l.f.Truncate(l.n)
	}
	if err == nil {
		err = unix.Fdatasync(int(l.f.Fd()))
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("land raw stream in %s: %w", l.f.Name(), err)
	}
	return nil
}
