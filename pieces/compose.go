package pieces

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Range names the bytes [Offset, Offset+Size) of the file CID.
type Range struct {
	CID    cid.Cid
	Offset uint64
	Size   uint64
}

func (r Range) String() string { return fmt.Sprintf("%s[%d:+%d]", r.CID, r.Offset, r.Size) }

// Compose stores a file made of ranges of other files, in order, and
// writes no data: its links reference the sources' own pieces (range
// links), so only descriptors are new. Each range is cut into the links of
// its source's root that it covers, so composing a composed file does not
// make the tree deeper. Tags go on the new root.
func Compose(ctx context.Context, g Getter, ranges []Range, put Putter, opt BuildOptions) (BuildResult, error) {
	if err := opt.Validate(); err != nil {
		return BuildResult{}, err
	}
	t := &tree{put: put, hash: opt.Hash, maxLinks: opt.MaxLinks}
	var size uint64
	for _, r := range ranges {
		links, err := rangeLinks(ctx, g, r)
		if err != nil {
			return BuildResult{}, err
		}
		for _, l := range links {
			if err := t.add(0, l); err != nil {
				return BuildResult{}, err
			}
			size += l.Size
		}
	}
	links, err := t.finish()
	if err != nil {
		return BuildResult{}, err
	}
	root := Piece{Links: links, Tags: opt.Tags}
	b, c, err := root.EncodeCID(opt.Hash)
	if err != nil {
		return BuildResult{}, fmt.Errorf("composed descriptor: %w", err)
	}
	if err := put.PutPiece(c, b); err != nil {
		return BuildResult{}, err
	}
	return BuildResult{Root: c, Size: size, Pieces: t.pieces + 1, Depth: t.depth()}, nil
}

// rangeLinks returns links covering r: a range of the source's root for
// the part in its inline data, then ranges of the root's own links.
func rangeLinks(ctx context.Context, g Getter, r Range) ([]Link, error) {
	if r.Size == 0 {
		return nil, nil
	}
	n, err := fetchNode(ctx, g, r.CID)
	if err != nil {
		return nil, err
	}
	if n.p.Kind != KindFile {
		return nil, fmt.Errorf("%w %s: a directory has no bytes to compose from", ErrIsDir, r.CID)
	}
	if r.Offset+r.Size < r.Offset || r.Offset+r.Size > n.size {
		return nil, fmt.Errorf("%w: range %d+%d of %s (%d bytes)", ErrOutOfRange, r.Offset, r.Size, r.CID, n.size)
	}
	var out []Link
	off, left := r.Offset, r.Size
	if head := uint64(len(n.p.Data)); off < head {
		take := min(head-off, left)
		out = append(out, Link{CID: r.CID, Offset: off, Size: take})
		off, left = 0, left-take
	} else {
		off -= head
	}
	var start uint64 // content offset of link i within the links' part
	for _, l := range n.p.Links {
		if left == 0 {
			break
		}
		end := start + l.Size
		if off < end {
			skip := off - start
			take := min(l.Size-skip, left)
			out = append(out, Link{CID: l.CID, Offset: l.Offset + skip, Size: take})
			off, left = end, left-take
		}
		start = end
	}
	return out, nil
}
