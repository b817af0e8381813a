package node

import (
	"context"
	"errors"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/tartree"
)

// PutTreeIn stores the tree in the tar stream rd (see tartree) as
// directories, into a bucket when in names one, and announces it.
func (n *Node) PutTreeIn(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, in *In) (pieces.TreeResult, error) {
	id, err := n.mayPut(ctx, in)
	if err != nil {
		return pieces.TreeResult{}, err
	}
	var stored []cid.Cid
	res, err := n.repo.PutTree(ctx, rd, opt, id, func(c cid.Cid) { stored = append(stored, c) })
	if err == nil {
		n.announcePut(id, stored)
	}
	return res, err
}

// WriteTreeIn writes the directory c, from the store and the network, as
// a tar stream to w. Every piece goes through the access rule of a read
// in in; with pin, the directory is pinned here once it was read whole.
func (n *Node) WriteTreeIn(ctx context.Context, c cid.Cid, in *In, w io.Writer, pin bool) (tartree.Stats, error) {
	var st tartree.Stats
	err := n.withGetter(ctx, c, in, func(g pieces.Getter) error {
		var err error
		st, err = tartree.WriteTree(ctx, g, c, w)
		return err
	}, pin)
	return st, err
}

// ResolveIn walks path from root through directories and returns the
// entry it ends at and how many pieces the walk read.
func (n *Node) ResolveIn(ctx context.Context, root cid.Cid, path string, in *In) (pieces.Link, int, error) {
	var (
		l    pieces.Link
		read int
	)
	err := n.withGetter(ctx, root, in, func(g pieces.Getter) error {
		var err error
		l, read, err = pieces.ResolvePath(ctx, g, root, path)
		return err
	}, false)
	if err == nil && l.CID != root {
		n.holders.put(l.CID, n.holders.get(root)) // the entry is read next: from the holders that served its folder
	}
	return l, read, err
}

// EntriesIn calls fn with each entry of the directory c, in name order.
func (n *Node) EntriesIn(ctx context.Context, c cid.Cid, in *In, fn func(pieces.Link) error) error {
	return n.withGetter(ctx, c, in, func(g pieces.Getter) error {
		if _, err := pieces.OpenDir(ctx, g, c); err != nil {
			return err
		}
		return pieces.Entries(ctx, g, c, fn)
	}, false)
}

// ComposeIn stores a file made of ranges of other files (see
// pieces.Compose), into a bucket when in names one, and pins it. It
// writes descriptors only; the sources' pieces are read from the store or
// the network to find the links that cover each range.
func (n *Node) ComposeIn(ctx context.Context, ranges []pieces.Range, opt pieces.BuildOptions, in *In) (pieces.BuildResult, error) {
	if len(ranges) == 0 {
		return pieces.BuildResult{}, errors.New("compose: no ranges")
	}
	id, err := n.mayPut(ctx, in)
	if err != nil {
		return pieces.BuildResult{}, err
	}
	var res pieces.BuildResult
	var stored []cid.Cid
	err = n.withGetter(ctx, ranges[0].CID, in, func(g pieces.Getter) error {
		var err error
		res, err = n.repo.Compose(ctx, g, ranges, opt, id, func(c cid.Cid) { stored = append(stored, c) })
		return err
	}, false)
	if err == nil {
		n.announcePut(id, stored)
	}
	return res, err
}

// GetterIn runs fn with one getter of the blocks under root, read in in
// as the access rule allows its reader (every block it hands out is
// checked, whatever its codec), and commits what it fetched when fn
// returns. The holders found for one block serve the next, so a walk of a
// DAG that is not ddc's own (the gateway's UnixFS responses) looks them
// up once.
func (n *Node) GetterIn(ctx context.Context, root cid.Cid, in *In, fn func(pieces.Getter) error) error {
	return n.withGetter(ctx, root, in, fn, false)
}

// withGetter runs fn with a getter of pieces under root read in in, and
// commits what it fetched (pinning root with pin) when fn returns.
func (n *Node) withGetter(ctx context.Context, root cid.Cid, in *In, fn func(pieces.Getter) error, pin bool) error {
	if err := pieces.CheckCID(root); err != nil {
		return err
	}
	g := n.newGetter(root, in)
	defer n.repo.Store.Hold(root)()
	if err := g.enter(ctx); err != nil {
		return errors.Join(err, g.close())
	}
	err := fn(g)
	if err == nil && pin {
		g.mu.Lock()
		g.pin = true
		g.mu.Unlock()
	}
	return errors.Join(err, g.close())
}
