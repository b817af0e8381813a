package car

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-unixfsnode/data"
	dagpb "github.com/ipld/go-codec-dagpb"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/pieces"
)

// ErrNotPlainFile is what OpenUnixFSFile and WriteRange answer for a DAG
// they do not lay out: no UnixFS file, or one whose parts' sizes are not
// all written in their parents (blocksizes for dag-pb parts, Tsize for
// raw ones), or that links blocks of other codecs or hashes ddc does not
// hold (identity blocks, in their CIDs, are read there). Such a DAG
// is for a general walker (boxo's): the sizes are what make a range's
// blocks known without reading the blocks beside it.
var ErrNotPlainFile = errors.New("not a UnixFS file laid out by its sizes")

// UnixFSFile is the root of a UnixFS file, decoded for its layout.
type UnixFSFile struct {
	root cid.Cid
	data []byte
	node fileNode
}

// fileNode is one dag-pb node of a UnixFS file: its parts (none for a
// leaf) and its size.
type fileNode struct {
	parts []filePart
	size  int64
}

// filePart is a link of a fileNode: the block and the bytes of the file
// it holds.
type filePart struct {
	c    cid.Cid
	size int64
}

// OpenUnixFSFile decodes data, the block of root, as the root of a UnixFS
// file. It fails with ErrNotPlainFile for anything else (a directory, a
// raw block, a root of other codecs) and for a file whose size in its
// root disagrees with its parts.
func OpenUnixFSFile(root cid.Cid, data []byte) (*UnixFSFile, error) {
	if root.Type() != cid.DagProtobuf {
		return nil, ErrNotPlainFile
	}
	n, kind, fileSize, err := decodeFileNode(root, data)
	if err != nil {
		return nil, err
	}
	if kind != fileKindFile || (fileSize >= 0 && fileSize != n.size) {
		return nil, fmt.Errorf("%s: %w", root, ErrNotPlainFile)
	}
	return &UnixFSFile{root: root, data: data, node: n}, nil
}

// Size is the file's length in bytes.
func (f *UnixFSFile) Size() int64 { return f.node.size }

// WriteRange writes a CARv1 rooted at the file's root (as asked: a CIDv0
// stays one) of the blocks that hold its bytes from to to (inclusive;
// to may pass the end, which reads to it), read through g: the root,
// then each part that holds a byte of the range, depth first, each block
// once. These are the blocks, in the order, that a UnixFS reader seeking
// to from and reading to to loads (go-unixfsnode's, which boxo's gateway
// answers entity-bytes with): a part of no bytes is among them only
// when the read passes over it, not at from. A part
// deeper down that is not laid out by sizes, or whose length differs
// from what its parent says, fails it with ErrNotPlainFile, possibly
// after some blocks went out.
func (f *UnixFSFile) WriteRange(ctx context.Context, w io.Writer, g pieces.Getter, from, to int64) error {
	if from < 0 || to < from-1 {
		return fmt.Errorf("%s: bytes %d to %d: not a range", f.root, from, to)
	}
	cw, err := NewWriter(w, f.root)
	if err != nil {
		return err
	}
	fw := &rangeWriter{ctx: ctx, cw: cw, g: g, whole: map[filePart]bool{}}
	if err := fw.cw.Put(f.root, f.data); err != nil || to < from {
		return err
	}
	return fw.parts(f.node, from, to, 0)
}

// rangeWriter is one WriteRange's walk.
type rangeWriter struct {
	ctx context.Context
	cw  *Writer
	g   pieces.Getter
	// whole are the parts read past their end from their start: each
	// block under them is written (once: the Writer skips a block
	// written before), so a part linked again is not walked again (a DAG
	// that links one part twice at each of 40 levels would otherwise
	// cost 2^40 reads).
	whole map[filePart]bool // by CID and the size its parent says
}

// parts writes the parts of n that the read of its bytes lo..hi (from
// its start; lo ≥ 0) passes: one that holds any of them, or holds none
// and sits inside the read.
func (fw *rangeWriter) parts(n fileNode, lo, hi int64, depth int) error {
	if depth > maxDAGDepth {
		return fmt.Errorf("UnixFS file: parts nested deeper than %d", maxDAGDepth)
	}
	at := int64(0)
	for _, p := range n.parts {
		if at > hi {
			break
		}
		start := at
		at += p.size
		if at <= lo { // a part of no bytes at lo too: the read starts past it
			continue
		}
		if err := fw.part(p, max(lo-start, 0), hi-start, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// part writes part p and, for a node of parts, those that the read of
// its bytes lo..hi passes.
func (fw *rangeWriter) part(p filePart, lo, hi int64, depth int) (err error) {
	if err := fw.ctx.Err(); err != nil {
		return err
	}
	full := lo == 0 && hi >= p.size // the read passes its end: the same blocks wherever it is
	if full && fw.whole[p] {
		return nil
	}
	defer func() {
		if full && err == nil {
			fw.whole[p] = true
		}
	}()
	data, identity, err := dagBlock(fw.ctx, fw.g, p.c)
	if err != nil {
		return err
	}
	put := func() error {
		if identity { // in its CID: a CAR does not carry it (as go-car's storage, which boxo writes with)
			return nil
		}
		return fw.cw.Put(p.c, data)
	}
	if p.c.Type() == cid.Raw {
		if int64(len(data)) != p.size {
			return fmt.Errorf("UnixFS leaf %s: %d bytes, its parent says %d: %w", p.c, len(data), p.size, ErrNotPlainFile)
		}
		return put()
	}
	n, _, _, err := decodeFileNode(p.c, data)
	if err != nil {
		return err
	}
	if n.size != p.size {
		return fmt.Errorf("UnixFS part %s: %d bytes, its parent says %d: %w", p.c, n.size, p.size, ErrNotPlainFile)
	}
	if err := put(); err != nil {
		return err
	}
	return fw.parts(n, lo, hi, depth)
}

// isIdentity reports whether c's multihash is the identity: the block is
// in the CID.
func isIdentity(c cid.Cid) bool {
	dec, err := mh.Decode(c.Hash())
	return err == nil && dec.Code == mh.IDENTITY
}

// UnixFS node kinds decodeFileNode tells apart.
const (
	fileKindFile = iota
	fileKindOther
)

// decodeFileNode decodes the dag-pb block data of c as a UnixFS node
// laid out by sizes: its parts, and its size (the sum of theirs, or for
// a leaf the bytes it holds). fileSize is the size its UnixFS data
// states, -1 when it states none. Its kind is fileKindFile for a
// UnixFS File.
func decodeFileNode(c cid.Cid, block []byte) (n fileNode, kind int, fileSize int64, err error) {
	nb := dagpb.Type.PBNode.NewBuilder()
	if err := dagpb.DecodeBytes(nb, block); err != nil {
		return n, 0, 0, fmt.Errorf("dag-pb block %s: %w", c, err)
	}
	pbn := nb.Build().(dagpb.PBNode)
	if !pbn.FieldData().Exists() {
		return n, 0, 0, fmt.Errorf("%s: no UnixFS data: %w", c, ErrNotPlainFile)
	}
	ud, err := data.DecodeUnixFSData(pbn.FieldData().Must().Bytes())
	if err != nil {
		return n, 0, 0, fmt.Errorf("%s: UnixFS data: %v: %w", c, err, ErrNotPlainFile)
	}
	kind, fileSize = fileKindOther, -1
	if ud.FieldDataType().Int() == data.Data_File {
		kind = fileKindFile
	}
	if fs := ud.FieldFileSize(); fs.Exists() {
		fileSize = fs.Must().Int()
	}
	links := pbn.FieldLinks()
	if links.Length() == 0 {
		if d := ud.FieldData(); d.Exists() {
			n.size = int64(len(d.Must().Bytes()))
		}
		return n, kind, fileSize, nil
	}
	sizes := ud.FieldBlockSizes()
	n.parts = make([]filePart, 0, links.Length())
	it := links.Iterator()
	for !it.Done() {
		i, l := it.Next()
		cl, ok := l.FieldHash().Link().(cidlink.Link)
		if !ok {
			return n, 0, 0, fmt.Errorf("%s: link %d: %w", c, i, ErrNotPlainFile)
		}
		p := filePart{c: cl.Cid, size: -1}
		switch cl.Cid.Type() {
		case cid.Raw:
			if ts := l.FieldTsize(); ts.Exists() {
				p.size = ts.Must().Int()
			}
		case cid.DagProtobuf:
			if i < sizes.Length() {
				p.size = sizes.Lookup(i).Int()
			}
		}
		if p.size < 0 || (!isIdentity(cl.Cid) && pieces.CheckCID(pieces.V1(cl.Cid)) != nil) || n.size > math.MaxInt64-p.size {
			return n, 0, 0, fmt.Errorf("%s: link %d to %s: %w", c, i, cl.Cid, ErrNotPlainFile)
		}
		n.size += p.size
		n.parts = append(n.parts, p)
	}
	return n, kind, fileSize, nil
}
