package exchange

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Pool shares sessions among Fetchers: many reads at once, such as a
// gateway's range requests, then hold one stream to each holder instead
// of one each, which a holder's StreamsPerPeer would refuse, and a read
// after the first skips the dial. Sessions are shared by the reads that
// send the same grant. A session that ends is dialled anew by the next
// read that needs it. Public sessions (no grant) stay open for the next
// reads; one with a grant closes when its last reader lets it go, so that
// many grants do not pile up streams at a holder.
type Pool struct {
	h       host.Host
	cluster string
	window  int

	ctx     context.Context // ends at Close: dials stop
	cancel  context.CancelFunc
	closing sync.WaitGroup // sessions let go, closing once their dial ends

	mu     sync.Mutex
	m      map[poolKey]*pooled
	closed bool
}

type poolKey struct {
	p             peer.ID
	bucket, token string
	guest         bool
}

type pooled struct {
	ready chan struct{} // closed when the dial ends
	sess  *Session
	err   error
	refs  int // readers holding it; guarded by the pool's mu
}

// NewPool makes a pool of sessions for cluster on h, each with window
// requests in flight (DefaultWindow when 0).
func NewPool(h host.Host, cluster string, window int) *Pool {
	if window <= 0 {
		window = DefaultWindow
	}
	pl := &Pool{h: h, cluster: cluster, window: window, m: make(map[poolKey]*pooled)}
	pl.ctx, pl.cancel = context.WithCancel(context.Background())
	return pl
}

// Session returns the shared session to p for the grant (none: nil),
// dialling one when there is none that works, and the func that lets it
// go. Reads that send the same bucket and token share a session.
func (pl *Pool) Session(ctx context.Context, p peer.ID, g *Grant) (*Session, func(), error) {
	if err := g.check(); err != nil {
		return nil, nil, err
	}
	b, t, guest := g.key()
	k := poolKey{p, b, t, guest}
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil, nil, ErrClosed
	}
	e := pl.m[k]
	if e != nil {
		select {
		case <-e.ready:
			if e.err != nil || e.sess.Err() != nil {
				e = nil // failed or ended: dial anew
			}
		default: // a dial in progress: share it
		}
	}
	if e == nil {
		e = &pooled{ready: make(chan struct{})}
		pl.m[k] = e
		go pl.dial(e, p, g)
	}
	e.refs++
	pl.mu.Unlock()
	release := func() {
		pl.mu.Lock()
		e.refs--
		last := e.refs == 0 && k.token != "" && pl.m[k] == e
		if last {
			delete(pl.m, k)
		}
		pl.mu.Unlock()
		if last { // once its dial is over, which a holder that has left holds up: the reader goes on
			pl.closing.Go(func() {
				<-e.ready
				if e.sess != nil {
					e.sess.Close()
				}
			})
		}
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	}
	if e.err != nil {
		release()
		return nil, nil, e.err
	}
	return e.sess, release, nil
}

func (pl *Pool) dial(e *pooled, p peer.ID, g *Grant) {
	defer close(e.ready)
	proof, err := g.proof(p)
	if err != nil {
		e.err = &PeerError{Peer: p, Err: err}
		return
	}
	ctx, cancel := context.WithTimeout(pl.ctx, dialTimeout)
	defer cancel()
	sess, err := Dial(ctx, pl.h, p, pl.cluster, pl.window)
	if err != nil {
		e.err = err
		return
	}
	pl.mu.Lock()
	closed := pl.closed
	pl.mu.Unlock()
	if closed {
		sess.Close()
		e.err = ErrClosed
		return
	}
	if g != nil {
		sess.WithGrant(g.Bucket, g.Token, proof)
		if g.Guest {
			sess.ForGuest()
		}
	}
	e.sess = sess
}

// Close ends every session and dial of the pool.
func (pl *Pool) Close() error {
	pl.mu.Lock()
	pl.closed = true
	m := pl.m
	pl.m = make(map[poolKey]*pooled)
	pl.mu.Unlock()
	pl.cancel()
	for _, e := range m {
		<-e.ready
		if e.sess != nil {
			e.sess.Close()
		}
	}
	pl.closing.Wait()
	return nil
}
