package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/ddc-project/ddc/pieces"
)

// ErrQuota is what a put that does not fit under Options.MaxBytes fails
// with, once Options.MakeRoom could free no more.
var ErrQuota = errors.New("storage quota reached")

// QuotaError says which quota a put hit and what holds the space.
type QuotaError struct {
	Max  uint64 // the quota
	Kept uint64 // live bytes that pins, buckets and reads or puts in progress keep
	Need uint64 // what the put needs: the whole put, or its next piece
	// Piece: Need is the put's next piece, found not to fit part way.
	Piece bool
}

func (e *QuotaError) Error() string {
	const fix = "unpin files (ddc pin rm) and run ddc repo gc, or raise storage_max"
	if e.Piece {
		return fmt.Sprintf("%v: the put's next piece of %d bytes does not fit under storage_max of %d bytes: pins, bucket files and reads or puts in progress (this one's pieces so far too) keep %d, and no cache is left to evict: %s",
			ErrQuota, e.Need, e.Max, e.Kept, fix)
	}
	return fmt.Sprintf("%v: a put of %d bytes does not fit under storage_max of %d bytes, of which pins, bucket files and reads or puts in progress keep %d (cache aside, which would be evicted): %s",
		ErrQuota, e.Need, e.Max, e.Kept, fix)
}

// Fits reports, before a put of n bytes begins, whether it can fit under
// MaxBytes once every cached file is evicted: if not, it fails at once
// with a *QuotaError and evicts nothing. A put that passes may still fail
// part way, when what it shares with cached files was counted twice.
func (s *Store) Fits(ctx context.Context, n uint64) error {
	max := s.opts.MaxBytes
	if max == 0 {
		return nil
	}
	live := s.LiveBytes()
	if live+n <= max {
		return nil
	}
	cache, err := s.cacheBytes(ctx)
	if err != nil {
		return err
	}
	kept := live - min(live, cache)
	if kept+n > max {
		return &QuotaError{Max: max, Kept: kept, Need: n}
	}
	return nil
}

// cacheBytes is the content of the cached files, as their descriptors
// say: what evicting them all could free, or a little more where they
// share pieces.
func (s *Store) cacheBytes(ctx context.Context) (uint64, error) {
	var n uint64
	err := s.Cached(ctx, func(f CachedFile) error {
		n += s.ContentSize(ctx, f.Root)
		return nil
	})
	return n, err
}

// ContentSize is the content bytes of the file root as its descriptor in
// the store says; 0 when the store cannot tell (dropped, unreadable, not
// a ddc descriptor).
func (s *Store) ContentSize(ctx context.Context, root cid.Cid) uint64 {
	data, err := s.GetPiece(ctx, root)
	if err != nil {
		return 0
	}
	p, err := pieces.DecodeChecked(root, data)
	if err != nil {
		return 0
	}
	return p.ContentSize()
}

func (e *QuotaError) Unwrap() error { return ErrQuota }

// prefCache marks a file kept as cache: fetched, not pinned. Cache is what
// a quota evicts, least recently used first; it is no root.
const prefCache = 'c' // 'c' + root CID bytes -> last used, unix nanoseconds (8)

func cacheKey(c cid.Cid) []byte { return append([]byte{prefCache}, c.Bytes()...) }

// Cache records root, whose pieces t put, as a file kept as cache: one a
// quota may evict. It is recorded at Commit.
func (t *Tx) Cache(root cid.Cid) { t.cached = append(t.cached, root) }

// Touch records that the cached file root was used now, so a quota
// evicts it after the files used less recently. A root that is not cache
// is left alone.
func (s *Store) Touch(root cid.Cid) error {
	if s.opts.ReadOnly {
		return nil // a read-only store evicts nothing
	}
	if ok, err := s.has(cacheKey(root)); err != nil || !ok { // most reads: no write, no lock
		return err
	}
	// Looked at again under cmu: a pin's commit or a GC's drop, which
	// remove the record, may have come in between.
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if ok, err := s.has(cacheKey(root)); err != nil || !ok {
		return err
	}
	b := new(leveldb.Batch)
	b.Put(cacheKey(root), binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
	return s.writeBatch(b, false) // a time lost with a crash only makes the file look older
}

// CachedFile is a file kept as cache, as Cached lists it.
type CachedFile struct {
	Root     cid.Cid
	LastUsed time.Time
}

// Cached calls fn for every file kept as cache, in CID order.
func (s *Store) Cached(ctx context.Context, fn func(CachedFile) error) error {
	return s.scan(ctx, prefCache, func(c cid.Cid, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: cache record of %s has %d bytes, want 8", ErrIndexCorrupt, c, len(v))
		}
		return fn(CachedFile{Root: c, LastUsed: time.Unix(0, int64(binary.BigEndian.Uint64(v)))})
	})
}

// Uncache forgets that roots are cache: their pieces stay until a GC
// finds no root reaches them.
func (s *Store) Uncache(roots []cid.Cid) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	b := new(leveldb.Batch)
	for _, c := range roots {
		b.Delete(cacheKey(c))
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.writeBatch(b, false)
}

// LiveBytes is the bytes of the pieces the store holds, and of those
// puts in progress have appended.
func (s *Store) LiveBytes() uint64 {
	return s.liveBytes.Load() + uint64(max(s.appended.Load(), 0))
}

// setStats sets the live totals, under cmu.
func (s *Store) setStats(st stats) {
	s.st = st
	s.liveBytes.Store(st.bytes)
}

// SetMakeRoom has the store ask fn to free need bytes under MaxBytes (by
// evicting cache) before a put fails for want of them. fn is called with
// no lock of the store held: it may run a GC.
func (s *Store) SetMakeRoom(fn func(ctx context.Context, need uint64) error) { s.makeRoom.Store(&fn) }

// MaxBytes is the quota the store was opened with (0: none).
func (s *Store) MaxBytes() uint64 { return s.opts.MaxBytes }

// fits checks a piece of n bytes against Options.MaxBytes, asking
// Options.MakeRoom to free space first when it does not fit.
func (s *Store) fits(ctx context.Context, n int) error {
	max := s.opts.MaxBytes
	if max == 0 {
		return nil
	}
	need := uint64(n)
	if s.LiveBytes()+need <= max {
		return nil
	}
	if mr := s.makeRoom.Load(); mr != nil {
		if err := (*mr)(ctx, need); err != nil {
			return err
		}
		if s.LiveBytes()+need <= max {
			return nil
		}
	}
	return &QuotaError{Max: max, Kept: s.LiveBytes(), Need: need, Piece: true}
}
