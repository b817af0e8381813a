package pieces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

const (
	// cdcSegment is how many new bytes each read of the cdc chunker brings:
	// scanned for candidates in parallel, then cut.
	cdcSegment = 8 << 20
	// cdcSegs is how many segments are in use at once: one filling,
	// the others' chunks being hashed and stored.
	cdcSegs = 3
)

// cdcSeg is one buffer of the cdc reader; its chunks and the reader each
// hold a reference, and the last one gives it back.
type cdcSeg struct {
	buf  []byte
	refs atomic.Int32
	free chan *cdcSeg
}

func (s *cdcSeg) release() {
	if s.refs.Add(-1) == 0 {
		s.free <- s
	}
}

// readCDC cuts r where the content says and sends the chunks in order.
// Each segment holds what the previous one left undecided (a chunk not yet
// ended, and the hash window's bytes before the new ones) followed by
// cdcSegment or more new bytes; workers goroutines scan the new bytes for
// candidates in disjoint regions, and the cutter picks the cuts in order,
// as a serial scan would.
func readCDC(ctx context.Context, r io.Reader, workers int, send func(*chunk) bool) error {
	free := make(chan *cdcSeg, cdcSegs)
	for range cdcSegs {
		free <- nil // allocated on first use
	}
	var (
		cut     cutter
		prev    *cdcSeg
		base    uint64 // stream offset of prev.buf[0]
		scanned uint64 // the stream is read and scanned up to here
		seq     int
	)
	defer func() {
		if prev != nil {
			prev.release()
		}
	}()
	for {
		var seg *cdcSeg
		select {
		case seg = <-free:
		case <-ctx.Done():
			return nil
		}
		if seg == nil {
			seg = &cdcSeg{buf: make([]byte, cdcWindow-1+CDCMaxSize+cdcSegment), free: free}
		}
		seg.refs.Store(1)
		// Carry over the undecided chunk and the window before the new bytes.
		from := min(cut.start, scanned-min(scanned, cdcWindow-1))
		n := 0
		if prev != nil {
			n = copy(seg.buf, prev.buf[from-base:scanned-base])
			prev.release()
		}
		prev, base = seg, from
		m, err := io.ReadFull(r, seg.buf[n:])
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return fmt.Errorf("read input: %w", err)
		}
		cut.add(scanParallel(seg.buf, n, n+m, base, workers, nil))
		scanned = base + uint64(n+m)
		for {
			start := cut.start
			end, ok := cut.cut(scanned, eof)
			if !ok {
				break
			}
			seg.refs.Add(1)
			if !send(&chunk{seq: seq, data: seg.buf[start-base : end-base], done: seg.release}) {
				return nil
			}
			seq++
		}
		if eof {
			return nil
		}
	}
}
