package store

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// What keeps a piece alive besides the index's roots (pins and the files
// kept for a bucket): the pieces of Txs not yet over, and the roots held
// by reads and uploads in progress. A GC marks them all; while one runs,
// whatever becomes live joins its marks before its sweep can drop it.
type liveness struct {
	mu    sync.Mutex
	txs   map[string]int // pieces put by Txs still open, counted
	holds map[string]int // roots held, counted
	run   *gcRun         // the GC marking or sweeping; nil when none
	// running is run != nil, read without mu on every read's path.
	running atomic.Bool
}

// gcRun is what one GC keeps: the pieces its walks reached, those kept
// otherwise (put, read or dropped by other means while it runs), and the
// roots that became live since it began and that it has yet to walk.
type gcRun struct {
	seed maphash.Seed
	// marked holds data pieces the walks reached, and everything kept, by
	// a hash of the CID: a collision keeps a piece it need not, and drops
	// none, since no walk stops at a data piece.
	marked map[uint64]struct{}
	// walked holds the descriptors the walks read, by CID: a walk stops
	// at a descriptor it has read, so these must not collide.
	walked  map[string]struct{}
	pending []cid.Cid
	// placedFiles are the placed files the sweep dropped pieces of.
	placedFiles map[uint32]bool
}

func newRun() *gcRun {
	return &gcRun{seed: maphash.MakeSeed(), marked: make(map[uint64]struct{}), walked: make(map[string]struct{}), placedFiles: make(map[uint32]bool)}
}

func (r *gcRun) key(c cid.Cid) uint64 { return maphash.String(r.seed, c.KeyString()) }

// keep records c as not to be dropped by this run, without walking it.
func (r *gcRun) keep(c cid.Cid) { r.marked[r.key(c)] = struct{}{} }

// visit records that a walk reached c; it reports whether no walk had, so
// the walk is to go on under c. A descriptor kept but not walked (put or
// read while the GC ran) is still walked when a root names it.
func (r *gcRun) visit(c cid.Cid) bool {
	if c.Type() == pieces.CodecDagCBOR {
		k := c.KeyString()
		if _, ok := r.walked[k]; ok {
			return false
		}
		r.walked[k] = struct{}{}
		r.keep(c)
		return true
	}
	k := r.key(c)
	if _, ok := r.marked[k]; ok {
		return false
	}
	r.marked[k] = struct{}{}
	return true
}

// unvisit forgets a walk's visit of descriptor c, which the store did not
// hold then: a root that names it later walks it then.
func (r *gcRun) unvisit(c cid.Cid) { delete(r.walked, c.KeyString()) }

func (r *gcRun) isMarked(c cid.Cid) bool {
	_, ok := r.marked[r.key(c)]
	return ok
}

// Hold keeps root and every piece the store holds under it from GC until
// release is called: a read or an upload in progress holds its file, so
// that a GC that runs meanwhile neither takes the pieces it has yet to
// read nor those it has put but not committed. A root held may not be in
// the store yet. release may be called more than once.
func (s *Store) Hold(root cid.Cid) (release func()) {
	k := root.KeyString()
	l := &s.live
	l.mu.Lock()
	if l.holds == nil {
		l.holds = make(map[string]int)
	}
	l.holds[k]++
	if l.run != nil {
		l.run.pending = append(l.run.pending, root)
	}
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			if l.holds[k]--; l.holds[k] <= 0 {
				delete(l.holds, k)
			}
			l.mu.Unlock()
		})
	}
}

// keepPut protects c, which a Tx is putting, until the Tx is over. It is
// called before the Tx looks for a stored copy, so a copy it finds is one
// a sweep will not drop.
func (s *Store) keepPut(c cid.Cid) {
	l := &s.live
	l.mu.Lock()
	if l.txs == nil {
		l.txs = make(map[string]int)
	}
	l.txs[c.KeyString()]++ // a sweep skips them (dropUnmarked)
	if l.run != nil {
		// Kept this run even once the Tx is over: the sweep prepares its
		// drops before it locks, from memberships and tags a put may
		// have changed since.
		l.run.keep(c)
	}
	l.mu.Unlock()
}

// unkeepPuts ends the protection keepPut gave the Tx's pieces: by now
// they are committed, and a root reaches them, or they were discarded.
func (s *Store) unkeepPuts(keys map[string]struct{}) {
	if len(keys) == 0 {
		return
	}
	l := &s.live
	l.mu.Lock()
	for k := range keys {
		if l.txs[k]--; l.txs[k] <= 0 {
			delete(l.txs, k)
		}
	}
	l.mu.Unlock()
}

// pinned tells a GC in progress of roots a commit pinned.
func (s *Store) pinned(roots []cid.Cid) {
	if len(roots) == 0 {
		return
	}
	l := &s.live
	l.mu.Lock()
	if l.run != nil {
		l.run.pending = append(l.run.pending, roots...)
	}
	l.mu.Unlock()
}

// startRun begins a GC's marks with what is live now outside the index:
// the pieces of open Txs, marked, and the roots held, to walk.
func (s *Store) startRun() *gcRun {
	r := newRun()
	l := &s.live
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.txs {
		if c, err := cid.Cast([]byte(k)); err == nil {
			r.keep(c)
		}
	}
	for k := range l.holds {
		if c, err := cid.Cast([]byte(k)); err == nil {
			r.pending = append(r.pending, c)
		}
	}
	l.run = r
	l.running.Store(true)
	return r
}

func (s *Store) endRun() {
	s.live.mu.Lock()
	s.live.run = nil
	s.live.running.Store(false)
	s.live.mu.Unlock()
}

// takePending hands out the roots that became live since the last call.
func (s *Store) takePending(r *gcRun) []cid.Cid {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	p := r.pending
	r.pending = nil
	return p
}

// dropped tells a GC in progress that c was dropped by other means: its
// sweep must not drop c, nor a copy put again, a second time.
func (s *Store) dropped(c cid.Cid) {
	s.live.mu.Lock()
	if s.live.run != nil {
		s.live.run.keep(c)
	}
	s.live.mu.Unlock()
}

// keepRead keeps c, just read, from the GC running, if one is: a read in
// progress reads the pieces of a file it holds, and the walk from its
// hold may not reach them (a root the store did not hold yet).
func (s *Store) keepRead(c cid.Cid) {
	if !s.live.running.Load() {
		return
	}
	s.live.mu.Lock()
	if s.live.run != nil {
		s.live.run.keep(c)
	}
	s.live.mu.Unlock()
}
