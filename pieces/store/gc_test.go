package store_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// file puts size random bytes (seeded) as a ddc file of 64 KiB chunks,
// pinned when pin, in bucket b when not nil, and returns its root.
func file(t testing.TB, s *store.Store, seed uint64, size int, pin bool, b *store.Bucket) (cid.Cid, []byte) {
	t.Helper()
	return fileOf(t, s, 64<<10, seed, size, pin, b)
}

// fileOf is file with chunks of chunk bytes.
func fileOf(t testing.TB, s *store.Store, chunk int, seed uint64, size int, pin bool, b *store.Bucket) (cid.Cid, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(data)
	tx := s.Begin()
	if b != nil {
		tx.InBucket(*b)
	}
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize = chunk
	res, err := pieces.Build(ctx, bytes.NewReader(data), tx, opt)
	if err != nil {
		tx.Discard()
		t.Fatal(err)
	}
	if pin {
		tx.Pin(res.Root)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return res.Root, data
}

// readFile reads root whole from s.
func readFile(s *store.Store, root cid.Cid) ([]byte, error) {
	f, err := pieces.Open(ctx, s, root)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func mustRead(t testing.TB, s *store.Store, root cid.Cid, want []byte) {
	t.Helper()
	got, err := readFile(s, root)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %s: %d bytes, %v; want %d bytes", root, len(got), err, len(want))
	}
}

// GC drops what no root reaches and keeps the pinned files, the files
// kept for a bucket, the held ones and the pieces a kept file shares
// with a dropped one; the space comes back, and a second GC finds
// nothing to do.
func TestGCDropsWhatNoRootReaches(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	pinned, pinnedData := file(t, s, 1, 3<<20, true, nil)
	cached, _ := file(t, s, 2, 3<<20, false, nil)
	unpinned, _ := file(t, s, 3, 3<<20, true, nil)
	if err := s.Unpin(unpinned); err != nil {
		t.Fatal(err)
	}
	b := store.Bucket{7}
	kept, keptData := file(t, s, 4, 1<<20, true, &b)
	if err := s.Unpin(kept); err != nil { // still the bucket's
		t.Fatal(err)
	}
	held, heldData := file(t, s, 5, 1<<20, false, nil)
	release := s.Hold(held)
	// A cached file sharing every chunk of a pinned one: only its own
	// descriptor goes.
	sharer, _ := file(t, s, 1, 3<<20-1, false, nil)
	before, _ := s.Usage()

	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{cached, unpinned, sharer} {
		if has, _ := s.Has(c); has {
			t.Fatalf("GC kept %s, which no root reaches", c)
		}
		if _, err := readFile(s, c); !errors.Is(err, pieces.ErrNotFound) {
			t.Fatalf("read of collected %s: %v, want not found", c, err)
		}
	}
	mustRead(t, s, pinned, pinnedData)
	mustRead(t, s, kept, keptData)
	mustRead(t, s, held, heldData)
	after, _ := s.Usage()
	if res.Removed == 0 || after.Pieces != before.Pieces-uint64(res.Removed) || after.PieceBytes != before.PieceBytes-res.Freed {
		t.Fatalf("GC said %+v; usage went from %+v to %+v", res, before, after)
	}
	if res.Freed < 6<<20 || after.AllocatedBytes > before.AllocatedBytes-5<<20 {
		t.Fatalf("GC freed %d bytes; allocated %d -> %d: the space did not come back", res.Freed, before.AllocatedBytes, after.AllocatedBytes)
	}
	if after.DeadBytes > 1<<20 {
		t.Fatalf("%d dead bytes left after GC", after.DeadBytes)
	}

	release()
	res, err = s.GC(ctx)
	if err != nil || res.Removed == 0 {
		t.Fatalf("GC after the hold ended: %+v, %v; want the held file dropped", res, err)
	}
	if res, err = s.GC(ctx); err != nil || res.Removed != 0 {
		t.Fatalf("a second GC: %+v, %v; want nothing to drop", res, err)
	}
}

// A read that looked a piece up before GC dropped it still gets the
// piece's bytes: the hole is punched only once the read is over.
func TestGCStagesTheDelete(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	c, _ := file(t, s, 9, 1<<20, false, nil)
	desc, err := s.GetPiece(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pieces.Decode(c, desc)
	chunk := p.Links[0].CID
	want, _ := s.GetPiece(ctx, chunk)

	gcDone := make(chan struct{})
	var got []byte
	store.DuringRead(s, chunk, func() { // the read has its entry
		go func() {
			defer close(gcDone)
			s.GC(ctx)
		}()
		store.WaitDropped(t, s, chunk)
	}, func(b []byte) { got = b })
	if !bytes.Equal(got, want) {
		t.Fatalf("a read begun before GC dropped its piece got %d other bytes", len(got))
	}
	<-gcDone
	if has, _ := s.Has(chunk); has {
		t.Fatal("GC kept the piece")
	}
}

// Puts, pins, unpins and held reads go on while GC runs in a loop: no
// reader sees an error, every pinned file stays whole, and what was
// unpinned or cached goes once GC runs alone.
func TestGCBesideEverything(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	type f struct {
		root cid.Cid
		data []byte
	}
	const runs = 40
	var (
		mu     sync.Mutex
		pinned []f
		seed   atomic.Uint64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		errs   = make(chan error, 16)
		done   atomic.Int64 // GC runs over
	)
	for range 4 {
		r, d := file(t, s, seed.Add(1), 512<<10, true, nil)
		pinned = append(pinned, f{r, d})
	}
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	wg.Go(func() { // GC in a loop; the others stop with it
		defer close(stop)
		for range runs {
			if _, err := s.GC(ctx); err != nil {
				report(err)
				return
			}
			done.Add(1)
		}
	})
	for range 3 { // puts, pinned or cached, some sharing chunks
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := seed.Add(1)
				r, d := fileOf(t, s, 16<<10, n%7, 256<<10+int(n%3)<<16, n%2 == 0, nil)
				if n%2 == 0 {
					mu.Lock()
					pinned = append(pinned, f{r, d})
					mu.Unlock()
				}
			}
		})
	}
	wg.Go(func() { // held reads of pinned files, and pin flips
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			pf := pinned[r.IntN(len(pinned))]
			mu.Unlock()
			release := s.Hold(pf.root)
			got, err := readFile(s, pf.root)
			release()
			if err != nil || !bytes.Equal(got, pf.data) {
				report(errors.Join(errors.New("a held read of a pinned file"), err))
				return
			}
			// A cached file held while it is whole stays whole until
			// the hold ends, as a read in progress needs.
			c, data := fileOf(t, s, 16<<10, 1000+r.Uint64N(5), 128<<10, false, nil)
			release = s.Hold(c)
			if s.Complete(ctx, c) == nil {
				// Read it once a whole GC ran after the hold.
				for seen := done.Load(); done.Load() < seen+2; {
					select {
					case <-stop:
						release()
						return
					default:
						runtime.Gosched()
					}
				}
				if got, err := readFile(s, c); err != nil || !bytes.Equal(got, data) {
					release()
					report(errors.Join(errors.New("a held read of a cached file"), err))
					return
				}
			}
			release()
			// Unpin and pin again: the file may lose pieces in between,
			// and Pin then says which.
			if err := s.Unpin(pf.root); err != nil {
				report(err)
				return
			}
			if err := s.Pin(ctx, pf.root); err != nil && !errors.Is(err, pieces.ErrNotFound) {
				report(err)
				return
			} else if err != nil {
				mu.Lock()
				for i := range pinned {
					if pinned[i].root == pf.root {
						pinned = append(pinned[:i], pinned[i+1:]...)
						break
					}
				}
				mu.Unlock()
			}
		}
	})
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for _, pf := range pinned {
		if pin, _ := s.Pinned(pf.root); pin {
			mustRead(t, s, pf.root, pf.data)
		}
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, pf := range pinned {
		if pin, _ := s.Pinned(pf.root); pin {
			mustRead(t, s, pf.root, pf.data)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no pinned file left to check")
	}
	if _, bad := verifyAll(t, s); bad > 0 {
		t.Fatalf("%d pieces fail verification after GC", bad)
	}
	t.Logf("%d GC runs beside puts, pins and reads; %d pinned files whole", runs, n)
}

func verifyAll(t *testing.T, s *store.Store) (n, bad int) {
	t.Helper()
	n, err := s.VerifyAll(ctx, func(c cid.Cid, err error) { bad++; t.Logf("%s: %v", c, err) })
	if err != nil {
		t.Fatal(err)
	}
	return n, bad
}

// GC dropped pieces, then the process stopped before their holes were
// punched: the next Open punches them.
func TestHolesLeftArePunchedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	c, _ := file(t, s, 11, 4<<20, false, nil)
	keep, keepData := file(t, s, 12, 1<<20, true, nil)
	before, _ := s.Usage()
	store.SkipPunch(t)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage(); u.AllocatedBytes < before.AllocatedBytes-1<<20 {
		t.Fatal("holes were punched though the test stopped that")
	}
	s.Close()
	store.PunchAgain()
	s = open(t, dir, 0)
	u, _ := s.Usage()
	if u.AllocatedBytes > before.AllocatedBytes-3<<20 {
		t.Fatalf("allocated %d -> %d after reopening: the holes left were not punched", before.AllocatedBytes, u.AllocatedBytes)
	}
	if has, _ := s.Has(c); has {
		t.Fatal("the dropped file is back")
	}
	mustRead(t, s, keep, keepData)
}

// A download held while GC runs, of a file whose root the store does not
// hold yet and whose chunks it holds for a cached file: the chunks it
// reads during the GC are kept, so the file it pins at the end is whole.
func TestGCKeepsWhatAHeldReadReads(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{77}).Read(data)
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize = 64 << 10
	txA := s.Begin()
	if _, err := pieces.Build(ctx, bytes.NewReader(data), txA, opt); err != nil { // cached: no pin
		t.Fatal(err)
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	// The same bytes with a tag: another root over the same chunks,
	// built aside, as the holder the download asks has it.
	other := open(t, t.TempDir(), 0)
	otx := other.Begin()
	opt.Tags = []pieces.Tag{{Key: "name", Value: []byte("b")}}
	b, err := pieces.Build(ctx, bytes.NewReader(data), otx, opt)
	if err != nil || otx.Commit() != nil {
		t.Fatal(err)
	}
	desc, _ := other.GetPiece(ctx, b.Root)
	p, _ := pieces.Decode(b.Root, desc)
	release := s.Hold(b.Root)
	defer release()
	tx := s.Begin()
	store.AfterMark(t, func() {
		for _, l := range p.Links { // the download reads the chunks it finds stored
			if _, err := s.GetPiece(ctx, l.CID); err != nil {
				t.Errorf("chunk %s: %v", l.CID, err)
			}
		}
		if err := tx.PutPiece(b.Root, desc); err != nil { // and keeps the root it fetched
			t.Error(err)
		}
	})
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	tx.Pin(b.Root)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, b.Root); err != nil {
		t.Fatalf("the file pinned after a GC during its download: %v", err)
	}
	mustRead(t, s, b.Root, data)
}

// A block file the disk cut short of its committed end: appends go on in
// a new block, so a GC that drops the pieces the index still places past
// the cut punches nothing that is live.
func TestShortBlockAppendsElsewhere(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	putAll(t, s, 3, 64<<10)
	s.Close()
	blocks, _ := filepath.Glob(filepath.Join(dir, "blocks", "*"))
	if len(blocks) != 1 {
		t.Fatalf("%d block files, want 1", len(blocks))
	}
	if err := os.Truncate(blocks[0], 80<<10); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, 0)
	c, data := file(t, s, 21, 256<<10, true, nil)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	mustRead(t, s, c, data)
	if _, bad := verifyAll(t, s); bad > 0 {
		t.Fatalf("%d bad pieces after the GC", bad)
	}
}
