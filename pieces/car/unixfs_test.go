package car_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-unixfsnode/data/builder"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-ipld-prime"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"

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
	if err := f.WriteRange(ctx, &out, s, 150, 420, false); err != nil {
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
	if err := f.WriteRange(ctx, io.Discard, s, -1, 10, false); err == nil {
		t.Fatal("a range from -1 was written")
	}

	// A leaf the getter lacks: its own error, naming it, not a layout's.
	delete(s.m, got[2])
	err = f.WriteRange(ctx, io.Discard, s, 150, 420, false)
	if !errors.Is(err, pieces.ErrNotFound) || errors.Is(err, car.ErrNotPlainFile) {
		t.Fatalf("a missing leaf: %v", err)
	}
}
