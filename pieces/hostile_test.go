package pieces_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// Descriptors a peer could write by hand: ranges past what they point
// at, shared shards, runs of links into one chunk. Each must end in an
// error naming the piece, or be served at the cost of what it holds.

func putRaw(t *testing.T, s *memStore, b []byte) cid.Cid {
	t.Helper()
	c := pieces.DefaultHash.Sum(pieces.CodecRaw, b)
	if err := s.PutPiece(c, b); err != nil {
		t.Fatal(err)
	}
	return c
}

func putDesc(t *testing.T, s *memStore, p pieces.Piece) cid.Cid {
	t.Helper()
	b, c, err := p.EncodeCID(pieces.DefaultHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPiece(c, b); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantCorrupt fails unless err is a CorruptError naming c (any piece if
// c is undefined).
func wantCorrupt(t *testing.T, what string, err error, c cid.Cid) {
	t.Helper()
	var ce *pieces.CorruptError
	if !errors.As(err, &ce) || (c.Defined() && ce.CID != c) {
		t.Errorf("%s: %v, want a CorruptError of %s", what, err, c)
	}
}

// Two links share one piece, the second wanting bytes past its end: the
// check holds when the piece comes from a reader's cache too.
func TestRangePastCachedPiece(t *testing.T) {
	for _, kind := range []string{"chunk", "descriptor"} {
		t.Run(kind, func(t *testing.T) {
			s := newMemStore()
			var target cid.Cid
			if kind == "chunk" {
				target = putRaw(t, s, randBytes(1, 100))
			} else {
				target = putDesc(t, s, pieces.Piece{Data: randBytes(2, 100)})
			}
			root := putDesc(t, s, pieces.Piece{Links: []pieces.Link{
				{CID: target, Offset: 0, Size: 10},
				{CID: target, Offset: 50, Size: 100}, // ends at 150 of 100
			}})
			_, err := mustOpen(t, s, root).ReadAt(make([]byte, 110), 0)
			wantCorrupt(t, "ReadAt", err, target)
			_, err = mustOpen(t, s, root).CopyRange(io.Discard, 110)
			wantCorrupt(t, "CopyRange", err, target)
			_, err = io.ReadAll(mustOpen(t, s, root))
			wantCorrupt(t, "Read", err, target)
		})
	}
}

// A file may hold at most MaxInt64 bytes, the most an offset can say.
func TestSizePastMaxInt64(t *testing.T) {
	c := pieces.DefaultHash.Sum(pieces.CodecDagCBOR, []byte("a sub-descriptor"))
	p := pieces.Piece{Links: []pieces.Link{{CID: c, Size: 1}, {CID: c, Size: 1 << 62}, {CID: c, Size: 1 << 62}}}
	if _, _, err := p.EncodeCID(pieces.DefaultHash); err == nil {
		t.Fatal("a descriptor of 2^63+1 bytes encoded")
	}
}

// A shard linked from three index entries lists its names once, not
// three times: the index's names must be what the shard holds.
func TestSharedShardIsCorrupt(t *testing.T) {
	s := newMemStore()
	file := build(t, s, []byte("x"), pieces.DefaultBuildOptions())
	shard := putDesc(t, s, pieces.Piece{Kind: pieces.KindDir, Links: []pieces.Link{{Name: "zzz", CID: file.Root, Size: 1}}})
	var ls []pieces.Link
	for i := range 3 {
		ls = append(ls, pieces.Link{Name: fmt.Sprintf("a%d", i), CID: shard, Size: 1})
	}
	idx := putDesc(t, s, pieces.Piece{Kind: pieces.KindDirIndex, Links: ls})
	ctx := context.Background()
	var names []string
	err := pieces.Entries(ctx, s, idx, func(l pieces.Link) error { names = append(names, l.Name); return nil })
	wantCorrupt(t, "Entries", err, shard)
	if len(names) > 0 {
		t.Errorf("listed %q from a shard that is not where its index says", names)
	}
	_, _, err = pieces.Lookup(ctx, s, idx, "a1")
	wantCorrupt(t, "Lookup", err, shard)
}

// Three index levels of a thousand links each over one empty shard: four
// pieces that would list as a billion visits end at the first.
func TestIndexOverEmptyShard(t *testing.T) {
	s := newMemStore()
	c := putDesc(t, s, pieces.Piece{Kind: pieces.KindDir})
	for range 3 {
		var ls []pieces.Link
		for i := range 1000 {
			ls = append(ls, pieces.Link{Name: fmt.Sprintf("n%05d", i), CID: c})
		}
		c = putDesc(t, s, pieces.Piece{Kind: pieces.KindDirIndex, Links: ls})
	}
	var reads atomic.Int64
	g := readCounter{memStore: s, reads: &reads}
	err := pieces.Entries(context.Background(), g, c, func(pieces.Link) error { return nil })
	wantCorrupt(t, "Entries", err, cid.Undef) // the first index link whose shard is not where it says
	if n := reads.Load(); n > 4 {
		t.Errorf("read %d pieces of a 4-piece directory", n)
	}
}

// readCounter counts the pieces read and their bytes.
type readCounter struct {
	*memStore
	reads, bytes *atomic.Int64
}

func (g readCounter) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := g.memStore.GetPiece(ctx, c)
	g.reads.Add(1)
	if g.bytes != nil {
		g.bytes.Add(int64(len(b)))
	}
	return b, err
}

// 4096 one-byte ranges of one 4 MiB chunk read it once, not 4096 times
// (16 GiB for a 4 KiB file).
func TestRunOfRangesReadsChunkOnce(t *testing.T) {
	s := newMemStore()
	data := randBytes(9, 4<<20)
	c := putRaw(t, s, data)
	var ls []pieces.Link
	for i := range 4096 {
		ls = append(ls, pieces.Link{CID: c, Offset: uint64(i * 3), Size: 1})
	}
	root := putDesc(t, s, pieces.Piece{Links: ls})
	var reads, read atomic.Int64
	f := mustOpen(t, readCounter{memStore: s, reads: &reads, bytes: &read}, root)
	var out bytes.Buffer
	if _, err := f.CopyRange(&out, f.Size()); err != nil {
		t.Fatal(err)
	}
	for i, b := range out.Bytes() {
		if b != data[i*3] {
			t.Fatalf("byte %d is %d, want %d", i, b, data[i*3])
		}
	}
	if n := reads.Load(); n > 4 { // the root, and the chunk once per window
		t.Errorf("served %d bytes with %d reads (%d MiB)", out.Len(), n, read.Load()>>20)
	}
}

// Random DAGs of nested range links read the same by every path (ReadAt,
// CopyRange, small Reads, and Blocks into a fresh store) as the bytes
// they expand to.
func TestRandomRangeDAGs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	type target struct {
		c       cid.Cid
		content []byte
	}
	for iter := range 100 {
		s := newMemStore()
		var pool, files []target
		for i := range 4 {
			b := randBytes(uint64(iter*100+i), 1+rng.IntN(300))
			pool = append(pool, target{putRaw(t, s, b), b})
		}
		for range 12 {
			var p pieces.Piece
			var content []byte
			if rng.IntN(2) == 0 {
				p.Data = randBytes(rng.Uint64(), rng.IntN(40))
				content = append(content, p.Data...)
			}
			for range 1 + rng.IntN(4) {
				tg := pool[rng.IntN(len(pool))]
				off := rng.IntN(len(tg.content))
				size := 1 + rng.IntN(len(tg.content)-off)
				p.Links = append(p.Links, pieces.Link{CID: tg.c, Offset: uint64(off), Size: uint64(size)})
				content = append(content, tg.content[off:off+size]...)
			}
			tg := target{putDesc(t, s, p), content}
			pool, files = append(pool, tg), append(files, tg)
		}
		for _, tg := range files {
			checkRandomReads(t, rng, s, tg.c, tg.content)
		}
	}
}

func checkRandomReads(t *testing.T, rng *rand.Rand, s *memStore, c cid.Cid, want []byte) {
	t.Helper()
	f := mustOpen(t, s, c)
	defer f.Close()
	if f.Size() != int64(len(want)) {
		t.Fatalf("%s: size %d, want %d", c, f.Size(), len(want))
	}
	for range 10 {
		off := rng.IntN(len(want) + 1)
		n := rng.IntN(len(want)+2) + 1
		exp := want[off:min(off+n, len(want))]
		buf := make([]byte, n)
		got, err := f.ReadAt(buf, int64(off))
		if (err != nil && !errors.Is(err, io.EOF)) || !bytes.Equal(buf[:got], exp) {
			t.Fatalf("%s: ReadAt(%d, %d) = %d, %v, differs", c, off, n, got, err)
		}
		f.Seek(int64(off), io.SeekStart)
		var out bytes.Buffer
		if _, err := f.CopyRange(&out, int64(n)); err != nil || !bytes.Equal(out.Bytes(), exp) {
			t.Fatalf("%s: CopyRange(%d, %d): %v, differs", c, off, n, err)
		}
		f.Seek(int64(off), io.SeekStart)
		small, err := io.ReadAll(io.LimitReader(onlyReader{f, 1 + rng.IntN(7)}, int64(n)))
		if err != nil || !bytes.Equal(small, exp) {
			t.Fatalf("%s: Read(%d, %d): %v, differs", c, off, n, err)
		}
		fresh := newMemStore()
		if err := f.Blocks(int64(off), int64(off+n), fresh.PutPiece); err != nil {
			t.Fatal(err)
		}
		if off < len(want) {
			buf := make([]byte, len(exp))
			if _, err := mustOpen(t, fresh, c).ReadAt(buf, int64(off)); (err != nil && !errors.Is(err, io.EOF)) || !bytes.Equal(buf, exp) {
				t.Fatalf("%s: Blocks(%d, %d) miss a block: %v", c, off, off+n, err)
			}
		}
	}
}

// onlyReader reads at most n bytes a call.
type onlyReader struct {
	r io.Reader
	n int
}

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), o.n)]) }
