package pieces_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ddc-project/ddc/pieces"
)

func entries(t *testing.T, s *memStore, n int) []pieces.Link {
	f := build(t, s, []byte("x"), pieces.DefaultBuildOptions())
	es := make([]pieces.Link, n)
	for i := range es {
		es[i] = pieces.Link{Name: fmt.Sprintf("file-%07d.txt", i), CID: f.Root, Size: 1}
	}
	return es
}

func TestDirSmall(t *testing.T) {
	s := newMemStore()
	es := entries(t, s, 3)
	es[1].Tags = []pieces.Tag{{Key: "mode", Value: []byte("755")}}
	slices.Reverse(es)
	res, err := pieces.BuildDir(es, nil, s, pieces.DefaultHash)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pieces != 1 || res.Size != 3 || res.Entries != 3 {
		t.Fatalf("result %+v", res)
	}
	var names []string
	if err := pieces.Entries(context.Background(), s, res.Root, func(l pieces.Link) error {
		names = append(names, l.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"file-0000000.txt", "file-0000001.txt", "file-0000002.txt"}) {
		t.Fatalf("entries %q", names)
	}
	l, _, err := pieces.Lookup(context.Background(), s, res.Root, "file-0000001.txt")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := pieces.EntryTag(l, "mode"); string(v) != "755" {
		t.Fatalf("entry tags %v", l.Tags)
	}
	if _, err := pieces.Open(context.Background(), s, res.Root); !errors.Is(err, pieces.ErrIsDir) {
		t.Fatalf("Open of a directory: %v", err)
	}
	if _, _, err := pieces.Lookup(context.Background(), s, res.Root, "nope"); !errors.Is(err, pieces.ErrNoEntry) {
		t.Fatalf("lookup of a missing name: %v", err)
	}
}

// TestDirLarge: a directory of 100,000 entries is sharded; one name is
// found reading O(log n) pieces, and every entry lists in order.
func TestDirLarge(t *testing.T) {
	s := newMemStore()
	es := entries(t, s, 100_000)
	res, err := pieces.BuildDir(es, nil, s, pieces.DefaultHash)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pieces < 100 {
		t.Fatalf("100,000 entries in %d pieces: not sharded", res.Pieces)
	}
	for _, i := range []int{0, 1, 4567, 50_000, 99_999} {
		name := es[i].Name
		l, read, err := pieces.Lookup(context.Background(), s, res.Root, name)
		if err != nil || l.Name != name {
			t.Fatalf("lookup %q: %v", name, err)
		}
		if read > 3 {
			t.Fatalf("lookup %q read %d pieces", name, read)
		}
	}
	for _, missing := range []string{"", "a", "file-0000000.txs", "zzz"} {
		if _, _, err := pieces.Lookup(context.Background(), s, res.Root, missing); !errors.Is(err, pieces.ErrNoEntry) {
			t.Fatalf("lookup %q: %v", missing, err)
		}
	}
	n := 0
	if err := pieces.Entries(context.Background(), s, res.Root, func(l pieces.Link) error {
		if l.Name != es[n].Name {
			return fmt.Errorf("entry %d is %q, want %q", n, l.Name, es[n].Name)
		}
		n++
		return nil
	}); err != nil || n != len(es) {
		t.Fatalf("listed %d entries: %v", n, err)
	}
	// One more entry rewrites one shard and the path above it.
	before := len(s.m)
	more := append(slices.Clone(es), pieces.Link{Name: "file-0050000.txt~", CID: es[0].CID, Size: 1})
	if _, err := pieces.BuildDir(more, nil, s, pieces.DefaultHash); err != nil {
		t.Fatal(err)
	}
	if added := len(s.m) - before; added > 3 {
		t.Fatalf("adding one entry wrote %d new pieces", added)
	}
}

func TestDirNames(t *testing.T) {
	s := newMemStore()
	f := build(t, s, []byte("x"), pieces.DefaultBuildOptions())
	for _, bad := range []string{"", ".", "..", "../x", "/etc/x", "a/b", "nul\x00", string([]byte{0xff})} {
		_, err := pieces.BuildDir([]pieces.Link{{Name: bad, CID: f.Root, Size: 1}}, nil, s, pieces.DefaultHash)
		if !errors.Is(err, pieces.ErrBadName) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	_, err := pieces.BuildDir([]pieces.Link{{Name: "a", CID: f.Root}, {Name: "a", CID: f.Root}}, nil, s, pieces.DefaultHash)
	if !errors.Is(err, pieces.ErrBadName) {
		t.Errorf("a repeated name: %v", err)
	}
	if a, b, ok := pieces.FoldCollision([]string{"Readme", "x", "README"}); !ok || a != "Readme" || b != "README" {
		t.Errorf("case collision not found: %q %q", a, b)
	}
	// A directory piece written by someone else, with an unsafe name or
	// out of order, does not decode.
	for _, p := range []pieces.Piece{
		{Kind: pieces.KindDir, Links: []pieces.Link{{Name: "..", CID: f.Root}}},
		{Kind: pieces.KindDir, Links: []pieces.Link{{Name: "b", CID: f.Root}, {Name: "a", CID: f.Root}}},
		{Kind: pieces.KindDir, Data: []byte("x")},
		{Kind: "tree"},
	} {
		if _, err := p.Encode(); err == nil {
			t.Errorf("piece %+v encodes", p)
		}
	}
	if _, _, err := pieces.ResolvePath(context.Background(), s, f.Root, "../x"); !errors.Is(err, pieces.ErrBadName) {
		t.Errorf("path ../x: %v", err)
	}
}
