package pieces

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
)

// Budget bounds the bytes of chunks that many Files hold in flight at
// once, such as the reads of a gateway serving many requests; a
// golang.org/x/sync/semaphore.Weighted is one. A stream takes its next
// chunk's bytes with Acquire only when it holds none (so every reader
// makes progress), and reads further ahead only with what TryAcquire
// grants (so a slow reader cannot starve the others).
type Budget interface {
	Acquire(ctx context.Context, n int64) error
	TryAcquire(n int64) bool
	Release(n int64)
}

// fetched is a segment whose bytes are on their way.
type fetched struct {
	seg    segment
	done   chan struct{}
	buf    []byte // the token it took from the cycle; nil for inline segments
	budget int64  // bytes taken from the Budget
	data   []byte
	err    error
	// src is the fetch of the same chunk that came just before, whose
	// bytes this one reads: a run of range links into one chunk reads it
	// once. A src that lends its bytes is marked shared, so its buffer is
	// not handed to another fetch while they are read.
	src   *fetched
	state atomic.Int32 // fetchLive, fetchShared or fetchReleased
}

const (
	fetchLive = iota
	fetchShared
	fetchReleased
)

// lend marks fe as the source of a later segment, unless it is released.
func (fe *fetched) lend() bool {
	return fe.state.CompareAndSwap(fetchLive, fetchShared) || fe.state.Load() == fetchShared
}

// stream hands out the content of [pos, end) in order while fetching
// chunks ahead of the one being read. Chunk tokens cycle from the walker,
// in file order, to a fetch and back once the reader is done with the
// chunk: the tokens out bound the fetches in flight and the memory. Taking
// them in order keeps the cycle from deadlocking, since the reader always
// waits on the oldest token taken.
type stream struct {
	f       *File
	ctx     context.Context
	cancel  context.CancelFunc
	queue   chan *fetched
	tokens  chan []byte // a buffer each; empty ones unless the getter refills them
	issued  int         // tokens made so far
	max     int         // the most tokens there may be: ReadAhead+1
	reuse   bool        // fetched data is ours to hand back as a buffer
	blocks  bool        // hand out whole blocks, descriptors too, not bytes
	fetches sync.WaitGroup
	walked  chan struct{} // closed when the walker returns
	walkErr error

	held     chan struct{} // one per chunk holding budget
	released chan struct{} // a budgeted chunk was let go

	pos  int64    // the next byte to hand out
	head *fetched // the segment being read
	used uint64   // bytes of head handed out
	grew bool     // head already added a token
	err  error    // sticky: the stream is over
}

// newStream starts fetching [pos, end) with tokens chunks allowed in
// flight; the reader adds more, up to ReadAhead+1, as it shows it reads on.
// In blocks mode it hands out whole blocks instead (see Blocks).
func (f *File) newStream(pos, end int64, tokens int, blocks bool) *stream {
	s := &stream{f: f, blocks: blocks, queue: make(chan *fetched, max(f.ReadAhead, 1)), max: max(f.ReadAhead, 1) + 1,
		walked: make(chan struct{}), pos: pos, released: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(f.ctx)
	s.tokens = make(chan []byte, s.max)
	s.held = make(chan struct{}, s.max)
	_, s.reuse = f.get.(PieceReader)
	s.reuse = s.reuse && f.Budget == nil // under a budget, idle buffers would be memory it does not count
	for range min(tokens, s.max) {
		s.grow()
	}
	go s.walk(uint64(pos), uint64(end))
	return s
}

// grow lets one more chunk be in flight, up to the stream's maximum.
func (s *stream) grow() {
	if s.issued < s.max {
		s.issued++
		s.tokens <- []byte{}
	}
}

func (s *stream) walk(at, end uint64) {
	defer close(s.walked)
	defer close(s.queue)
	var prev *fetched // the last chunk fetched
	s.walkErr = s.f.walk(at, func(seg segment) error {
		if at >= end {
			return errStop
		}
		if seg.desc != nil || (s.blocks && !seg.link.CID.Defined()) {
			if !s.blocks {
				return nil
			}
			if seg.desc == nil { // a descriptor's inline data is in its block, handed out already
				at += min(seg.end-seg.skip, end-at)
				return nil
			}
			fe := &fetched{seg: segment{link: Link{CID: seg.desc.cid}, take: uint64(len(seg.desc.raw))}, data: seg.desc.raw, done: make(chan struct{})}
			close(fe.done)
			return s.enqueue(fe)
		}
		seg.take = min(seg.end-seg.skip, end-at)
		at += seg.take
		if s.blocks {
			seg.skip, seg.take = 0, 0 // the whole block, once it is here
		}
		fe := &fetched{seg: seg, done: make(chan struct{})}
		switch {
		case !seg.link.CID.Defined():
			fe.data = seg.data
			close(fe.done)
		case !s.blocks && prev != nil && prev.seg.link.CID == seg.link.CID && prev.lend():
			fe.src = prev
			close(fe.done)
		default:
			select {
			case fe.buf = <-s.tokens:
			case <-s.ctx.Done():
				return errStop
			}
			// A range link reads its chunk at least to the range's end.
			if err := s.budget(fe, int64(seg.link.Offset+seg.link.Size)); err != nil {
				s.tokens <- fe.buf
				return errStop
			}
			prev = fe
			s.fetches.Go(func() {
				defer close(fe.done)
				fe.data, fe.err = fetchChunkInto(s.ctx, s.f.get, seg.link, fe.buf[:cap(fe.buf)])
			})
		}
		return s.enqueue(fe)
	})
}

// enqueue hands fe to the reader, unless the stream is closing.
func (s *stream) enqueue(fe *fetched) error {
	select {
	case s.queue <- fe:
		return nil
	case <-s.ctx.Done():
		<-fe.done // never queued: the reader will not release it
		s.release(fe)
		return errStop
	}
}

// budget takes n bytes from the File's Budget for fe: waiting for them
// when the stream holds no other chunk, else only if they are free now or
// once the stream has let go of one.
func (s *stream) budget(fe *fetched, n int64) error {
	b := s.f.Budget
	if b == nil {
		return nil
	}
	for {
		if len(s.held) == 0 {
			if err := b.Acquire(s.ctx, n); err != nil {
				return err
			}
			break
		}
		if b.TryAcquire(n) {
			break
		}
		select {
		case <-s.released:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
	fe.budget = n
	s.held <- struct{}{}
	return nil
}

func (s *stream) unbudget(fe *fetched) {
	if fe.budget == 0 {
		return
	}
	s.f.Budget.Release(fe.budget)
	fe.budget = 0
	<-s.held
	select {
	case s.released <- struct{}{}:
	default:
	}
}

// release gives head's budget and token back once the reader is done.
func (s *stream) release(fe *fetched) {
	s.unbudget(fe)
	if fe.buf == nil {
		return
	}
	if fe.state.CompareAndSwap(fetchLive, fetchReleased) && s.reuse && fe.err == nil {
		s.tokens <- fe.data[:0] // filled, perhaps grown, by ReadPiece
	} else {
		s.tokens <- fe.buf[:0:0]
	}
}

// next returns up to n bytes from the stream's position (n < 0: the rest
// of the current segment) and advances it. The slice is valid until the
// next call. At the end it returns io.EOF.
func (s *stream) next(n int) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	readOn := false
	if s.head != nil && s.used == s.head.seg.take {
		s.release(s.head)
		s.head, readOn = nil, true
	}
	if s.head == nil {
		fe, ok := <-s.queue
		if !ok {
			<-s.walked
			s.err = s.walkErr
			if s.err == nil {
				s.err = io.EOF
			}
			return nil, s.err
		}
		select {
		case <-fe.done:
		default:
			// A reader going on in order that has to wait for its next
			// chunk reads faster than the chunks arrive: one more in
			// flight. One that finds them ready keeps the window it has.
			if readOn {
				s.grow()
			}
			<-fe.done
		}
		if fe.src != nil { // read in order, so src is here already
			fe.data, fe.err = fe.src.data, fe.src.err
			if fe.err == nil {
				fe.err = checkChunk(fe.seg.link, fe.data)
			}
		}
		s.head, s.used, s.grew = fe, 0, false
		if fe.err != nil {
			s.err = fe.err
			return nil, s.err
		}
		if s.blocks {
			fe.seg.take = uint64(len(fe.data))
		}
	}
	fe := s.head
	rest := fe.data[fe.seg.skip+s.used : fe.seg.skip+fe.seg.take]
	if n >= 0 && n < len(rest) {
		rest = rest[:n]
	}
	s.used += uint64(len(rest))
	s.pos += int64(len(rest))
	// Half a chunk read in order, or its end reached, is the sign of a
	// reader going on: let the next chunk be fetched ahead of it. More
	// come only as the reader shows it waits for them (above), so the
	// window follows what the reader consumes, not what it asked for.
	if !s.grew && s.issued < 2 && (2*(s.used) >= uint64(len(fe.data)) || s.used == fe.seg.take) {
		s.grew = true
		s.grow()
	}
	return rest, nil
}

// skip advances the position by n bytes if they are in the current
// segment, so a short seek forward keeps the stream.
func (s *stream) skip(n int64) bool {
	if s.err != nil || s.head == nil || n < 0 || uint64(n) > s.head.seg.take-s.used {
		return false
	}
	s.used += uint64(n)
	s.pos += n
	return true
}

// close stops the walker and the fetches and gives back what they held.
func (s *stream) close() {
	s.cancel()
	if s.head != nil {
		s.release(s.head)
		s.head = nil
	}
	for fe := range s.queue {
		<-fe.done
		s.release(fe)
	}
	<-s.walked
	s.fetches.Wait()
	if s.err == nil {
		s.err = io.ErrClosedPipe
	}
}

// Blocks calls fn with each block of the file's DAG that holds content in
// [from, to) (to past the end: to the end), in depth-first order, each
// descriptor before the blocks it links to, as a CAR of the file lists
// them. Data pieces are fetched ahead as by CopyRange; data is valid only
// during the call.
func (f *File) Blocks(from, to int64, fn func(c cid.Cid, data []byte) error) error {
	f.stopStream()
	to = min(to, f.Size())
	if from < 0 || from >= to {
		return fn(f.root.cid, f.root.raw)
	}
	s := f.newStream(from, to, max(f.ReadAhead, 1)+1, true)
	defer s.close()
	for {
		b, err := s.next(-1)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(s.head.seg.link.CID, b); err != nil {
			return err
		}
	}
}

// WriteTo implements io.WriterTo: it writes the content from the current
// position to the end; see CopyRange.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	return f.CopyRange(w, f.Size()-f.pos)
}

// PieceWriter is a writer CopyRange tells which piece each write is: a
// get that keeps the file's data pieces where it writes them (in place)
// needs each one's CID and offset.
type PieceWriter interface {
	io.Writer
	// WritePiece writes data, the file's bytes at offset off. c is the
	// data piece data is whole, or cid.Undef for inline bytes and parts of
	// a piece.
	WritePiece(c cid.Cid, off int64, data []byte) (int, error)
}

// CopyRange writes n bytes (fewer at the end of the file) from the current
// position to w and advances the position, fetching up to ReadAhead chunks
// in parallel ahead of the one being written. Memory stays bounded by
// ReadAhead+1 chunks. A w that is a PieceWriter is told each write's piece.
func (f *File) CopyRange(w io.Writer, n int64) (int64, error) {
	pw, _ := w.(PieceWriter)
	f.stopStream()
	end := min(f.Size(), f.pos+max(n, 0))
	if f.pos >= end {
		return 0, nil
	}
	s := f.newStream(f.pos, end, max(f.ReadAhead, 1)+1, false)
	defer s.close()
	var written int64
	for {
		b, err := s.next(-1)
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
		var n int
		if pw != nil {
			seg := s.head.seg
			c := cid.Undef // inline bytes, or part of a piece
			if seg.link.CID.Defined() && seg.skip == 0 && seg.take == uint64(len(s.head.data)) {
				c = seg.link.CID
			}
			n, err = pw.WritePiece(c, s.pos-int64(len(b)), b)
		} else {
			n, err = w.Write(b)
		}
		written += int64(n)
		f.pos += int64(n)
		if err != nil {
			return written, err
		}
	}
}

// Read implements io.Reader. Reads in order share one stream that
// fetches ahead: none at first, the next chunk once the reader is halfway
// through one, and one more each time the reader, going on in order, has
// to wait for a chunk, up to ReadAhead. So a short read after a seek
// fetches only what it needs, a reader slower than the network (a player
// whose buffer is full, a slow client) keeps a chunk or two in flight
// ahead of what it consumed, and a fast one soon has as many in flight as
// keep it fed.
// Seeking elsewhere than forward within the current chunk stops the
// stream and the fetches it had started.
func (f *File) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f.pos >= f.Size() {
		return 0, io.EOF
	}
	if f.rs != nil && f.rs.pos != f.pos && !f.rs.skip(f.pos-f.rs.pos) {
		f.stopStream()
	}
	if f.rs == nil {
		f.rs = f.newStream(f.pos, f.Size(), 1, false)
	}
	total := 0
	for total < len(p) {
		b, err := f.rs.next(len(p) - total)
		if err != nil {
			f.stopStream() // an error or the end: nothing more to fetch
			if err == io.EOF && total > 0 {
				err = nil
			}
			return total, err
		}
		total += copy(p[total:], b)
		f.pos += int64(len(b))
		if f.pos >= f.Size() {
			f.stopStream()
			break
		}
	}
	return total, nil
}

func (f *File) stopStream() {
	if f.rs != nil {
		f.rs.close()
		f.rs = nil
	}
}

// Close stops the fetches that reads started ahead. The File stays
// usable: a later read starts them again.
func (f *File) Close() error {
	f.stopStream()
	return nil
}
