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
	Logger          *slog.Logger
}

// DefaultServerOptions returns the defaults for the default cluster.
func DefaultServerOptions() ServerOptions {
	return ServerOptions{
		Cluster:         "default",
		IdleTimeout:     DefaultIdleTimeout,
		WriteTimeout:    DefaultWriteTimeout,
		StreamsPerPeer:  DefaultStreamsPerPeer,
		ConcurrentReads: DefaultConcurrentReads,
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
		if err != nil {
			bufs <- a.buf
			continue // drain until the reader sees the stream end
		}
		str.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		if err = writeFrame(w, &a.hdr); err == nil {
			_, err = w.Write(a.data)
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
	r := bufio.NewReaderSize(str, maxRequestFrame*4)
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
		status, data, buf := s.answer(&req, buf)
		out <- answered{hdr: responseHeader{ID: req.ID, Status: status, Size: uint64(len(data))}, data: data, buf: buf}
	}
}

// answer looks up what req asks for, into buf when the store can read
// into a buffer; it returns the buffer to recycle.
func (s *Server) answer(req *request, buf []byte) (Status, []byte, []byte) {
	if req.Type != TypeGet {
		return StatusBadRequest, nil, buf
	}
	c, err := cid.Cast(req.CID)
	if err != nil || pieces.CheckCID(c) != nil {
		return StatusBadRequest, nil, buf
	}
	select {
	case s.reads <- struct{}{}:
	default:
		return StatusBusy, nil, buf
	}
	var data []byte
	if pr, ok := s.store.(pieces.PieceReader); ok {
		data, err = pr.ReadPiece(s.ctx, c, buf[:cap(buf)])
		if err == nil {
			buf = data // ours: buf, or a larger one ReadPiece made
		}
	} else {
		data, err = s.store.GetPiece(s.ctx, c)
	}
	<-s.reads
	switch {
	case errors.Is(err, pieces.ErrNotFound):
		return StatusNotFound, nil, buf
	case err != nil:
		s.log.Error("exchange: cannot serve a piece we hold", "cid", c, "err", err)
		return StatusError, nil, buf
	}
	if req.Offset == 0 && req.Length == 0 {
		return StatusOK, data, buf
	}
	end := req.Offset + req.Length
	if req.Length == 0 {
		end = uint64(len(data))
	}
	if req.Offset > uint64(len(data)) || end > uint64(len(data)) || end < req.Offset {
		return StatusBadRequest, nil, buf
	}
	return StatusOK, data[req.Offset:end], buf
}
