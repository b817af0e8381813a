package car

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	_ "github.com/ipld/go-codec-dagpb"              // registers dag-pb (UnixFS) for WriteDAG
	_ "github.com/ipld/go-ipld-prime/codec/dagcbor" // registers dag-cbor
	_ "github.com/ipld/go-ipld-prime/codec/dagjson" // registers dag-json
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/multicodec"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/ipld/go-ipld-prime/traversal"
	mh "github.com/multiformats/go-multihash"

	"github.com/ddc-project/ddc/pieces"
)

// maxDAGDepth bounds how deep WriteDAG follows links: far past any UnixFS
// tree or HAMT a real DAG has, short of a stack a hostile one could grow.
const maxDAGDepth = 4096

// WriteDAG writes a CARv1 rooted at root of every block of the DAG under
// it, of any codec (dag-pb, dag-cbor, dag-json, raw), read through g, in
// depth-first order, each block once: what 'ddc export' writes for DAGs
// that are not ddc's (UnixFS imported from a CAR). A CIDv0 link is read
// as the CIDv1 of its block and written as linked; an identity CID is in
// the CID itself and is not written, but its links are followed. A block
// of a codec ddc cannot decode stops it with an error naming the CID.
func WriteDAG(ctx context.Context, w io.Writer, g pieces.Getter, root cid.Cid) error {
	cw, err := NewWriter(w, root)
	if err != nil {
		return err
	}
	seen := map[cid.Cid]bool{}
	var walk func(c cid.Cid, depth int) error
	walk = func(c cid.Cid, depth int) error {
		key := pieces.V1(c)
		if seen[key] {
			return nil
		}
		seen[key] = true
		if depth > maxDAGDepth {
			return fmt.Errorf("DAG under %s: links nested deeper than %d at %s", root, maxDAGDepth, c)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		data, identity, err := dagBlock(ctx, g, c)
		if err != nil {
			return err
		}
		if !identity {
			if err := cw.Put(c, data); err != nil {
				return err
			}
		}
		links, err := dagLinks(c, data)
		if err != nil {
			return err
		}
		for _, l := range links {
			if err := walk(l, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, 0)
}

// dagBlock is the block c: from g, or from c itself for an identity CID.
func dagBlock(ctx context.Context, g pieces.Getter, c cid.Cid) (data []byte, identity bool, err error) {
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return nil, false, fmt.Errorf("%w %s: %w", pieces.ErrInvalidCID, c, err)
	}
	if dec.Code == mh.IDENTITY {
		return dec.Digest, true, nil
	}
	data, err = g.GetPiece(ctx, pieces.V1(c))
	return data, false, err
}

// dagLinks are the links of block c, in the order its codec gives them;
// none for raw blocks.
func dagLinks(c cid.Cid, data []byte) ([]cid.Cid, error) {
	if c.Type() == cid.Raw {
		return nil, nil
	}
	decode, err := multicodec.LookupDecoder(c.Type())
	if err != nil {
		return nil, fmt.Errorf("block %s: codec 0x%x: ddc cannot read its links: %w", c, c.Type(), err)
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := decode(nb, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	ls, err := traversal.SelectLinks(nb.Build())
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	out := make([]cid.Cid, 0, len(ls))
	for _, l := range ls {
		cl, ok := l.(cidlink.Link)
		if !ok {
			return nil, fmt.Errorf("block %s: a link that is not a CID", c)
		}
		out = append(out, cl.Cid)
	}
	return out, nil
}
