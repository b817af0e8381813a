package repo

import (
	"context"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
	"github.com/ddc-project/ddc/pieces/tartree"
)

// Compose stores a file of ranges of others (see pieces.Compose), their
// pieces read through g, in bucket b when set, and pins it; each, when
// set, is called with every piece stored (descriptors only).
func (r *Repo) Compose(ctx context.Context, g pieces.Getter, ranges []pieces.Range, opt pieces.BuildOptions, b *bucket.ID, each func(cid.Cid)) (pieces.BuildResult, error) {
	tx, put := r.begin(b, each)
	res, err := pieces.Compose(ctx, g, ranges, put, opt)
	if err != nil {
		tx.Discard()
		return res, err
	}
	tx.Pin(res.Root)
	return res, tx.Commit()
}

// begin starts a transaction of a put into b, and its putter calling each.
func (r *Repo) begin(b *bucket.ID, each func(cid.Cid)) (*store.Tx, pieces.Putter) {
	tx := r.Store.Begin()
	if b != nil {
		tx.InBucket(store.Bucket(*b))
	}
	var put pieces.Putter = tx
	if each != nil {
		put = eachPutter{put, each}
	}
	return tx, put
}

// PutTree stores the tree in the tar stream rd as directories in one
// transaction, in bucket b when set, and pins its root; each, when set,
// is called with every piece stored. Nothing is kept if any entry is
// refused: the tree is durable, whole, when its CID returns.
func (r *Repo) PutTree(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, b *bucket.ID, each func(cid.Cid)) (pieces.TreeResult, error) {
	tx, put := r.begin(b, each)
	tb, err := pieces.NewTreeBuilder(put, opt)
	if err != nil {
		tx.Discard()
		return pieces.TreeResult{}, err
	}
	if err := tartree.Build(ctx, rd, tb); err != nil {
		tx.Discard()
		return pieces.TreeResult{}, err
	}
	res, err := tb.Finish()
	if err != nil {
		tx.Discard()
		return pieces.TreeResult{}, err
	}
	tx.Pin(res.Root)
	return res, tx.Commit()
}
