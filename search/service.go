package search

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Index is what a holder searches: its own index of bucket b.
type Index func(ctx context.Context, b []byte, q Query, after []byte, limit int) (Page, error)

// Access decides whether peer p may make the search req (its bucket,
// token, proof and guest mark); nil allows it. It is the rule reads
// follow.
type Access func(p peer.ID, req Request) error

// Server answers search requests on a host.
type Server struct {
	h      host.Host
	proto  protocol.ID
	index  Index
	access Access
	log    *slog.Logger
	slots  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Server limits: searches run at once (others wait their turn until the
// stream's deadline), and how long one stream may take.
const (
	concurrentSearches = 16
	streamDeadline     = 10 * time.Second
)

// NewServer answers the search protocol of cluster on h.
func NewServer(h host.Host, cluster string, index Index, access Access, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{h: h, proto: ProtocolID(cluster), index: index, access: access, log: log, slots: make(chan struct{}, concurrentSearches)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(s.proto, s.handle)
	return s
}

// Close stops answering and waits for the searches under way.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(s.proto)
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Server) handle(str network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		str.Reset()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	p := str.Conn().RemotePeer()
	ctx, cancel := context.WithTimeout(s.ctx, streamDeadline)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	_ = str.SetDeadline(time.Now().Add(streamDeadline))
	var req Request
	if err := readMsg(bufio.NewReader(str), maxRequest, &req); err != nil {
		s.log.Debug("search: bad request", "peer", p, "err", err)
		str.Reset()
		return
	}
	resp := s.answer(ctx, p, req)
	if resp.Status != StatusOK {
		s.log.Debug("search refused", "peer", p, "status", resp.Status, "reason", resp.Reason)
	}
	if err := writeMsg(str, resp); err != nil {
		str.Reset()
		return
	}
	str.Close()
}

func (s *Server) answer(ctx context.Context, p peer.ID, req Request) response {
	fail := func(status int, err error) response {
		msg := err.Error()
		if len(msg) > maxReason {
			msg = msg[:maxReason]
		}
		return response{Status: status, Reason: msg}
	}
	q, err := req.Query()
	if err != nil {
		return fail(StatusBadRequest, err)
	}
	if len(req.Bucket) != 32 {
		return fail(StatusBadRequest, fmt.Errorf("bucket of %d bytes, want 32", len(req.Bucket)))
	}
	if req.Limit < 1 || req.Limit > MaxLimit {
		return fail(StatusBadRequest, fmt.Errorf("limit %d out of [1, %d]", req.Limit, MaxLimit))
	}
	if err := s.access(p, req); err != nil {
		return fail(StatusDenied, err)
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return fail(StatusError, errors.New("busy"))
	}
	page, err := s.index(ctx, req.Bucket, q, req.After, req.Limit)
	if err != nil {
		return fail(StatusError, err)
	}
	// Cut the page before it outgrows a response.
	size := 0
	for i, r := range page.Results {
		for _, t := range r.Tags {
			size += len(t.Key) + len(t.Value) + 8
		}
		if size += 64; size > maxResponse {
			page.Results, page.More = page.Results[:i], true
			break
		}
	}
	return response{Results: toWire(page.Results), More: page.More}
}

// DeniedError is a holder's refusal for want of a grant.
type DeniedError struct {
	Peer   peer.ID
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("holder %s refused the search: %s", e.Peer, e.Reason)
}

// Ask sends req to peer p and returns its page.
func Ask(ctx context.Context, h host.Host, cluster string, p peer.ID, req Request) (Page, error) {
	str, err := h.NewStream(ctx, p, ProtocolID(cluster))
	if err != nil {
		return Page{}, err
	}
	stop := context.AfterFunc(ctx, func() { str.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(dl)
	}
	if err := writeMsg(str, req); err != nil {
		str.Reset()
		return Page{}, err
	}
	if err := str.CloseWrite(); err != nil {
		str.Reset()
		return Page{}, err
	}
	var resp response
	if err := readMsg(bufio.NewReader(str), maxReadResult, &resp); err != nil {
		str.Reset()
		if ctx.Err() != nil {
			return Page{}, ctx.Err()
		}
		return Page{}, fmt.Errorf("holder %s: %w", p, err)
	}
	str.Close()
	switch resp.Status {
	case StatusOK:
	case StatusDenied:
		return Page{}, &DeniedError{Peer: p, Reason: resp.Reason}
	default:
		return Page{}, fmt.Errorf("holder %s: status %d: %s", p, resp.Status, resp.Reason)
	}
	rs, err := fromWire(resp.Results)
	if err != nil {
		return Page{}, fmt.Errorf("holder %s: %w", p, err)
	}
	if len(rs) > req.Limit {
		return Page{}, fmt.Errorf("holder %s: %d results for a limit of %d", p, len(rs), req.Limit)
	}
	return Page{Results: rs, More: resp.More}, nil
}
