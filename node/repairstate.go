package node

import (
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// repairs is what the checks saw, in memory (a restart starts the grace
// periods again, which errs toward keeping copies): per file, since when
// it has been short of holders or this node surplus, the holders its last
// full check found, and its flags (mark); per
// peer, when its last connection to this node closed.
type repairs struct {
	mu      sync.Mutex
	since   map[string]time.Time
	holders map[string][]peer.ID
	flags   map[string]bool
	gone    map[peer.ID]time.Time
	failed  map[peer.ID]time.Time // the last check p did not answer
}

func (r *repairs) init() {
	if r.since == nil {
		r.since = make(map[string]time.Time)
		r.holders = make(map[string][]peer.ID)
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
	for _, p := range r.holders[f] {
		if g, ok := r.gone[p]; ok && !slices.Contains(holders, p) && g.Before(t) {
			t = g
		}
	}
	r.since[f+"short"] = t
	return t
}

// full notes that f has its holders, and forgets its other states.
func (r *repairs) full(f string, holders []peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	r.holders[f] = slices.Clone(holders)
	delete(r.since, f+"short")
	delete(r.since, f+"surplus")
}

// forget drops every state of f, a file this node keeps no more.
func (r *repairs) forget(f string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	delete(r.holders, f)
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
// has one again.
func (r *repairs) connectedness(p peer.ID, connected bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	if connected {
		delete(r.gone, p)
		delete(r.failed, p)
	} else {
		r.gone[p] = now
	}
}
