package car_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-unixfsnode/data"
	"github.com/ipfs/go-unixfsnode/data/builder"
	carv2 "github.com/ipld/go-car/v2"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// unixfsFile builds a UnixFS file of data in chunks of 100 bytes with
// go-unixfsnode's builder into s.
func unixfsFile(t *testing.T, s *mem, data []byte) cid.Cid {
	t.Helper()
	ls := cidlink.DefaultLinkSystem()
	ls.StorageWriteOpener = func(ipld.LinkContext) (io.Writer, ipld.BlockWriteCommitter, error) {
		var buf bytes.Buffer
		return &buf, func(l ipld.Link) error { return s.PutPiece(l.(cidlink.Link).Cid, buf.Bytes()) }, nil
	}
	l, _, err := builder.BuildUnixFSFile(bytes.NewReader(data), "size-100", &ls)
	if err != nil {
		t.Fatal(err)
	}
	return l.(cidlink.Link).Cid
}

// WriteRange writes the root and the leaves that hold the range, each
// checked by go-car's reader against its CID, and their bytes hold the
// range; what is no UnixFS file, a range that is none and a missing leaf
// fail, each with its own error.
func TestUnixFSRange(t *testing.T) {
	ctx := context.Background()
	s := &mem{m: map[cid.Cid][]byte{}}
	data := make([]byte, 1050)
	for i := range data {
		data[i] = byte(i * 7)
	}
	root := unixfsFile(t, s, data)
	f, err := car.OpenUnixFSFile(root, s.m[root])
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", f.Size(), len(data))
	}
	var out bytes.Buffer
	if err := f.WriteRange(ctx, &out, s, 150, 420); err != nil {
		t.Fatal(err)
	}
	br, err := carv2.NewBlockReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	var got []cid.Cid
	var leaves []byte
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Cid())
		if b.Cid().Type() == cid.Raw {
			leaves = append(leaves, b.RawData()...)
		}
	}
	if len(got) != 5 || !got[0].Equals(root) || !bytes.Equal(leaves, data[100:500]) {
		t.Fatalf("blocks %v, leaves of %d bytes; want the root and the leaves of bytes 100 to 499", got, len(leaves))
	}

	// Not a UnixFS file: a raw leaf, a ddc descriptor.
	leaf := got[1]
	if _, err := car.OpenUnixFSFile(leaf, s.m[leaf]); !errors.Is(err, car.ErrNotPlainFile) {
		t.Fatalf("a raw block: %v", err)
	}
	ddc, ddcRoot := build(t, data)
	if _, err := car.OpenUnixFSFile(ddcRoot, ddc.m[ddcRoot]); !errors.Is(err, car.ErrNotPlainFile) {
		t.Fatalf("a ddc file: %v", err)
	}
	if err := f.WriteRange(ctx, io.Discard, s, -1, 10); err == nil {
		t.Fatal("a range from -1 was written")
	}

	// A leaf the getter lacks: its own error, naming it, not a layout's.
	delete(s.m, got[2])
	err = f.WriteRange(ctx, io.Discard, s, 150, 420)
	if !errors.Is(err, pieces.ErrNotFound) || errors.Is(err, car.ErrNotPlainFile) {
		t.Fatalf("a missing leaf: %v", err)
	}
}

// counting is a getter that counts its reads, and fails past 1,000.
type counting struct {
	*mem
	reads int
}

func (c *counting) GetPiece(ctx context.Context, k cid.Cid) ([]byte, error) {
	if c.reads++; c.reads > 1000 {
		return nil, errors.New("over 1,000 reads")
	}
	return c.mem.GetPiece(ctx, k)
}

// A file whose every node links the same part twice, 40 levels deep (a
// TiB of one byte): its whole CAR, without duplicates, is its 41 blocks,
// each read about once, not 2^40 times, and so for a range of 64 bytes
// in the middle.
func TestUnixFSRangeSharedParts(t *testing.T) {
	s := &mem{m: map[cid.Cid][]byte{}}
	leaf := []byte{'x'}
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(leaf)
	s.m[c] = leaf
	size := int64(1)
	var chain []cid.Cid
	for range 40 {
		c = pbNode(t, s, c, size)
		size *= 2
		chain = append(chain, c)
	}
	f, err := car.OpenUnixFSFile(c, s.m[c])
	if err != nil {
		t.Fatal(err)
	}
	g := &counting{mem: s}
	var out bytes.Buffer
	if err := f.WriteRange(context.Background(), &out, g, 0, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if n := countBlocks(t, out.Bytes()); n != 41 || g.reads > 2*41 {
		t.Fatalf("%d blocks, %d reads; want 41 blocks, each read about once", n, g.reads)
	}
	g.reads = 0 // a range: the nodes on the way to it, then all under it
	out.Reset()
	if err := f.WriteRange(context.Background(), &out, g, 1<<20, 1<<20+63); err != nil {
		t.Fatal(err)
	}
	if n := countBlocks(t, out.Bytes()); n != 41 || g.reads > 2*41 {
		t.Fatalf("64 bytes: %d blocks, %d reads", n, g.reads)
	}
}

// pbNode stores a dag-pb UnixFS file node that links part (of size
// bytes) twice.
func pbNode(t *testing.T, s *mem, part cid.Cid, size int64) cid.Cid {
	t.Helper()
	ufs, err := builder.BuildUnixFS(func(b *builder.Builder) {
		builder.DataType(b, data.Data_File)
		builder.FileSize(b, uint64(2*size))
		builder.BlockSizes(b, []uint64{uint64(size), uint64(size)})
	})
	if err != nil {
		t.Fatal(err)
	}
	nd, err := qp.BuildMap(dagpb.Type.PBNode, 2, func(ma ipld.MapAssembler) {
		qp.MapEntry(ma, "Links", qp.List(2, func(la ipld.ListAssembler) {
			for range 2 {
				qp.ListEntry(la, qp.Map(2, func(ma ipld.MapAssembler) {
					qp.MapEntry(ma, "Hash", qp.Link(cidlink.Link{Cid: part}))
					qp.MapEntry(ma, "Tsize", qp.Int(size))
				}))
			}
		}))
		qp.MapEntry(ma, "Data", qp.Bytes(data.EncodeUnixFSData(ufs)))
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagpb.Encode(nd, &buf); err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}.Sum(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s.m[c] = buf.Bytes()
	return c
}

func countBlocks(t *testing.T, b []byte) int {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := br.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}
