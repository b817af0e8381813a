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
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces/car"
	"github.com/ddc-project/ddc/pieces/store"
)

// trustlessDAGs is a gateway whose node holds the fixtures of the
// trustless tests: a multi-block UnixFS file, a directory holding it in
// a subdirectory, a HAMT-sharded directory, a directory with the same
// file twice, and a DAG-CBOR document linking to the file.
type trustlessDAGs struct {
	fx                     *dagFixture
	n                      *node.Node
	base                   string
	data                   []byte
	file, sub, dir, dupDir cid.Cid
	small                  cid.Cid
	hamt, hamtEntry        cid.Cid
	hamtFiles              map[cid.Cid]bool
	doc                    cid.Cid
}

// fileChunk is the fixture file's chunk size; it holds 11 chunks.
const fileChunk = 1024

func newTrustlessDAGs(t *testing.T) *trustlessDAGs {
	t.Helper()
	n := startNode(t, nil)
	_, base := serveGateway(t, n, gatewayOptions())
	d := &trustlessDAGs{fx: newDAGFixture(), n: n, base: base + "/ipfs/", hamtFiles: map[cid.Cid]bool{}}
	d.data = make([]byte, 10*fileChunk+300)
	io.ReadFull(content(30, int64(len(d.data))), d.data)
	var size, smallSize uint64
	d.file, size = d.fx.file(t, d.data, fileChunk)
	d.small, smallSize = d.fx.file(t, []byte("hello, trustless world\n"), fileChunk)
	var subSize uint64
	d.sub, subSize = d.fx.dir(t, dirEntry{"big.bin", d.file, size})
	d.dir, _ = d.fx.dir(t, dirEntry{"hello.txt", d.small, smallSize}, dirEntry{"sub", d.sub, subSize})
	d.dupDir, _ = d.fx.dir(t, dirEntry{"one.bin", d.file, size}, dirEntry{"two.bin", d.file, size})
	var entries []dirEntry
	for i := range 300 { // more than one shard of 256
		c, s := d.fx.file(t, fmt.Appendf(nil, "entry %d\n", i), fileChunk)
		d.hamtFiles[c] = true
		entries = append(entries, dirEntry{fmt.Sprintf("entry-%03d.txt", i), c, s})
		if i == 123 {
			d.hamtEntry = c
		}
	}
	d.hamt = d.fx.hamt(t, entries)
	d.doc = d.fx.cbor(t, d.file, "a DAG-CBOR document")
	d.fx.importInto(t, n, d.dir, d.dupDir, d.hamt, d.doc)
	return d
}

// chunks are the file's leaves that hold bytes [from, to] (inclusive).
func (d *trustlessDAGs) chunks(t *testing.T, from, to int) []cid.Cid {
	leaves := d.fx.children(t, d.file)
	return leaves[from/fileChunk : to/fileChunk+1]
}

// TestTrustlessUnixFS: the trustless gateway's CARs of UnixFS DAGs (the
// blocks and their order for each dag-scope, entity-bytes, pathing,
// duplicates and order negotiation) and their headers.
func TestTrustlessUnixFS(t *testing.T) {
	d := newTrustlessDAGs(t)
	car := func(p string, h ...string) carAnswer { t.Helper(); return getCAR(t, d.base+p, h...) }
	root := func(c cid.Cid) []cid.Cid { return []cid.Cid{c} }
	cat := func(parts ...[]cid.Cid) (out []cid.Cid) {
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	// The whole file, from ?format=car and from Accept, with the spec's
	// headers.
	a := car(d.file.String() + "?format=car")
	a.wantOrder(t, "file", d.fx.dfs(t, d.file, false, nil))
	a.want(t, "file headers", 200, "Content-Type", "application/vnd.ipld.car; version=1; order=dfs; dups=n",
		"Accept-Ranges", "none", "X-Ipfs-Roots", d.file.String(), "X-Content-Type-Options", "nosniff")
	wantAttachment(t, "file", a.answer, d.file.String()+".car")
	if !strings.HasPrefix(a.h.Get("Content-Security-Policy"), "sandbox") || a.h.Get("Etag") == "" {
		t.Fatalf("file: CSP %q, Etag %q", a.h.Get("Content-Security-Policy"), a.h.Get("Etag"))
	}
	if len(a.roots) != 1 || !a.roots[0].Equals(d.file) {
		t.Fatalf("file: CAR roots %v", a.roots)
	}
	car(d.file.String(), "Accept", "application/vnd.ipld.car").wantOrder(t, "Accept car", a.order)
	request(t, "GET", d.base+d.file.String()+"?format=car", "If-None-Match", a.h.Get("Etag")).want(t, "If-None-Match", 304)
	named := car(d.file.String() + "?format=car&filename=my-file.car")
	wantAttachment(t, "filename", named.answer, "my-file.car")

	// dag-scope.
	block := car(d.file.String() + "?format=car&dag-scope=block")
	block.wantOrder(t, "file dag-scope=block", root(d.file))
	if block.h.Get("Etag") == a.h.Get("Etag") {
		t.Fatal("dag-scope=block and all share an Etag")
	}
	car(d.file.String()+"?format=car&dag-scope=entity").wantOrder(t, "file dag-scope=entity", a.order)
	car(d.dir.String()+"?format=car").wantOrder(t, "dir", d.fx.dfs(t, d.dir, false, nil))
	car(d.dir.String()+"?format=car&dag-scope=entity").wantOrder(t, "dir dag-scope=entity", root(d.dir))

	// entity-bytes (with dag-scope=entity, as the spec has it), negative
	// offsets included: the root and the chunks that hold the range.
	for _, c := range []struct {
		q        string
		from, to int
	}{
		{"0:0", 0, 0},
		{"1500:3000", 1500, 3000},
		{"2048:*", 2048, len(d.data) - 1},
		{"-1500:*", len(d.data) - 1500, len(d.data) - 1},
		{"-3000:-2000", len(d.data) - 3000, len(d.data) - 2000},
		{"0:999999", 0, len(d.data) - 1},
	} {
		e := car(d.file.String() + "?format=car&dag-scope=entity&entity-bytes=" + c.q)
		e.wantOrder(t, "entity-bytes="+c.q, cat(root(d.file), d.chunks(t, c.from, c.to)))
	}

	// Pathing: the blocks along the path, then the terminal entity.
	car(d.dir.String()+"/sub/big.bin?format=car&dag-scope=block").wantOrder(t, "path block", []cid.Cid{d.dir, d.sub, d.file})
	car(d.dir.String()+"/sub/big.bin?format=car").wantOrder(t, "path all", cat([]cid.Cid{d.dir, d.sub}, a.order))
	car(d.dir.String()+"/sub/big.bin?format=car&dag-scope=entity&entity-bytes=-10:*").wantOrder(t, "path entity-bytes",
		cat([]cid.Cid{d.dir, d.sub, d.file}, d.chunks(t, len(d.data)-10, len(d.data)-1)))
	// A raw block is asked for by its CID: a UnixFS path is a CAR's.
	request(t, "GET", d.base+d.dir.String()+"/sub/big.bin?format=raw").want(t, "path raw", 406)
	// A missing entry: the blocks that prove it missing, nothing else.
	car(d.dir.String()+"/nope?format=car").wantOrder(t, "missing path", []cid.Cid{d.dir})

	// Duplicates and order, from Accept and from ?car-*.
	unique := d.fx.dfs(t, d.dupDir, false, nil)
	all := d.fx.dfs(t, d.dupDir, true, nil)
	if len(all) <= len(unique) {
		t.Fatal("the duplicates fixture has no duplicate block")
	}
	car(d.dupDir.String()+"?format=car").wantOrder(t, "dups default", unique)
	y := car(d.dupDir.String(), "Accept", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
	y.wantOrder(t, "Accept dups=y", all)
	y.want(t, "dups=y type", 200, "Content-Type", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
	car(d.dupDir.String()+"?format=car&car-dups=y").wantOrder(t, "car-dups=y", all)
	car(d.dupDir.String(), "Accept", "application/vnd.ipld.car; order=unk").wantOrder(t, "order=unk", unique)
	if e := car(d.dupDir.String() + "?format=car&car-dups=y").h.Get("Etag"); e == car(d.dupDir.String()+"?format=car").h.Get("Etag") {
		t.Fatal("dups=y and dups=n share an Etag")
	}
	request(t, "GET", d.base+d.file.String(), "Accept", "application/vnd.ipld.car; version=2").want(t, "CARv2 only", 400)
	request(t, "GET", d.base+d.file.String()+"?format=car&dag-scope=nope").want(t, "bad dag-scope", 400)
}

// TestTrustlessHAMTAndCodecs: HAMT-sharded directories (the shards
// alone for entity, the shards on the way for a path), DAG-CBOR with
// links, CIDv0 answered under the CID asked, identity CIDs and raw
// blocks with their headers.
func TestTrustlessHAMTAndCodecs(t *testing.T) {
	d := newTrustlessDAGs(t)
	car := func(p string, h ...string) carAnswer { t.Helper(); return getCAR(t, d.base+p, h...) }
	isFile := func(c cid.Cid) bool { return d.hamtFiles[c] }

	car(d.hamt.String()+"?format=car").wantOrder(t, "hamt all", d.fx.dfs(t, d.hamt, false, nil))
	var shards []cid.Cid
	for _, c := range d.fx.dfs(t, d.hamt, false, isFile) {
		if !isFile(c) {
			shards = append(shards, c)
		}
	}
	if len(shards) < 2 {
		t.Fatalf("the HAMT fixture has %d shard blocks, want more than one", len(shards))
	}
	car(d.hamt.String()+"?format=car&dag-scope=entity").wantOrder(t, "hamt entity", shards)
	p := car(d.hamt.String() + "/entry-123.txt?format=car&dag-scope=block")
	if len(p.order) < 3 || !p.order[0].Equals(d.hamt) || !p.order[len(p.order)-1].Equals(d.hamtEntry) {
		t.Fatalf("hamt path: blocks %v, want the root, its shards on the way and the entry %s", p.order, d.hamtEntry)
	}
	for _, c := range p.order[1 : len(p.order)-1] {
		if isFile(c) || d.fx.blocks[c] == nil {
			t.Fatalf("hamt path: block %s is not a shard of the directory", c)
		}
	}

	// DAG-CBOR: its links are followed for all, not for block.
	docAll := car(d.doc.String() + "?format=car")
	docAll.wantOrder(t, "dag-cbor all", append([]cid.Cid{d.doc}, d.fx.dfs(t, d.file, false, nil)...))
	car(d.doc.String()+"?format=car&dag-scope=block").wantOrder(t, "dag-cbor block", []cid.Cid{d.doc})
	car(d.doc.String()+"/file?format=car&dag-scope=block").wantOrder(t, "dag-cbor path", []cid.Cid{d.doc, d.file})

	// CIDv0: the CAR's root and first block are the CID asked for.
	v0 := cid.NewCidV0(d.dir.Hash())
	a := car(v0.String() + "?format=car&dag-scope=block")
	a.wantOrder(t, "CIDv0", []cid.Cid{v0})
	if len(a.roots) != 1 || a.roots[0].String() != v0.String() || a.h.Get("X-Ipfs-Roots") != v0.String() {
		t.Fatalf("CIDv0: roots %v, X-Ipfs-Roots %q, want %s", a.roots, a.h.Get("X-Ipfs-Roots"), v0)
	}
	car(v0.String()+"/sub?format=car&dag-scope=block").wantOrder(t, "CIDv0 path", []cid.Cid{v0, d.sub})

	// Identity: the block is the CID itself.
	text := []byte("held in the CID")
	id := cid.NewCidV1(cid.Raw, mustSum(t, text, mh.IDENTITY))
	raw := request(t, "GET", d.base+id.String()+"?format=raw")
	raw.want(t, "identity raw", 200, "Content-Type", "application/vnd.ipld.raw", "Etag", `"`+id.String()+`.raw"`)
	if !bytes.Equal(raw.body, text) {
		t.Fatalf("identity raw: %q", raw.body)
	}
	ic := car(id.String() + "?format=car") // no block: the client has it in the CID
	ic.wantOrder(t, "identity car", nil)
	if len(ic.roots) != 1 || !ic.roots[0].Equals(id) {
		t.Fatalf("identity car: roots %v", ic.roots)
	}

	// A raw block, by ?format= and Accept, with ?filename=.
	leaf := d.fx.children(t, d.file)[3]
	b := request(t, "GET", d.base+leaf.String(), "Accept", "application/vnd.ipld.raw")
	b.want(t, "raw", 200, "Content-Type", "application/vnd.ipld.raw", "X-Ipfs-Roots", leaf.String(), "X-Content-Type-Options", "nosniff")
	wantAttachment(t, "raw", b, leaf.String()+".bin")
	if !bytes.Equal(b.body, d.data[3*fileChunk:4*fileChunk]) {
		t.Fatal("raw: not the block's bytes")
	}
	wantAttachment(t, "raw filename", request(t, "GET", d.base+leaf.String()+"?format=raw&filename=part.bin"), "part.bin")
	request(t, "GET", d.base+leaf.String()+"?format=raw", "If-None-Match", b.h.Get("Etag")).want(t, "raw If-None-Match", 304)
}

func mustSum(t *testing.T, data []byte, code uint64) mh.Multihash {
	t.Helper()
	h, err := mh.Sum(data, code, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantAttachment fails unless a's Content-Disposition is an attachment
// with the quoted filename name (and maybe its RFC 5987 form after it).
func wantAttachment(t *testing.T, what string, a answer, name string) {
	t.Helper()
	got := a.h.Get("Content-Disposition")
	if want := `attachment; filename="` + name + `"`; got != want && !strings.HasPrefix(got, want+"; filename*=") {
		t.Fatalf("%s: Content-Disposition %q, want %q", what, got, want)
	}
}

// TestTrustlessPrivate: a UnixFS directory whose blocks belong only to
// a private bucket is never served over /ipfs/ without the bucket's
// grant, in any format or path, and with it is served for its client
// alone.
func TestTrustlessPrivate(t *testing.T) {
	n := startNode(t, nil)
	_, base := serveGateway(t, n, gatewayOptions())
	rec, key := privateBucket(t, n, "")
	fx := newDAGFixture()
	marker := []byte("PRIVATE-UNIXFS-5c1e;")
	secret := bytes.Repeat(marker, 4000)
	file, size := fx.file(t, secret, 16<<10)
	dir, _ := fx.dir(t, dirEntry{"secret.bin", file, size})
	tx := n.Repo().Store.Begin()
	tx.InBucket(store.Bucket(rec.Bucket))
	for c, b := range fx.blocks {
		if err := tx.PutPiece(c, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	leaf := fx.children(t, file)[0]
	now := time.Now()
	grant, err := bucket.NewGrant(key, rec.Bucket, nil, bucket.OpGet, now.Add(time.Hour), false, now)
	if err != nil {
		t.Fatal(err)
	}
	// A valid grant, but for another bucket of the same owner.
	other, _ := privateBucket(t, n, "other")
	wrong, err := bucket.NewGrant(key, other.Bucket, nil, bucket.OpGet, now.Add(time.Hour), false, now)
	if err != nil {
		t.Fatal(err)
	}
	// A public file root over the private file's leaves: ddc's range
	// walk reads the root, then is refused the leaf.
	pubRoot := newDAGFixture()
	cover := pubRoot.pbFile(t, true, filePart{leaf, 16 << 10})
	pubRoot.importInto(t, n, cover.c)
	paths := []string{
		dir.String() + "?format=car",
		dir.String() + "/secret.bin?format=car&dag-scope=entity&entity-bytes=0:99",
		cid.NewCidV0(dir.Hash()).String() + "?format=car",
		file.String() + "?format=raw",
		file.String() + "?format=car&dag-scope=entity&entity-bytes=0:99", // ddc's range walk
		file.String() + "?format=car&dag-scope=entity",
		cover.c.String() + "?format=car&dag-scope=entity&entity-bytes=-10:*",
		leaf.String() + "?format=raw",
		leaf.String() + "?format=car",
	}
	for _, p := range paths {
		a := request(t, "GET", base+"/ipfs/"+p)
		a.want(t, p+" without a grant", 403)
		if string(bytes.TrimSpace(a.body)) != node.ErrNotPermitted.Error() || bytes.Contains(a.body, marker) {
			t.Fatalf("%s without a grant: body %.200q", p, a.body)
		}
		w := request(t, "GET", base+"/ipfs/"+p, "Authorization", "Bearer "+wrong.String())
		w.want(t, p+" with another bucket's grant", 403)
		if bytes.Contains(w.body, marker) {
			t.Fatalf("%s with another bucket's grant: the refusal carries the private bytes", p)
		}
		g := request(t, "GET", base+"/ipfs/"+p, "Authorization", "Bearer "+grant.String())
		g.want(t, p+" with the grant", 200, "Cache-Control", "private, no-store")
	}
	got := getCAR(t, base+"/ipfs/"+dir.String()+"?format=car", "Authorization", "Bearer "+grant.String())
	got.wantOrder(t, "granted dir", fx.dfs(t, dir, false, nil))

	// A public directory that links to the private file: the path to it
	// is refused, and so is a CAR of the whole directory when the
	// refusal comes before the response started; once it started, after
	// a public file of 200 KiB, the CAR is cut off, visibly.
	pub := newDAGFixture()
	big, bigSize := pub.file(t, bytes.Repeat([]byte("public;"), 200<<10/7), 16<<10)
	open, _ := pub.dir(t, dirEntry{"readme.txt", leaf, 1}, dirEntry{"secret.bin", file, size})
	late, _ := pub.dir(t, dirEntry{"a.bin", big, bigSize}, dirEntry{"secret.bin", file, size})
	pub.importInto(t, n, open, late)
	for _, p := range []string{open.String() + "/secret.bin?format=car", open.String() + "?format=car"} {
		a := request(t, "GET", base+"/ipfs/"+p)
		a.want(t, p+": a private file under a public directory", 403)
		if bytes.Contains(a.body, marker) {
			t.Fatalf("%s: the refusal carries the private bytes", p)
		}
	}
	resp, err := http.Get(base + "/ipfs/" + late.String() + "?format=car")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err == nil || bytes.Contains(body, marker) {
		t.Fatalf("a CAR that reaches private blocks late: status %s, read error %v, %d bytes, marker %v",
			resp.Status, err, len(body), bytes.Contains(body, marker))
	}
}

// TestExportForeignDAGs: ddc export (Node.ExportCAR) of DAGs that are not
// ddc's writes each whole, depth-first, each block once, as the
// trustless gateway's CAR of it does: a UnixFS directory, a HAMT and a
// DAG-CBOR document with a link.
func TestExportForeignDAGs(t *testing.T) {
	d := newTrustlessDAGs(t)
	for _, c := range []struct {
		name string
		root cid.Cid
		want []cid.Cid
	}{
		{"UnixFS directory", d.dir, d.fx.dfs(t, d.dir, false, nil)},
		{"HAMT", d.hamt, d.fx.dfs(t, d.hamt, false, nil)},
		{"duplicates", d.dupDir, d.fx.dfs(t, d.dupDir, false, nil)},
		{"DAG-CBOR", d.doc, append([]cid.Cid{d.doc}, d.fx.dfs(t, d.file, false, nil)...)},
	} {
		var buf bytes.Buffer
		if err := d.n.ExportCAR(context.Background(), &buf, c.root, nil); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []cid.Cid
		roots, err := car.Import(&buf, func(c cid.Cid, _ []byte) error { got = append(got, c); return nil })
		if err != nil || len(roots) != 1 || !roots[0].Equals(c.root) {
			t.Fatalf("%s: roots %v, %v", c.name, roots, err)
		}
		carAnswer{order: got}.wantOrder(t, c.name+" export", c.want)
	}
}
