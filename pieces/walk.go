package pieces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// walk calls fn for each segment of content from off to the end, in order,
// descending into sub-descriptors as it reaches them.
func (f *File) walk(off uint64, fn func(segment) error) error {
	err := f.walkNode(f.root, off, 0, fn)
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func (f *File) walkNode(n *node, off uint64, depth int, fn func(segment) error) error {
	if depth > MaxTreeDepth {
		return &CorruptError{CID: f.root.cid, Reason: fmt.Sprintf("tree deeper than %d levels", MaxTreeDepth)}
	}
	if off < uint64(len(n.p.Data)) {
		if err := fn(segment{data: n.p.Data, skip: off}); err != nil {
			return err
		}
		off = 0
	} else {
		off -= uint64(len(n.p.Data))
	}
	first := sort.Search(len(n.ends), func(i int) bool { return n.ends[i] > off })
	for i := first; i < len(n.p.Links); i++ {
		l := n.p.Links[i]
		skip := uint64(0)
		if i == first {
			skip = off
			if i > 0 {
				skip -= n.ends[i-1]
			}
		}
		if l.CID.Type() == CodecRaw {
			if err := fn(segment{link: l, skip: skip}); err != nil {
				return err
			}
			continue
		}
		child, err := f.node(l)
		if err != nil {
			return err
		}
		if err := f.walkNode(child, skip, depth+1, fn); err != nil {
			return err
		}
	}
	return nil
}

// fetched is a segment whose bytes are on their way.
type fetched struct {
	seg  segment
	done chan struct{}
	buf  []byte // from the buffer cycle; nil for inline segments
	data []byte
	err  error
}

// WriteTo implements io.WriterTo: it writes the content from the current
// position to the end; see CopyRange.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	return f.CopyRange(w, f.Size()-f.pos)
}

// CopyRange writes n bytes (fewer at the end of the file) from the current
// position to w and advances the position, fetching up to ReadAhead chunks
// in parallel ahead of the one being written. Memory stays bounded by
// ReadAhead+1 chunks.
func (f *File) CopyRange(w io.Writer, n int64) (int64, error) {
	end := min(f.Size(), f.pos+max(n, 0))
	if f.pos >= end {
		return 0, nil
	}
	var fetches sync.WaitGroup
	defer fetches.Wait() // runs after cancel: in-flight fetches end first
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	ahead := max(f.ReadAhead, 1)
	queue := make(chan *fetched, ahead)
	// Chunk buffers cycle from the walker, in file order, to a fetcher and
	// back from the writer: ahead+1 of them bound the fetches in flight and
	// the memory. Taking them in order is what keeps the cycle from
	// deadlocking: the writer always waits on the oldest buffer taken.
	bufs := make(chan []byte, ahead+1)
	for range ahead + 1 {
		bufs <- []byte{}
	}
	var walkErr error
	go func() {
		defer close(queue)
		at := uint64(f.pos)
		walkErr = f.walk(at, func(s segment) error {
			if at >= uint64(end) {
				return errStop
			}
			size := s.link.Size
			if !s.link.CID.Defined() {
				size = uint64(len(s.data))
			}
			s.take = min(size-s.skip, uint64(end)-at)
			at += s.take
			fe := &fetched{seg: s, done: make(chan struct{})}
			if !s.link.CID.Defined() {
				fe.data = s.data
				close(fe.done)
			} else {
				select {
				case fe.buf = <-bufs:
				case <-ctx.Done():
					return errStop
				}
				fetches.Go(func() {
					defer close(fe.done)
					fe.data, fe.err = fetchChunkInto(ctx, f.get, s.link, fe.buf[:cap(fe.buf)])
				})
			}
			select {
			case queue <- fe:
				return nil
			case <-ctx.Done():
				return errStop
			}
		})
	}()
	var written int64
	var err error
	_, reuse := f.get.(PieceReader) // only then is fe.data ours to refill
	for fe := range queue {
		if err != nil {
			continue // drain: the walker stops once ctx is cancelled
		}
		<-fe.done
		if fe.err != nil {
			err = fe.err
			cancel()
			continue
		}
		var n int
		n, err = w.Write(fe.data[fe.seg.skip : fe.seg.skip+fe.seg.take])
		written += int64(n)
		f.pos += int64(n)
		if err != nil {
			cancel()
		}
		if fe.buf != nil { // a chunk's buffer goes round again
			if reuse {
				bufs <- fe.data[:0] // filled, perhaps grown, by ReadPiece
			} else {
				bufs <- fe.buf
			}
		}
	}
	if err != nil {
		return written, err
	}
	if walkErr != nil {
		return written, walkErr
	}
	return written, nil
}
