package node

import (
	"errors"
	"fmt"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/internal/directio"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// A get that writes a regular file keeps the file's data pieces in place:
// the node writes the output once, and its index points into it, so the
// getter becomes a holder without a second copy on its disk. The output
// is written the way the store writes blocks (O_DIRECT in aligned
// stages, in flight while the next pieces arrive), not through the page
// cache. Descriptors still go to the block store: they are small, and
// they are what must survive the user's changes to the file.

// Landing writes a get's output file in order and notes where each whole
// data piece lies in it. It is a pieces.PieceWriter for File.CopyRange.
type Landing struct {
	out   *os.File
	dw    *directio.Writer // nil: the filesystem refuses O_DIRECT, written through the page cache
	n     int64
	spans []placedSpan
}

type placedSpan struct {
	c  cid.Cid
	sp store.Span
}

var _ pieces.PieceWriter = (*Landing)(nil)

// NewLanding writes out, a new empty file, from its start.
func NewLanding(out *os.File) (*Landing, error) {
	fi, err := out.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != 0 {
		return nil, fmt.Errorf("output %s: an in-place get writes a new regular file", out.Name())
	}
	l := &Landing{out: out}
	// A second handle on the same file, opened past the page cache: the
	// caller's descriptor keeps its flags.
	if d, err := directio.OpenDirect(fmt.Sprintf("/proc/self/fd/%d", out.Fd())); err == nil {
		if l.dw, err = directio.NewWriter(d, 0, out); err != nil {
			d.Close()
			return nil, err
		}
	}
	return l, nil
}

// Write writes p next.
func (l *Landing) Write(p []byte) (int, error) { return l.WritePiece(cid.Undef, l.n, p) }

// WritePiece writes data, the file's bytes at off, which must follow what
// was written; c is the whole data piece data is, if it is one.
func (l *Landing) WritePiece(c cid.Cid, off int64, data []byte) (int, error) {
	if off != l.n {
		return 0, fmt.Errorf("output %s: write at %d after %d bytes: in-place output is written in order", l.out.Name(), off, l.n)
	}
	if c.Defined() && c.Type() == pieces.CodecRaw {
		l.spans = append(l.spans, placedSpan{c, store.SpanOf(off, data)})
	}
	var n int
	var err error
	if l.dw != nil {
		n, err = l.dw.Write(data)
	} else {
		n, err = l.out.Write(data)
	}
	l.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("output %s: %w", l.out.Name(), err)
	}
	return n, nil
}

// Finish writes what is staged, cuts the file to its length and makes it
// durable.
func (l *Landing) Finish() error {
	var err error
	if l.dw != nil {
		err = errors.Join(l.dw.Flush(), l.dw.Close())
		l.dw = nil
	}
	if err == nil {
		err = l.out.Truncate(l.n)
	}
	if err == nil {
		err = l.out.Sync()
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", l.out.Name(), err)
	}
	return nil
}

// placeReq is where a Reader's data pieces lie once the output is whole.
type placeReq struct {
	path string
	out  *os.File
	l    *Landing
}

// InPlace has the Reader leave the file's data pieces out of the block
// store: the caller writes them to its output with a Landing, and names
// the file with KeepInPlace. Call it before reading.
func (r *Reader) InPlace() {
	r.g.mu.Lock()
	r.g.placing = true
	r.g.mu.Unlock()
}

// KeepInPlace has Close index the data pieces l wrote as lying in out,
// the file path (absolute) names by then; l must be finished.
func (r *Reader) KeepInPlace(path string, out *os.File, l *Landing) {
	r.g.mu.Lock()
	r.g.place = &placeReq{path: path, out: out, l: l}
	r.g.mu.Unlock()
}

// keepPlaced indexes the pieces of pl in the keeper's Tx, with the
// memberships their holders served them for.
func (g *netGetter) keepPlaced(pl *placeReq) {
	if g.keepErr != nil || len(pl.l.spans) == 0 {
		return
	}
	if g.tx == nil {
		g.tx = g.n.begin(g.inBucket())
	}
	p, err := g.tx.Place(pl.path, pl.out)
	for _, s := range pl.l.spans {
		if err != nil {
			break
		}
		err = g.putFetched(s.c, g.vias[s.c.KeyString()], func(in store.Bucket) error { return g.tx.PutPlacedIn(p, s.c, s.sp, in) })
	}
	if err != nil {
		g.keepErr = err
		g.n.log.Warn("cannot keep the fetched pieces in place; the get goes on without", "file", pl.path, "err", err)
	}
}

// putFetched stores fetched piece c with put, in the bucket read in and
// what the holder served it for (via), so this node serves it by the
// same rule: a piece of a public bucket stays that bucket's, and is
// private here once it is.
func (g *netGetter) putFetched(c cid.Cid, via *bucket.ID, put func(in store.Bucket) error) error {
	read := g.inBucket()
	if read == nil && via != nil {
		if err := put(store.Bucket(*via)); err != nil {
			return err
		}
	} else {
		in := store.NoBucket
		if read != nil {
			in = store.Bucket(*read)
		}
		if err := put(in); err != nil {
			return err
		}
		if read != nil && (via == nil || *via != *read) {
			g.tx.Member(c, viaBucket(via))
		}
	}
	if via != nil {
		if g.keptIn == nil {
			g.keptIn = make(map[bucket.ID]bool)
		}
		g.keptIn[*via] = true
	}
	g.kept = append(g.kept, c)
	return nil
}
