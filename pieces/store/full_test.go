package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"syscall"

	"github.com/ddc-project/ddc/internal/smallfs"
	"github.com/ddc-project/ddc/pieces/store"
)

// fullStore opens a store on a 64 MiB filesystem, puts 10 pieces, and
// fills the filesystem up to leave bytes free; removing filler frees it.
func fullStore(t *testing.T, direct bool, leave int64) (fs, dir string, s *store.Store, kept map[cid.Cid][]byte, filler string) {
	fs = smallfs.Mount(t, 64<<20)
	dir = filepath.Join(fs, "store")
	s = open(t, dir, 8<<20, direct)
	kept = putAll(t, s, 10, 100_000)
	return fs, dir, s, kept, smallfs.Fill(t, fs, leave)
}

// TestFullDisk fills a real filesystem (ext4 on a loop device, so direct
// I/O is what fails, not a fallback): a put that does not fit fails with
// ENOSPC naming its own piece and gives its space back; a small put whose
// bytes were staged beside it fails naming its own piece (direct mode) or
// commits (buffered mode, its bytes were written); reads go on; once space
// is freed, puts succeed without reopening the store.
func TestFullDisk(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		fs, dir, s, kept, filler := fullStore(t, direct, 3<<20)

		free := smallfs.Free(t, fs)
		if _, err := putTooMuch(s, 1000); err != nil {
			t.Fatal(err)
		}
		if after := smallfs.Free(t, fs); after < free-64<<10 {
			t.Fatalf("the failed put kept its space: %d bytes free before it, %d after", free, after)
		}
		checkAll(t, s, kept)

		small := s.Begin()
		cs, bs := piece(900, 5000)
		if err := small.PutPiece(cs, bs); err != nil {
			t.Fatal(err)
		}
		big, err := putTooMuch(s, 2000)
		if err != nil {
			t.Fatal(err)
		}
		err = small.Commit()
		switch {
		case direct && err == nil:
			t.Fatal("a put staged with bytes whose write failed was committed")
		case err != nil && (!strings.Contains(err.Error(), cs.String()) || mentions(err, big)):
			t.Fatalf("the small put's error does not name its own piece %s: %v", cs, err)
		case err == nil:
			kept[cs] = bs
		}
		checkAll(t, s, kept)
		if _, err := s.Usage(); err != nil {
			t.Fatalf("usage on a full disk: %v", err)
		}

		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		tx := s.Begin()
		for i := range 12 {
			c, b := piece(3000+i, 256<<10)
			if err := tx.PutPiece(c, b); err != nil {
				t.Fatalf("put after space came back: %v", err)
			}
			kept[c] = b
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit after space came back: %v", err)
		}
		checkAll(t, s, kept)
		s.Close()
		checkAll(t, open(t, dir, 8<<20, direct), kept)
	})
}

// putTooMuch puts 256 KiB pieces numbered from first until the disk is
// full, and checks the put's error: ENOSPC, naming one of its pieces. It
// returns the pieces it tried.
func putTooMuch(s *store.Store, first int) ([]cid.Cid, error) {
	tx := s.Begin()
	defer tx.Discard()
	var mine []cid.Cid
	var err error
	for i := first; i < first+200 && err == nil; i++ {
		c, b := piece(i, 256<<10)
		mine = append(mine, c)
		err = tx.PutPiece(c, b)
	}
	if err == nil {
		err = tx.Commit()
	}
	if !errors.Is(err, syscall.ENOSPC) {
		return mine, errors.New("a put larger than the free space: " + errString(err))
	}
	if !mentions(err, mine) {
		return mine, errors.New("the error of a put that did not fit names none of its pieces: " + err.Error())
	}
	return mine, nil
}

func mentions(err error, cs []cid.Cid) bool {
	for _, c := range cs {
		if strings.Contains(err.Error(), c.String()) {
			return true
		}
	}
	return false
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestFullIndex fills the disk to the last byte, so that the index's own
// writes fail: reads go on, on the open store and on one opened on the
// full disk; puts fail with ENOSPC naming their piece; once space is
// freed, puts succeed on both without another open.
func TestFullIndex(t *testing.T) {
	modes(t, func(t *testing.T, direct bool) {
		_, dir, s, kept, filler := fullStore(t, direct, 0)

		tiny := func(s *store.Store, i int) error {
			c, b := piece(i, 100)
			tx := s.Begin()
			defer tx.Discard()
			err := tx.PutPiece(c, b)
			if err == nil {
				err = tx.Commit()
			}
			switch {
			case err == nil:
				kept[c] = b
			case !errors.Is(err, syscall.ENOSPC) || !mentions(err, []cid.Cid{c}):
				t.Fatalf("a put on a full disk: %v", err)
			}
			return err
		}
		failed := 0
		for i := range 100 {
			if tiny(s, 5000+i) != nil {
				failed++
			}
		}
		if failed == 0 {
			t.Fatal("100 puts on a full disk all succeeded")
		}
		checkAll(t, s, kept)
		if err := s.List(ctx, func(cid.Cid, int) error { return nil }); err != nil {
			t.Fatalf("list on a full disk: %v", err)
		}
		s.Close()

		s = open(t, dir, 8<<20, direct)
		checkAll(t, s, kept)
		if tiny(s, 6000) == nil {
			t.Fatal("a put into a store opened on a full disk succeeded")
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := tiny(s, 7000+i); err != nil {
				t.Fatalf("put after space came back: %v", err)
			}
		}
		checkAll(t, s, kept)
		s.Close()
		checkAll(t, open(t, dir, 8<<20, direct), kept)
	})
}
