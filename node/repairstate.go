package node

import (
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
)

// heldFile is a file of a bucket whose last full check found its
// holders.
type heldFile struct {
	bucket  bucket.ID
	root    cid.Cid
	holders []peer.ID
}

// repairs is what the checks saw, in memory (a restart starts the grace
// periods again, which errs toward keeping copies): per file, since when
// it has been short of holders or this node surplus, the holders its last
// full check found, and its flags (mark); per peer, the files it holds by
// those checks, and when its last connection to this node closed.
type repairs struct {
	mu     sync.Mutex
	since  map[string]time.Time
	held   map[string]heldFile
	byPeer map[peer.ID]map[string]bool
	flags  map[string]bool
	gone   map[peer.ID]time.Time
	failed map[peer.ID]time.Time // the last check p did not answer
}

func (r *repairs) init() {
	if r.since == nil {
		r.since = make(map[string]time.Time)
		r.held = make(map[string]heldFile)
		r.byPeer = make(map[peer.ID]map[string]bool)
		r.flags = make(map[string]bool)
		r.failed = make(map[peer.ID]time.Time)
		r.gone = make(map[peer.ID]time.Time)
	}
}

// lasted reports how long the state key has held, starting it now if it
// is new.
func (r *repairs) lasted(key string, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	t, ok := r.since[key]
	if !ok {
		r.since[key] = now
		return 0
	}
	return now.Sub(t)
}

// shortSince is since when file f has been short, holders answering now:
// the earliest of the time a check first saw it short and the times its
// former holders missing now lost their connection to this node. That is
// when fewer than R last answered, as near as this node can tell.
func (r *repairs) shortSince(f string, holders []peer.ID, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	t, ok := r.since[f+"short"]
	if !ok {
		t = now
	}
	for _, p := range r.held[f].holders {
		if g, ok := r.gone[p]; ok && !slices.Contains(holders, p) && g.Before(t) {
			t = g
		}
	}
	r.since[f+"short"] = t
	return t
}

// full notes that f, root of bucket b, has its holders, and forgets its
// other states.
func (r *repairs) full(f string, b bucket.ID, root cid.Cid, holders []peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	r.unindex(f)
	r.held[f] = heldFile{b, root, slices.Clone(holders)}
	for _, p := range holders {
		if r.byPeer[p] == nil {
			r.byPeer[p] = make(map[string]bool)
		}
		r.byPeer[p][f] = true
	}
	delete(r.since, f+"short")
	delete(r.since, f+"surplus")
}

// unindex drops f from the files of its holders.
func (r *repairs) unindex(f string) {
	for _, p := range r.held[f].holders {
		delete(r.byPeer[p], f)
		if len(r.byPeer[p]) == 0 {
			delete(r.byPeer, p)
		}
	}
	delete(r.held, f)
}

// forget drops every state of f, a file this node keeps no more.
func (r *repairs) forget(f string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	r.unindex(f)
	delete(r.since, f+"short")
	delete(r.since, f+"surplus")
}

// answered notes that p answered a check: not gone.
func (r *repairs) answered(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	delete(r.gone, p)
	delete(r.failed, p)
}

// quiet reports whether p failed to answer a check less than within ago,
// and has not answered or reconnected since: a check need not wait on it
// again (a dead node behind a QUIC connection costs a stream timeout).
func (r *repairs) quiet(p peer.ID, now time.Time, within time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	t, ok := r.failed[p]
	return ok && now.Sub(t) < within
}

// silent notes that p did not answer a check: gone since now, unless its
// connection closed earlier or it answered since.
func (r *repairs) silent(p peer.ID, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	if _, ok := r.gone[p]; !ok {
		r.gone[p] = now
	}
	r.failed[p] = now
}

// mark sets (on) or clears a flag of a file: f+"due", a check due at
// its grace's end; f+"push", a push again under way (the pass and a due
// check may judge a file at once). Setting one already set reports false.
func (r *repairs) mark(key string, on bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	if on && r.flags[key] {
		return false
	}
	if on {
		r.flags[key] = true
	} else {
		delete(r.flags, key)
	}
	return true
}

// connectedness notes that p lost its last connection to this node, or
// has one again; lost, it returns the files p held by their last checks.
func (r *repairs) connectedness(p peer.ID, connected bool, now time.Time) map[string]heldFile {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	if connected {
		delete(r.gone, p)
		delete(r.failed, p)
		return nil
	}
	r.gone[p] = now
	var out map[string]heldFile
	for f := range r.byPeer[p] {
		if out == nil {
			out = make(map[string]heldFile)
		}
		out[f] = r.held[f]
	}
	return out
}
