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
)

// FetcherOptions configures a Fetcher.
type FetcherOptions struct {
	Cluster string
	Window  int // requests in flight per holder; DefaultWindow when 0
	Logger  *slog.Logger
}

// Fetcher gets pieces from every holder it knows at once. It implements
// pieces.Getter: a pieces.File with a deep ReadAhead over a Fetcher streams
// a file from all holders, each kept busy in proportion to its measured
// throughput. It is safe for concurrent use.
type Fetcher struct {
	h    host.Host
	opts FetcherOptions
	log  *slog.Logger

	mu      sync.Mutex
	holders map[peer.ID]*holder
	banned  map[peer.ID]error
	latency time.Duration // typical time of one request, all holders
	closed  bool
}

type holder struct {
	id       peer.ID
	ready    chan struct{} // closed once dialled
	sess     *Session
	err      error // dial failure
	inflight int
	rate     float64 // bytes/s, moving average
	served   int
	bytes    uint64
}

var _ pieces.PieceReader = (*Fetcher)(nil)

// NewFetcher makes a Fetcher on h with no holders yet.
func NewFetcher(h host.Host, opts FetcherOptions) *Fetcher {
	if opts.Cluster == "" {
		opts.Cluster = "default"
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	f := &Fetcher{h: h, opts: opts, log: opts.Logger, holders: make(map[peer.ID]*holder), banned: make(map[peer.ID]error)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
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
	h    *holder
	data []byte
	err  error
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
			data, err := f.fetchFrom(ctx, h, c, into)
			if into != nil {
				close(done)
			}
			select {
			case results <- attempt{h: h, data: data, err: err}:
			case <-ctx.Done():
			}
		}()
		return true
	}
	if !launch() {
		if buf != nil { // no attempt took it
			close(bufDone)
		}
		return nil, fmt.Errorf("%w: no holders known", &pieces.NotFoundError{CID: c})
	}
	hedge := time.NewTimer(f.hedgeAfter())
	defer hedge.Stop()
	for running > 0 {
		select {
		case a := <-results:
			running--
			if a.err == nil {
				return a.data, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, a.err)
			if running == 0 {
				launch()
			}
		case <-hedge.C:
			// A straggler: ask another holder too and take the first
			// answer; keep doing so while holders are left untried, so
			// holders that are down (a dial waits for its timeout) cannot
			// hold the piece up while a live one is known.
			if launch() {
				hedge.Reset(f.hedgeAfter())
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if allNotFound(errs) {
		return nil, fmt.Errorf("%w: none of %d holders has it", &pieces.NotFoundError{CID: c}, asked)
	}
	return nil, fmt.Errorf("%w: no holder served it (asked %d): %w", &pieces.NotFoundError{CID: c}, asked, errors.Join(errs...))
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
	for _, h := range f.holders {
		if tried[h.id] {
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
func (f *Fetcher) fetchFrom(ctx context.Context, h *holder, c cid.Cid, buf []byte) ([]byte, error) {
	start := time.Now()
	data, err := f.get(ctx, h, c, buf)
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
	case errors.Is(err, pieces.ErrNotFound), errors.Is(err, ErrBusy), errors.Is(err, ErrBadRequest), errors.Is(err, ErrServer):
		// The holder works; it just cannot serve c now.
	default:
		f.log.Info("dropping holder whose session failed", "peer", h.id, "err", err)
		if f.holders[h.id] == h {
			delete(f.holders, h.id)
		}
	}
	return data, err
}

func (f *Fetcher) banLocked(h *holder, err error) {
	f.banned[h.id] = err
	delete(f.holders, h.id)
	if h.sess != nil {
		h.sess.Close()
	}
}

// get dials h on first use and requests c.
func (f *Fetcher) get(ctx context.Context, h *holder, c cid.Cid, buf []byte) ([]byte, error) {
	f.mu.Lock()
	first := h.ready == nil
	if first {
		h.ready = make(chan struct{})
	}
	ready := h.ready
	f.mu.Unlock()
	if first {
		sess, err := Dial(ctx, f.h, h.id, f.opts.Cluster, f.opts.Window)
		f.mu.Lock()
		h.sess, h.err = sess, err
		f.mu.Unlock()
		close(ready)
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if h.err != nil {
		return nil, h.err
	}
	return h.sess.GetInto(ctx, c, buf)
}

// Close ends every session.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, h := range f.holders {
		if h.sess != nil {
			h.sess.Close()
		}
	}
	return nil
}
