package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Pin makes the file c a root this node keeps: GC keeps it and every
// piece under it. What the store lacks of it is fetched first, as
// `get --pin` does.
func (n *Node) Pin(ctx context.Context, c cid.Cid) error {
	if err := pieces.CheckPieceCID(c); err != nil {
		return err
	}
	err := n.repo.Store.Pin(ctx, c)
	if !errors.Is(err, pieces.ErrNotFound) {
		return err
	}
	rd := n.NewReader(c)
	if err := rd.Open(ctx); err != nil {
		err = errors.Join(err, rd.Close())
		if errors.Is(err, pieces.ErrIsDir) { // a directory: fetch its whole tree
			if _, err = n.WriteTreeIn(ctx, c, nil, io.Discard, true); err == nil {
				return nil
			}
		}
		return fmt.Errorf("pin %s: %w", c, err)
	}
	_, err = rd.WriteTo(io.Discard)
	if err == nil {
		rd.Pin()
	}
	if err := errors.Join(err, rd.Close()); err != nil {
		return fmt.Errorf("pin %s: %w", c, err)
	}
	return nil
}

// GC removes every piece no root reaches (see store.Store.GC), beside
// everything the node does, and counts it in the metrics.
func (n *Node) GC(ctx context.Context) (store.GCResult, error) {
	return n.collect(ctx, n.repo.Store.GC)
}

// collect runs gc, a GC of the store, and counts it in the metrics.
func (n *Node) collect(ctx context.Context, gc func(context.Context) (store.GCResult, error)) (store.GCResult, error) {
	res, err := gc(ctx)
	if err == nil {
		n.metrics.gcDone(res.Duration, res.Freed)
	}
	return res, err
}
