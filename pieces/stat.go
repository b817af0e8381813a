package pieces

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Stat summarises a file's tree.
type Stat struct {
	CID         cid.Cid
	Size        uint64 // content bytes
	Pieces      int    // distinct pieces in the tree, root included
	Descriptors int    // descriptor pieces, root included
	Depth       int    // descriptor levels below the root
	Inline      int    // content bytes held inline in descriptors
	Tags        []Tag
}

// StatFile walks the descriptors of the file c (never its data pieces) and
// reports its shape. It checks that every link size matches its subtree.
func StatFile(ctx context.Context, g Getter, c cid.Cid) (Stat, error) {
	return WalkFile(ctx, g, c, nil)
}

// WalkFile is StatFile calling each, when set, on every distinct piece of
// the tree as it is reached, root first: a link to it (the root's Size is
// the file's) and whether it is a data piece.
func WalkFile(ctx context.Context, g Getter, c cid.Cid, each func(l Link, data bool)) (Stat, error) {
	if each == nil {
		each = func(Link, bool) {}
	}
	f, err := Open(ctx, g, c)
	if err != nil {
		return Stat{}, err
	}
	st := Stat{CID: c, Size: f.root.size, Tags: f.root.p.Tags}
	each(Link{CID: c, Size: f.root.size}, false)
	seen := make(map[cid.Cid]bool)
	var visit func(n *node, depth int) error
	visit = func(n *node, depth int) error {
		if depth > MaxTreeDepth {
			return &CorruptError{CID: c, Reason: fmt.Sprintf("tree deeper than %d levels", MaxTreeDepth)}
		}
		st.Descriptors++
		st.Pieces++
		st.Inline += len(n.p.Data)
		st.Depth = max(st.Depth, depth)
		for _, l := range n.p.Links {
			if seen[l.CID] {
				continue // a repeated chunk or subtree is stored once
			}
			seen[l.CID] = true
			each(l, l.CID.Type() == CodecRaw)
			if l.CID.Type() == CodecRaw {
				st.Pieces++
				continue
			}
			child, err := f.node(l)
			if err != nil {
				return err
			}
			if err := visit(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(f.root, 0); err != nil {
		return Stat{}, err
	}
	return st, nil
}
