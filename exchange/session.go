package exchange

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/pieces"
)

// Read deadlines of a session, each with why. A holder that sends a
// header and then nothing, or trickles bytes, must not hold a request
// (and the caller's buffer) for good.
const (
	// headerTimeout bounds the wait for a response header once the
	// responses before it are in: the holder has had the request since
	// then, and reading a piece off its disk takes milliseconds.
	headerTimeout = 5 * time.Second
	// bodySlack is the fixed part of a body's deadline: scheduling and a
	// congested link's jitter.
	bodySlack = time.Second
	// minBodyRate is the slowest rate a body may arrive at before the
	// holder counts as stalled: a 1 MiB piece may take 1 s + 4 s.
	minBodyRate = 256 << 10 // bytes/s
	// abandonGrace is how long a caller that gives up waits for the read
	// filling its buffer to end by itself before the stream is reset.
	abandonGrace = 20 * time.Millisecond
)

// bodyTimeout is how long a body of size bytes may take from a holder that
// has moved bytes at rate (0: not yet measured): a quarter of that rate,
// never below minBodyRate, plus bodySlack.
func bodyTimeout(size uint64, rate float64) time.Duration {
	r := max(rate/4, minBodyRate)
	return bodySlack + time.Duration(float64(size)/r*float64(time.Second))
}

// Session is one stream to one holder with up to Window requests in
// flight. It is safe for concurrent use; requests are answered in order.
type Session struct {
	peer peer.ID
	str  network.Stream

	bucket, token, proof []byte // sent with every request; see WithGrant
	guest                bool   // requests are for a client of this node; see Grant

	wmu    sync.Mutex // guards w, nextID and the order of calls
	w      *bufio.Writer
	nextID uint64
	calls  chan *call // requests written, awaiting responses, in order

	done chan struct{} // closed when the reader ends
	err  error         // why it ended; read after done
	once sync.Once

	rate float64 // bytes/s of bodies, moving average; the reader's alone
}

type call struct {
	id   uint64
	c    cid.Cid
	buf  []byte // where the bytes go when large enough; the caller's
	data []byte
	via  []byte // the bucket the holder served the piece for; nil: none
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
// filling buf. Then it gives the read abandonGrace to end and otherwise
// ends the session (the stream is reset, so the read returns), so that the
// caller is never held by the holder's pace.
func (cl *call) abandon(s *Session) {
	cl.mu.Lock()
	if !cl.reading {
		cl.abandoned = true
		cl.mu.Unlock()
		return
	}
	cl.mu.Unlock()
	t := time.NewTimer(abandonGrace)
	defer t.Stop()
	select {
	case <-cl.done:
	case <-t.C:
		s.end(&PeerError{Peer: s.peer, Err: ErrAbandoned})
		<-cl.done
	}
}

// Dial opens a session to p for cluster's exchange protocol. window is the
// number of requests kept in flight (DefaultWindow when 0).
func Dial(ctx context.Context, h host.Host, p peer.ID, cluster string, window int) (*Session, error) {
	return dial(ctx, h, p, window, ProtocolID(cluster))
}

// dial opens a session speaking proto.
func dial(ctx context.Context, h host.Host, p peer.ID, window int, proto protocol.ID) (*Session, error) {
	if window <= 0 {
		window = DefaultWindow
	}
	str, err := h.NewStream(ctx, p, proto)
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

// WithGrant makes every request of s name bucket (32 bytes) and carry
// token, a grant's chain for it in its text form (empty: none), with
// proof, that this node holds the grant's key, made for s's holder (see
// Grant): holders serve a private bucket's pieces only so. Call it before
// the first request.
func (s *Session) WithGrant(bucket, token, proof []byte) *Session {
	s.bucket, s.token, s.proof = bucket, token, proof
	return s
}

// ForGuest marks every request of s as made for a client of this node (a
// gateway's), for whom its key speaks not (see Grant.Guest). Call it
// before the first request.
func (s *Session) ForGuest() *Session {
	s.guest = true
	return s
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
	data, _, err := s.Fetch(ctx, c, buf)
	return data, err
}

// Fetch is GetInto that also returns the bucket the holder served the
// piece for: a public bucket's, or the grant's; nil for a piece it holds
// in no bucket. A reader keeping the piece keeps it in that bucket, so
// that it serves the piece by the same rule.
func (s *Session) Fetch(ctx context.Context, c cid.Cid, buf []byte) (data, via []byte, err error) {
	data, via, err = s.request(ctx, c, buf, 0, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := pieces.Verify(c, data); err != nil {
		return nil, nil, &PeerError{Peer: s.peer, Err: err}
	}
	return data, via, nil
}

// GetRangeUnverified returns n bytes at off in piece c. The bytes cannot be
// checked against c alone: use it only where the caller trusts the holder
// or verifies by other means.
func (s *Session) GetRangeUnverified(ctx context.Context, c cid.Cid, off, n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	data, _, err := s.request(ctx, c, nil, off, n)
	if err == nil && uint64(len(data)) != n {
		err = &PeerError{Peer: s.peer, Err: fmt.Errorf("%w: asked %d bytes of %s, got %d", ErrProtocol, n, c, len(data))}
	}
	return data, err
}

func (s *Session) request(ctx context.Context, c cid.Cid, buf []byte, off, n uint64) ([]byte, []byte, error) {
	cl := &call{c: c, buf: buf, done: make(chan struct{})}
	if err := s.send(ctx, cl, off, n); err != nil {
		return nil, nil, err
	}
	select {
	case <-cl.done:
		return cl.data, cl.via, cl.err
	case <-ctx.Done():
		cl.abandon(s) // the reader still takes the response off the stream
		return nil, nil, ctx.Err()
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
	err := writeFrame(s.w, &request{Type: TypeGet, ID: cl.id, CID: cl.c.Bytes(), Offset: off, Length: n,
		Bucket: s.bucket, Token: s.token, Proof: s.proof, Guest: s.guest})
	if err == nil {
		err = s.w.Flush()
	}
	if err != nil {
		s.end(&PeerError{Peer: s.peer, Err: fmt.Errorf("%w: send request: %w", ErrGone, err)})
		return s.fail()
	}
	return nil
}

// readLoop takes responses off the stream and hands each to its call.
// It reads only while a call waits, under deadlines: headerTimeout for the
// header, bodyTimeout for the body.
func (s *Session) readLoop() {
	r := bufio.NewReaderSize(s.str, 64<<10)
	for {
		var cl *call
		select {
		case cl = <-s.calls:
		case <-s.done:
			return
		}
		s.str.SetReadDeadline(time.Now().Add(headerTimeout))
		var h responseHeader
		if err := readFrame(r, maxResponseFrame, &h); err != nil {
			s.fail1(cl, fmt.Errorf("%w: read response: %v", readErrKind(err), err)) // %v: the kind is the class, the cause detail
			return
		}
		if h.ID != cl.id {
			s.fail1(cl, fmt.Errorf("%w: response %d to request %d", ErrProtocol, h.ID, cl.id))
			return
		}
		if h.Status != StatusOK && h.Size != 0 && (h.Status != StatusDenied || h.Size > maxReason) {
			s.fail1(cl, fmt.Errorf("%w: %s response with %d bytes", ErrProtocol, h.Status, h.Size))
			return
		}
		if len(h.Via) != 0 && (len(h.Via) != 32 || h.Status != StatusOK) {
			s.fail1(cl, fmt.Errorf("%w: %s response naming a bucket of %d bytes", ErrProtocol, h.Status, len(h.Via)))
			return
		}
		cl.via = h.Via
		if h.Status == StatusDenied {
			reason := make([]byte, h.Size)
			if _, err := io.ReadFull(r, reason); err != nil {
				s.fail1(cl, fmt.Errorf("%w: denial of %s cut: %v", readErrKind(err), cl.c, noEOF(err)))
				return
			}
			cl.err = &PeerError{Peer: s.peer, Err: &DeniedError{CID: cl.c, Reason: printable(reason)}}
			close(cl.done)
			continue
		}
		if h.Size > pieces.MaxPieceSize {
			s.fail1(cl, fmt.Errorf("%w: %d bytes for %s (max %d)", ErrProtocol, h.Size, cl.c, pieces.MaxPieceSize))
			return
		}
		if h.Status == StatusOK {
			start := time.Now()
			s.str.SetReadDeadline(start.Add(bodyTimeout(h.Size, s.rate)))
			var err error
			if cl.data = cl.target(h.Size); cl.data != nil {
				_, err = io.ReadFull(r, cl.data)
			} else {
				_, err = io.CopyN(io.Discard, r, int64(h.Size))
			}
			if err != nil {
				cl.data = nil
				s.fail1(cl, fmt.Errorf("%w: %s cut after %s of %d bytes: %v", readErrKind(err), cl.c, time.Since(start).Round(time.Millisecond), h.Size, noEOF(err)))
				return
			}
			if h.Size >= 64<<10 { // small bodies measure latency, not rate
				sample := float64(h.Size) / max(time.Since(start).Seconds(), 1e-6)
				if s.rate == 0 {
					s.rate = sample
				} else {
					s.rate = 0.8*s.rate + 0.2*sample
				}
			}
		} else {
			cl.err = &PeerError{Peer: s.peer, Err: statusErr(h.Status, cl.c)}
		}
		close(cl.done)
	}
}

// fail1 ends the session with err, as the holder's fault, and fails cl,
// the call being read, with the session's reason.
func (s *Session) fail1(cl *call, err error) {
	s.end(&PeerError{Peer: s.peer, Err: err})
	cl.err = s.err
	close(cl.done)
}

// readErrKind says whether a failed read was a stall (the deadline), the
// holder going away (its stream or connection ended mid-response), or the
// holder breaking the protocol.
func readErrKind(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(): // os.ErrDeadlineExceeded and yamux's alike
		return ErrStalled
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, network.ErrReset),
		errors.Is(err, net.ErrClosed):
		return ErrGone
	}
	return ErrProtocol
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
