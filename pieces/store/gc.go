package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/ddc-project/ddc/pieces"
)

// sweepBatch is how many pieces one index write of a sweep drops. Puts
// and commits wait for a batch at most, so it stays small: a few ms.
const sweepBatch = 512

// GCResult says what a collection did.
type GCResult struct {
	Live     int           // pieces a root reaches, or that a put or read in progress holds
	Removed  int           // pieces dropped
	Freed    uint64        // their bytes
	Duration time.Duration // of the whole collection
}

// GC drops every piece that no root reaches. The roots are the pins, the
// files kept for a bucket, the files held by reads and uploads in progress
// (Hold) and the pieces of Txs not yet over. It runs beside every other
// use of the store: puts, commits, pins and reads go on, waiting at most
// for one of its index writes. A piece that becomes live while it runs
// (put, pinned, held) is kept. A read that found a piece before it was
// dropped gets its bytes: they are given back to the filesystem only
// once such reads are over, and at the next Open if the process stops
// first. One GC runs at a time; a second waits for the first.
func (s *Store) GC(ctx context.Context) (GCResult, error) { return s.gc(ctx, false) }

// GCKeepingCache is GC with the files recorded as cache taken for roots
// too: what a quota runs once it has uncached the files it evicts, so
// that those go and the rest of the cache stays.
func (s *Store) GCKeepingCache(ctx context.Context) (GCResult, error) { return s.gc(ctx, true) }

func (s *Store) gc(ctx context.Context, keepCache bool) (GCResult, error) {
	if s.opts.ReadOnly {
		return GCResult{}, ErrReadOnly
	}
	s.gcmu.Lock()
	defer s.gcmu.Unlock()
	start := time.Now()
	r := s.startRun()
	defer s.endRun()
	var res GCResult
	roots, err := s.indexRoots(ctx, keepCache)
	if err == nil {
		err = s.mark(ctx, r, roots, &res)
	}
	if hook := afterMark; hook != nil && err == nil {
		hook()
	}
	var batch []candidate
	var holes []hole // of the pieces dropped, punched once the sweep is over
	sweep := func() error {
		h, err := s.sweep(ctx, r, batch, &res)
		holes = append(holes, h...)
		batch = batch[:0]
		return err
	}
	if err == nil {
		// Until its holes are punched, a GC that stops (a crash) leaves
		// this mark, and the next Open finds the dead space itself.
		err = s.markSweep(true)
	}
	if err == nil {
		err = s.scan(ctx, prefPiece, func(c cid.Cid, v []byte) error {
			if s.marked(r, c) {
				return nil
			}
			e, err := decodeEntry(c, v)
			if err != nil {
				return err
			}
			if batch = append(batch, candidate{c, e}); len(batch) < sweepBatch {
				return nil
			}
			return sweep()
		})
	}
	if err == nil && len(batch) > 0 {
		err = sweep()
	}
	s.forgetEmpty(r.placedFiles)
	if skipPunch.Load() {
		res.Duration = time.Since(start)
		return res, err
	}
	// What was dropped is punched even when the sweep stopped part way
	// (cancelled, or an index write failed): the mark goes only once it
	// is, and else the next Open finds the dead space.
	perr := s.syncIndex() // the drops are durable before their bytes go
	if perr == nil {
		// All the holes at once, with what earlier ones left of blocks
		// they shared with live pieces: those side by side free whole
		// blocks together, whatever their order.
		perr = s.punchWithRecorded(holes)
	}
	if perr == nil && err == nil {
		perr = s.markSweep(false)
	}
	if err == nil {
		err = perr
	}
	res.Duration = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	return res, nil
}

// indexRoots lists the pinned roots, the files kept for a bucket, the
// CIDs names root, and with cache the files recorded as cache.
func (s *Store) indexRoots(ctx context.Context, cache bool) ([]cid.Cid, error) {
	var roots []cid.Cid
	err := s.scan(ctx, prefPin, func(c cid.Cid, _ []byte) error {
		roots = append(roots, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.scanKeys(ctx, []byte{prefBucket}, func(k, _ []byte) error {
		c, err := cid.Cast(k[1+len(Bucket{}):])
		if err != nil {
			return fmt.Errorf("%w: bucket file key %x: %w", ErrIndexCorrupt, k, err)
		}
		roots = append(roots, c)
		return nil
	})
	if err == nil {
		var named []cid.Cid // names' histories (names.go)
		named, err = s.nameRoots(ctx)
		roots = append(roots, named...)
	}
	if err == nil && cache {
		err = s.scan(ctx, prefCache, func(c cid.Cid, _ []byte) error {
			roots = append(roots, c)
			return nil
		})
	}
	return roots, err
}

// marked reports whether the run has marked c, or an open Tx put it.
func (s *Store) marked(r *gcRun, c cid.Cid) bool {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return s.keptLocked(r, c)
}

// keptLocked is marked, under live.mu.
func (s *Store) keptLocked(r *gcRun, c cid.Cid) bool {
	return r.isMarked(c) || s.live.txs[c.KeyString()] > 0
}

// mark marks roots and every piece under them, then the roots that
// became live meanwhile, until none is left.
func (s *Store) mark(ctx context.Context, r *gcRun, roots []cid.Cid, res *GCResult) error {
	first := func(c cid.Cid) bool {
		s.live.mu.Lock()
		defer s.live.mu.Unlock()
		return r.visit(c)
	}
	absent := func(c cid.Cid) error { // a root not held yet: walked when it is named again
		s.live.mu.Lock()
		defer s.live.mu.Unlock()
		r.unvisit(c)
		return nil
	}
	for {
		if err := s.walkDAG(ctx, roots, first, absent, false, &res.Live); err != nil {
			return err
		}
		if roots = s.takePending(r); len(roots) == 0 {
			return nil
		}
	}
}

// walkDAG visits roots and the pieces under them, depth first: each
// piece for which first reports true (its first visit) is counted in
// visited and, when it is a ddc descriptor the store holds, its links
// are visited too. missing, when not nil, is called for each descriptor
// the store lacks, and, with leaves, for each data piece it lacks (data
// pieces are looked up only then); its error stops the walk. A
// descriptor the store holds but cannot read stops the walk: what it
// links to cannot be told.
func (s *Store) walkDAG(ctx context.Context, roots []cid.Cid, first func(cid.Cid) bool, missing func(cid.Cid) error, leaves bool, visited *int) error {
	stack := append([]cid.Cid(nil), roots...)
	var buf []byte
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !first(c) {
			continue
		}
		*visited++
		if c.Type() != pieces.CodecDagCBOR {
			if c.Type() == pieces.CodecRaw && leaves {
				if has, err := s.Has(c); err != nil {
					return err
				} else if !has {
					if err := missing(c); err != nil {
						return err
					}
				}
			}
			continue
		}
		var err error
		if err = ctx.Err(); err == nil {
			buf, err = s.readPiece(c, buf, false)
		}
		if errors.Is(err, pieces.ErrNotFound) {
			if missing != nil {
				if err := missing(c); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read descriptor %s, whose links decide what stays: %w", c, err)
		}
		p, err := pieces.DecodeChecked(c, buf)
		if err != nil {
			if errors.Is(err, pieces.ErrCorrupt) {
				return fmt.Errorf("descriptor %s, whose links decide what stays: %w", c, err)
			}
			continue // dag-cbor of another kind: a block on its own
		}
		for i := len(p.Links) - 1; i >= 0; i-- {
			stack = append(stack, p.Links[i].CID)
		}
	}
	return nil
}

// sweep drops the pieces of batch that are still unmarked, once the
// roots that became live are walked, in one index write, and returns
// their holes.
func (s *Store) sweep(ctx context.Context, r *gcRun, batch []candidate, res *GCResult) ([]hole, error) {
	drops, err := s.prepareDrops(batch)
	if err != nil {
		return nil, err
	}
	for {
		if pending := s.takePending(r); len(pending) > 0 {
			if err := s.mark(ctx, r, pending, res); err != nil {
				return nil, err
			}
			continue
		}
		s.cmu.Lock()
		s.live.mu.Lock()
		if len(r.pending) == 0 {
			break // both held: no pin commits, no put finds a copy, until the write is done
		}
		s.live.mu.Unlock()
		s.cmu.Unlock()
	}
	holes, err := s.dropUnmarked(r, drops, res)
	s.live.mu.Unlock()
	s.cmu.Unlock()
	return holes, err
}

// drop is a piece the sweep means to drop, with the index writes that
// drop it, made before the sweep takes its locks.
type drop struct {
	candidate
	writes *leveldb.Batch
}

// prepareDrops makes the index writes that drop the pieces of batch:
// their entries, memberships, cache records and tags. It takes no lock:
// what a put changes of a piece meanwhile, it has marked (keepPut), and
// dropUnmarked leaves marked pieces alone.
func (s *Store) prepareDrops(batch []candidate) ([]drop, error) {
	// The batch is in CID order, as the memberships are: one scan finds
	// them all.
	members, err := s.membersOf(context.Background(), batch[0].c, batch[len(batch)-1].c)
	if err != nil {
		return nil, err
	}
	drops := make([]drop, len(batch))
	for i, p := range batch {
		drops[i] = drop{p, new(leveldb.Batch)}
		s.dropPiece(drops[i].writes, p.c, p.e, members[string(p.c.Bytes())])
	}
	return drops, nil
}

// candidate is a piece the sweep found unmarked, and where it found it.
// Only this GC and Delete drop pieces (a Delete during the GC marks what
// it dropped, see dropped), and a put of a stored piece keeps it where it
// is, so the entry is still the piece's when it is dropped; a repair that
// moved it since leaves the new copy's bytes as dead space no hole
// records.
type candidate struct {
	c cid.Cid
	e entry
}

// dropUnmarked drops what drops holds that r did not mark and no open
// Tx put, in one index write. It runs under cmu and live.mu.
func (s *Store) dropUnmarked(r *gcRun, drops []drop, res *GCResult) ([]hole, error) {
	b := new(leveldb.Batch)
	st := s.st
	var holes []hole
	dropped := 0
	for _, d := range drops {
		if s.keptLocked(r, d.c) {
			continue
		}
		if err := d.writes.Replay(into{b}); err != nil {
			return nil, err
		}
		st.remove(d.e)
		dropped++
		if d.e.placed() { // an in-place piece's file is the user's: left alone
			r.placedFiles[d.e.fileID()] = true
		} else {
			holes = append(holes, hole{block: d.e.block, offset: d.e.offset, length: d.e.length})
		}
	}
	if dropped == 0 {
		return nil, nil
	}
	b.Put([]byte(keyStats), st.encode())
	// Not synced: a drop lost with a crash leaves garbage for the next GC.
	// The sweep syncs the index once before any hole is punched.
	if err := s.writeBatch(b, false); err != nil {
		return nil, fmt.Errorf("drop %d pieces: %w", dropped, err)
	}
	res.Removed += dropped
	res.Freed += s.st.blockBytes() - st.blockBytes() // in-place bytes stay in their files
	s.setStats(st)
	return holes, nil
}

// into replays a batch into another.
type into struct{ b *leveldb.Batch }

func (i into) Put(k, v []byte) { i.b.Put(k, v) }
func (i into) Delete(k []byte) { i.b.Delete(k) }

// dropPiece adds to b the writes that drop piece c, a member of members
// (besides no bucket): its entry, its memberships, its cache record and
// its tags.
func (s *Store) dropPiece(b *leveldb.Batch, c cid.Cid, e entry, members []Bucket) {
	b.Delete(pieceKey(c))
	if e.placed() {
		b.Delete(placedKey(e.fileID(), c))
	}
	for _, m := range members { // a piece stored again starts with no bucket
		b.Delete(memberKey(c, m))
	}
	b.Delete(memberKey(c, NoBucket))
	if c.Type() == pieces.CodecDagCBOR {
		b.Delete(cacheKey(c)) // a file dropped is cache no more
	}
	s.unindexTags(b, c, members)
}

// Delete drops c from the index; its bytes go back to the filesystem once
// the reads that found it are over. Deleting a piece the store does not
// hold is not an error.
func (s *Store) Delete(c cid.Cid) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	h, err := s.dropIndexed(c)
	if err != nil || h == nil {
		return err
	}
	return s.punchWithRecorded([]hole{*h}) // with what is left of its neighbours' holes
}

// dropIndexed drops c from the index and returns its hole, or nil when the
// store does not hold c or holds it in place.
func (s *Store) dropIndexed(c cid.Cid) (*hole, error) {
	_, holes, err := s.dropWhere([]cid.Cid{c}, func(entry) bool { return true })
	if err != nil || len(holes) == 0 {
		return nil, err
	}
	return &holes[0], nil
}

// dropWhere drops from the index, in one write, each piece of cs the
// store holds whose entry drop approves. It returns how many it dropped
// and the holes of those in block files (in-place ones leave their file
// alone).
func (s *Store) dropWhere(cs []cid.Cid, drop func(entry) bool) (int, []hole, error) {
	files := map[uint32]bool{}
	n, holes, err := s.dropWhereLocked(cs, drop, files)
	s.forgetEmpty(files)
	return n, holes, err
}

// dropWhereLocked is dropWhere under cmu; it adds the placed files whose
// pieces it dropped to files.
func (s *Store) dropWhereLocked(cs []cid.Cid, drop func(entry) bool, files map[uint32]bool) (int, []hole, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := new(leveldb.Batch)
	st := s.st
	var holes []hole
	var gone []cid.Cid
	for _, c := range cs {
		e, err := s.lookup(c)
		if errors.Is(err, pieces.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if !drop(e) {
			continue
		}
		members, _, err := s.Reach(c)
		if err != nil {
			return 0, nil, err
		}
		st.remove(e)
		s.dropPiece(b, c, e, members)
		if e.placed() {
			files[e.fileID()] = true
		} else {
			holes = append(holes, hole{block: e.block, offset: e.offset, length: e.length})
		}
		gone = append(gone, c)
	}
	if len(gone) == 0 {
		return 0, nil, nil
	}
	b.Put([]byte(keyStats), st.encode())
	if err := s.write(b); err != nil {
		return 0, nil, fmt.Errorf("delete %s: %w", gone[0], err)
	}
	s.setStats(st)
	for _, c := range gone {
		s.dropped(c)
	}
	return len(gone), holes, nil
}
