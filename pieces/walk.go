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
	err := f.walkNode(f.root, off, 0, fn)
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func (f *File) walkNode(n *node, off uint64, depth int, fn func(segment) error) error {
	if depth > MaxTreeDepth {
		return &CorruptError{CID: f.root.cid, Reason: fmt.Sprintf("tree deeper than %d levels", MaxTreeDepth)}
	}
	if err := fn(segment{desc: n}); err != nil {
		return err
	}
	if off < uint64(len(n.p.Data)) {
		if err := fn(segment{data: n.p.Data, skip: off}); err != nil {
			return err
		}
		off = 0
	} else {
		off -= uint64(len(n.p.Data))
	}
	first := sort.Search(len(n.ends), func(i int) bool { return n.ends[i] > off })
	for i := first; i < len(n.p.Links); i++ {
		l := n.p.Links[i]
		skip := uint64(0)
		if i == first {
			skip = off
			if i > 0 {
				skip -= n.ends[i-1]
			}
		}
		if l.CID.Type() == CodecRaw {
			if err := fn(segment{link: l, skip: skip}); err != nil {
				return err
			}
			continue
		}
		child, err := f.node(l)
		if err != nil {
			return err
		}
		if err := f.walkNode(child, skip, depth+1, fn); err != nil {
			return err
		}
	}
	return nil
}
