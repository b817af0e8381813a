package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/pieces"
)

// Fetcher tuning, each with why.
const (
	// initialRate is the throughput assumed of a holder not yet measured:
	// high enough that new holders are tried at once.
	initialRate = 200e6 // bytes/s
	// rateWeight is the weight of the newest sample in a holder's rate.
	rateWeight = 0.2
	// minHedge is the least wait before a straggling request is sent to a
	// second holder, so ordinary jitter does not double the traffic.
	minHedge = 50 * time.Millisecond
	// hedgeFactor times the typical latency makes a request a straggler.
	hedgeFactor = 4
	// dialPenalty weighs a holder that must be dialled first against a
	// connected one (see pick).
	dialPenalty = 2
	// dialTimeout bounds one dial. A dial belongs to the holder, not to
	// the request that started it: a request that gives up (a lost hedge
	// race, a short deadline) does not fail the dial for the others.
	dialTimeout = 15 * time.Second
	// firstRedial and maxRedial bound the back-off before a holder whose
	// dial failed is dialled again: it doubles with each failure.
	firstRedial = time.Second
	maxRedial   = 30 * time.Second
	// firstBusyWait and maxBusyWait bound the back-off before asking again
	// holders that answered busy, when no other holder is left.
	firstBusyWait = 25 * time.Millisecond
	maxBusyWait   = time.Second
	// busyPatience is how long a piece waits for busy holders when its
	// context sets no earlier deadline.
	busyPatience = 30 * time.Second
)

// FetcherOptions configures a Fetcher.
type FetcherOptions struct {
	Cluster string
	Window  int // requests in flight per holder, up to MaxWindow; DefaultWindow when 0
	// Grant goes with every request (see Session.WithGrant): the bucket
	// the file is read in, a grant for it and its proofs; nil: none.
	Grant  *Grant
	Logger *slog.Logger
	// Pool, when set, is where sessions come from: shared with the other
	// Fetchers of the pool, and left open at Close.
	Pool *Pool
}

// MaxWindow bounds FetcherOptions.Window: each request in flight holds a
// piece buffer on both sides.
const MaxWindow = 256

// Validate reports the first option out of range.
func (o FetcherOptions) Validate() error {
	switch {
	case o.Cluster == "":
		return errors.New("exchange: empty cluster name")
	case o.Window < 0 || o.Window > MaxWindow:
		return fmt.Errorf("exchange: window %d out of range [1, %d] (0: the default, %d)", o.Window, MaxWindow, DefaultWindow)
	}
	return o.Grant.check()
}

// Fetcher gets pieces from every holder it knows at once. It implements
// pieces.Getter: a pieces.File with a deep ReadAhead over a Fetcher streams
// a file from all holders, each kept busy in proportion to its measured
// throughput. It is safe for concurrent use.
type Fetcher struct {
	h    host.Host
	opts FetcherOptions
	log  *slog.Logger

	ctx    context.Context // ends at Close: dials stop
	cancel context.CancelFunc
	dials  sync.WaitGroup

	mu      sync.Mutex
	holders map[peer.ID]*holder
	banned  map[peer.ID]error
	latency time.Duration // typical time of one request, all holders
	closed  bool
}

type holder struct {
	id       peer.ID
	ready    chan struct{} // closed when the dial in progress ends; nil before the first
	sess     *Session
	release  func()    // lets a pooled sess go; nil when sess is the Fetcher's own
	err      error     // the last dial's failure
	fails    int       // dials failed in a row
	retryAt  time.Time // no dial before then, after a failure
	inflight int
	rate     float64 // bytes/s, moving average
	served   int
	bytes    uint64
}

var _ pieces.PieceReader = (*Fetcher)(nil)

// NewFetcher makes a Fetcher on h with no holders yet.
func NewFetcher(h host.Host, opts FetcherOptions) (*Fetcher, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	f := &Fetcher{h: h, opts: opts, log: opts.Logger, holders: make(map[peer.ID]*holder), banned: make(map[peer.ID]error)}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f, nil
}

// SetGrant sets the grant later sessions send (see FetcherOptions): call
// it before the first request.
func (f *Fetcher) SetGrant(g *Grant) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.opts
	o.Grant = g
	if err := o.Validate(); err != nil {
		return err
	}
	f.opts = o
	return nil
}

// Host is the host the Fetcher dials from.
func (f *Fetcher) Host() host.Host { return f.h }

// AddHolders makes peers candidates for every later request; a banned peer
// stays banned.
func (f *Fetcher) AddHolders(ps ...peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		if _, ok := f.holders[p]; ok || f.banned[p] != nil || p == f.h.ID() {
			continue
		}
		f.holders[p] = &holder{id: p, rate: initialRate}
	}
}

// HolderStats is what one holder served.
type HolderStats struct {
	Pieces int
	Bytes  uint64
	Rate   float64 // bytes/s, moving average
	Banned error   // why the holder was dropped for good, if it was
}

// Stats reports per holder, banned ones included.
func (f *Fetcher) Stats() map[peer.ID]HolderStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[peer.ID]HolderStats, len(f.holders)+len(f.banned))
	for p, h := range f.holders {
		out[p] = HolderStats{Pieces: h.served, Bytes: h.bytes, Rate: h.rate}
	}
	for p, err := range f.banned {
		st := out[p]
		st.Banned = err
		out[p] = st
	}
	return out
}

type attempt struct {
	h         *holder
	data, via []byte
	err       error
}

// GetPiece fetches c from the best holder, asks a second one when the first
// straggles, and moves on past holders that lack c, are busy, vanish or lie.
func (f *Fetcher) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	return f.ReadPiece(ctx, c, nil)
}

// ReadPiece is GetPiece into buf when it is large enough: the first holder
// asked reads into it, others into slices of their own. It implements
// pieces.PieceReader; when it returns, buf is no longer written to.
func (f *Fetcher) ReadPiece(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	data, _, err := f.Fetch(ctx, c, buf)
	return data, err
}

// Fetch is ReadPiece that also returns the bucket the holder that served
// c served it for (see Session.Fetch).
func (f *Fetcher) Fetch(ctx context.Context, c cid.Cid, buf []byte) (data, via []byte, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tried := make(map[peer.ID]bool)
	results := make(chan attempt)
	running, asked := 0, 0
	var errs []error
	// The attempt that fills buf must be over before ReadPiece returns,
	// or the caller would reuse buf under it.
	bufDone := make(chan struct{})
	if buf == nil {
		close(bufDone)
	}
	defer func() {
		cancel()
		<-bufDone
	}()
	launch := func() bool {
		h := f.pick(tried)
		if h == nil {
			return false
		}
		tried[h.id] = true
		running++
		asked++
		into, done := buf, bufDone
		buf = nil
		go func() {
			data, via, err := f.fetchFrom(ctx, h, c, into)
			if into != nil {
				close(done)
			}
			select {
			case results <- attempt{h: h, data: data, via: via, err: err}:
			case <-ctx.Done():
			}
		}()
		return true
	}
	if !launch() {
		if buf != nil { // no attempt took it
			close(bufDone)
		}
		return nil, nil, fmt.Errorf("%w: no holders known", &pieces.NotFoundError{CID: c})
	}
	hedge := time.NewTimer(f.hedgeAfter())
	defer hedge.Stop()
	// Holders that answered busy are asked again after a back-off, once
	// no other holder is left, while the context (or busyPatience) allows.
	var busy []peer.ID
	busyWait := firstBusyWait
	patience := time.Now().Add(busyPatience)
	if d, ok := ctx.Deadline(); ok {
		patience = d
	}
	for running > 0 {
		select {
		case a := <-results:
			running--
			if a.err == nil {
				return a.data, a.via, nil
			}
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			errs = append(errs, a.err)
			if errors.Is(a.err, ErrBusy) {
				busy = append(busy, a.h.id)
			}
			if running > 0 || launch() {
				continue
			}
			if len(busy) == 0 || time.Now().Add(busyWait).After(patience) {
				continue // nothing left to ask: the loop ends
			}
			select {
			case <-time.After(busyWait):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			busyWait = min(2*busyWait, maxBusyWait)
			for _, p := range busy {
				delete(tried, p)
			}
			busy, errs = busy[:0], errs[:0]
			launch()
		case <-hedge.C:
			// A straggler: ask another holder too and take the first
			// answer; keep doing so while holders are left untried, so
			// holders that are down (a dial waits for its timeout) or
			// stalled cannot hold the piece up while a live one is known.
			if launch() {
				hedge.Reset(f.hedgeAfter())
			}
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	if allNotFound(errs) {
		return nil, nil, fmt.Errorf("%w: none of %d holders has it", &pieces.NotFoundError{CID: c}, asked)
	}
	for _, err := range errs {
		if errors.Is(err, ErrDenied) { // what the user must hear: they need a grant
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("%w: no holder served it (asked %d): %w", &pieces.NotFoundError{CID: c}, asked, errors.Join(errs...))
}

func allNotFound(errs []error) bool {
	for _, err := range errs {
		if !errors.Is(err, pieces.ErrNotFound) {
			return false
		}
	}
	return true
}

// pick chooses the untried holder with the least expected wait: requests
// in flight, plus this one, over its throughput. A holder that would have
// to be dialled first (no session, no connection: a provider record may
// outlive its node) counts as dialPenalty times as busy, so a connected
// holder answers the first request while the others still take their
// share of a long download.
func (f *Fetcher) pick(tried map[peer.ID]bool) *holder {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	var best *holder
	var bestScore float64
	now := time.Now()
	for _, h := range f.holders {
		if tried[h.id] || (h.err != nil && now.Before(h.retryAt)) {
			continue
		}
		score := float64(h.inflight+1) / h.rate
		if h.ready == nil && f.h.Network().Connectedness(h.id) != network.Connected {
			score *= dialPenalty
		}
		if best == nil || score < bestScore {
			best, bestScore = h, score
		}
	}
	if best != nil {
		best.inflight++
	}
	return best
}

func (f *Fetcher) hedgeAfter() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return max(minHedge, hedgeFactor*f.latency)
}

// fetchFrom asks h for c and books the outcome.
func (f *Fetcher) fetchFrom(ctx context.Context, h *holder, c cid.Cid, buf []byte) ([]byte, []byte, error) {
	start := time.Now()
	data, via, err := f.get(ctx, h, c, buf)
	took := time.Since(start)
	f.mu.Lock()
	defer f.mu.Unlock()
	h.inflight--
	switch {
	case err == nil:
		h.served++
		h.bytes += uint64(len(data))
		h.rate = (1-rateWeight)*h.rate + rateWeight*float64(len(data))/max(took.Seconds(), 1e-6)*float64(h.inflight+1)
		if f.latency == 0 {
			f.latency = took
		} else {
			f.latency = (f.latency*4 + took) / 5
		}
	case ctx.Err() != nil:
	case errors.Is(err, pieces.ErrCorrupt):
		f.log.Warn("dropping holder that sent bad bytes", "peer", h.id, "cid", c, "err", err)
		f.banLocked(h, err)
	case errors.Is(err, ErrDenied):
		// A holder that refuses this reader's requests serves it nothing
		// (a rogue peer may refuse anything): it is no holder of this
		// read, nor asked again by it.
		f.log.Info("dropping holder that refused", "peer", h.id, "cid", c, "err", err)
		if f.holders[h.id] == h {
			delete(f.holders, h.id)
			f.end(h)
		}
	case errors.Is(err, pieces.ErrNotFound), errors.Is(err, ErrBusy), errors.Is(err, ErrBadRequest), errors.Is(err, ErrServer):
		// The holder works; it just cannot serve c now.
	case errors.Is(err, errDial), errors.Is(err, ErrAbandoned):
		// Dialled again after a back-off; or this side reset the
		// session (a caller gave up), and the next request dials anew.
	default:
		f.log.Info("dropping holder whose session failed", "peer", h.id, "err", err)
		if f.holders[h.id] == h {
			delete(f.holders, h.id)
		}
	}
	return data, via, err
}

func (f *Fetcher) banLocked(h *holder, err error) {
	f.banned[h.id] = err
	delete(f.holders, h.id)
	if h.sess != nil {
		h.sess.Close() // a holder that lies is dropped by every reader sharing it
	}
	f.end(h)
}

// Close ends every session and dial; it is safe to call more than once.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	f.closed = true
	for _, h := range f.holders {
		f.end(h)
	}
	f.mu.Unlock()
	f.cancel()
	f.dials.Wait()
	return nil
}
