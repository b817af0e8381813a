package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces/store"
)

// putIn puts test pieces into s in one Tx, in bucket b (none when nil),
// pinning piece root unless it is negative.
func putIn(t *testing.T, s *store.Store, b *store.Bucket, root int, pieces ...int) {
	t.Helper()
	tx := s.Begin()
	if b != nil {
		tx.InBucket(*b)
	}
	for _, i := range pieces {
		c, data := piece(i, 1000)
		if err := tx.PutPiece(c, data); err != nil {
			t.Fatal(err)
		}
	}
	if root >= 0 {
		r, _ := piece(root, 1000)
		tx.Pin(r)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestBucketMembership(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	b1, b2 := store.Bucket{1}, store.Bucket{2}
	put := func(b *store.Bucket, root int, pieces ...int) { t.Helper(); putIn(t, s, b, root, pieces...) }
	buckets := func(i int) []store.Bucket {
		t.Helper()
		c, _ := piece(i, 1000)
		bs, err := s.Buckets(c)
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	files := func(b store.Bucket) []cid.Cid {
		t.Helper()
		var out []cid.Cid
		if err := s.BucketFiles(ctx, b, func(c cid.Cid, added time.Time) error {
			if time.Since(added) > time.Minute || added.After(time.Now()) {
				t.Errorf("%s added at %s", c, added)
			}
			out = append(out, c)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}

	put(nil, 0, 0, 1) // no bucket: public
	put(&b1, 2, 2, 1) // piece 1 is already stored: it joins b1 all the same
	put(&b2, 2, 2, 3) // the same file in a second bucket
	if got := buckets(0); len(got) != 0 {
		t.Errorf("piece put without a bucket is in %x", got)
	}
	if got := buckets(1); !slices.Equal(got, []store.Bucket{b1}) {
		t.Errorf("piece 1 in %x, want b1", got)
	}
	if got := buckets(2); !slices.Equal(got, []store.Bucket{b1, b2}) {
		t.Errorf("piece 2 in %x, want b1 and b2", got)
	}
	r2, _ := piece(2, 1000)
	if got := files(b1); !slices.Equal(got, []cid.Cid{r2}) {
		t.Errorf("b1 lists %v, want %s", got, r2)
	}
	if got := files(store.Bucket{3}); len(got) != 0 {
		t.Errorf("an empty bucket lists %v", got)
	}
	if ok, err := s.InBucketFile(b2, r2); err != nil || !ok {
		t.Errorf("InBucketFile(b2, %s) = %v, %v", r2, ok, err)
	}
	// Unrooted from b2, the file is b1's still, and cache for b2.
	if err := s.Unroot(b2, r2); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.InBucketFile(b2, r2); ok {
		t.Errorf("after Unroot(b2, %s) it is a file of b2 still", r2)
	}
	if got := files(b1); !slices.Equal(got, []cid.Cid{r2}) {
		t.Errorf("after Unroot from b2, b1 lists %v, want %s", got, r2)
	}
	cached := 0
	s.Cached(ctx, func(f store.CachedFile) error {
		if f.Root == r2 {
			cached++
		}
		return nil
	})
	if cached != 1 {
		t.Errorf("the unrooted file is cache %d times, want once", cached)
	}

	// Memberships survive a reopen; a deleted piece stored again is in no
	// bucket until it is put into one.
	s.Close()
	s = open(t, dir, 0)
	if got := buckets(1); !slices.Equal(got, []store.Bucket{b1}) {
		t.Errorf("after reopen piece 1 in %x, want b1", got)
	}
	c1, _ := piece(1, 1000)
	if err := s.Delete(c1); err != nil {
		t.Fatal(err)
	}
	put(nil, 0, 1)
	if got := buckets(1); len(got) != 0 {
		t.Errorf("piece deleted and put again without a bucket is in %x", got)
	}
}

// TestReach: a piece put in no bucket and in a bucket, in either order,
// is in both, so a public file sharing a chunk with a private one keeps
// it public; a piece from before memberships of no bucket were recorded
// stays in no bucket when it joins one; a Tx records what Member says.
func TestReach(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	b1, b2 := store.Bucket{1}, store.Bucket{2}
	put := func(b *store.Bucket, pieces ...int) { t.Helper(); putIn(t, s, b, -1, pieces...) }
	reach := func(i int, buckets []store.Bucket, none bool) {
		t.Helper()
		c, _ := piece(i, 1000)
		got, gotNone, err := s.Reach(c)
		if err != nil || !slices.Equal(got, buckets) || gotNone != none {
			t.Errorf("piece %d: in %x, none %v (%v); want %x, none %v", i, got, gotNone, err, buckets, none)
		}
	}
	put(nil, 1)
	put(&b1, 1, 2)
	put(&b1, 3)
	put(nil, 3)
	reach(1, []store.Bucket{b1}, true)
	reach(2, []store.Bucket{b1}, false)
	reach(3, []store.Bucket{b1}, true)
	reach(9, nil, false) // not stored

	// A piece of an older store: no membership at all.
	put(nil, 4)
	s.Close()
	store.DropNoBucket(t, dir)
	s = open(t, dir, 0)
	reach(4, nil, false)
	put(&b2, 4)
	reach(4, []store.Bucket{b2}, true)

	tx := s.Begin()
	c5, d5 := piece(5, 1000)
	if err := tx.PutPiece(c5, d5); err != nil {
		t.Fatal(err)
	}
	tx.Member(c5, b2)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	reach(5, []store.Bucket{b2}, true)
	if err := s.Delete(c5); err != nil {
		t.Fatal(err)
	}
	reach(5, nil, false)
}
