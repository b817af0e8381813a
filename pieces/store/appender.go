package store

import (
	"errors"
	"fmt"
	"os"

	"github.com/ddc-project/ddc/internal/directio"
)

// writebackStep is how many appended bytes buffered mode lets pile up
// before it asks the kernel to start writing them out. Without it a large
// put's bytes all wait in the page cache (writeback starts at 10% of RAM
// dirty) and the commit's fdatasync flushes them after hashing is done,
// instead of while.
const writebackStep = 8 << 20

// appender writes the active block. Its methods are called under
// Store.wmu. It has two modes:
//
// Direct (O_DIRECT, where the filesystem allows it): appends are gathered
// in an aligned stage and written to the device without going through the
// page cache. That spares the copy into the page cache and the kernel
// flusher's work, about 1 core-second per GiB on a 2-core VM, which a put
// needs for hashing. Pieces stay packed back to back: flush writes the
// partial last 4 KiB block zero-padded, and the next write rewrites it.
// Padding past the end is cut at seal and at open.
//
// Buffered (tmpfs, and filesystems that refuse O_DIRECT): appends are
// pwrites, and writeback of each 8 MiB is started as it fills.
type appender struct {
	f      *os.File         // the block file, shared with readers
	direct *directio.Writer // direct mode's writer; nil in buffered mode
	end    uint64           // bytes appended so far

	queued uint64 // buffered: writeback was started below this offset
}

// newAppender continues the block f at end. Direct mode preloads the
// partial last 4 KiB block, since its next write rewrites it whole.
func newAppender(f *os.File, end uint64, tryDirect bool) (*appender, error) {
	a := &appender{f: f, end: end, queued: end}
	if !tryDirect {
		return a, nil
	}
	d, err := directio.OpenDirect(f.Name())
	if err != nil {
		return a, nil // not supported here (tmpfs: EINVAL; not Linux): stay buffered
	}
	if a.direct, err = directio.NewWriter(d, int64(end), f); err != nil {
		d.Close()
		return nil, fmt.Errorf("read tail of %s: %w", f.Name(), err)
	}
	return a, nil
}

// write appends data and returns the range whose writeback the caller
// should start (buffered mode) once it has released the lock.
func (a *appender) write(data []byte) (span, error) {
	if a.direct == nil {
		if _, err := a.f.WriteAt(data, int64(a.end)); err != nil {
			// Leave no partial piece behind: the next append starts
			// where this one did.
			return span{}, errors.Join(err, a.f.Truncate(int64(a.end)))
		}
		a.end += uint64(len(data))
		var wb span
		if a.end-a.queued >= writebackStep {
			wb = span{off: a.queued, n: a.end - a.queued}
			a.queued = a.end
		}
		return wb, nil
	}
	_, err := a.direct.Write(data)
	a.end = uint64(a.direct.End())
	return span{}, err
}

// flush makes every appended byte reach the file (not yet durable: the
// caller syncs). In direct mode the last partial block goes out padded.
func (a *appender) flush() error {
	if a.direct == nil {
		return nil
	}
	return a.direct.Flush()
}

// seal flushes and cuts the padding, so a sealed block ends at its data.
func (a *appender) seal() error {
	if err := a.flush(); err != nil {
		return err
	}
	if a.direct != nil {
		if err := a.f.Truncate(int64(a.end)); err != nil {
			return err
		}
	}
	return a.close()
}

func (a *appender) close() error {
	if a.direct == nil {
		return nil
	}
	err := a.direct.Close()
	a.direct = nil
	return err
}
