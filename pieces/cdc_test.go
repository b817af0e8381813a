package pieces_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// chunkLog records the chunks Build hands over, with their offsets.
type chunkLog struct {
	*memStore
	offs []uint64
	lens []int
	cids []cid.Cid
}

func (l *chunkLog) PutChunk(c cid.Cid, off uint64, data []byte) error {
	l.offs, l.lens, l.cids = append(l.offs, off), append(l.lens, len(data)), append(l.cids, c)
	return l.PutPiece(c, data)
}

func cdcOptions(inline, workers int) pieces.BuildOptions {
	opt := pieces.DefaultBuildOptions()
	opt.Chunker = pieces.ChunkerCDC
	opt.Inline = inline
	opt.Workers = workers
	return opt
}

// buildCDC puts data with the cdc chunker, checks it reads back whole and
// returns the chunks it was cut into.
func buildCDC(t *testing.T, r io.Reader, data []byte, opt pieces.BuildOptions) *chunkLog {
	t.Helper()
	l := &chunkLog{memStore: newMemStore()}
	res, err := pieces.Build(context.Background(), r, l, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != uint64(len(data)) {
		t.Fatalf("built size %d, want %d", res.Size, len(data))
	}
	if got := readAll(t, l, res.Root); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes that differ from the %d put", len(got), len(data))
	}
	off := uint64(min(opt.Inline, len(data)))
	for i, n := range l.lens {
		if l.offs[i] != off {
			t.Fatalf("chunk %d at offset %d, want %d", i, l.offs[i], off)
		}
		off += uint64(n)
	}
	return l
}

// periodic repeats a 64-byte pattern whose windows hold a strong cut
// candidate, so candidates come every 64 bytes: cuts fall at the minimum.
func periodic(n int) []byte {
	return bytes.Repeat(pieces.PeriodicPattern(true), n/64+1)[:n]
}

// TestCDCMatchesSerialReference: the parallel scan and the cutter cut
// exactly where a serial byte-at-a-time reference does.
func TestCDCMatchesSerialReference(t *testing.T) {
	const mib = 1 << 20
	zeros := make([]byte, 9*mib+5)
	cases := []struct {
		name    string
		data    []byte
		inline  int
		workers []int
	}{
		{"random 40 MiB", randBytes(11, 40*mib), 4 << 10, []int{1, 2, 3}},
		{"random, no inline", randBytes(12, 17*mib+3), 0, []int{2}},
		{"all zero, forced cuts", zeros, 0, []int{1, 2}},
		{"all zero, exact multiple of the max", zeros[:8*mib], 0, []int{2}},
		{"shorter than the min", randBytes(13, 100<<10), 0, []int{2}},
		{"exactly the min", randBytes(14, pieces.CDCMinSize), 0, []int{2}},
		{"exactly the max", zeros[:pieces.CDCMaxSize], 0, []int{2}},
		{"max plus one", zeros[:pieces.CDCMaxSize+1], 0, []int{2}},
		{"one segment", randBytes(15, 8*mib), 0, []int{2}},
		{"one segment plus a window", randBytes(16, 8*mib+63), 0, []int{2}},
		{"dense candidates", periodic(12 * mib), 0, []int{1, 2}},
		{"one byte after the head", randBytes(17, 4<<10+1), 4 << 10, []int{2}},
	}
	for _, tc := range cases {
		want := pieces.RefCDCLengths(tc.data[min(tc.inline, len(tc.data)):])
		for _, w := range tc.workers {
			l := buildCDC(t, bytes.NewReader(tc.data), tc.data, cdcOptions(tc.inline, w))
			if !slices.Equal(l.lens, want) {
				t.Fatalf("%s, %d workers: cut into %v, the serial reference into %v", tc.name, w, l.lens, want)
			}
			for _, n := range l.lens {
				if n > pieces.CDCMaxSize {
					t.Fatalf("%s: chunk of %d bytes", tc.name, n)
				}
			}
		}
	}
	// Short reads change nothing.
	data := randBytes(18, 10*mib)
	l := buildCDC(t, iotest.HalfReader(bytes.NewReader(data)), data, cdcOptions(0, 2))
	if want := pieces.RefCDCLengths(data); !slices.Equal(l.lens, want) {
		t.Fatalf("half reads: cut into %v, the reference into %v", l.lens, want)
	}
	if z := pieces.RefCDCLengths(zeros[:8*mib]); !slices.Equal(z, []int{4 * mib, 4 * mib}) {
		t.Fatalf("8 MiB of zeros cut into %v, want two of the max", z)
	}
	// Candidates ending on multiples of 64 from the start: a strong one
	// every period cuts at the min, weak ones only at the normal size.
	for _, c := range []struct {
		strong bool
		want   int
	}{{true, pieces.CDCMinSize}, {false, pieces.CDCNormalSize}} {
		data := bytes.Repeat(pieces.PeriodicPattern(c.strong), 3*c.want/64)
		l := buildCDC(t, bytes.NewReader(data), data, cdcOptions(0, 2))
		if !slices.Equal(l.lens, []int{c.want, c.want, c.want}) {
			t.Fatalf("strong %v: cut into %v, want 3 of %d", c.strong, l.lens, c.want)
		}
	}
}

// TestCDCCutAtSegmentEdge: a cut whose candidate is the first byte a
// segment reads (the stream's byte 12 MiB + 63) is found, on the chunk
// carried over from the segment before.
func TestCDCCutAtSegmentEdge(t *testing.T) {
	const edge = 12<<20 + 64 // the end of the segment's first new byte
	data := bytes.Repeat(pieces.PeriodicPattern(true), 16<<20/64)
	copy(data[pieces.CDCMinSize-64:], randBytes(5, 64)) // no cut at the min: cuts fall 64 bytes past multiples of it
	want := pieces.RefCDCLengths(data)
	at, hit := 0, false
	for _, n := range want {
		at += n
		hit = hit || at == edge
	}
	if !hit {
		t.Fatalf("the reference does not cut at %d: %v", edge, want)
	}
	if l := buildCDC(t, bytes.NewReader(data), data, cdcOptions(0, 2)); !slices.Equal(l.lens, want) {
		t.Fatalf("cut into %v, the reference into %v", l.lens, want)
	}
}

// newPieces counts the chunks of b that a are not.
func newPieces(a, b *chunkLog) int {
	n := 0
	for _, c := range b.cids {
		if !slices.Contains(a.cids, c) {
			n++
		}
	}
	return n
}

// TestCDCEditsKeepPieces: an edit in the middle of a file changes only
// the pieces around it with cdc; with fixed, an insert changes every
// piece after it.
func TestCDCEditsKeepPieces(t *testing.T) {
	const size = 48 << 20
	orig := randBytes(21, size)
	mid := size / 2
	edits := []struct {
		name   string
		data   []byte
		maxNew int
	}{
		{"overwrite 1 byte", slices.Concat(orig[:mid], []byte{^orig[mid]}, orig[mid+1:]), 2},
		{"insert 1 byte", slices.Concat(orig[:mid], []byte{7}, orig[mid:]), 3},
		{"delete 100 KiB", slices.Concat(orig[:mid], orig[mid+100<<10:]), 3},
	}
	opt := cdcOptions(4<<10, 2)
	base := buildCDC(t, bytes.NewReader(orig), orig, opt)
	if n := len(base.lens); n < size/(2<<20) || n > size/(512<<10) {
		t.Fatalf("%d chunks in 48 MiB: the average is off", n)
	}
	fixed := pieces.DefaultBuildOptions()
	fixedBase := buildCDC(t, bytes.NewReader(orig), orig, fixed)
	for _, e := range edits {
		if n := newPieces(base, buildCDC(t, bytes.NewReader(e.data), e.data, opt)); n < 1 || n > e.maxNew {
			t.Errorf("cdc, %s: %d new pieces, want 1 to %d", e.name, n, e.maxNew)
		}
		n := newPieces(fixedBase, buildCDC(t, bytes.NewReader(e.data), e.data, fixed))
		if e.name == "overwrite 1 byte" && n != 1 {
			t.Errorf("fixed, %s: %d new pieces, want 1", e.name, n)
		}
		if e.name == "insert 1 byte" && n < size/2/pieces.DefaultChunkSize {
			t.Errorf("fixed, %s: %d new pieces, want every one after the insert", e.name, n)
		}
	}
}

func TestParseChunker(t *testing.T) {
	for _, c := range []pieces.Chunker{pieces.ChunkerFixed, pieces.ChunkerCDC} {
		if got, err := pieces.ParseChunker(c.String()); err != nil || got != c {
			t.Fatalf("ParseChunker(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := pieces.ParseChunker("rabin"); err == nil {
		t.Fatal("ParseChunker took rabin")
	}
	opt := pieces.DefaultBuildOptions()
	opt.Chunker = 9
	if err := opt.Validate(); err == nil {
		t.Fatal("Validate took chunker 9")
	}
}
