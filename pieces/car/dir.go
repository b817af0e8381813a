package car

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// WriteDir writes the blocks of the directory dir, read through g, in
// depth-first order: its own pieces (every shard and index level), and,
// with all, the whole tree under it, each entry's blocks after its
// directory's.
func (w *Writer) WriteDir(ctx context.Context, g pieces.Getter, dir cid.Cid, all bool) error {
	return w.writeDir(ctx, g, dir, all, 0)
}

func (w *Writer) writeDir(ctx context.Context, g pieces.Getter, dir cid.Cid, all bool, depth int) error {
	if depth > 4*pieces.MaxTreeDepth {
		return fmt.Errorf("directory %s: folders nested deeper than %d", dir, 4*pieces.MaxTreeDepth)
	}
	var entries []pieces.Link
	err := pieces.Entries(ctx, recorder{g, w}, dir, func(l pieces.Link) error {
		entries = append(entries, l)
		return nil
	})
	if err != nil || !all {
		return err
	}
	for _, e := range entries {
		if err := w.writeEntity(ctx, g, e.CID, All, true, depth+1); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
	}
	return nil
}

// writeEntity writes the file or directory c as sc says; all says
// whether a directory brings its whole tree.
func (w *Writer) writeEntity(ctx context.Context, g pieces.Getter, c cid.Cid, sc Scope, all bool, depth int) error {
	f, err := pieces.Open(ctx, g, c)
	if errors.Is(err, pieces.ErrIsDir) {
		if sc.Block {
			return w.block(ctx, g, c)
		}
		return w.writeDir(ctx, g, c, all, depth)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return w.WriteFile(f, sc)
}

func (w *Writer) block(ctx context.Context, g pieces.Getter, c cid.Cid) error {
	data, err := g.GetPiece(ctx, c)
	if err != nil {
		return err
	}
	return w.Put(c, data)
}

// WritePath writes a CAR rooted at root of the blocks that resolve path
// ("a/b", empty for root itself) through directories, in the order they
// are read, then of the entity it ends at as sc says: a directory's own
// pieces (its whole tree when sc is All and all is set), or a file's
// blocks in sc's range. This is the trustless gateway's pathing: a client
// verifies each step from root to what it asked for.
func WritePath(ctx context.Context, w io.Writer, g pieces.Getter, root cid.Cid, path string, sc Scope, all bool) error {
	cw, err := NewWriter(w, root)
	if err != nil {
		return err
	}
	l, _, err := pieces.ResolvePath(ctx, recorder{g, cw}, root, path)
	if err != nil {
		return err
	}
	return cw.writeEntity(ctx, g, l.CID, sc, all, 0)
}

// recorder is a Getter that writes each block it hands out to a CAR.
type recorder struct {
	g pieces.Getter
	w *Writer
}

func (r recorder) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := r.g.GetPiece(ctx, c)
	if err == nil {
		err = r.w.Put(c, data)
	}
	return data, err
}
