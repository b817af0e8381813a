package pieces_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

func build(t *testing.T, s *memStore, data []byte, opt pieces.BuildOptions) pieces.BuildResult {
	t.Helper()
	res, err := pieces.Build(context.Background(), bytes.NewReader(data), s, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != uint64(len(data)) {
		t.Fatalf("built size %d, want %d", res.Size, len(data))
	}
	return res
}

func readAll(t *testing.T, s pieces.Getter, c cid.Cid) []byte {
	t.Helper()
	f, err := pieces.Open(context.Background(), s, c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildRoundTrip(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize = 1024
	opt.Inline = 100
	opt.MaxLinks = 4
	cases := []struct {
		name      string
		size      int
		depth     int
		wantLinks int
	}{
		{"empty", 0, 0, 0},
		{"one byte", 1, 0, 0},
		{"exactly inline", 100, 0, 0},
		{"inline plus one", 101, 0, 1},
		{"one chunk after head", 100 + 1024, 0, 1},
		{"one chunk plus one", 100 + 1025, 0, 2},
		{"fills one level", 100 + 4*1024, 0, 4},
		{"two levels", 100 + 5*1024, 1, 2},
		{"deeper than 4^3 chunks", 100 + 70*1024, 3, 0},
		{"exactly 4^3 chunks", 100 + 64*1024, 2, 4},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			data := randBytes(uint64(i), tc.size)
			res := build(t, s, data, opt)
			if res.Depth != tc.depth {
				t.Errorf("depth %d, want %d", res.Depth, tc.depth)
			}
			f, err := pieces.Open(context.Background(), s, res.Root)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantLinks > 0 && len(f.Root().Links) != tc.wantLinks {
				t.Errorf("root has %d links, want %d", len(f.Root().Links), tc.wantLinks)
			}
			if got := readAll(t, s, res.Root); !bytes.Equal(got, data) {
				t.Fatalf("WriteTo returned %d bytes, differ from the %d put", len(got), len(data))
			}
			got, err := io.ReadAll(f) // Read in small steps
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Read: %v (%d bytes)", err, len(got))
			}
			if err := iotest.TestReader(mustOpen(t, s, res.Root), data); err != nil {
				t.Fatal(err)
			}
			st, err := pieces.StatFile(context.Background(), s, res.Root)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size != uint64(len(data)) || st.Depth != tc.depth || st.Pieces != len(s.m) {
				t.Fatalf("stat %+v; want size %d depth %d pieces %d", st, len(data), tc.depth, len(s.m))
			}
		})
	}
}

func mustOpen(t *testing.T, g pieces.Getter, c cid.Cid) *pieces.File {
	t.Helper()
	f, err := pieces.Open(context.Background(), g, c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReadAtRandomRanges(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline, opt.MaxLinks = 512, 300, 3
	data := randBytes(7, 100_000)
	s := newMemStore()
	res := build(t, s, data, opt)
	f := mustOpen(t, s, res.Root)
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		off := r.IntN(len(data) + 10)
		n := r.IntN(5000)
		buf := make([]byte, n)
		got, err := f.ReadAt(buf, int64(off))
		want := max(0, min(n, len(data)-off))
		if got != want {
			t.Fatalf("ReadAt(%d, %d) read %d, want %d (%v)", off, n, got, want, err)
		}
		if got < n && err != io.EOF {
			t.Fatalf("short ReadAt without EOF: %v", err)
		}
		if !bytes.Equal(buf[:got], data[off:off+got]) {
			t.Fatalf("ReadAt(%d, %d) returned other bytes", off, n)
		}
		// Seek then WriteTo gives the tail.
		if _, err := f.Seek(int64(min(off, len(data))), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if r.IntN(20) == 0 {
			var tail bytes.Buffer
			if _, err := f.WriteTo(&tail); err != nil || !bytes.Equal(tail.Bytes(), data[min(off, len(data)):]) {
				t.Fatalf("WriteTo after seek to %d: %v", off, err)
			}
		}
	}
}

func TestSameBytesSameCID(t *testing.T) {
	data := randBytes(3, 3<<20+17)
	a := build(t, newMemStore(), data, pieces.DefaultBuildOptions())
	// Another reader shape (one byte at a time) must not change the cut.
	s := newMemStore()
	b, err := pieces.Build(context.Background(), iotest.OneByteReader(bytes.NewReader(data[:5000])), s, pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	c := build(t, newMemStore(), data[:5000], pieces.DefaultBuildOptions())
	if !a.Root.Equals(build(t, newMemStore(), data, pieces.DefaultBuildOptions()).Root) || !b.Root.Equals(c.Root) {
		t.Fatal("same bytes gave different CIDs")
	}
	opt := pieces.DefaultBuildOptions()
	opt.Tags = []pieces.Tag{{Key: "k", Value: []byte("v"), Searchable: true}}
	if build(t, newMemStore(), data, opt).Root.Equals(a.Root) {
		t.Fatal("tags did not change the root CID")
	}
	opt = pieces.DefaultBuildOptions()
	opt.Hash = pieces.BLAKE3
	if build(t, newMemStore(), data, opt).Root.Equals(a.Root) {
		t.Fatal("another hash gave the same CID")
	}
}

func TestBuildOptionsValidate(t *testing.T) {
	bad := []func(*pieces.BuildOptions){
		func(o *pieces.BuildOptions) { o.ChunkSize = 10 },
		func(o *pieces.BuildOptions) { o.ChunkSize = pieces.MaxPieceSize + 1 },
		func(o *pieces.BuildOptions) { o.Inline = -1 },
		func(o *pieces.BuildOptions) { o.MaxLinks = 1 },
		func(o *pieces.BuildOptions) { o.Hash = pieces.Hash{} },
		func(o *pieces.BuildOptions) { o.Tags = []pieces.Tag{{Key: ""}} },
	}
	for i, mod := range bad {
		o := pieces.DefaultBuildOptions()
		mod(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("case %d: Validate accepted %+v", i, o)
		}
		if _, err := pieces.Build(context.Background(), bytes.NewReader(nil), newMemStore(), o); err == nil {
			t.Errorf("case %d: Build accepted bad options", i)
		}
	}
}

type failPutter struct{ after int }

func (p *failPutter) PutPiece(cid.Cid, []byte) error {
	if p.after--; p.after < 0 {
		return errors.New("disk full")
	}
	return nil
}

func TestBuildErrors(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize = 1024
	data := randBytes(4, 200_000)
	_, err := pieces.Build(context.Background(), bytes.NewReader(data), &failPutter{after: 5}, opt)
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("put failure: %v", err)
	}
	readErr := errors.New("device gone")
	_, err = pieces.Build(context.Background(), io.MultiReader(bytes.NewReader(data), iotest.ErrReader(readErr)), newMemStore(), opt)
	if !errors.Is(err, readErr) {
		t.Fatalf("read failure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pieces.Build(ctx, bytes.NewReader(data), newMemStore(), opt); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: %v", err)
	}
}

// lyingGetter returns a piece of the wrong length for one CID.
type lyingGetter struct {
	*memStore
	bad cid.Cid
}

func (g lyingGetter) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := g.memStore.GetPiece(ctx, c)
	if c.Equals(g.bad) {
		return b[:len(b)-1], err
	}
	return b, err
}

func TestReaderCatchesWrongSizes(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline = 1024, 0
	s := newMemStore()
	res := build(t, s, randBytes(5, 10_000), opt)
	root := mustOpen(t, s, res.Root).Root()
	bad := root.Links[3].CID
	f := mustOpen(t, lyingGetter{s, bad}, res.Root)
	_, err := io.ReadAll(f)
	var ce *pieces.CorruptError
	if !errors.As(err, &ce) || !ce.CID.Equals(bad) {
		t.Fatalf("got %v, want a CorruptError naming %s", err, bad)
	}
	// A missing piece is a NotFoundError naming it.
	delete(s.m, bad)
	_, err = mustOpen(t, s, res.Root).WriteTo(io.Discard)
	if !errors.Is(err, pieces.ErrNotFound) {
		t.Fatalf("missing piece: %v", err)
	}
	if _, err := pieces.Open(context.Background(), s, bad); !errors.Is(err, pieces.ErrInvalidCID) {
		t.Fatalf("opening a raw piece as a file: %v", err)
	}
}

func TestCopyRange(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline, opt.MaxLinks = 700, 50, 3
	data := randBytes(9, 20_000)
	s := newMemStore()
	root := build(t, s, data, opt).Root
	for _, g := range []pieces.Getter{s, readerStore{s}} {
		copyRanges(t, mustOpen(t, g, root), data)
	}
}

func copyRanges(t *testing.T, f *pieces.File, data []byte) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		off, n := r.IntN(len(data)+5), r.IntN(3000)-10
		f.Seek(int64(off), io.SeekStart)
		var buf bytes.Buffer
		got, err := f.CopyRange(&buf, int64(n))
		want := data[min(off, len(data)):min(len(data), max(off, off+n))]
		if err != nil || got != int64(len(want)) || !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("CopyRange(off %d, n %d) = %d, %v; want %d bytes", off, n, got, err, len(want))
		}
		if pos, _ := f.Seek(0, io.SeekCurrent); pos != int64(min(off, len(data))+len(want)) && off < len(data) {
			t.Fatalf("position %d after CopyRange", pos)
		}
	}
}

func TestSeekRange(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline = 512, 100
	data := randBytes(8, 5000)
	s := newMemStore()
	f := mustOpen(t, s, build(t, s, data, opt).Root)
	for _, tc := range []struct{ off, n, want int64 }{
		{0, -1, 5000}, {4000, -1, 1000}, {4000, 300, 300}, {4900, 300, 100}, {5000, 10, 0},
	} {
		n, err := f.SeekRange(tc.off, tc.n)
		if err != nil || n != tc.want {
			t.Fatalf("SeekRange(%d, %d) = %d, %v; want %d", tc.off, tc.n, n, err, tc.want)
		}
		var out bytes.Buffer
		if _, err := f.CopyRange(&out, n); err != nil || !bytes.Equal(out.Bytes(), data[tc.off:tc.off+n]) {
			t.Fatalf("range %d+%d read back wrong: %v", tc.off, n, err)
		}
	}
	for _, off := range []int64{5001, -1} {
		if _, err := f.SeekRange(off, 1); !errors.Is(err, pieces.ErrOutOfRange) {
			t.Fatalf("SeekRange(%d): %v", off, err)
		}
	}
}
