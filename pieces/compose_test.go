package pieces_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

func composeOpts() pieces.BuildOptions {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline, opt.MaxLinks = 4096, 100, 4
	return opt
}

// TestComposeRanges composes three ranges of two files, reads the result
// back whole, by seeks and by Blocks, and finds no data piece written.
func TestComposeRanges(t *testing.T) {
	s := newMemStore()
	opt := composeOpts()
	a, b := randBytes(1, 100_000), randBytes(2, 50_000)
	ra, rb := build(t, s, a, opt), build(t, s, b, opt)
	before := len(s.m)
	ranges := []pieces.Range{
		{CID: ra.Root, Offset: 10, Size: 20_000},     // from inline head into chunks
		{CID: rb.Root, Offset: 4095, Size: 9},        // across a chunk boundary
		{CID: ra.Root, Offset: 60_001, Size: 39_999}, // to the end
	}
	want := append(append(append([]byte(nil), a[10:20_010]...), b[4095:4104]...), a[60_001:]...)
	res, err := pieces.Compose(context.Background(), s, ranges, s, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != uint64(len(want)) {
		t.Fatalf("size %d, want %d", res.Size, len(want))
	}
	for c := range s.m {
		if c.Type() == pieces.CodecRaw && !has(t, s, c, ra.Root, rb.Root) {
			t.Fatalf("compose wrote a data piece %s", c)
		}
	}
	t.Logf("compose wrote %d descriptors", len(s.m)-before)
	if got := readAll(t, s, res.Root); !bytes.Equal(got, want) {
		t.Fatal("composed content differs")
	}
	f := mustOpen(t, s, res.Root)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		off := rng.IntN(len(want))
		n := rng.IntN(9000) + 1
		buf := make([]byte, n)
		got, err := f.ReadAt(buf, int64(off))
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:got], want[off:min(off+n, len(want))]) {
			t.Fatalf("ReadAt(%d, %d) differs", off, n)
		}
		if _, err := f.Seek(int64(off), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadFull(f, buf[:min(n, len(want)-off)])
		if err != nil || !bytes.Equal(buf[:got], want[off:off+got]) {
			t.Fatalf("Seek(%d)+Read(%d): %v", off, n, err)
		}
	}
	// Blocks hands out every block a reader of the file needs, whole.
	g := newMemStore()
	if err := f.Blocks(0, f.Size(), func(c cid.Cid, data []byte) error { return g.PutPiece(c, data) }); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, g, res.Root); !bytes.Equal(got, want) {
		t.Fatal("the blocks Blocks handed out do not read back the file")
	}
}

// has reports whether data piece c belongs to one of the files roots.
func has(t *testing.T, s *memStore, c cid.Cid, roots ...cid.Cid) bool {
	for _, r := range roots {
		found := false
		if _, err := pieces.WalkFile(context.Background(), s, r, func(l pieces.Link, _ bool) { found = found || l.CID == c }); err != nil {
			t.Fatal(err)
		}
		if found {
			return true
		}
	}
	return false
}

// TestComposeStaysShallow composes a composed file again and again, as
// versions that each reference the last do, and the tree does not deepen.
func TestComposeStaysShallow(t *testing.T) {
	s := newMemStore()
	opt := composeOpts()
	data := randBytes(5, 30_000)
	cur := build(t, s, data, opt).Root
	want := data
	for i := range 40 {
		patch := build(t, s, []byte{byte(i), byte(i)}, opt).Root // a 2-byte edit
		mid := uint64(len(want) / 2)
		res, err := pieces.Compose(context.Background(), s, []pieces.Range{
			{CID: cur, Size: mid}, {CID: patch, Size: 2}, {CID: cur, Offset: mid + 2, Size: uint64(len(want)) - mid - 2},
		}, s, opt)
		if err != nil {
			t.Fatalf("version %d: %v", i, err)
		}
		next := append(append(append([]byte(nil), want[:mid]...), byte(i), byte(i)), want[mid+2:]...)
		cur, want = res.Root, next
	}
	if got := readAll(t, s, cur); !bytes.Equal(got, want) {
		t.Fatal("40th version differs")
	}
	st, err := pieces.StatFile(context.Background(), s, cur)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth > 8 {
		t.Fatalf("40 versions made a tree %d levels deep", st.Depth)
	}
}

func TestComposeRefusals(t *testing.T) {
	s := newMemStore()
	opt := composeOpts()
	r := build(t, s, randBytes(6, 1000), opt)
	_, err := pieces.Compose(context.Background(), s, []pieces.Range{{CID: r.Root, Offset: 900, Size: 101}}, s, opt)
	if !errors.Is(err, pieces.ErrOutOfRange) {
		t.Fatalf("a range past the end: %v", err)
	}
	dir, err := pieces.BuildDir([]pieces.Link{{Name: "a", CID: r.Root, Size: 1000}}, nil, s, pieces.DefaultHash)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pieces.Compose(context.Background(), s, []pieces.Range{{CID: dir.Root, Size: 1}}, s, opt); !errors.Is(err, pieces.ErrIsDir) {
		t.Fatalf("a range of a directory: %v", err)
	}
}

// TestRangeLinkTooShort: a range link that wants more than its chunk has
// is corrupt, named by the chunk's CID.
func TestRangeLinkTooShort(t *testing.T) {
	s := newMemStore()
	chunk := randBytes(7, 100)
	c := pieces.DefaultHash.Sum(pieces.CodecRaw, chunk)
	if err := s.PutPiece(c, chunk); err != nil {
		t.Fatal(err)
	}
	p := pieces.Piece{Links: []pieces.Link{{CID: c, Offset: 50, Size: 60}}}
	b, root, err := p.EncodeCID(pieces.DefaultHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPiece(root, b); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(mustOpen(t, s, root))
	var ce *pieces.CorruptError
	if !errors.As(err, &ce) || ce.CID != c {
		t.Fatalf("read of a range past its chunk's end: %v", err)
	}
}
