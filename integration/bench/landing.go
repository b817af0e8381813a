//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ddc-project/ddc/internal/directio"
)

// landing writes what it is given to a new file the way the store writes
// blocks: O_DIRECT (where the filesystem allows it) in aligned 4 MiB
// writes, two in flight, then one fdatasync at close. It is the disk half
// of the "raw stream into disk" baseline: moving and landing the bytes,
// with no protocol, hashing or index.
type landing struct {
	f     *os.File
	buf   []byte // filling, aligned
	n     int    // bytes in buf
	off   int64  // file offset of buf
	spare chan []byte
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

const (
	landingStage  = 4 << 20
	landingStages = 3 // one filling, two being written
)

func newLanding(path string) (*landing, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_DIRECT, 0o644)
	if err != nil {
		// tmpfs and some filesystems refuse O_DIRECT: write through the
		// page cache there, as the store does.
		if f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err != nil {
			return nil, err
		}
	}
	l := &landing{f: f, buf: directio.Buffer(landingStage), spare: make(chan []byte, landingStages-1)}
	for range landingStages - 1 {
		l.spare <- directio.Buffer(landingStage)
	}
	return l, nil
}

func (l *landing) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		c := copy(l.buf[l.n:], p)
		p, l.n = p[c:], l.n+c
		if l.n == len(l.buf) {
			l.flushStage(l.n)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return total, l.err
}

// flushStage starts writing the first n bytes of the filling stage and
// takes a spare one, waiting while both spares are being written.
func (l *landing) flushStage(n int) {
	full, off := l.buf[:n], l.off
	l.buf, l.n, l.off = <-l.spare, 0, off+int64(n)
	l.wg.Go(func() {
		_, err := l.f.WriteAt(full, off)
		l.mu.Lock()
		l.err = errors.Join(l.err, err)
		l.mu.Unlock()
		l.spare <- full[:cap(full)]
	})
}

// Close writes the rest (padded to the alignment; the file is cut back to
// its length after), syncs and closes.
func (l *landing) Close() error {
	length := l.off + int64(l.n)
	if l.n > 0 {
		padded := directio.Pad(l.n)
		clear(l.buf[l.n:padded])
		l.flushStage(padded)
	}
	l.wg.Wait()
	err := l.err
	if err == nil {
		err = l.f.Truncate(length)
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
