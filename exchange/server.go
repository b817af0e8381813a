package exchange

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/pieces"
)

// ServerOptions configures a Server. Start from DefaultServerOptions.
type ServerOptions struct {
	Cluster         string
	IdleTimeout     time.Duration
	WriteTimeout    time.Duration
	StreamsPerPeer  int
	ConcurrentReads int
	ServeMemory     int64 // bytes of piece buffers over all streams
	// Access, when set, is asked before each piece is served: nil serves
	// it, for the bucket via says (nil: as a piece of no bucket), which
	// the response carries; an error wrapping ErrBusy answers busy, any
	// other refuses the piece with StatusDenied and the error's words.
	// It must be quick: a transfer asks it for every piece.
	Access func(r AccessRequest) (via []byte, err error)
	// Served, when set, is told the bytes of each piece sent, once they
	// are written to the stream.
	Served func(bytes int)
	Logger *slog.Logger
}

// DefaultServerOptions returns the defaults for the default cluster.
func DefaultServerOptions() ServerOptions {
	return ServerOptions{
		Cluster:         "default",
		IdleTimeout:     DefaultIdleTimeout,
		WriteTimeout:    DefaultWriteTimeout,
		StreamsPerPeer:  DefaultStreamsPerPeer,
		ConcurrentReads: DefaultConcurrentReads,
		ServeMemory:     DefaultServeMemory,
	}
}

// Validate reports the first bad option.
func (o ServerOptions) Validate() error {
	switch {
	case o.Cluster == "":
		return errors.New("exchange: empty cluster name")
	case o.IdleTimeout <= 0 || o.WriteTimeout <= 0:
		return errors.New("exchange: timeouts must be positive")
	case o.StreamsPerPeer < 1 || o.ConcurrentReads < 1:
		return errors.New("exchange: stream and read limits must be at least 1")
	case o.ServeMemory < pieces.MaxPieceSize:
		return fmt.Errorf("exchange: serve memory %d is below one piece of the largest size (%d)", o.ServeMemory, pieces.MaxPieceSize)
	}
	return nil
}

// Server answers exchange requests from a store of pieces.
type Server struct {
	h     host.Host
	store pieces.Getter
	opts  ServerOptions
	proto protocol.ID
	log   *slog.Logger
	reads chan struct{} // one token per piece read in progress
	mem   budget        // bytes of piece buffers held, over all streams

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams map[peer.ID]int
	closed  bool
}

// NewServer starts answering the exchange protocol on h from store.
func NewServer(h host.Host, store pieces.Getter, opts ServerOptions) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		h: h, store: store, opts: opts, proto: ProtocolID(opts.Cluster),
		log:     opts.Logger,
		reads:   make(chan struct{}, opts.ConcurrentReads),
		mem:     budget{limit: opts.ServeMemory},
		streams: make(map[peer.ID]int),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(s.proto, s.handle)
	return s, nil
}

// Close stops accepting streams, ends those open and waits for their
// handlers. It is safe to call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(s.proto)
	s.cancel()
	s.wg.Wait()
	return nil
}

// admit counts a stream of p, refusing past the per-peer limit.
func (s *Server) admit(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.streams[p] >= s.opts.StreamsPerPeer {
		return false
	}
	s.streams[p]++
	s.wg.Add(1)
	return true
}

func (s *Server) leave(p peer.ID) {
	s.mu.Lock()
	if s.streams[p]--; s.streams[p] <= 0 {
		delete(s.streams, p)
	}
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) handle(str network.Stream) {
	p := str.Conn().RemotePeer()
	if !s.admit(p) {
		s.log.Debug("refusing exchange stream over the per-peer limit", "peer", p)
		str.Reset()
		return
	}
	defer s.leave(p)
	// Closing the server ends blocked reads and writes.
	stop := context.AfterFunc(s.ctx, func() { str.Reset() })
	defer stop()
	if err := s.serve(str); err != nil {
		s.log.Debug("exchange stream ended", "peer", p, "err", err)
		str.Reset()
		return
	}
	str.Close()
}

// serveDepth is how many answers a stream reads ahead of the one being
// written: reading the next piece from the store overlaps encrypting and
// sending this one, which one loop doing both in turn would not.
const serveDepth = 3

// answered is a response ready to write; buf goes back to the stream's
// buffers once written.
type answered struct {
	hdr  responseHeader
	data []byte
	buf  []byte
	temp int64 // bytes charged to the budget until the answer is written
}

// serve answers requests until the peer closes its side or breaks the
// protocol: one goroutine reads requests and the pieces they ask for, this
// one writes the answers in order.
func (s *Server) serve(str network.Stream) error {
	out := make(chan answered, serveDepth)
	bufs := make(chan []byte, serveDepth+2)
	for range serveDepth + 2 {
		bufs <- nil
	}
	defer func() { // every buffer is back: the stream's charge goes
		for range serveDepth + 2 {
			s.mem.give(int64(cap(<-bufs)))
		}
	}()
	var readErr error
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(out)
		readErr = s.readRequests(str, out, bufs)
	}()
	w := bufio.NewWriterSize(str, 64<<10)
	var err error
	for a := range out {
		s.mem.give(a.temp)
		if err != nil {
			bufs <- a.buf
			continue // drain until the reader sees the stream end
		}
		str.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		if err = writeFrame(w, &a.hdr); err == nil {
			_, err = w.Write(a.data)
		}
		if err == nil && len(a.data) > 0 && s.opts.Served != nil {
			s.opts.Served(len(a.data))
		}
		bufs <- a.buf
		// Flush when no further answer is ready: answers to pipelined
		// requests share one flush, a lone one is not held back.
		if err == nil && len(out) == 0 {
			err = w.Flush()
		}
		if err != nil {
			str.Reset() // ends the reader's blocked read too
		}
	}
	<-readerDone
	if err != nil {
		return err
	}
	if errors.Is(readErr, io.EOF) {
		return w.Flush()
	}
	return readErr
}

// readRequests reads requests and their pieces into out until the stream
// ends (io.EOF) or breaks.
func (s *Server) readRequests(str network.Stream, out chan<- answered, bufs chan []byte) error {
	r := bufio.NewReaderSize(str, 16<<10)
	for {
		str.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		var req request
		err := readFrame(r, maxRequestFrame, &req)
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		buf := <-bufs
		a := s.answer(str.Conn().RemotePeer(), &req, buf)
		a.hdr.ID = req.ID
		out <- a
	}
}

// pieceSizer is a store that tells a piece's size without reading it.
type pieceSizer interface {
	PieceSize(c cid.Cid) (int, error)
}

// answer looks up what req asks for, into buf when the store can read
// into a buffer; the answer carries the buffer to recycle. The buffers a
// stream holds are charged to the server's memory budget: a piece that
// needs a larger buffer than the budget has left is answered busy.
func (s *Server) answer(p peer.ID, req *request, buf []byte) answered {
	reply := func(st Status, data []byte) answered {
		return answered{hdr: responseHeader{Status: st, Size: uint64(len(data))}, data: data, buf: buf}
	}
	if req.Type != TypeGet {
		return reply(StatusBadRequest, nil)
	}
	c, err := cid.Cast(req.CID)
	if err != nil || pieces.CheckCID(c) != nil || len(req.Token) > MaxToken || len(req.Proof) > MaxProof || (len(req.Bucket) != 0 && len(req.Bucket) != 32) {
		return reply(StatusBadRequest, nil)
	}
	var via []byte
	if s.opts.Access != nil {
		ar := AccessRequest{Peer: p, CID: c, Bucket: req.Bucket, Token: req.Token, Proof: req.Proof, Guest: req.Guest}
		if via, err = s.opts.Access(ar); errors.Is(err, ErrBusy) {
			return reply(StatusBusy, nil)
		} else if err != nil {
			reason := err.Error()
			if len(reason) > maxReason {
				reason = reason[:maxReason]
			}
			return reply(StatusDenied, []byte(reason))
		}
		if len(via) != 0 && len(via) != 32 {
			s.log.Error("exchange: the access rule named a bucket of the wrong size", "cid", c, "bytes", len(via))
			return reply(StatusError, nil)
		}
	}
	select {
	case s.reads <- struct{}{}:
	default:
		return reply(StatusBusy, nil)
	}
	defer func() { <-s.reads }()
	var data []byte
	var temp int64
	if pr, ok := s.store.(pieces.PieceReader); ok {
		need := cap(buf)
		if ps, ok := s.store.(pieceSizer); ok {
			if need, err = ps.PieceSize(c); err != nil {
				return reply(s.readFailed(c, err), nil)
			}
		}
		if need > cap(buf) {
			if !s.mem.take(int64(need - cap(buf))) {
				return reply(StatusBusy, nil)
			}
			buf = make([]byte, 0, need) // charged as the old one's replacement
		}
		data, err = pr.ReadPiece(s.ctx, c, buf[:cap(buf)])
		if err == nil && cap(data) > cap(buf) { // the store made a larger one: keep it
			s.mem.force(int64(cap(data) - cap(buf)))
			buf = data
		}
	} else {
		// A store that hands out its own slices: charged while written.
		if data, err = s.store.GetPiece(s.ctx, c); err == nil {
			if temp = int64(len(data)); !s.mem.take(temp) {
				return reply(StatusBusy, nil)
			}
		}
	}
	if err != nil {
		return reply(s.readFailed(c, err), nil)
	}
	if req.Offset != 0 || req.Length != 0 {
		end := req.Offset + req.Length
		if req.Length == 0 {
			end = uint64(len(data))
		}
		if req.Offset > uint64(len(data)) || end > uint64(len(data)) || end < req.Offset {
			s.mem.give(temp)
			return reply(StatusBadRequest, nil)
		}
		data = data[req.Offset:end]
	}
	a := reply(StatusOK, data)
	a.hdr.Via = via
	a.temp = temp
	return a
}

// readFailed is the status that answers a piece the store could not read.
func (s *Server) readFailed(c cid.Cid, err error) Status {
	if errors.Is(err, pieces.ErrNotFound) {
		return StatusNotFound
	}
	s.log.Error("exchange: cannot serve a piece we hold", "cid", c, "err", err)
	return StatusError
}

// MemoryInUse is the bytes of piece buffers the server holds now.
func (s *Server) MemoryInUse() int64 { return s.mem.used() }

// budget counts bytes against a limit.
type budget struct {
	mu    sync.Mutex
	limit int64
	n     int64
}

// take charges n bytes if they fit under the limit.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n+n > b.limit {
		return false
	}
	b.n += n
	return true
}

// force charges n bytes whatever the limit.
func (b *budget) force(n int64) {
	b.mu.Lock()
	b.n += n
	b.mu.Unlock()
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.n -= n
	b.mu.Unlock()
}

func (b *budget) used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}
