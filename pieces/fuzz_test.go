package pieces_test

import (
	"bytes"
	"testing"

	"github.com/ddc-project/ddc/pieces"
)

func FuzzDecode(f *testing.F) {
	chunk := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("x"))
	for _, p := range []pieces.Piece{
		{},
		{Data: []byte("hello")},
		{Links: []pieces.Link{{CID: chunk, Size: 1, Name: "a"}}, Tags: []pieces.Tag{{Key: "k", Value: []byte("v")}}},
	} {
		b, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := pieces.Decode(chunk, b)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: it encodes back to the same bytes.
		again, err := p.Encode()
		if err != nil {
			t.Fatalf("decoded piece does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %x re-encodes to %x", b, again)
		}
	})
}

func FuzzParseCID(f *testing.F) {
	f.Add(pieces.SHA2_256.Sum(pieces.CodecRaw, nil).String())
	f.Add(pieces.BLAKE3.Sum(pieces.CodecDagCBOR, nil).String())
	f.Add("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := pieces.ParseCID(s)
		if err != nil {
			return
		}
		if err := pieces.CheckCID(c); err != nil {
			t.Fatalf("ParseCID accepted %q but CheckCID says %v", s, err)
		}
	})
}

func FuzzParseTag(f *testing.F) {
	f.Add("k=v")
	f.Add("=")
	f.Add("a==b")
	f.Fuzz(func(t *testing.T, s string) {
		tag, err := pieces.ParseTag(s)
		if err != nil {
			return
		}
		if tag.Key+"="+string(tag.Value) != s {
			t.Fatalf("ParseTag(%q) = %q=%q", s, tag.Key, tag.Value)
		}
		if _, err := (&pieces.Piece{Tags: []pieces.Tag{tag}}).Encode(); err != nil {
			t.Fatalf("parsed tag does not encode: %v", err)
		}
	})
}
