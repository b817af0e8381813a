package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	return r.put(ctx, rd, opt, b, each, nil)
}

// PutInPlace is PutIn of the file f, open on path, that leaves its data
// pieces where they lie: the store indexes them in the file instead of
// copying them (Kubo's --nocopy). It fails, storing nothing, if the file
// changes while it is read.
func (r *Repo) PutInPlace(ctx context.Context, path string, f *os.File, opt pieces.BuildOptions, b *bucket.ID, each func(cid.Cid)) (pieces.BuildResult, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return pieces.BuildResult{}, err
	}
	before, err := f.Stat()
	if err != nil {
		return pieces.BuildResult{}, fmt.Errorf("put in place: %w", err)
	}
	if !before.Mode().IsRegular() {
		return pieces.BuildResult{}, fmt.Errorf("put in place: %s is not a regular file", path)
	}
	changed := func() error {
		after, err := f.Stat()
		if err != nil {
			return fmt.Errorf("put in place: %w", err)
		}
		if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
			return fmt.Errorf("put in place: %s changed while it was read; nothing was stored (put it again, or without --in-place)", path)
		}
		return nil
	}
	return r.put(ctx, io.NewSectionReader(f, 0, before.Size()), opt, b, each, &placeAt{abs, f, changed})
}

// placeAt is the file a put leaves its data pieces in, and the check that
// it did not change while read.
type placeAt struct {
	path    string
	f       *os.File
	changed func() error
}

func (r *Repo) put(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, b *bucket.ID, each func(cid.Cid), at *placeAt) (pieces.BuildResult, error) {
	tx := r.Store.Begin()
	if b != nil {
		tx.InBucket(store.Bucket(*b))
	}
	var put pieces.Putter = tx
	if at != nil {
		p, err := tx.Place(at.path, at.f)
		if err != nil {
			tx.Discard()
			return pieces.BuildResult{}, err
		}
		put = tx.InPlace(p)
	}
	if each != nil {
		put = eachPutter{put, each}
	}
	res, err := pieces.Build(ctx, rd, put, opt)
	if err == nil && at != nil {
		err = at.changed()
	}
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

// eachPutter calls each with every piece it hands to put.
type eachPutter struct {
	put  pieces.Putter
	each func(cid.Cid)
}

func (p eachPutter) PutPiece(c cid.Cid, data []byte) error {
	p.each(c)
	return p.put.PutPiece(c, data)
}

func (p eachPutter) PutChunk(c cid.Cid, off uint64, data []byte) error {
	p.each(c)
	if cp, ok := p.put.(pieces.ChunkPutter); ok {
		return cp.PutChunk(c, off, data)
	}
	return p.put.PutPiece(c, data)
}

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
	Dir    bool  // a directory: Size is the bytes of every file below it
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
		switch {
		case errors.Is(err, pieces.ErrIsDir):
			if d, err := pieces.OpenDir(ctx, r.Store, c); err == nil {
				fi.Dir, fi.Size, fi.Tags = true, d.ContentSize(), d.Tags
			}
		case err != nil:
			fi.Err = fmt.Errorf("read root: %w", err)
		default:
			fi.Size, fi.Tags = uint64(f.Size()), f.Root().Tags
		}
		return fn(fi)
	}
}
