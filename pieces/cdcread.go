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
	// cdcSegs is how many segments are in use at once: one being read and
	// scanned, one being cut, the others' chunks being hashed and stored.
	cdcSegs = 4
	// cdcCarry is the room before a segment's new bytes for what the one
	// before left undecided: a chunk not yet ended (shorter than
	// CDCMaxSize) and the hash window's bytes before the new ones.
	cdcCarry = cdcWindow - 1 + CDCMaxSize
)

// cdcSeg is one buffer of the cdc reader: cdcCarry bytes of room, then the
// new bytes read at stream offset pos. Its chunks and the cutter each hold
// a reference, and the last one gives it back.
type cdcSeg struct {
	buf   []byte
	pos   uint64 // stream offset of buf[cdcCarry]
	n     int    // new bytes
	eof   bool   // the stream ends after them
	err   error  // the read failed
	cands []cand // candidates among the new bytes
	refs  atomic.Int32
	free  chan *cdcSeg
}

func (s *cdcSeg) release() {
	if s.refs.Add(-1) == 0 {
		s.free <- s
	}
}

// at is the index in buf of stream offset off.
func (s *cdcSeg) at(off uint64) int { return cdcCarry + int(int64(off-s.pos)) }

// readCDC cuts r where the content says and sends the chunks in order. One
// goroutine reads segments and scans their new bytes for candidates (over
// workers goroutines, in disjoint regions: a candidate depends on the
// bytes alone), while this one cuts the segment before, as a serial scan
// would, and sends its chunks to be hashed.
func readCDC(ctx context.Context, r io.Reader, workers int, send func(*chunk) bool) error {
	free := make(chan *cdcSeg, cdcSegs)
	for range cdcSegs {
		free <- nil // allocated on first use
	}
	filled := make(chan *cdcSeg, 1)
	readCtx, stop := context.WithCancel(ctx)
	go fillCDC(readCtx, r, workers, free, filled)
	var prev *cdcSeg
	defer func() {
		stop()
		for seg := range filled { // the filler is done with r once it closes filled
			seg.refs.Store(1)
			seg.release()
		}
		if prev != nil {
			prev.release()
		}
	}()
	var (
		cut     cutter
		scanned uint64 // the stream is read and scanned up to here
		seq     int
	)
	for seg := range filled {
		seg.refs.Store(1)
		if seg.err != nil {
			seg.release()
			return seg.err
		}
		if prev != nil { // carry the undecided chunk over, before the new bytes
			copy(seg.buf[seg.at(cut.start):cdcCarry], prev.buf[prev.at(cut.start):prev.at(scanned)])
			prev.release()
		}
		prev = seg
		cut.add(seg.cands)
		scanned = seg.pos + uint64(seg.n)
		for {
			start := cut.start
			end, ok := cut.cut(scanned, seg.eof)
			if !ok {
				break
			}
			seg.refs.Add(1)
			if !send(&chunk{seq: seq, data: seg.buf[seg.at(start):seg.at(end)], done: seg.release}) {
				return nil
			}
			seq++
		}
		if seg.eof {
			return nil
		}
	}
	return nil // cancelled
}

// fillCDC reads r into free segments, scans each one's new bytes, and
// hands them on in order until the stream ends, a read fails or ctx ends.
// It writes the hash window's bytes before each segment's new ones, so
// the scan needs nothing of the cutter.
func fillCDC(ctx context.Context, r io.Reader, workers int, free, filled chan *cdcSeg) {
	defer close(filled)
	var (
		pos    uint64
		window [cdcWindow - 1]byte
		wn     int // bytes in window: fewer only near the stream's start
	)
	for {
		var seg *cdcSeg
		select {
		case seg = <-free:
		case <-ctx.Done():
			return
		}
		if seg == nil {
			seg = &cdcSeg{buf: make([]byte, cdcCarry+cdcSegment), free: free}
		}
		copy(seg.buf[cdcCarry-wn:], window[:wn])
		m, err := io.ReadFull(r, seg.buf[cdcCarry:])
		seg.pos, seg.n, seg.err = pos, m, nil
		seg.eof = errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !seg.eof {
			seg.err = fmt.Errorf("read input: %w", err)
		} else {
			// A slice that starts at the window, or at the stream's start.
			scan := seg.buf[cdcCarry-wn : cdcCarry+m]
			seg.cands = scanParallel(scan, wn, wn+m, pos-uint64(wn), workers, seg.cands[:0])
			wn = copy(window[:], scan[max(0, len(scan)-(cdcWindow-1)):])
			pos += uint64(m)
		}
		select {
		case filled <- seg:
		case <-ctx.Done():
			seg.refs.Store(1)
			seg.release()
			return
		}
		if seg.eof || seg.err != nil {
			return
		}
	}
}
