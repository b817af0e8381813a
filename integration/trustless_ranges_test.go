package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-unixfsnode/data"
	"github.com/ipfs/go-unixfsnode/data/builder"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// TestTrustlessFileRanges: the entity CARs of UnixFS files that ddc's
// walk writes (dag-scope=entity, with or without entity-bytes) are the
// ones boxo's handler writes for the same request: the same blocks, in
// the same order, with the same headers but the Etag. boxo's are asked
// with ?filename=, which ddc leaves to boxo. The files: two levels of
// raw leaves as go-unixfsnode's builder lays them out; CIDv0 dag-pb
// leaves with parts of no bytes, a part linked twice, an identity leaf
// and an inner node; one with an identity leaf under an inner node past
// its first 100 KB;
// one whose inner node does not write its parts' sizes, which ddc's walk
// finds after it began and hands back to boxo; and one whose root does
// not, which boxo answers from the start; and one whose parent says a
// part is longer than it is, which ddc's walk finds when it reads it and
// hands back to boxo.
func TestTrustlessFileRanges(t *testing.T) {
	n := startNode(t, nil)
	_, base := serveGateway(t, n, gatewayOptions())
	fx := newDAGFixture()

	wide := make([]byte, 60_000)
	io.ReadFull(content(31, int64(len(wide))), wide)
	twoLevels, _ := fx.file(t, wide, 256)
	if kids := fx.children(t, twoLevels); len(kids) < 2 || kids[0].Type() != cid.DagProtobuf {
		t.Fatalf("the wide file is not two levels deep: %d parts", len(kids))
	}

	leaf := func(s string) filePart { return fx.pbLeaf(t, []byte(s)) }
	ident := func(s string) filePart {
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}.Sum([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return filePart{c, int64(len(s))}
	}

	raw := func(s string) filePart { return fx.rawLeaf(t, []byte(s)) }
	first := leaf("the first part, in a dag-pb leaf, linked twice.\n")
	inner := fx.pbFile(t, true, leaf("inner one\n"), leaf(""), raw("inner three\n"))
	mixed := fx.pbFile(t, true, first, raw(""), inner, first, leaf(""), ident("inline\n"), raw("the last part\n"))

	noSizes := fx.pbFile(t, false, leaf("part a\n"), leaf("part b\n"))
	lateNoSizes := fx.pbFile(t, true, raw("before the inner node\n"), noSizes, raw("after it\n"))
	// An identity leaf (ipfs add --inline --raw-leaves writes a short
	// last chunk so) past the first 100 KB, under an inner node.
	long := make([]byte, 100_000)
	io.ReadFull(content(32, int64(len(long))), long)
	inlined := fx.pbFile(t, true, fx.pbFile(t, true, fx.rawLeaf(t, long)), fx.pbFile(t, true, raw("a part\n"), ident("a short tail, inline\n")))

	lies := raw("a part its parent says is longer\n")
	lies.size += 3
	lying := fx.pbFile(t, true, raw("a part that tells the truth\n"), lies, raw("the end\n"))
	fx.importInto(t, n, twoLevels, mixed.c, lateNoSizes.c, lying.c, inlined.c)

	for _, f := range []struct {
		name string
		c    cid.Cid
		size int64
		by   string // who answers: ddc's walk, boxo, or each some ranges (those that reach the inner node are boxo's)
	}{
		{"two levels", twoLevels, int64(len(wide)), "ddc"},
		{"CIDv0 leaves", mixed.c, mixed.size, "ddc"},
		{"an identity leaf past 100 KB", inlined.c, inlined.size, "ddc"},
		{"inner node without sizes", lateNoSizes.c, lateNoSizes.size, "both"},
		{"root without sizes", noSizes.c, noSizes.size, "boxo"},
		{"a parent that lies about a part's size", lying.c, lying.size, "both"},
	} {
		s := f.size
		ranges := []string{"", "0:0", "0:*", "1:1", "-1:*", "0:99999999", fmt.Sprint(s, ":*"), fmt.Sprint(s+10, ":", s+20),
			fmt.Sprint(-s-5, ":*"), "-5:-6", "-7:-3", fmt.Sprint(s/3, ":", 2*s/3)}
		for _, b := range []int64{256, 512, 44_800, 44_544, 7, 48, 58, 100_000, 100_007} { // part edges of the fixtures
			ranges = append(ranges, fmt.Sprint(b-1, ":", b-1), fmt.Sprint(b, ":", b), fmt.Sprint(b-1, ":", b))
		}
		answered := map[string]bool{}
		for _, rng := range ranges {
			q := "?format=car&dag-scope=entity"
			if rng != "" {
				q += "&entity-bytes=" + rng
			}
			url := base + "/ipfs/" + f.c.String() + q
			ddc, boxo := request(t, "GET", url), request(t, "GET", url+"&filename=x.car")
			what := f.name + " " + q
			if ddc.status != boxo.status || (ddc.status != http.StatusOK && rng != "-5:-6") { // boxo refuses a range that ends before it starts
				t.Fatalf("%s: ddc %d, boxo %d (%.200q)", what, ddc.status, boxo.status, boxo.body)
			}
			if ddc.status != http.StatusOK {
				continue
			}
			by := "ddc"
			if strings.HasPrefix(ddc.h.Get("Etag"), "W/") { // boxo's Etags are weak, ddc's strong
				by = "boxo"
			}
			if f.by != "both" && by != f.by {
				t.Fatalf("%s: answered by %s, Etag %s", what, by, ddc.h.Get("Etag"))
			}
			answered[by] = true
			if !bytes.Equal(ddc.body, boxo.body) {
				t.Fatalf("%s: ddc's CAR (%d bytes) is not boxo's (%d bytes)", what, len(ddc.body), len(boxo.body))
			}
			for k := range merge(ddc.h, boxo.h) {
				switch k {
				case "Date", "Etag", "Content-Disposition":
					continue
				}
				if fmt.Sprint(ddc.h.Values(k)) != fmt.Sprint(boxo.h.Values(k)) {
					t.Fatalf("%s: %s: ddc %q, boxo %q", what, k, ddc.h.Values(k), boxo.h.Values(k))
				}
			}
		}
		if f.by == "both" && len(answered) != 2 {
			t.Fatalf("%s: answered by %v alone", f.name, answered)
		}
	}
}

func merge(a, b http.Header) http.Header {
	out := a.Clone()
	for k, v := range b {
		out[k] = v
	}
	return out
}

// filePart is a block of a UnixFS file the tests build, with its bytes.
type filePart struct {
	c    cid.Cid
	size int64
}

// rawLeaf stores data as a raw block.
func (fx *dagFixture) rawLeaf(t *testing.T, b []byte) filePart {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(b)
	if err != nil {
		t.Fatal(err)
	}
	fx.blocks[c] = bytes.Clone(b)
	return filePart{c, int64(len(b))}
}

// pbLeaf stores b as a CIDv0 dag-pb leaf, as Kubo's CIDv0 'ipfs add'
// writes them.
func (fx *dagFixture) pbLeaf(t *testing.T, b []byte) filePart {
	t.Helper()
	return fx.pbNode(t, nil, int64(len(b)), func(u *builder.Builder) {
		builder.DataType(u, data.Data_File)
		builder.Data(u, b)
		builder.FileSize(u, uint64(len(b)))
	})
}

// pbFile stores a CIDv0 UnixFS file node of parts, writing their sizes
// (blocksizes) when sizes.
func (fx *dagFixture) pbFile(t *testing.T, sizes bool, parts ...filePart) filePart {
	t.Helper()
	var total int64
	var bs []uint64
	for _, p := range parts {
		total += p.size
		bs = append(bs, uint64(p.size))
	}
	return fx.pbNode(t, parts, total, func(u *builder.Builder) {
		builder.DataType(u, data.Data_File)
		builder.FileSize(u, uint64(total))
		if sizes {
			builder.BlockSizes(u, bs)
		}
	})
}

// pbNode stores a CIDv0 dag-pb node linking parts (Tsize: their bytes)
// with the UnixFS data fill builds.
func (fx *dagFixture) pbNode(t *testing.T, parts []filePart, size int64, fill func(*builder.Builder)) filePart {
	t.Helper()
	ufs, err := builder.BuildUnixFS(fill)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := qp.BuildMap(dagpb.Type.PBNode, 2, func(ma ipld.MapAssembler) {
		qp.MapEntry(ma, "Links", qp.List(int64(len(parts)), func(la ipld.ListAssembler) {
			for _, p := range parts {
				qp.ListEntry(la, qp.Map(2, func(ma ipld.MapAssembler) {
					qp.MapEntry(ma, "Hash", qp.Link(cidlink.Link{Cid: p.c}))
					qp.MapEntry(ma, "Tsize", qp.Int(p.size))
				}))
			}
		}))
		qp.MapEntry(ma, "Data", qp.Bytes(data.EncodeUnixFSData(ufs)))
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := fx.ls.Store(ipld.LinkContext{}, cidlink.LinkPrototype{Prefix: cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: 32}}, nd)
	if err != nil {
		t.Fatal(err)
	}
	return filePart{l.(cidlink.Link).Cid, size}
}

// TestTrustlessPrivateChunks: a public UnixFS file anyone can make over
// the chunks of a private ddc file (its raw leaves are those chunks'
// CIDs), on the gateway of the file's holder and on that of a node that
// holds none of it and asks the holder: the chunks are refused without
// the bucket's grant and with another bucket's, through ddc's range walk,
// ddc's whole-DAG CAR, boxo's handler and the raw block, and served with
// the grant.
func TestTrustlessPrivateChunks(t *testing.T) {
	owner := startNode(t, nil)
	mine, key := privateBucket(t, owner, "")
	other, _ := privateBucket(t, owner, "other")
	recs := []bucket.Record{mine, other}
	marker := []byte("PRIVATE-CHUNK-7d2a;")
	secret := bytes.Repeat(marker, (3<<20)/len(marker))
	res, err := owner.PutIn(context.Background(), bytes.NewReader(secret), pieces.DefaultBuildOptions(), &node.In{Bucket: recs[0].Bucket})
	if err != nil {
		t.Fatal(err)
	}
	rootData, err := owner.Repo().Store.GetPiece(context.Background(), res.Root)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := pieces.Decode(res.Root, rootData)
	if err != nil {
		t.Fatal(err)
	}
	fx := newDAGFixture()
	var parts []filePart
	for _, l := range desc.Links {
		if l.CID.Type() != cid.Raw || l.Offset != 0 {
			t.Fatalf("the private file's link %s is not a whole chunk", l.CID)
		}
		parts = append(parts, filePart{l.CID, int64(l.Size)})
	}
	cover := fx.pbFile(t, true, parts...)
	stranger := startNode(t, nil, owner)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitFor(t, "the owner to announce the file", 30*time.Second, func() bool {
		_, pending := owner.Announcing()
		return pending == 0
	})
	for _, rec := range recs { // the other bucket too: the stranger finds the owner as its holder, and asks
		waitFor(t, "the owner to publish its buckets", 30*time.Second, func() bool {
			_, err := owner.PublishBucket(ctx, rec.Bucket)
			return err == nil
		})
	}
	now := time.Now()
	grant := func(rec bucket.Record) string {
		g, err := bucket.NewGrant(key, rec.Bucket, nil, bucket.OpGet, now.Add(time.Hour), false, now)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + g.String()
	}
	valid, wrong := grant(recs[0]), grant(recs[1])
	chunk := parts[len(parts)/2].c.String()
	paths := []string{
		cover.c.String() + "?format=car&dag-scope=entity&entity-bytes=1048576:1114111", // ddc's range walk
		cover.c.String() + "?format=car",                                               // car.WriteDAG
		cover.c.String() + "?format=car&car-dups=y",                                    // boxo
		chunk + "?format=raw",
		chunk + "?format=car",
	}
	for gi, n := range []*node.Node{owner, stranger} {
		fx.importInto(t, n, cover.c) // the cover's root: public, on each gateway's node
		_, base := serveGateway(t, n, gatewayOptions())
		on := []string{"on the holder", "on a node that holds none of it"}[gi]
		for _, p := range paths {
			url := base + "/ipfs/" + p
			for _, h := range [][]string{nil, {"Authorization", wrong}} {
				a := request(t, "GET", url, h...)
				if a.status != http.StatusForbidden || bytes.Contains(a.body, marker) {
					t.Fatalf("%s %s, %v: %d %.100q; want 403 without the private bytes", p, on, h, a.status, a.body)
				}
			}
			a := request(t, "GET", url, "Authorization", valid)
			a.want(t, p+" "+on+" with the grant", 200, "Cache-Control", "private, no-store")
			if !bytes.Contains(a.body, marker) {
				t.Fatalf("%s %s with the grant: the chunk is not in the answer", p, on)
			}
		}
	}
}
