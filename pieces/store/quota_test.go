package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// cachedFile puts a file of size bytes recorded as cache.
func cachedFile(t *testing.T, s *store.Store, seed uint64, size int) cid.Cid {
	t.Helper()
	data := make([]byte, size)
	data[0], data[1] = byte(seed), byte(seed>>8)
	tx := s.Begin()
	res, err := pieces.Build(ctx, bytes.NewReader(data), tx, pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	tx.Cache(res.Root)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return res.Root
}

// Under MaxBytes: a put that cannot fit even with the cache gone fails
// at once; one that fits once cache goes has MakeRoom called and
// succeeds; with no room to make, the next piece fails, naming the quota,
// and what was stored stays.
func TestQuota(t *testing.T) {
	opts := store.DefaultOptions()
	opts.MaxBytes, opts.DirectIO = 4<<20, false
	s, err := store.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pinned, pinnedData := file(t, s, 1, 1<<20, true, nil)
	old := cachedFile(t, s, 2, 2<<20)
	recent := cachedFile(t, s, 3, 512<<10)
	lastUsed := func(c cid.Cid) (at time.Time) {
		s.Cached(ctx, func(f store.CachedFile) error {
			if f.Root == c {
				at = f.LastUsed
			}
			return nil
		})
		return at
	}
	before := lastUsed(old)
	if err := s.Touch(old); err != nil { // read again: now the most recent
		t.Fatal(err)
	}
	if !lastUsed(old).After(before) || !lastUsed(old).After(lastUsed(recent)) {
		t.Fatal("Touch did not make the file the most recently used")
	}
	if err := s.Touch(pinned); err != nil || !lastUsed(pinned).IsZero() {
		t.Fatalf("Touch of a pinned file: %v; it must not become cache", err)
	}

	var qe *store.QuotaError
	if err := s.Fits(ctx, 3<<20+512<<10); !errors.As(err, &qe) || qe.Kept > 1<<20+4096 {
		t.Fatalf("Fits of more than the quota less the pinned: %v; want a QuotaError keeping the pinned 1 MiB", err)
	}
	if err := s.Fits(ctx, 2<<20); err != nil {
		t.Fatalf("Fits of what cache eviction makes room for: %v", err)
	}

	var asked []uint64
	s.SetMakeRoom(func(ctx context.Context, need uint64) error {
		asked = append(asked, need)
		var all []cid.Cid
		s.Cached(ctx, func(f store.CachedFile) error { all = append(all, f.Root); return nil })
		if err := s.Uncache(all); err != nil {
			return err
		}
		_, err := s.GC(ctx)
		return err
	})
	c, data := file(t, s, 4, 2<<20, true, nil)
	if len(asked) == 0 {
		t.Fatal("a put past the quota did not ask for room")
	}
	mustRead(t, s, c, data)
	if has, _ := s.Has(recent); has {
		t.Fatal("the cache was not evicted to make room")
	}
	_, err = func() (cid.Cid, error) {
		tx := s.Begin()
		defer tx.Discard()
		_, err := pieces.Build(ctx, bytes.NewReader(make([]byte, 2<<20)), tx, pieces.DefaultBuildOptions())
		return cid.Undef, err
	}()
	if !errors.Is(err, store.ErrQuota) || !errors.As(err, &qe) || !qe.Piece {
		t.Fatalf("a put with no room left: %v, want a piece's QuotaError", err)
	}
	mustRead(t, s, pinned, pinnedData)
	mustRead(t, s, c, data)
	if s.LiveBytes() > opts.MaxBytes {
		t.Fatalf("%d live bytes over a quota of %d", s.LiveBytes(), opts.MaxBytes)
	}
}

// GCKeepingCache takes the files uncached and keeps the rest of the
// cache, where GC takes it all.
func TestGCKeepingCache(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	a := cachedFile(t, s, 10, 1<<20)
	b := cachedFile(t, s, 11, 1<<20)
	if err := s.Uncache([]cid.Cid{a}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GCKeepingCache(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.Has(a); has {
		t.Fatal("the file uncached stayed")
	}
	if err := s.Complete(ctx, b); err != nil {
		t.Fatalf("the file still cache lost pieces: %v", err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.Has(b); has {
		t.Fatal("GC kept a cached file, which no root reaches")
	}
}
