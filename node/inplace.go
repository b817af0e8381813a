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
	name  string           // of the output, for errors
	dw    *directio.Writer // nil: the filesystem refuses O_DIRECT, written through the page cache
	n     int64
	spans []placedSpan
}

type placedSpan struct {
	c  cid.Cid
	sp store.Span
}

var _ pieces.PieceWriter = (*Landing)(nil)

// NewLanding writes out, a new empty file opened for writing, from its
// start; name is what errors call it.
func NewLanding(out *os.File, name string) (*Landing, error) {
	fi, err := out.Stat()
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != 0 || !directio.Writable(out) {
		return nil, fmt.Errorf("output %s: an in-place get writes a new, empty regular file opened for writing", name)
	}
	l := &Landing{out: out, name: name}
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
		return 0, fmt.Errorf("output %s: write at %d after %d bytes: in-place output is written in order", l.name, off, l.n)
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
		return n, fmt.Errorf("output %s: %w", l.name, err)
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
		return fmt.Errorf("output %s: %w", l.name, err)
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

// keepPlaced indexes the data pieces of pl the getter fetched, in a Tx
// of their own, with the memberships their holders served them for. The
// output is whole at its path by now: a failure to index it (the file
// moved away, a full disk) is logged, and the get stands.
func (g *netGetter) keepPlaced(pl *placeReq, pin bool) {
	if len(pl.l.spans) == 0 {
		return
	}
	tx := g.n.begin(g.inBucket())
	var placed []cid.Cid
	p, err := tx.Place(pl.path, pl.out)
	for _, s := range pl.l.spans {
		if err != nil {
			break
		}
		// Only what was fetched: a piece the store held keeps the
		// memberships it has (a private file's piece stays private).
		via, fetched := g.fetchedData[s.c.KeyString()]
		if !fetched {
			continue
		}
		if err = g.putFetched(tx, s.c, via, func(in store.Bucket) error { return tx.PutPlacedIn(p, s.c, s.sp, in) }); err == nil {
			placed = append(placed, s.c)
		}
	}
	if err == nil {
		g.cacheRoot(tx, pin, len(placed))
		err = tx.Commit()
	} else {
		tx.Discard()
	}
	if err != nil {
		g.n.log.Warn("cannot keep the fetched pieces in place; the get's output stands", "file", pl.path, "cid", g.root, "err", err)
		return
	}
	g.keptPlaced = placed // announced at close, with what the block store's Tx kept
}

// putFetched stores fetched piece c with put, in the bucket read in and
// what the holder served it for (via), so this node serves it by the
// same rule: a piece of a public bucket stays that bucket's, and is
// private here once it is.
func (g *netGetter) putFetched(tx *store.Tx, c cid.Cid, via *bucket.ID, put func(in store.Bucket) error) error {
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
			tx.Member(c, viaBucket(via))
		}
	}
	if via != nil {
		if g.keptIn == nil {
			g.keptIn = make(map[bucket.ID]bool)
		}
		g.keptIn[*via] = true
	}
	return nil
}
