package store_test

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// A name's roots keep its files and records through GC, whatever else
// lets them go; once unrooted (a pruned history) GC takes them, but not
// what the name still keeps.
func TestNameRootsKeepThroughGC(t *testing.T) {
	s := open(t, t.TempDir(), 1<<20)
	old, _ := file(t, s, 1, 300<<10, false, nil)
	cur, _ := file(t, s, 2, 300<<10, false, nil)
	rec := pieces.SHA2_256.Sum(pieces.CodecDagCBOR, []byte{0xa0}) // an empty map: a record stand-in
	tx := s.Begin()
	if err := tx.PutPiece(rec, []byte{0xa0}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var name, other [32]byte
	name[0], other[0] = 1, 2
	if err := s.RootNamed(name, old, cur, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{old, cur, rec} {
		if _, err := readFile(s, c); err != nil && c != rec {
			t.Fatalf("GC took %s, which a name roots: %v", c, err)
		}
		if has, _ := s.Has(c); !has {
			t.Fatalf("GC took %s, which a name roots", c)
		}
	}
	if n, err := s.UnrootNamed(ctx, other); err != nil || n != 0 {
		t.Fatalf("unrooting another name let %d go: %v", n, err)
	}
	if n, err := s.UnrootNamed(ctx, name, cur, rec); err != nil || n != 1 {
		t.Fatalf("prune let %d go, want 1: %v", n, err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.Has(old); has {
		t.Error("GC kept the pruned version's file")
	}
	if _, err := readFile(s, cur); err != nil {
		t.Errorf("GC took the current version: %v", err)
	}
	var roots []cid.Cid
	s.NamedRoots(ctx, name, func(c cid.Cid) error { roots = append(roots, c); return nil })
	if len(roots) != 2 {
		t.Errorf("name roots %v, want the current file and record", roots)
	}
}
