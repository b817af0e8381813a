package repo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Put stores the content of rd as a file, pins it and returns its root.
// The put is durable when Put returns: all its pieces and the pin are
// committed together, so an interrupted Put leaves no trace but dead bytes.
func (r *Repo) Put(ctx context.Context, rd io.Reader, opt pieces.BuildOptions) (pieces.BuildResult, error) {
	return r.PutEach(ctx, rd, opt, nil)
}

// PutEach is Put that also calls each with the CID of every piece of the
// file, stored now or before, for a node to announce.
func (r *Repo) PutEach(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, each func(cid.Cid)) (pieces.BuildResult, error) {
	return r.PutIn(ctx, rd, opt, nil, each)
}

// PutIn is PutEach into bucket b (none when nil): the file and each of its
// pieces become members of it. The caller checked the grant (Authorize).
func (r *Repo) PutIn(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, b *bucket.ID, each func(cid.Cid)) (pieces.BuildResult, error) {
	tx := r.Store.Begin()
	if b != nil {
		tx.InBucket(store.Bucket(*b))
	}
	var put pieces.Putter = tx
	if each != nil {
		put = putterFunc(func(c cid.Cid, data []byte) error {
			each(c)
			return tx.PutPiece(c, data)
		})
	}
	res, err := pieces.Build(ctx, rd, put, opt)
	if err != nil {
		tx.Discard()
		return res, err
	}
	tx.Pin(res.Root)
	if err := tx.Commit(); err != nil {
		return res, err
	}
	return res, nil
}

type putterFunc func(c cid.Cid, data []byte) error

func (f putterFunc) PutPiece(c cid.Cid, data []byte) error { return f(c, data) }

// OpenFile opens the file c for reading from the store.
func (r *Repo) OpenFile(ctx context.Context, c cid.Cid) (*pieces.File, error) {
	return pieces.Open(ctx, r.Store, c)
}

// Stat describes the file c from its descriptors.
func (r *Repo) Stat(ctx context.Context, c cid.Cid) (pieces.Stat, error) {
	return pieces.StatFile(ctx, r.Store, c)
}

// FileInfo is a pinned file as ls shows it.
type FileInfo struct {
	CID    cid.Cid
	Size   uint64
	Tags   []pieces.Tag
	Pinned time.Time
	Err    error // set when the root cannot be read
}

// Files calls fn for every pinned file, in CID order.
func (r *Repo) Files(ctx context.Context, fn func(FileInfo) error) error {
	return r.Store.Pins(ctx, r.describe(ctx, fn))
}

// BucketFiles calls fn for every file of bucket b the store holds, in CID
// order; Pinned is when the file was added to the bucket.
func (r *Repo) BucketFiles(ctx context.Context, b bucket.ID, fn func(FileInfo) error) error {
	return r.Store.BucketFiles(ctx, store.Bucket(b), r.describe(ctx, fn))
}

// describe reads the root of each file it is called with, for fn.
func (r *Repo) describe(ctx context.Context, fn func(FileInfo) error) func(cid.Cid, time.Time) error {
	return func(c cid.Cid, at time.Time) error {
		fi := FileInfo{CID: c, Pinned: at}
		f, err := r.OpenFile(ctx, c)
		if err != nil {
			fi.Err = fmt.Errorf("read root: %w", err)
		} else {
			fi.Size, fi.Tags = uint64(f.Size()), f.Root().Tags
		}
		return fn(fi)
	}
}
