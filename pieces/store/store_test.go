package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"

	"github.com/ddc-project/ddc/internal/leakcheck"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var ctx = context.Background()

// modes runs f with direct I/O on and off.
func modes(t *testing.T, f func(t *testing.T, direct bool)) {
	for _, direct := range []bool{true, false} {
		t.Run(map[bool]string{true: "direct", false: "buffered"}[direct], func(t *testing.T) { f(t, direct) })
	}
}

// supportsDirect reports whether dir's filesystem takes O_DIRECT.
func supportsDirect(t testing.TB, dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|unix.O_DIRECT, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

func open(t testing.TB, dir string, blockSize int64, direct ...bool) *store.Store {
	t.Helper()
	opts := store.DefaultOptions()
	if blockSize > 0 {
		opts.BlockSize = blockSize
	}
	opts.DirectIO = len(direct) == 0 || direct[0]
	s, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if want := opts.DirectIO && supportsDirect(t, dir); u.DirectIO != want {
		t.Fatalf("direct I/O %v, want %v", u.DirectIO, want)
	}
	return s
}

func piece(i, n int) (cid.Cid, []byte) {
	b := bytes.Repeat([]byte(fmt.Sprintf("piece-%d.", i)), n/8+1)[:n]
	return pieces.SHA2_256.Sum(pieces.CodecRaw, b), b
}

func putAll(t *testing.T, s *store.Store, n, size int) map[cid.Cid][]byte {
	t.Helper()
	tx := s.Begin()
	m := make(map[cid.Cid][]byte)
	for i := range n {
		c, b := piece(i, size)
		if err := tx.PutPiece(c, b); err != nil {
			t.Fatal(err)
		}
		m[c] = b
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return m
}

func checkAll(t *testing.T, s *store.Store, m map[cid.Cid][]byte) {
	t.Helper()
	for c, want := range m {
		got, err := s.GetPiece(ctx, c)
		if err != nil {
			t.Fatalf("get %s: %v", c, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("get %s: other bytes", c)
		}
	}
}

// flipByte flips the bits of the byte at off in dir's first block file and
// returns that file's path.
func flipByte(t *testing.T, dir string, off int) string {
	t.Helper()
	blk := filepath.Join(dir, "blocks", "00000001.blk")
	raw, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	raw[off] ^= 0xff
	if err := os.WriteFile(blk, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return blk
}

func TestPutGetReopen(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		dir := t.TempDir()
		s := open(t, dir, 0, direct)
		m := putAll(t, s, 50, 10_000)
		checkAll(t, s, m)
		u, err := s.Usage()
		if err != nil || u.Pieces != 50 || u.PieceBytes != 500_000 || u.DiskBytes != 500_000 || u.Blocks != 1 {
			t.Fatalf("usage %+v, %v", u, err)
		}
		// The same pieces again: nothing new is stored.
		putAll(t, s, 50, 10_000)
		if u2, _ := s.Usage(); u2 != u {
			t.Fatalf("putting the same pieces again changed usage: %+v -> %+v", u, u2)
		}
		listed := 0
		if err := s.List(ctx, func(c cid.Cid, size int) error {
			if len(m[c]) != size {
				return fmt.Errorf("listed %s with size %d", c, size)
			}
			listed++
			return nil
		}); err != nil || listed != 50 {
			t.Fatalf("list: %d, %v", listed, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		s = open(t, dir, 0, direct)
		checkAll(t, s, m)
		if u2, _ := s.Usage(); u2 != u {
			t.Fatalf("usage after reopen %+v, want %+v", u2, u)
		}
	})
}

func TestNotFoundAndDelete(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	m := putAll(t, s, 3, 100)
	missing, _ := piece(99, 100)
	if _, err := s.GetPiece(ctx, missing); !errors.Is(err, pieces.ErrNotFound) || !strings.Contains(err.Error(), missing.String()) {
		t.Fatalf("get missing: %v", err)
	}
	for c := range m {
		if err := s.Delete(c); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Has(c); ok {
			t.Fatal("deleted piece still there")
		}
		if _, err := s.GetPiece(ctx, c); !errors.Is(err, pieces.ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
		break
	}
	if err := s.Delete(missing); err != nil {
		t.Fatalf("deleting an absent piece: %v", err)
	}
	if u, _ := s.Usage(); u.Pieces != 2 || u.PieceBytes != 200 {
		t.Fatalf("usage after delete %+v", u)
	}
}

func TestUncommittedIsInvisibleAndReclaimed(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		dir := t.TempDir()
		s := open(t, dir, 0, direct)
		kept := putAll(t, s, 5, 1000)
		tx := s.Begin()
		c, b := piece(100, 5000)
		if err := tx.PutPiece(c, b); err != nil {
			t.Fatal(err)
		}
		tx.Pin(c)
		if ok, _ := s.Has(c); ok {
			t.Fatal("an uncommitted piece is visible")
		}
		// The process "dies": the store is closed without Commit.
		s.Close()
		blk := filepath.Join(dir, "blocks", "00000001.blk")
		// Buffered mode wrote the tail; direct mode padded the committed
		// end to 4 KiB and kept the uncommitted piece in its stage.
		if fi, _ := os.Stat(blk); fi.Size() <= 5000 {
			t.Fatalf("block has %d bytes before reopen: nothing past the committed end", fi.Size())
		}
		s = open(t, dir, 0, direct)
		if fi, _ := os.Stat(blk); fi.Size() != 5000 {
			t.Fatalf("uncommitted tail not reclaimed: block has %d bytes, want 5000", fi.Size())
		}
		checkAll(t, s, kept)
		if ok, _ := s.Has(c); ok {
			t.Fatal("uncommitted piece appeared after reopen")
		}
		pins := 0
		s.Pins(ctx, func(cid.Cid, time.Time) error { pins++; return nil })
		if pins != 0 {
			t.Fatal("uncommitted pin appeared")
		}
		// Appends go on where the committed data ends.
		more := putAll(t, s, 2, 700)
		checkAll(t, s, more)
		checkAll(t, s, kept)
	})
}

func TestBlocksSealAndRecover(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		dir := t.TempDir()
		s := open(t, dir, 1<<20, direct)
		m := putAll(t, s, 40, 100_000) // 4 MB over 1 MiB blocks
		u, _ := s.Usage()
		if u.Blocks < 4 {
			t.Fatalf("%d blocks, want at least 4", u.Blocks)
		}
		// An interrupted put that sealed into a new block: that block goes.
		tx := s.Begin()
		for i := 1000; i < 1030; i++ {
			c, b := piece(i, 100_000)
			if err := tx.PutPiece(c, b); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		s = open(t, dir, 1<<20, direct)
		if u2, _ := s.Usage(); u2.Blocks != u.Blocks || u2.DiskBytes != u.DiskBytes {
			t.Fatalf("after recovery %+v, want %+v", u2, u)
		}
		checkAll(t, s, m)
	})
}

func TestCorruptionNamesThePiece(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		dir := t.TempDir()
		s := open(t, dir, 0, direct)
		m := putAll(t, s, 3, 1000)
		blk := flipByte(t, dir, 1500) // inside the second piece
		bad, _ := piece(1, 1000)      // pieces were appended in order: 1 is at 1000-2000
		for c := range m {
			_, err := s.GetPiece(ctx, c)
			if c.Equals(bad) {
				var ce *pieces.CorruptError
				if !errors.As(err, &ce) || !ce.CID.Equals(bad) || !strings.Contains(err.Error(), bad.String()) {
					t.Fatalf("corrupted piece: %v", err)
				}
			} else if err != nil {
				t.Fatalf("intact piece %s: %v", c, err)
			}
		}
		n, err := s.VerifyAll(ctx, func(c cid.Cid, err error) {
			if !c.Equals(bad) {
				t.Errorf("VerifyAll blamed %s", c)
			}
		})
		if err != nil || n != 3 {
			t.Fatalf("VerifyAll: %d %v", n, err)
		}
		// A truncated block file: the pieces past the end are corrupt.
		os.Truncate(blk, 2500)
		c2, _ := piece(2, 1000)
		if _, err := s.GetPiece(ctx, c2); !errors.Is(err, pieces.ErrCorrupt) || !strings.Contains(err.Error(), c2.String()) {
			t.Fatalf("truncated block: %v", err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	if _, err := store.Open(dir, store.DefaultOptions()); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	s.Close()
	bad := store.DefaultOptions()
	bad.BlockSize = 10
	if _, err := store.Open(t.TempDir(), bad); err == nil {
		t.Fatal("block size 10 accepted")
	}
	// A store written by a future format.
	store.SetVersion(t, dir, 99)
	if _, err := store.Open(dir, store.DefaultOptions()); !errors.Is(err, store.ErrVersion) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("future version: %v", err)
	}
}

func TestConcurrentPutsAndReads(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		s := open(t, t.TempDir(), 1<<20, direct)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 4 {
			wg.Go(func() {
				for round := range 5 {
					tx := s.Begin()
					var mine []cid.Cid
					for i := range 10 {
						c, b := piece(w*1000+round*10+i%7, 30_000) // overlapping pieces across rounds
						if err := tx.PutPiece(c, b); err != nil {
							errs <- err
							return
						}
						mine = append(mine, c)
					}
					if err := tx.Commit(); err != nil {
						errs <- err
						return
					}
					for _, c := range mine {
						if _, err := s.GetPiece(ctx, c); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		u, _ := s.Usage()
		n := 0
		s.List(ctx, func(cid.Cid, int) error { n++; return nil })
		if u.Pieces != uint64(n) {
			t.Fatalf("usage counts %d pieces, list finds %d", u.Pieces, n)
		}
	})
}

// TestSyncWrittenDuringAppends syncs what is written while a Tx appends
// over several blocks, as a download's keeper does: the syncs succeed, and
// the pieces commit and read back whole.
func TestSyncWrittenDuringAppends(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		dir := t.TempDir()
		s := open(t, dir, 1<<20, direct)
		done := make(chan struct{})
		syncs := make(chan error, 1)
		go func() {
			n := 0
			for {
				select {
				case <-done:
					if n == 0 {
						syncs <- errors.New("no sync ran while the Tx appended")
						return
					}
					syncs <- nil
					return
				default:
				}
				if err := s.SyncWritten(); err != nil {
					syncs <- err
					return
				}
				n++
			}
		}()
		m := putAll(t, s, 40, 100_000) // 4 MB over 1 MiB blocks
		close(done)
		if err := <-syncs; err != nil {
			t.Fatal(err)
		}
		checkAll(t, s, m)
		s.Close()
		if err := s.SyncWritten(); err != nil {
			t.Fatalf("sync after close: %v", err)
		}
		checkAll(t, open(t, dir, 1<<20, direct), m)
	})
}

// TestUnalignedAppendsAcrossCommits writes odd-sized pieces over many 4 KiB
// and stage boundaries, committing between groups, so direct mode rewrites
// committed partial blocks and flushes full stages at unaligned ends.
func TestUnalignedAppendsAcrossCommits(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		dir := t.TempDir()
		s := open(t, dir, 0, direct)
		all := make(map[cid.Cid][]byte)
		for round := range 6 {
			tx := s.Begin()
			for i := range 7 {
				c, b := piece(round*100+i, 333_333+round*7+i)
				if err := tx.PutPiece(c, b); err != nil {
					t.Fatal(err)
				}
				all[c] = b
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			checkAll(t, s, all)
		}
		u, _ := s.Usage()
		s.Close()
		s = open(t, dir, 0, direct)
		checkAll(t, s, all)
		fi, err := os.Stat(filepath.Join(dir, "blocks", "00000001.blk"))
		if err != nil || uint64(fi.Size()) != u.DiskBytes || u.DiskBytes != u.PieceBytes {
			t.Fatalf("block file %d bytes, usage %+v", fi.Size(), u)
		}
	})
}

// TestReadOnly: a read-only open reads what a writer committed, shares
// the lock with other readers but not with a writer, refuses writes, and
// changes nothing on disk, so it works on a read-only directory.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, 0)
	c := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("kept while read-only"))
	tx := w.Begin()
	if err := tx.PutPiece(c, []byte("kept while read-only")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()

	snapshot := func() string {
		var b strings.Builder
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
			}
			return err
		})
		return b.String()
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			os.Chmod(p, fi.Mode()&^0o222)
		}
		return err
	})
	t.Cleanup(func() {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil {
				os.Chmod(p, fi.Mode()|0o200)
			}
			return err
		})
	})
	before := snapshot()

	ro := store.DefaultOptions()
	ro.ReadOnly = true
	r1, err := store.Open(dir, ro)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := store.Open(dir, ro)
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if got, err := r1.GetPiece(ctx, c); err != nil || string(got) != "kept while read-only" {
		t.Fatalf("read %s: %q, %v", c, got, err)
	}
	if n, err := r2.VerifyAll(ctx, func(c cid.Cid, err error) { t.Errorf("%s: %v", c, err) }); err != nil || n != 1 {
		t.Fatalf("verify: %d pieces, %v", n, err)
	}
	if _, err := store.Open(dir, store.DefaultOptions()); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("writer opened beside readers: %v", err)
	}
	tx = r1.Begin()
	if err := tx.PutPiece(pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("x")), []byte("x")); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("put on a read-only store: %v", err)
	}
	tx.Discard()
	tx = r1.Begin()
	tx.Pin(c)
	if err := tx.Commit(); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("pin on a read-only store: %v", err)
	}
	if err := r1.Delete(c); !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("delete on a read-only store: %v", err)
	}
	r1.Close()
	r2.Close()
	if after := snapshot(); after != before {
		t.Fatalf("a read-only open changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := store.Open(filepath.Join(dir, "missing"), ro); err == nil {
		t.Fatal("read-only open of a missing store succeeded")
	}
}

// TestMissingIndexKeepsBlocks: a store whose index folder is gone (or
// replaced by a new one) is refused, with its block files untouched, and
// reads again once the index is back.
func TestMissingIndexKeepsBlocks(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	m := putAll(t, s, 20, 100_000)
	s.Close()
	blocks := func() map[string]int64 {
		out := map[string]int64{}
		ents, _ := os.ReadDir(filepath.Join(dir, "blocks"))
		for _, e := range ents {
			fi, _ := e.Info()
			out[e.Name()] = fi.Size()
		}
		return out
	}
	before := blocks()
	if err := os.Rename(filepath.Join(dir, "index"), filepath.Join(dir, "index.moved")); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first open leaves an empty index behind; the second sees it
		_, err := store.Open(dir, store.DefaultOptions())
		if !errors.Is(err, store.ErrIndexMissing) || !strings.Contains(err.Error(), "holds 1 block file(s)") {
			t.Fatalf("open without the index: %v", err)
		}
		if after := blocks(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("block files changed: %v -> %v", before, after)
		}
	}
	os.RemoveAll(filepath.Join(dir, "index"))
	if err := os.Rename(filepath.Join(dir, "index.moved"), filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	checkAll(t, open(t, dir, 0), m)
}

// TestFailedSyncFailsEveryWriter: two transactions write to one block
// file; the first one's sync fails (lost writeback, which the kernel
// reports once) and the second one's would succeed. Neither commits: the
// second's pieces may be among the lost pages.
func TestFailedSyncFailsEveryWriter(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		s := open(t, t.TempDir(), 0, direct)
		a, b := s.Begin(), s.Begin()
		ca, da := piece(1, 50_000)
		cb, db := piece(2, 50_000)
		if err := a.PutPiece(ca, da); err != nil {
			t.Fatal(err)
		}
		if err := b.PutPiece(cb, db); err != nil {
			t.Fatal(err)
		}
		store.FailNextSync(t)
		if err := a.Commit(); !errors.Is(err, unix.EIO) {
			t.Fatalf("commit whose sync failed: %v", err)
		}
		if err := b.Commit(); err == nil {
			t.Fatal("a commit over the same block file after a failed sync succeeded")
		}
		for _, c := range []cid.Cid{ca, cb} {
			if has, _ := s.Has(c); has {
				t.Errorf("%s indexed after its block's sync failed", c)
			}
		}
	})
}

// TestPutAgainRepairs: putting a piece again replaces a stored copy that
// fails its checksum, and leaves an intact one (and the totals) alone.
func TestPutAgainRepairs(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		dir := t.TempDir()
		s := open(t, dir, 0, direct)
		m := putAll(t, s, 3, 1000)
		u, _ := s.Usage()
		flipByte(t, dir, 1500) // inside the second piece
		bad, _ := piece(1, 1000)
		if _, err := s.GetPiece(ctx, bad); !errors.Is(err, pieces.ErrCorrupt) {
			t.Fatalf("corrupted piece: %v", err)
		}
		putAll(t, s, 3, 1000)
		checkAll(t, s, m)
		u2, _ := s.Usage()
		if u2.Pieces != u.Pieces || u2.PieceBytes != u.PieceBytes {
			t.Fatalf("usage after the repair %+v, before %+v", u2, u)
		}
		if u2.DiskBytes <= u.DiskBytes {
			t.Fatalf("no new copy written: disk bytes %d -> %d", u.DiskBytes, u2.DiskBytes)
		}
	})
}
