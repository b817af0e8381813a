package car_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/internal/leakcheck"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

type mem struct {
	mu sync.Mutex
	m  map[cid.Cid][]byte
}

func (s *mem) PutPiece(c cid.Cid, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[c] = append([]byte(nil), b...)
	return nil
}

func (s *mem) GetPiece(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.m[c]; ok {
		return b, nil
	}
	return nil, &pieces.NotFoundError{CID: c}
}

func build(t *testing.T, data []byte) (*mem, cid.Cid) {
	t.Helper()
	s := &mem{m: map[cid.Cid][]byte{}}
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline, opt.MaxLinks = 1024, 100, 4
	res, err := pieces.Build(context.Background(), bytes.NewReader(data), s, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s, res.Root
}

// A file written to a CAR and read back gives every block and the same
// bytes; go-car's own reader, with its hash checks on, agrees.
func TestRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("ddc car round trip "), 3000)
	s, root := build(t, data)
	f, err := pieces.Open(context.Background(), s, root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(f, car.All); err != nil {
		t.Fatal(err)
	}
	br, err := carv2.NewBlockReader(bytes.NewReader(buf.Bytes()))
	if err != nil || len(br.Roots) != 1 || !br.Roots[0].Equals(root) {
		t.Fatalf("go-car reads roots %v, %v", br.Roots, err)
	}
	first, err := br.Next()
	if err != nil || !first.Cid().Equals(root) {
		t.Fatalf("first block %v, %v: want the root", first, err)
	}
	got := &mem{m: map[cid.Cid][]byte{}}
	roots, err := car.Import(bytes.NewReader(buf.Bytes()), got.PutPiece)
	if err != nil || len(roots) != 1 || !roots[0].Equals(root) {
		t.Fatalf("import: %v, %v", roots, err)
	}
	if len(got.m) != len(s.m) {
		t.Fatalf("the CAR held %d blocks of %d", len(got.m), len(s.m))
	}
	g, err := pieces.Open(context.Background(), got, root)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(g)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back %d bytes, %v", len(back), err)
	}
}

// carOf writes blocks as they are given, lies included.
func carOf(t *testing.T, roots []cid.Cid, blocks ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, roots, carv2.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(blocks); i += 2 {
		if err := w.Put(context.Background(), blocks[i].(cid.Cid).KeyString(), blocks[i+1].([]byte)); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestImportRefuses(t *testing.T) {
	good := []byte("a block")
	gc := pieces.SHA2_256.Sum(pieces.CodecRaw, good)
	bad := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("other bytes"))
	sha512, _ := mh.Sum(good, mh.SHA2_512, -1)
	for name, tc := range map[string]struct {
		car  []byte
		want string
	}{
		"bytes not matching their CID": {carOf(t, []cid.Cid{gc}, gc, good, bad, good), bad.String()},
		"root not in the CAR":          {carOf(t, []cid.Cid{bad}, gc, good), "does not hold it"},
		"hash ddc does not verify":     {carOf(t, []cid.Cid{gc}, gc, good, cid.NewCidV1(cid.Raw, sha512), good), "sha2-512"},
		"not a CAR":                    {[]byte("hello, not a car"), "not a CAR"},
		"truncated":                    {truncated(carOf(t, []cid.Cid{gc}, gc, good)), "CAR block 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := car.Import(bytes.NewReader(tc.car), func(cid.Cid, []byte) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("import = %v, want an error naming %q", err, tc.want)
			}
			if name == "bytes not matching their CID" && !errors.Is(err, pieces.ErrCorrupt) {
				t.Fatalf("%v is not ErrCorrupt", err)
			}
		})
	}
}

// Blocks of codecs ddc does not read come in as opaque blocks, and a
// CIDv0 as the CIDv1 of its block.
func TestImportOpaque(t *testing.T) {
	data := []byte{0x0a, 0x02, 0x08, 0x01} // some dag-pb bytes
	h, _ := mh.Sum(data, mh.SHA2_256, -1)
	v0 := cid.NewCidV0(h)
	got := map[cid.Cid]bool{}
	roots, err := car.Import(bytes.NewReader(carOf(t, []cid.Cid{v0}, v0, data)), func(c cid.Cid, _ []byte) error { got[c] = true; return nil })
	want := cid.NewCidV1(cid.DagProtobuf, h)
	if err != nil || len(roots) != 1 || !roots[0].Equals(want) || !got[want] {
		t.Fatalf("import of a dag-pb CIDv0 block: roots %v, %v", roots, err)
	}
}

func truncated(b []byte) []byte { return b[:len(b)-3] }
