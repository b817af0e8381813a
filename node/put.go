package node

import (
	"context"
	"io"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/pieces"
)

// PutIn is Put into a bucket (none when in is nil): the node must hold a
// put grant for it, or its owner's key. The node announces that it holds
// data of the bucket.
func (n *Node) PutIn(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, in *In) (pieces.BuildResult, error) {
	return n.putIn(ctx, in, func(id *bucket.ID, each func(cid.Cid)) (pieces.BuildResult, error) {
		return n.repo.PutIn(ctx, rd, opt, id, each)
	})
}

// PutInPlaceIn is PutIn of the file f, open on path, leaving its data
// pieces where they lie (see repo.PutInPlace).
func (n *Node) PutInPlaceIn(ctx context.Context, path string, f *os.File, opt pieces.BuildOptions, in *In) (pieces.BuildResult, error) {
	return n.putIn(ctx, in, func(id *bucket.ID, each func(cid.Cid)) (pieces.BuildResult, error) {
		return n.repo.PutInPlace(ctx, path, f, opt, id, each)
	})
}

// putIn checks the grant of a put into in, runs put and announces what it
// stored.
func (n *Node) putIn(ctx context.Context, in *In, put func(id *bucket.ID, each func(cid.Cid)) (pieces.BuildResult, error)) (pieces.BuildResult, error) {
	id, err := n.mayPut(ctx, in)
	if err != nil {
		return pieces.BuildResult{}, err
	}
	var stored []cid.Cid
	res, err := put(id, func(c cid.Cid) { stored = append(stored, c) })
	if err == nil {
		n.announcePut(id, stored)
	}
	return res, err
}

// mayPut checks the grant of a put into in and returns its bucket (nil:
// none).
func (n *Node) mayPut(ctx context.Context, in *In) (*bucket.ID, error) {
	if !in.inBucket() {
		return nil, nil
	}
	r, err := n.record(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := n.repo.Authorize(r, bucket.OpPut, in.Token); err != nil {
		return nil, err
	}
	return &r.Bucket, nil
}

// announcePut queues the pieces a put stored, and the bucket's holders
// key, for announcing.
func (n *Node) announcePut(id *bucket.ID, stored []cid.Cid) {
	if id != nil {
		stored = append(stored, bucket.HoldersKey(*id))
	}
	n.ann.add(stored)
}
