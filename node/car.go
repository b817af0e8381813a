package node

import (
	"context"
	"errors"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
	"github.com/ddc-project/ddc/pieces/store"
)

// ImportResult is what an import of a CAR stored.
type ImportResult struct {
	Roots  []cid.Cid
	Blocks []cid.Cid
}

// ImportCAR stores every block of the CAR r in st, each checked against
// its CID, and pins the CAR's roots, in one transaction: a CAR with a bad
// block, or one that lacks a root it names, leaves nothing stored or
// pinned, and the error names the CID.
func ImportCAR(st *store.Store, r io.Reader) (ImportResult, error) {
	tx := st.Begin()
	var res ImportResult
	roots, err := car.Import(r, func(c cid.Cid, data []byte) error {
		res.Blocks = append(res.Blocks, c)
		return tx.PutPiece(c, data)
	})
	if err != nil {
		tx.Discard()
		return ImportResult{}, err
	}
	for _, c := range roots {
		tx.Pin(c)
	}
	if err := tx.Commit(); err != nil {
		return ImportResult{}, err
	}
	res.Roots = roots
	return res, nil
}

// ImportCAR is ImportCAR into the node's store; the blocks are then
// announced.
func (n *Node) ImportCAR(r io.Reader) (ImportResult, error) {
	res, err := ImportCAR(n.repo.Store, r)
	if err == nil {
		n.ann.add(res.Blocks)
	}
	return res, err
}

// ExportCAR writes a CAR of the DAG under c (see car.Export and
// car.WriteDAG), reading in bucket in (none when nil) from the store and
// the cluster.
func (n *Node) ExportCAR(ctx context.Context, w io.Writer, c cid.Cid, in *In) error {
	rd := n.NewReaderIn(c, in)
	err := rd.Open(ctx)
	if errors.Is(err, pieces.ErrIsDir) {
		rd.Close()
		return n.PathCAR(ctx, w, c, "", in, car.All, true)
	}
	if errors.Is(err, pieces.ErrMalformed) || errors.Is(err, pieces.ErrInvalidCID) {
		rd.Close()
		// A DAG that is not ddc's (UnixFS imported from a CAR): as its
		// codecs link it, through one getter, so the access rule decides
		// each block.
		return n.GetterIn(ctx, c, in, func(g pieces.Getter) error {
			return car.WriteDAG(ctx, w, g, c)
		})
	}
	if err != nil {
		rd.Close()
		return err
	}
	err = car.WriteFile(w, rd.File, car.All)
	return errors.Join(err, rd.Close())
}

// PathCAR writes a CAR of the blocks that resolve path under root, then
// of the entity it ends at (see car.WritePath), reading in in from the
// store and the cluster.
func (n *Node) PathCAR(ctx context.Context, w io.Writer, root cid.Cid, path string, in *In, sc car.Scope, all bool) error {
	return n.withGetter(ctx, root, in, func(g pieces.Getter) error {
		return car.WritePath(ctx, w, g, root, path, sc, all)
	}, false)
}
