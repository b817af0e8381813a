package pieces_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ddc-project/ddc/pieces"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeGolden(t *testing.T) {
	chunk := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("x"))
	p := pieces.Piece{
		Data:  []byte("hi"),
		Links: []pieces.Link{{CID: chunk, Size: 1}},
		Tags:  []pieces.Tag{{Key: "k", Value: []byte("v"), Searchable: false}},
	}
	got, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Keys length-first: "data"(4) < "tags"(4, bytewise after) < "links"(5);
	// inside a link "cid" < "size"; inside a tag "key" < "value" < "searchable".
	want := mustHex(t, "a3"+
		"6464617461"+"426869"+ // "data": h'6869'
		"6474616773"+"81"+"a3"+"636b6579"+"616b"+"6576616c7565"+"6176"+"6a73656172636861626c65"+"f4"+
		"656c696e6b73"+"81"+"a2"+"63636964"+"d82a"+"5825"+"00"+hex.EncodeToString(chunk.Bytes())+"6473697a65"+"01")
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	back, err := pieces.Decode(chunk, got)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Encode()
	if !bytes.Equal(again, got) {
		t.Fatal("round trip changed the bytes")
	}
	if back.Tags[0].Searchable || !back.Links[0].CID.Equals(chunk) || string(back.Data) != "hi" {
		t.Fatalf("decoded %+v", back)
	}
}

func TestEncodeEmptyPiece(t *testing.T) {
	b, err := (&pieces.Piece{Links: []pieces.Link{}, Tags: nil}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, []byte{0xa0}) {
		t.Fatalf("empty piece encodes to %x, want a0 (empty fields omitted)", b)
	}
}

func TestDecodeRejects(t *testing.T) {
	chunk := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("x"))
	link := "a2" + "63636964" + "d82a" + "5825" + "00" + hex.EncodeToString(chunk.Bytes()) + "6473697a65" + "01"
	cases := []struct {
		name, hex, want string
	}{
		{"unsorted keys", "a2" + "656c696e6b73" + "81" + link + "6464617461" + "4101", "not canonical"},
		{"non-minimal int", "a1" + "656c696e6b73" + "81" + "a2" + "63636964" + "d82a" + "5825" + "00" + hex.EncodeToString(chunk.Bytes()) + "6473697a65" + "1801", "not canonical"},
		{"searchable true written out", "a1" + "6474616773" + "81" + "a3" + "636b6579" + "616b" + "6576616c7565" + "6176" + "6a73656172636861626c65" + "f5", "not canonical"},
		{"text value as bytes", "a1" + "6474616773" + "81" + "a2" + "636b6579" + "616b" + "6576616c7565" + "4176", `tags[0] (key "k"): value is valid UTF-8, so it must be a CBOR text string`},
		{"value neither string", "a1" + "6474616773" + "81" + "a2" + "636b6579" + "616b" + "6576616c7565" + "01", "want a text or byte string"},
		{"invalid UTF-8 as text", "a1" + "6474616773" + "81" + "a2" + "636b6579" + "616b" + "6576616c7565" + "61ff", "invalid UTF-8"},
		{"empty data present", "a1" + "6464617461" + "40", "not canonical"},
		{"unknown field", "a1" + "63666f6f" + "01", "unknown field"},
		{"case folded key", "a1" + "6444415441" + "4101", "unknown field"},
		{"trailing bytes", "a0" + "00", "extraneous data"},
		{"indefinite length", "bf" + "6464617461" + "4101" + "ff", "indefinite-length"},
		{"duplicate key", "a2" + "6464617461" + "4101" + "6464617461" + "4101", "duplicate map key"},
		{"wrong tag number", "a1" + "656c696e6b73" + "81" + "a2" + "63636964" + "d82b" + "5825" + "00" + hex.EncodeToString(chunk.Bytes()) + "6473697a65" + "01", "tag 43, want 42"},
		{"cid without 0x00 prefix", "a1" + "656c696e6b73" + "81" + "a2" + "63636964" + "d82a" + "5824" + hex.EncodeToString(chunk.Bytes()) + "6473697a65" + "01", "0x00 followed"},
		{"zero size link", "a1" + "656c696e6b73" + "81" + "a2" + "63636964" + "d82a" + "5825" + "00" + hex.EncodeToString(chunk.Bytes()) + "6473697a65" + "00", "size 0"},
		{"tag missing value", "a1" + "6474616773" + "81" + "a1" + "636b6579" + "616b", "missing value"},
		{"empty tag key", "a1" + "6474616773" + "81" + "a2" + "636b6579" + "60" + "6576616c7565" + "60", "empty key"},
		{"not a map", "4101", "cannot unmarshal"},
		{"truncated", "a1" + "6464617461" + "45" + "0102", "unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pieces.Decode(chunk, mustHex(t, tc.hex))
			if err == nil {
				t.Fatal("decoded without error")
			}
			if !errors.Is(err, pieces.ErrMalformed) && !errors.Is(err, pieces.ErrTooLarge) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), chunk.String()) {
				t.Errorf("error %q does not name the piece", err)
			}
		})
	}
}

func TestDecodeOverLimit(t *testing.T) {
	big := make([]byte, pieces.MaxPieceSize+1)
	_, err := pieces.Decode(pieces.SHA2_256.Sum(pieces.CodecDagCBOR, big), big)
	if !errors.Is(err, pieces.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	tags := make([]pieces.Tag, pieces.MaxTags+1)
	for i := range tags {
		tags[i] = pieces.Tag{Key: "k", Searchable: true}
	}
	if _, err := (&pieces.Piece{Tags: tags}).Encode(); !errors.Is(err, pieces.ErrTooLarge) {
		t.Fatalf("encode of too many tags: %v", err)
	}
	if _, err := (&pieces.Piece{Tags: []pieces.Tag{{Key: "k", Value: make([]byte, pieces.MaxTagValueLen+1)}}}).Encode(); !errors.Is(err, pieces.ErrInvalidTag) {
		t.Fatalf("encode of an oversized tag value: %v", err)
	}
}

func TestParseTag(t *testing.T) {
	tag, err := pieces.ParseTag("title=a=b")
	if err != nil || tag.Key != "title" || string(tag.Value) != "a=b" || !tag.Searchable {
		t.Fatalf("ParseTag: %+v, %v", tag, err)
	}
	if tag, err := pieces.ParseTag("empty="); err != nil || len(tag.Value) != 0 {
		t.Fatalf("empty value: %+v %v", tag, err)
	}
	for _, bad := range []string{"novalue", "=v", strings.Repeat("k", pieces.MaxTagKeyLen+1) + "=v", "\xff=v"} {
		if _, err := pieces.ParseTag(bad); !errors.Is(err, pieces.ErrInvalidTag) {
			t.Errorf("ParseTag(%q) = %v, want ErrInvalidTag", bad, err)
		}
	}
}
