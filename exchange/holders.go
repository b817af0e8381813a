package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
)

// A Fetcher's holders each have a session, dialled when a request first
// needs it (or taken from the Pool), dialled again after a back-off when
// the dial failed, and anew when this side reset the last one.

// errDial marks a request that failed because its holder could not be
// dialled; the holder stays, and is dialled again after a back-off.
var errDial = errors.New("dial failed")

// get requests c from h over its session, dialling one first if needed.
func (f *Fetcher) get(ctx context.Context, h *holder, c cid.Cid, buf []byte) ([]byte, []byte, error) {
	for tries := 0; ; tries++ {
		sess, err := f.session(ctx, h)
		if err != nil {
			return nil, nil, err
		}
		data, via, err := sess.Fetch(ctx, c, buf)
		if f.opts.Pool != nil && tries < 2 && ctx.Err() == nil && errors.Is(err, ErrAbandoned) {
			continue // another reader that gave up reset the shared session
		}
		return data, via, err
	}
}

// session returns h's session. It starts a dial when h has none yet, when
// this side reset the last one, or when the last dial failed and its
// back-off is over; then it waits for the dial or for ctx.
func (f *Fetcher) session(ctx context.Context, h *holder) (*Session, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrClosed
	}
	if h.ready != nil {
		select {
		case <-h.ready:
			switch {
			case h.sess != nil && errors.Is(h.sess.Err(), ErrAbandoned):
				h.ready = nil
			case h.err != nil && !time.Now().Before(h.retryAt):
				h.ready = nil
			}
		default: // a dial in progress
		}
	}
	if h.ready == nil {
		ready := make(chan struct{})
		f.end(h)
		h.ready, h.err = ready, nil
		f.dials.Go(func() { f.dial(h, ready) })
	}
	ready := h.ready
	f.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.mu.Lock()
	if h.ready != ready {
		// Another request found the session this dial made abandoned and
		// started the next dial meanwhile: wait for that one.
		f.mu.Unlock()
		return f.session(ctx, h)
	}
	defer f.mu.Unlock()
	switch {
	case h.err != nil:
		return nil, h.err
	case h.sess == nil: // ended since: the Fetcher closed
		return nil, ErrClosed
	}
	return h.sess, nil
}

// dial opens a session to h under the Fetcher's own context and
// dialTimeout, and books the outcome.
func (f *Fetcher) dial(h *holder, ready chan struct{}) {
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	defer cancel()
	f.mu.Lock()
	opts := f.opts
	f.mu.Unlock()
	var sess *Session
	var release func()
	var err error
	var proof []byte
	if opts.Pool != nil {
		sess, release, err = opts.Pool.Session(ctx, h.id, opts.Grant)
	} else if proof, err = opts.Grant.proof(h.id); err == nil {
		sess, err = Dial(ctx, f.h, h.id, opts.Cluster, opts.Window)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer close(ready)
	if err != nil {
		h.fails++
		wait := min(firstRedial<<min(h.fails-1, 10), maxRedial)
		h.retryAt = time.Now().Add(wait)
		h.err = fmt.Errorf("%w (%d in a row; next try in %s): %w", errDial, h.fails, wait, err)
		return
	}
	h.fails = 0
	f.end(h) // the session this one replaces
	if opts.Pool == nil && opts.Grant != nil {
		sess.WithGrant(opts.Grant.Bucket, opts.Grant.Token, proof)
		if opts.Grant.Guest {
			sess.ForGuest()
		}
	}
	h.sess, h.release = sess, release
	if f.closed {
		f.end(h)
		h.err = ErrClosed
	}
}

// end closes h's session, or lets the pool have it back.
func (f *Fetcher) end(h *holder) {
	switch {
	case h.release != nil:
		h.release()
	case h.sess != nil:
		h.sess.Close()
	}
	h.sess, h.release = nil, nil
}
