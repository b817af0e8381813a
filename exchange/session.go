package exchange

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/pieces"
)

// Session is one stream to one holder with up to Window requests in
// flight. It is safe for concurrent use; requests are answered in order.
type Session struct {
	peer peer.ID
	str  network.Stream

	wmu    sync.Mutex // guards w, nextID and the order of calls
	w      *bufio.Writer
	nextID uint64
	calls  chan *call // requests written, awaiting responses, in order

	done chan struct{} // closed when the reader ends
	err  error         // why it ended; read after done
	once sync.Once
}

type call struct {
	id   uint64
	c    cid.Cid
	buf  []byte // where the bytes go when large enough; the caller's
	data []byte
	err  error
	done chan struct{}

	// mu orders the reader starting to fill buf against the caller giving
	// up on the call: once the caller has left, buf is not touched.
	mu        sync.Mutex
	reading   bool
	abandoned bool
}

// target is where the reader puts a response of n bytes, or nil when the
// caller left and the bytes are to be discarded.
func (cl *call) target(n uint64) []byte {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.abandoned {
		return nil
	}
	cl.reading = true
	if uint64(cap(cl.buf)) >= n {
		return cl.buf[:n]
	}
	return make([]byte, n)
}

// abandon is the caller leaving: it returns at once unless the reader is
// filling buf, in which case it waits for that to end.
func (cl *call) abandon() {
	cl.mu.Lock()
	if !cl.reading {
		cl.abandoned = true
		cl.mu.Unlock()
		return
	}
	cl.mu.Unlock()
	<-cl.done
}

// Dial opens a session to p for cluster's exchange protocol. window is the
// number of requests kept in flight (DefaultWindow when 0).
func Dial(ctx context.Context, h host.Host, p peer.ID, cluster string, window int) (*Session, error) {
	if window <= 0 {
		window = DefaultWindow
	}
	str, err := h.NewStream(ctx, p, ProtocolID(cluster))
	if err != nil {
		return nil, &PeerError{Peer: p, Err: err}
	}
	s := &Session{
		peer:  p,
		str:   str,
		w:     bufio.NewWriterSize(str, 4<<10),
		calls: make(chan *call, window),
		done:  make(chan struct{}),
	}
	go s.readLoop()
	return s, nil
}

// Peer is the holder this session talks to.
func (s *Session) Peer() peer.ID { return s.peer }

// Get returns the whole piece c, verified against c. A holder that sends
// other bytes yields a *PeerError wrapping pieces.ErrCorrupt.
func (s *Session) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return s.GetInto(ctx, c, nil)
}

// GetInto is Get that reads into buf when it is large enough; the result
// is then buf, and otherwise a new slice. When GetInto returns, for any
// reason, the session no longer touches buf.
func (s *Session) GetInto(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	data, err := s.request(ctx, c, buf, 0, 0)
	if err != nil {
		return nil, err
	}
	if err := pieces.Verify(c, data); err != nil {
		return nil, &PeerError{Peer: s.peer, Err: err}
	}
	return data, nil
}

// GetRangeUnverified returns n bytes at off in piece c. The bytes cannot be
// checked against c alone: use it only where the caller trusts the holder
// or verifies by other means.
func (s *Session) GetRangeUnverified(ctx context.Context, c cid.Cid, off, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	data, err := s.request(ctx, c, nil, off, n)
	if err == nil && uint64(len(data)) != n {
		err = &PeerError{Peer: s.peer, Err: fmt.Errorf("%w: asked %d bytes of %s, got %d", ErrProtocol, n, c, len(data))}
	}
	return data, err
}

func (s *Session) request(ctx context.Context, c cid.Cid, buf []byte, off, n uint64) ([]byte, error) {
	cl := &call{c: c, buf: buf, done: make(chan struct{})}
	if err := s.send(ctx, cl, off, n); err != nil {
		return nil, err
	}
	select {
	case <-cl.done:
		return cl.data, cl.err
	case <-ctx.Done():
		cl.abandon() // the reader still takes the response off the stream
		return nil, ctx.Err()
	}
}

// send writes the request and queues its call, keeping both in one order.
func (s *Session) send(ctx context.Context, cl *call, off, n uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.done:
		return s.fail()
	default:
	}
	cl.id = s.nextID
	s.nextID++
	select {
	case s.calls <- cl: // waits while the window is full
	case <-s.done:
		return s.fail()
	case <-ctx.Done():
		return ctx.Err()
	}
	err := writeFrame(s.w, &request{Type: TypeGet, ID: cl.id, CID: cl.c.Bytes(), Offset: off, Length: n})
	if err == nil {
		err = s.w.Flush()
	}
	if err != nil {
		s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("send request: %w", err)})
		return s.fail()
	}
	return nil
}

// readLoop takes responses off the stream and hands each to its call.
func (s *Session) readLoop() {
	r := bufio.NewReaderSize(s.str, 64<<10)
	for {
		var h responseHeader
		err := readFrame(r, maxResponseFrame, &h)
		if err != nil {
			s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("%w: read response: %v", ErrProtocol, err)})
			return
		}
		var cl *call
		select {
		case cl = <-s.calls:
		default:
			s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("%w: response %d to no request", ErrProtocol, h.ID)})
			return
		}
		if h.ID != cl.id {
			s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("%w: response %d to request %d", ErrProtocol, h.ID, cl.id)})
			cl.err = s.err
			close(cl.done)
			return
		}
		if h.Status != StatusOK && h.Size != 0 {
			s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("%w: %s response with %d bytes", ErrProtocol, h.Status, h.Size)})
			cl.err = s.err
			close(cl.done)
			return
		}
		if h.Size > pieces.MaxPieceSize {
			s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("%w: %d bytes for %s (max %d)", ErrProtocol, h.Size, cl.c, pieces.MaxPieceSize)})
			cl.err = s.err
			close(cl.done)
			return
		}
		if h.Status == StatusOK {
			var err error
			if cl.data = cl.target(h.Size); cl.data != nil {
				_, err = io.ReadFull(r, cl.data)
			} else {
				_, err = io.CopyN(io.Discard, r, int64(h.Size))
			}
			if err != nil {
				s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("%w: %s truncated: %v", ErrProtocol, cl.c, noEOF(err))})
				cl.err, cl.data = s.err, nil
				close(cl.done)
				return
			}
		} else {
			cl.err = &PeerError{Peer: s.peer, Err: statusErr(h.Status, cl.c)}
		}
		close(cl.done)
	}
}

func statusErr(st Status, c cid.Cid) error {
	switch st {
	case StatusNotFound:
		return &pieces.NotFoundError{CID: c}
	case StatusBusy:
		return ErrBusy
	case StatusTooLarge:
		return fmt.Errorf("%w: %s", pieces.ErrTooLarge, c)
	case StatusBadRequest:
		return fmt.Errorf("%w for %s", ErrBadRequest, c)
	case StatusError:
		return fmt.Errorf("%w %s", ErrServer, c)
	}
	return fmt.Errorf("%w: unknown status %d for %s", ErrProtocol, st, c)
}

// end records why the session stopped, fails every waiting call and
// resets the stream. Only the first reason is kept.
func (s *Session) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		s.str.Reset()
		// Fail the calls still queued. Holding wmu orders this after any
		// send in progress; later sends see done and queue nothing.
		go func() {
			s.wmu.Lock()
			defer s.wmu.Unlock()
			for {
				select {
				case cl := <-s.calls:
					cl.err = err
					close(cl.done)
				default:
					return
				}
			}
		}()
	})
}

func (s *Session) fail() error {
	<-s.done
	return s.err
}

// Close ends the session; calls in flight fail with ErrClosed.
func (s *Session) Close() error {
	s.end(&PeerError{Peer: s.peer, Err: ErrClosed})
	return nil
}

// Err is why the session ended, or nil while it works.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}
