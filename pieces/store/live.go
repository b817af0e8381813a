package store

import (
	"hash/maphash"
	"sync"

	"github.com/ipfs/go-cid"
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
}

// gcRun is what one GC has marked live, and the roots that became live
// since it began and that it has yet to walk.
type gcRun struct {
	seed    maphash.Seed
	marked  map[uint64]struct{} // by hash: a collision keeps a piece, never drops one
	pending []cid.Cid
}

func newRun() *gcRun {
	return &gcRun{seed: maphash.MakeSeed(), marked: make(map[uint64]struct{})}
}

func (r *gcRun) key(c cid.Cid) uint64 { return maphash.String(r.seed, c.KeyString()) }

// mark records c as live; it reports whether c was not yet.
func (r *gcRun) mark(c cid.Cid) bool {
	k := r.key(c)
	if _, ok := r.marked[k]; ok {
		return false
	}
	r.marked[k] = struct{}{}
	return true
}

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
		l.run.mark(c)
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
			r.mark(c)
		}
	}
	for k := range l.holds {
		if c, err := cid.Cast([]byte(k)); err == nil {
			r.pending = append(r.pending, c)
		}
	}
	l.run = r
	return r
}

func (s *Store) endRun() {
	s.live.mu.Lock()
	s.live.run = nil
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
		s.live.run.mark(c)
	}
	s.live.mu.Unlock()
}
