package pieces

import (
	"errors"
	"fmt"
	"sort"
)

// walk calls fn for each segment of content from off to the end, in order,
// descending into sub-descriptors as it reaches them; before the segments
// of each descriptor, it calls fn with a segment naming the descriptor.
func (f *File) walk(off uint64, fn func(segment) error) error {
	if off >= f.root.size {
		return nil
	}
	err := f.walkNode(f.root, off, f.root.size-off, 0, fn)
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// walkNode walks limit bytes of n's content from off. A link stands for
// the bytes [Offset, Offset+Size) of its target, so the walk enters a
// range link's target at the range's start and leaves at its end.
func (f *File) walkNode(n *node, off, limit uint64, depth int, fn func(segment) error) error {
	if depth > MaxTreeDepth {
		return &CorruptError{CID: f.root.cid, Reason: fmt.Sprintf("tree deeper than %d levels", MaxTreeDepth)}
	}
	if err := fn(segment{desc: n}); err != nil {
		return err
	}
	if off < uint64(len(n.p.Data)) {
		take := min(uint64(len(n.p.Data))-off, limit)
		if err := fn(segment{data: n.p.Data, skip: off, end: off + take}); err != nil {
			return err
		}
		off, limit = 0, limit-take
	} else {
		off -= uint64(len(n.p.Data))
	}
	first := sort.Search(len(n.ends), func(i int) bool { return n.ends[i] > off })
	for i := first; i < len(n.p.Links) && limit > 0; i++ {
		l := n.p.Links[i]
		skip := uint64(0)
		if i == first {
			skip = off
			if i > 0 {
				skip -= n.ends[i-1]
			}
		}
		take := min(l.Size-skip, limit)
		limit -= take
		if l.CID.Type() == CodecRaw {
			if err := fn(segment{link: l, skip: l.Offset + skip, end: l.Offset + skip + take}); err != nil {
				return err
			}
			continue
		}
		child, err := f.node(l)
		if err != nil {
			return err
		}
		if err := f.walkNode(child, l.Offset+skip, take, depth+1, fn); err != nil {
			return err
		}
	}
	return nil
}
