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

// serve answers requests until the peer closes its side or breaks the
// protocol.
func (s *Server) serve(str network.Stream) error {
	r := bufio.NewReaderSize(str, maxRequestFrame*4)
	w := bufio.NewWriterSize(str, 64<<10)
	for {
		str.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		var req request
		err := readFrame(r, maxRequestFrame, &req)
		if errors.Is(err, io.EOF) {
			return w.Flush()
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		status, data := s.answer(&req)
		str.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		if err := writeFrame(w, &responseHeader{ID: req.ID, Status: status, Size: uint64(len(data))}); err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		// Flush when no further request is already waiting: pipelined
		// requests share one flush, a lone one is not held back.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// answer looks up what req asks for.
func (s *Server) answer(req *request) (Status, []byte) {
	if req.Type != TypeGet {
		return StatusBadRequest, nil
	}
	c, err := cid.Cast(req.CID)
	if err != nil || pieces.CheckCID(c) != nil {
		return StatusBadRequest, nil
	}
	select {
	case s.reads <- struct{}{}:
	default:
		return StatusBusy, nil
	}
	data, err := s.store.GetPiece(s.ctx, c)
	<-s.reads
	switch {
	case errors.Is(err, pieces.ErrNotFound):
		return StatusNotFound, nil
	case err != nil:
		s.log.Error("exchange: cannot serve a piece we hold", "cid", c, "err", err)
		return StatusError, nil
	}
	if req.Offset == 0 && req.Length == 0 {
		return StatusOK, data
	}
	end := req.Offset + req.Length
	if req.Length == 0 {
		end = uint64(len(data))
	}
	if req.Offset > uint64(len(data)) || end > uint64(len(data)) || end < req.Offset {
		return StatusBadRequest, nil
	}
	return StatusOK, data[req.Offset:end]
}
