// Package car moves ddc DAGs in and out of CAR files (content-addressed
// archives, https://ipld.io/specs/transport/car/), the format IPFS tools
// and trustless gateways exchange DAGs in. It writes CARv1 streams and
// reads CARv1 and CARv2 through ipld/go-car v2; what it adds is ddc's
// traversal of a file's DAG, a walk of any other DAG by its codecs'
// links (WriteDAG), and a check of every block it reads.
package car

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"

	"github.com/ddc-project/ddc/pieces"
)

// ContentType is what a CAR stream of this package is, as the trustless
// gateway specification names it: CARv1, blocks in depth-first order,
// each block once.
const ContentType = "application/vnd.ipld.car; version=1; order=dfs; dups=n"

// Writer writes a CARv1 stream, each block once.
type Writer struct {
	w storage.WritableCar
}

// NewWriter writes the CARv1 header naming roots to w.
func NewWriter(w io.Writer, roots ...cid.Cid) (*Writer, error) {
	wc, err := storage.NewWritable(w, roots, carv2.WriteAsCarV1(true), carv2.AllowDuplicatePuts(false))
	if err != nil {
		return nil, fmt.Errorf("car: %w", err)
	}
	return &Writer{w: wc}, nil
}

// Put writes the block c; a block written before is skipped.
func (w *Writer) Put(c cid.Cid, data []byte) error {
	return w.w.Put(context.Background(), c.KeyString(), data)
}

// Scope is which blocks of a DAG a CAR holds, as the trustless gateway's
// dag-scope and entity-bytes say.
type Scope struct {
	// Block: only the root block. Otherwise the file's blocks that hold
	// [From, To) of its content: To < 0 is the end of the file.
	Block    bool
	From, To int64
}

// All is the whole DAG.
var All = Scope{To: -1}

// WriteFile writes the blocks of the file f that sc names, root first.
func (w *Writer) WriteFile(f *pieces.File, sc Scope) error {
	if sc.Block {
		return f.Blocks(0, 0, w.Put)
	}
	to := sc.To
	if to < 0 {
		to = f.Size()
	}
	return f.Blocks(sc.From, to, w.Put)
}

// WriteBlock writes a CARv1 of the one block c to w.
func WriteBlock(w io.Writer, c cid.Cid, data []byte) error {
	cw, err := NewWriter(w, c)
	if err != nil {
		return err
	}
	return cw.Put(c, data)
}

// WriteFile writes a CARv1 rooted at the file f of the blocks sc names.
func WriteFile(w io.Writer, f *pieces.File, sc Scope) error {
	cw, err := NewWriter(w, f.CID())
	if err != nil {
		return err
	}
	return cw.WriteFile(f, sc)
}

// MaxSection bounds a CAR section a reader accepts: the largest piece and
// its CID, with room to spare.
const MaxSection = pieces.MaxPieceSize + 1024

// Import reads a CAR (v1 or v2) from r and hands each block to put after
// checking it against its CID, then returns the CAR's roots. A block whose
// bytes do not match its CID, a CID ddc cannot hold, or a root the CAR
// lacks stops it with an error naming the CID; put has then seen some
// blocks, which the caller discards. A CIDv0 becomes the CIDv1 of the
// same block.
func Import(r io.Reader, put func(c cid.Cid, data []byte) error) (roots []cid.Cid, err error) {
	br, err := carv2.NewBlockReader(r, carv2.MaxAllowedSectionSize(MaxSection), carv2.WithTrustedCAR(true))
	if err != nil {
		return nil, fmt.Errorf("%w: not a CAR: %w", pieces.ErrMalformed, err)
	}
	seen := make(map[cid.Cid]bool)
	for i := 0; ; i++ {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: CAR block %d: %w", pieces.ErrMalformed, i, err)
		}
		c := pieces.V1(b.Cid())
		if err := pieces.Verify(c, b.RawData()); err != nil {
			return nil, fmt.Errorf("CAR block %d: %w", i, err)
		}
		if err := put(c, b.RawData()); err != nil {
			return nil, fmt.Errorf("CAR block %d (%s): %w", i, c, err)
		}
		seen[c] = true
	}
	for _, root := range br.Roots {
		root = pieces.V1(root)
		if !seen[root] {
			return nil, fmt.Errorf("%w: the CAR names root %s but does not hold it", pieces.ErrMalformed, root)
		}
		roots = append(roots, root)
	}
	return roots, nil
}

// Export writes a CAR of the whole DAG under root, reading blocks from g:
// a ddc file's or directory tree's blocks in depth-first order, or, for
// any other DAG (UnixFS, dag-cbor that is not a ddc descriptor, raw),
// what WriteDAG writes.
func Export(ctx context.Context, w io.Writer, g pieces.Getter, root cid.Cid) error {
	f, err := pieces.Open(ctx, g, root)
	if errors.Is(err, pieces.ErrIsDir) {
		return WritePath(ctx, w, g, root, "", All, true)
	}
	if err != nil && !errors.Is(err, pieces.ErrMalformed) && !errors.Is(err, pieces.ErrInvalidCID) {
		return err
	}
	if err != nil { // not a ddc file: the DAG as its codecs link it
		return WriteDAG(ctx, w, g, root)
	}
	defer f.Close()
	return WriteFile(w, f, All)
}
