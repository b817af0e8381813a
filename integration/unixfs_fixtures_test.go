package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-unixfsnode/data/builder"
	carv2 "github.com/ipld/go-car/v2"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces/car"
)

// dagFixture is a set of IPLD blocks made by the tests (UnixFS through
// go-unixfsnode's builder, DAG-CBOR through go-ipld-prime), the DAGs an
// IPFS client brings to the trustless gateway.
type dagFixture struct {
	blocks map[cid.Cid][]byte
	ls     ipld.LinkSystem
}

func newDAGFixture() *dagFixture {
	fx := &dagFixture{blocks: map[cid.Cid][]byte{}}
	fx.ls = cidlink.DefaultLinkSystem()
	fx.ls.StorageWriteOpener = func(ipld.LinkContext) (io.Writer, ipld.BlockWriteCommitter, error) {
		var buf bytes.Buffer
		return &buf, func(l ipld.Link) error {
			fx.blocks[l.(cidlink.Link).Cid] = bytes.Clone(buf.Bytes())
			return nil
		}, nil
	}
	return fx
}

// file builds a UnixFS file of data in chunks of chunk bytes (raw leaves
// under one dag-pb root).
func (fx *dagFixture) file(t testing.TB, data []byte, chunk int) (cid.Cid, uint64) {
	t.Helper()
	l, size, err := builder.BuildUnixFSFile(bytes.NewReader(data), fmt.Sprintf("size-%d", chunk), &fx.ls)
	if err != nil {
		t.Fatal(err)
	}
	return l.(cidlink.Link).Cid, size
}

// dirEntry is a name and the entity it links to.
type dirEntry struct {
	name string
	c    cid.Cid
	size uint64
}

func (fx *dagFixture) links(t testing.TB, entries []dirEntry) []dagpb.PBLink {
	t.Helper()
	var out []dagpb.PBLink
	for _, e := range entries {
		l, err := builder.BuildUnixFSDirectoryEntry(e.name, int64(e.size), cidlink.Link{Cid: e.c})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// dir builds a flat UnixFS directory of entries.
func (fx *dagFixture) dir(t testing.TB, entries ...dirEntry) (cid.Cid, uint64) {
	t.Helper()
	l, size, err := builder.BuildUnixFSDirectory(fx.links(t, entries), &fx.ls)
	if err != nil {
		t.Fatal(err)
	}
	return l.(cidlink.Link).Cid, size
}

// hamt builds a HAMT-sharded UnixFS directory of entries (fanout 256,
// murmur3 as Kubo shards).
func (fx *dagFixture) hamt(t testing.TB, entries []dirEntry) cid.Cid {
	t.Helper()
	l, _, err := builder.BuildUnixFSShardedDirectory(256, uint64(multicodec.Murmur3X64_64), fx.links(t, entries), &fx.ls)
	if err != nil {
		t.Fatal(err)
	}
	return l.(cidlink.Link).Cid
}

// cbor stores a DAG-CBOR document {"file": link, "note": note}.
func (fx *dagFixture) cbor(t testing.TB, link cid.Cid, note string) cid.Cid {
	t.Helper()
	n, err := qp.BuildMap(basicnode.Prototype.Any, 2, func(ma ipld.MapAssembler) {
		qp.MapEntry(ma, "file", qp.Link(cidlink.Link{Cid: link}))
		qp.MapEntry(ma, "note", qp.String(note))
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	fx.blocks[c] = buf.Bytes()
	return c
}

// links of the dag-pb block c, in order; none for other codecs.
func (fx *dagFixture) children(t testing.TB, c cid.Cid) []cid.Cid {
	t.Helper()
	if c.Type() != cid.DagProtobuf {
		return nil
	}
	nb := dagpb.Type.PBNode.NewBuilder()
	if err := dagpb.DecodeBytes(nb, fx.blocks[c]); err != nil {
		t.Fatalf("decode %s: %v", c, err)
	}
	var out []cid.Cid
	it := nb.Build().(dagpb.PBNode).FieldLinks().Iterator()
	for !it.Done() {
		_, l := it.Next()
		out = append(out, l.FieldHash().Link().(cidlink.Link).Cid)
	}
	return out
}

// dfs is the depth-first order of the dag-pb DAG under c, each block
// once (dups false) or as often as it is linked (dups true), stopping at
// the blocks stop says not to enter.
func (fx *dagFixture) dfs(t testing.TB, c cid.Cid, dups bool, stop func(cid.Cid) bool) []cid.Cid {
	t.Helper()
	seen := map[cid.Cid]bool{}
	var out []cid.Cid
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if !dups && seen[c] {
			return
		}
		seen[c] = true
		out = append(out, c)
		if stop != nil && stop(c) {
			return
		}
		for _, l := range fx.children(t, c) {
			walk(l)
		}
	}
	walk(c)
	return out
}

// importInto stores every block in n as one CAR import, roots pinned.
func (fx *dagFixture) importInto(t testing.TB, n *node.Node, roots ...cid.Cid) {
	t.Helper()
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, roots...)
	if err != nil {
		t.Fatal(err)
	}
	for c, b := range fx.blocks {
		if err := w.Put(c, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.ImportCAR(&buf); err != nil {
		t.Fatal(err)
	}
}

// carAnswer is a CAR response: its roots and blocks in the order sent,
// each checked against its CID (identity and CIDv0 included).
type carAnswer struct {
	answer
	roots  []cid.Cid
	order  []cid.Cid
	blocks map[cid.Cid][]byte
}

func getCAR(t *testing.T, url string, header ...string) carAnswer {
	t.Helper()
	a := request(t, http.MethodGet, url, header...)
	if a.status != http.StatusOK {
		t.Fatalf("GET %s: status %d (%.200q)", url, a.status, a.body)
	}
	br, err := carv2.NewBlockReader(bytes.NewReader(a.body))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	ca := carAnswer{answer: a, roots: br.Roots, blocks: map[cid.Cid][]byte{}}
	for {
		b, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("GET %s: block %d: %v", url, len(ca.order), err)
		}
		want, err := b.Cid().Prefix().Sum(b.RawData())
		if err != nil || !want.Equals(b.Cid()) {
			t.Fatalf("GET %s: block %s does not match its CID (%v)", url, b.Cid(), err)
		}
		ca.order = append(ca.order, b.Cid())
		ca.blocks[b.Cid()] = b.RawData()
	}
	return ca
}

// wantOrder fails unless the CAR's blocks are want, in that order.
func (ca carAnswer) wantOrder(t *testing.T, what string, want []cid.Cid) {
	t.Helper()
	if len(ca.order) != len(want) {
		t.Fatalf("%s: %d blocks, want %d (%v, want %v)", what, len(ca.order), len(want), ca.order, want)
	}
	for i := range want {
		if !ca.order[i].Equals(want[i]) || ca.order[i].Version() != want[i].Version() {
			t.Fatalf("%s: block %d is %s, want %s", what, i, ca.order[i], want[i])
		}
	}
}
