package store_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// putInPlace writes size random bytes to a new file in dir and puts it
// in place, pinned; it returns the root, the file's path and its bytes.
func putInPlace(t *testing.T, s *store.Store, dir string, seed byte, size int) (cid.Cid, string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed, 'p'}).Read(data)
	path := filepath.Join(dir, "file-"+string('a'+rune(seed)))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tx := s.Begin()
	p, err := tx.Place(path, f)
	if err != nil {
		t.Fatal(err)
	}
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize = 64 << 10
	res, err := pieces.Build(ctx, bytes.NewReader(data), tx.InPlace(p), opt)
	if err != nil {
		tx.Discard()
		t.Fatal(err)
	}
	tx.Pin(res.Root)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return res.Root, path, data
}

// dataPieces lists the file's data pieces in order.
func dataPieces(t *testing.T, s *store.Store, root cid.Cid) []cid.Cid {
	t.Helper()
	d, err := s.GetPiece(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pieces.Decode(root, d)
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for _, l := range p.Links {
		out = append(out, l.CID)
	}
	return out
}

// A file put in place takes no block bytes, reads back whole, after a
// reopen too, and is listed by file.
func TestInPlaceReadsAndReopens(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	s := open(t, dir, 0)
	before, _ := s.Usage()
	root, path, data := putInPlace(t, s, files, 1, 1<<20+123)
	mustRead(t, s, root, data)
	u, _ := s.Usage()
	if want := uint64(len(data) - pieces.DefaultInline); u.InPlaceBytes != want || u.InPlacePieces != 16 {
		t.Fatalf("in place: %d pieces, %d bytes; want 16, %d", u.InPlacePieces, u.InPlaceBytes, want)
	}
	if grew := u.DiskBytes - before.DiskBytes; grew > 8<<10 {
		t.Fatalf("block files grew by %d bytes for a file put in place", grew)
	}
	s.Close()
	s = open(t, dir, 0)
	mustRead(t, s, root, data)
	ls, err := s.InPlace(ctx)
	if err != nil || len(ls) != 1 || ls[0].Path != path || ls[0].Pieces != 16 {
		t.Fatalf("InPlace: %+v, %v", ls, err)
	}
	if n, bad := verifyAll(t, s); bad != 0 || n != 17 {
		t.Fatalf("verify: %d checked, %d bad", n, bad)
	}
}

// A byte changed in the file, or the file cut short, fails the pieces it
// touches with an error naming the file and the CID and drops them; the
// other pieces still read, hashed since the file changed. A file deleted
// takes all its pieces with it. The user's file is never written.
func TestInPlaceChangedOrGone(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	s := open(t, dir, 0)
	root, path, data := putInPlace(t, s, files, 2, 1<<20)
	ps := dataPieces(t, s, root)

	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(pieces.DefaultInline + 3*(64<<10) + 10) // in the fourth piece
	if _, err := f.WriteAt([]byte{data[off] ^ 1}, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = s.GetPiece(ctx, ps[3])
	var pe *store.PlacedError
	if !errors.As(err, &pe) || !errors.Is(err, pieces.ErrCorrupt) || pe.Path != path || pe.CID != ps[3] {
		t.Fatalf("read of the changed piece: %v", err)
	}
	if has, _ := s.Has(ps[3]); has {
		t.Fatal("the changed piece is still indexed")
	}
	if _, err := s.GetPiece(ctx, ps[4]); err != nil {
		t.Fatalf("an unchanged piece of the changed file: %v", err)
	}

	if err := os.Truncate(path, int64(len(data)-100<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPiece(ctx, ps[len(ps)-1]); !errors.As(err, &pe) {
		t.Fatalf("read past the end of the truncated file: %v", err)
	}
	if has, _ := s.Has(ps[len(ps)-1]); has {
		t.Fatal("the piece past the end is still indexed")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPiece(ctx, ps[0]); !errors.As(err, &pe) || !pe.Gone {
		t.Fatalf("read from the deleted file: %v", err)
	}
	for _, c := range ps {
		if has, _ := s.Has(c); has {
			t.Fatalf("piece %s of the deleted file is still indexed", c)
		}
	}
	if u, _ := s.Usage(); u.InPlacePieces != 0 || u.InPlaceBytes != 0 {
		t.Fatalf("in place after the file went: %d pieces, %d bytes", u.InPlacePieces, u.InPlaceBytes)
	}
	if ls, _ := s.InPlace(ctx); len(ls) != 0 {
		t.Fatalf("InPlace lists %+v", ls)
	}
}

// A file replaced at its path is another file: its pieces are not served
// from it.
func TestInPlaceReplacedFile(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	s := open(t, dir, 0)
	root, path, data := putInPlace(t, s, files, 3, 256<<10)
	ps := dataPieces(t, s, root)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil { // the same bytes, another file
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	var pe *store.PlacedError
	if _, err := s.GetPiece(ctx, ps[0]); !errors.As(err, &pe) || !pe.Gone {
		t.Fatalf("read after the file was replaced: %v", err)
	}
}

// GC drops unpinned in-place pieces from the index and leaves the file
// as it was: no hole is punched in it.
func TestGCLeavesInPlaceFiles(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	s := open(t, dir, 0)
	root, path, data := putInPlace(t, s, files, 4, 1<<20)
	mustRead(t, s, root, data) // the store opens the file
	if err := s.Unpin(root); err != nil {
		t.Fatal(err)
	}
	res, err := s.GC(ctx)
	if err != nil || res.Removed != 17 {
		t.Fatalf("GC: %+v, %v", res, err)
	}
	if res.Freed > 8<<10 {
		t.Fatalf("GC says it freed %d bytes, most of them in the user's file", res.Freed)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the in-place file after GC: %d bytes, %v", len(got), err)
	}
	if u, _ := s.Usage(); u.InPlacePieces != 0 || u.Pieces != 0 {
		t.Fatalf("after GC: %+v", u)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "blocks")); len(ents) != 1 {
		t.Fatalf("GC made block files for in-place pieces: %v", ents)
	}
	// The file left without pieces is closed: deleting it gives its
	// space back.
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if to, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); to == path {
			t.Fatalf("the store still holds %s open after GC dropped its last piece", path)
		}
	}
}

// A Tx whose placed file's path names another file at commit fails, and
// indexes nothing.
func TestInPlaceCommitChecksThePath(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	s := open(t, dir, 0)
	path := filepath.Join(files, "out")
	f, err := os.Create(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, data := piece(1, 4096)
	f.Write(data)
	tx := s.Begin()
	p, err := tx.Place(path, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutPlaced(p, c, store.SpanOf(0, data)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("commit of pieces in a file the path does not name succeeded")
	}
	if has, _ := s.Has(c); has {
		t.Fatal("the piece was indexed")
	}
	if _, err := tx.Place("relative/path", f); err == nil {
		t.Fatal("Place took a relative path")
	}
}
