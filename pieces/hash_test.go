package pieces_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/pieces"
)

func TestVerifyEveryHash(t *testing.T) {
	data := []byte("the same bytes")
	for _, name := range pieces.HashNames() {
		h, err := pieces.ParseHash(name)
		if err != nil {
			t.Fatal(err)
		}
		c := h.Sum(pieces.CodecRaw, data)
		// Our fast path must agree with the multihash library.
		want, err := mh.Sum(data, h.Code, 32)
		if err != nil {
			t.Fatal(err)
		}
		if string(c.Hash()) != string(want) {
			t.Fatalf("%s: multihash %x, library says %x", name, c.Hash(), want)
		}
		if err := pieces.Verify(c, data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = pieces.Verify(c, []byte("other bytes"))
		var ce *pieces.CorruptError
		if !errors.As(err, &ce) || !ce.CID.Equals(c) || !strings.Contains(err.Error(), c.String()) {
			t.Fatalf("%s: mismatch gave %v", name, err)
		}
		back, err := pieces.ParseCID(c.String())
		if err != nil || !back.Equals(c) {
			t.Fatalf("%s: ParseCID round trip: %v", name, err)
		}
	}
}

func TestParseHashUnknown(t *testing.T) {
	_, err := pieces.ParseHash("md5")
	if !errors.Is(err, pieces.ErrUnsupportedHash) || !strings.Contains(err.Error(), `"md5"`) || !strings.Contains(err.Error(), "sha2-256") {
		t.Fatalf("got %v", err)
	}
}

func TestParseCIDRejects(t *testing.T) {
	sha3, _ := mh.Sum([]byte("x"), mh.SHA3_256, 32)
	short, _ := mh.Sum([]byte("x"), mh.SHA2_256, 20)
	cases := map[string]struct{ in, want string }{
		"empty":         {"", "empty"},
		"garbage":       {"not-a-cid", "invalid CID"},
		"truncated":     {pieces.SHA2_256.Sum(pieces.CodecRaw, nil).String()[:20], "invalid CID"},
		"sha3 hash":     {cid.NewCidV1(cid.Raw, sha3).String(), "sha3-256"},
		"short digest":  {cid.NewCidV1(cid.Raw, short).String(), "20 bytes"},
		"identity hash": {cid.NewCidV1(cid.Raw, mustIdentity(t)).String(), "identity"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := pieces.ParseCID(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCID(%q) = %v, want an error saying %q", tc.in, err, tc.want)
			}
		})
	}
}

// Blocks of any codec are held (opaque when not a piece); a CIDv0 is read
// as the CIDv1 of the same dag-pb block; a piece must still be raw or
// dag-cbor.
func TestParseCIDAnyCodec(t *testing.T) {
	v1 := cid.NewCidV1(cid.DagProtobuf, mustMH(t))
	for _, in := range []string{cid.NewCidV0(mustMH(t)).String(), v1.String()} {
		c, err := pieces.ParseCID(in)
		if err != nil || !c.Equals(v1) {
			t.Fatalf("ParseCID(%q) = %s, %v; want %s", in, c, err, v1)
		}
	}
	if err := pieces.CheckPieceCID(v1); err == nil || !strings.Contains(err.Error(), "codec 0x70") {
		t.Fatalf("CheckPieceCID(dag-pb) = %v, want an error saying codec 0x70", err)
	}
}

func mustMH(t *testing.T) mh.Multihash {
	h, err := mh.Sum([]byte("x"), mh.SHA2_256, 32)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustIdentity(t *testing.T) mh.Multihash {
	h, err := mh.Sum([]byte("x"), mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
