package pieces_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/ipld/go-ipld-prime/node/basicnode"

	"github.com/ddc-project/ddc/pieces"
)

// The descriptor format is plain DAG-CBOR: what `ipfs dag put` writes from
// DAG-JSON decodes in ddc, and what ddc writes reads back in `ipfs dag get`
// with text tags as JSON strings. go-ipld-prime's codecs stand in for the
// IPFS binary, as Kubo uses them.

func dagJSONToCBOR(t *testing.T, js string) []byte {
	t.Helper()
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagjson.Decode(nb, strings.NewReader(js)); err != nil {
		t.Fatalf("dag-json %s: %v", js, err)
	}
	var out bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func dagCBORToJSON(t *testing.T, b []byte) string {
	t.Helper()
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(b)); err != nil {
		t.Fatalf("dag-cbor %x: %v", b, err)
	}
	var out bytes.Buffer
	if err := dagjson.Encode(nb.Build(), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestDescriptorFromDagPut(t *testing.T) {
	chunk := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("x"))
	js := `{"data":{"/":{"bytes":"aGk"}},"links":[{"cid":{"/":"` + chunk.String() + `"},"size":1,"name":"c0"}],` +
		`"tags":[{"key":"title","value":"A b"},{"key":"empty","value":""},{"key":"blob","value":{"/":{"bytes":"/w"}}},{"key":"hidden","value":"x","searchable":false}]}`
	b := dagJSONToCBOR(t, js)
	c := pieces.SHA2_256.Sum(pieces.CodecDagCBOR, b)
	p, err := pieces.Decode(c, b)
	if err != nil {
		t.Fatalf("ddc refuses what dag put wrote: %v", err)
	}
	want := []pieces.Tag{
		{Key: "title", Value: []byte("A b"), Searchable: true},
		{Key: "empty", Value: []byte{}, Searchable: true},
		{Key: "blob", Value: []byte{0xff}, Searchable: true},
		{Key: "hidden", Value: []byte("x"), Searchable: false},
	}
	if string(p.Data) != "hi" || len(p.Links) != 1 || !p.Links[0].CID.Equals(chunk) || p.Links[0].Name != "c0" || len(p.Tags) != len(want) {
		t.Fatalf("decoded %+v", p)
	}
	for i, w := range want {
		g := p.Tags[i]
		if g.Key != w.Key || !bytes.Equal(g.Value, w.Value) || g.Searchable != w.Searchable {
			t.Errorf("tags[%d] = %+v, want %+v", i, g, w)
		}
	}
	// ddc encodes the same piece to the same bytes, so to the same CID.
	again, _, err := p.EncodeCID(pieces.SHA2_256)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("ddc's encoding differs from dag put's: %x vs %x (%v)", again, b, err)
	}
}

func TestDescriptorInDagGet(t *testing.T) {
	p := pieces.Piece{Tags: []pieces.Tag{
		{Key: "title", Value: []byte("A b"), Searchable: true},
		{Key: "raw", Value: []byte{0xff, 0xfe}, Searchable: true},
	}}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	js := dagCBORToJSON(t, b)
	for _, want := range []string{`"value":"A b"`, `"value":{"/":{"bytes":"//4"}}`} {
		if !strings.Contains(js, want) {
			t.Errorf("dag get shows %s, want it to contain %s", js, want)
		}
	}
}

// TestDirAndRangeFromDagPut: a directory with entry tags and a file with
// a range link, written as DAG-JSON by an IPLD tool, decode in ddc and
// re-encode to the same bytes, so ddc's and IPLD's CIDs agree.
func TestDirAndRangeFromDagPut(t *testing.T) {
	f := pieces.SHA2_256.Sum(pieces.CodecDagCBOR, []byte("a file"))
	chunk := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("0123456789"))
	for _, js := range []string{
		`{"kind":"dir","links":[{"cid":{"/":"` + f.String() + `"},"name":"a.sh","size":3,"tags":[{"key":"mode","value":"755"}]},` +
			`{"cid":{"/":"` + f.String() + `"},"name":"b","size":0,"tags":[{"key":"type","value":"dir"}]}]}`,
		`{"links":[{"cid":{"/":"` + chunk.String() + `"},"size":4,"offset":3}]}`,
	} {
		b := dagJSONToCBOR(t, js)
		c := pieces.SHA2_256.Sum(pieces.CodecDagCBOR, b)
		p, err := pieces.Decode(c, b)
		if err != nil {
			t.Fatalf("ddc refuses what dag put wrote: %v\n%s", err, js)
		}
		again, err := p.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoded differently: %v", err)
		}
		if got := dagCBORToJSON(t, again); !strings.Contains(got, `"kind"`) && !strings.Contains(got, `"offset"`) {
			t.Fatalf("dag get shows %s", got)
		}
	}
}
