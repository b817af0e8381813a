package pieces

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// Kind says what a descriptor is. The zero value, written as no field at
// all, is a file or a sub-tree of one, so every descriptor from before
// directories keeps its bytes and its CID.
type Kind string

const (
	// KindFile is a file's descriptor: content is its data and links.
	KindFile Kind = ""
	// KindDir is a directory, or a shard of its entries: each link is an
	// entry, by Name in strictly increasing byte order, pointing at the
	// entry's root (a file or a directory) with its size.
	KindDir Kind = "dir"
	// KindDirIndex is a level above shards of a large directory: each
	// link points at a KindDir or KindDirIndex piece and is named by the
	// first entry name under it, so finding one name reads one piece per
	// level.
	KindDirIndex Kind = "dirindex"
)

func (k Kind) known() bool { return k == KindFile || k == KindDir || k == KindDirIndex }

// IsDir reports whether a piece of kind k is a directory or one of its
// index levels.
func (k Kind) IsDir() bool { return k == KindDir || k == KindDirIndex }

// Directory limits. They are part of the format: a reader refuses pieces
// over them, and the shard rule decides the CID of every large directory.
const (
	// MaxEntryTags is the most metadata tags one directory entry carries.
	MaxEntryTags = 8
	// DirShardEntries is the most links a directory piece holds before the
	// builder shards it; a directory up to this size is one piece.
	DirShardEntries = 1024
	// dirShardMask cuts a shard after an entry whose name hashes to all
	// ones in these bits: shards of 256 entries on average, cut by content
	// (the names), so adding or removing one entry rewrites one shard and
	// the path above it, not every shard after it.
	dirShardMask = 0xff
	// dirShardBytes bounds the encoded links of one shard, well within
	// MaxPieceSize whatever the names and tags.
	dirShardBytes = 1 << 20
	// MaxDirEntries is the most entries one directory holds: the builder
	// refuses more and a listing stops there, so what a reader keeps of a
	// listing stays bounded (about 200 MiB at worst).
	MaxDirEntries = 1 << 20
)

// TagEntryType is the entry tag the tree builder sets to EntryTypeDir on
// a folder's entry, so a listing tells folders from files without reading
// every entry. A reader still checks the kind of what it opens.
const (
	TagEntryType = "type"
	EntryTypeDir = "dir"
)

// ErrBadName marks a directory entry name that cannot be written safely.
var ErrBadName = errors.New("unsafe entry name")

// CheckName reports why name cannot be a directory entry: empty, "." or
// "..", a '/' or NUL in it, invalid UTF-8 or longer than MaxLinkNameLen.
// Such names never enter a directory, so a tree can never write outside
// the folder it is written to.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrBadName)
	case name == "." || name == "..":
		return fmt.Errorf("%w %q: a path step, not a name", ErrBadName, name)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("%w %q: contains '/'", ErrBadName, name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w %q: contains NUL", ErrBadName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrBadName, name)
	case len(name) > MaxLinkNameLen:
		return fmt.Errorf("%w %.40q…: %d bytes (max %d)", ErrBadName, name, len(name), MaxLinkNameLen)
	}
	return nil
}

// validateDir checks a directory or index piece: no inline data, entries
// named safely in strictly increasing order, descriptors only, no ranges.
func (p *Piece) validateDir() error {
	if len(p.Data) > 0 {
		return fmt.Errorf("a %s piece has inline data", p.Kind)
	}
	if p.Kind == KindDirIndex && len(p.Links) == 0 {
		return errors.New("a dirindex piece without links")
	}
	for i, l := range p.Links {
		if err := CheckPieceCID(l.CID); err != nil {
			return fmt.Errorf("links[%d]: %w", i, err)
		}
		if l.CID.Type() != CodecDagCBOR {
			return fmt.Errorf("links[%d] %q: points at a data piece %s; entries point at descriptors", i, l.Name, l.CID)
		}
		if err := CheckName(l.Name); err != nil {
			return fmt.Errorf("links[%d]: %w", i, err)
		}
		if i > 0 && p.Links[i-1].Name >= l.Name {
			return fmt.Errorf("links[%d] %q: names out of order or repeated (after %q)", i, l.Name, p.Links[i-1].Name)
		}
		if l.Offset != 0 {
			return fmt.Errorf("links[%d] %q: a range in a directory", i, l.Name)
		}
		if p.Kind == KindDirIndex && len(l.Tags) > 0 {
			return fmt.Errorf("links[%d] %q: tags in a dirindex link", i, l.Name)
		}
		if len(l.Tags) > MaxEntryTags {
			return fmt.Errorf("%w: links[%d] %q has %d tags (max %d)", ErrTooLarge, i, l.Name, len(l.Tags), MaxEntryTags)
		}
		for j, t := range l.Tags {
			if err := t.Validate(); err != nil {
				return fmt.Errorf("links[%d].tags[%d]: %w", i, j, err)
			}
		}
	}
	return nil
}

// DirResult describes a directory the builder stored.
type DirResult struct {
	Root    cid.Cid
	Size    uint64 // content bytes of every file below it
	Entries int    // entries in the directory itself
	Pieces  int    // directory pieces written, root included
}

// BuildDir stores a directory of entries (each a Link naming an entry's
// root, its size and metadata) through put and returns its root. Entries
// may come in any order; names must be unique and pass CheckName. A
// directory of up to DirShardEntries entries is one piece; a larger one
// is cut into shards by its names and indexed by levels above them.
func BuildDir(entries []Link, tags []Tag, put Putter, h Hash) (DirResult, error) {
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b Link) int { return strings.Compare(a.Name, b.Name) })
	res := DirResult{Entries: len(es)}
	if len(es) > MaxDirEntries {
		return DirResult{}, fmt.Errorf("%w: a directory of %d entries (max %d)", ErrTooLarge, len(es), MaxDirEntries)
	}
	for i, e := range es {
		if err := CheckName(e.Name); err != nil {
			return DirResult{}, err
		}
		if i > 0 && es[i-1].Name == e.Name {
			return DirResult{}, fmt.Errorf("%w %q: two entries of that name", ErrBadName, e.Name)
		}
		res.Size += e.Size
	}
	kind := KindDir
	for level := 0; ; level++ {
		if len(es) <= DirShardEntries && linksBytes(es) <= dirShardBytes {
			p := Piece{Kind: kind, Links: es, Tags: tags}
			b, c, err := p.EncodeCID(h)
			if err != nil {
				return DirResult{}, fmt.Errorf("directory: %w", err)
			}
			if err := put.PutPiece(c, b); err != nil {
				return DirResult{}, err
			}
			res.Root, res.Pieces = c, res.Pieces+1
			return res, nil
		}
		var up []Link
		for _, shard := range shards(es, level) {
			p := Piece{Kind: kind, Links: shard}
			b, c, err := p.EncodeCID(h)
			if err != nil {
				return DirResult{}, fmt.Errorf("directory shard: %w", err)
			}
			if err := put.PutPiece(c, b); err != nil {
				return DirResult{}, err
			}
			res.Pieces++
			var size uint64
			for _, l := range shard {
				size += l.Size
			}
			up = append(up, Link{CID: c, Size: size, Name: shard[0].Name})
		}
		es, kind = up, KindDirIndex
	}
}

// shards cuts sorted links after each one whose name, hashed with the
// level, ends in dirShardMask, and wherever a shard would outgrow its
// bounds.
func shards(es []Link, level int) [][]Link {
	var out [][]Link
	start, bytes := 0, 0
	for i, l := range es {
		bytes += linkBytes(l)
		last := i == len(es)-1
		if last || i+1-start >= DirShardEntries || bytes+linkBytes(es[i+1]) > dirShardBytes || nameHash(l.Name, level)&dirShardMask == dirShardMask {
			out = append(out, es[start:i+1])
			start, bytes = i+1, 0
		}
	}
	return out
}

func nameHash(name string, level int) uint64 {
	h := fnv.New64a()
	h.Write([]byte{byte(level)})
	h.Write([]byte(name))
	return h.Sum64()
}

// linkBytes bounds a link's encoded size from above.
func linkBytes(l Link) int {
	n := 32 + len(l.CID.Bytes()) + len(l.Name)
	for _, t := range l.Tags {
		n += 32 + len(t.Key) + len(t.Value)
	}
	return n
}

func linksBytes(ls []Link) int {
	n := 0
	for _, l := range ls {
		n += linkBytes(l)
	}
	return n
}

// OpenDir fetches the directory c's root and returns it decoded, or an
// error saying what c is when it is not a directory.
func OpenDir(ctx context.Context, g Getter, c cid.Cid) (*Piece, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	if c.Type() != CodecDagCBOR {
		return nil, fmt.Errorf("%w %s: not a directory (codec 0x%x)", ErrNotDir, c, c.Type())
	}
	n, err := fetchNode(ctx, g, c)
	if err != nil {
		return nil, err
	}
	if !n.p.Kind.IsDir() {
		return nil, fmt.Errorf("%w %s: a file", ErrNotDir, c)
	}
	return n.p, nil
}

// ErrNotDir marks a CID that is not a directory where one was wanted.
var ErrNotDir = errors.New("not a directory")

// ErrIsDir marks a directory where a file was wanted.
var ErrIsDir = errors.New("is a directory")

// ErrNoEntry marks a name a directory does not have.
var ErrNoEntry = errors.New("no such entry")

// Lookup finds the entry name in the directory dir, reading one piece per
// level of its index. It returns the entry and how many pieces it read.
func Lookup(ctx context.Context, g Getter, dir cid.Cid, name string) (Link, int, error) {
	c, read := dir, 0
	var lo, hi string // the names c's index link says it holds; "" is open
	for depth := 0; depth <= MaxTreeDepth; depth++ {
		n, err := fetchNode(ctx, g, c)
		if err != nil {
			return Link{}, read, err
		}
		read++
		if depth > 0 {
			if err := checkShard(n, lo, hi); err != nil {
				return Link{}, read, err
			}
		}
		ls := n.p.Links
		switch n.p.Kind {
		case KindDir:
			i, ok := slices.BinarySearchFunc(ls, name, func(l Link, s string) int { return strings.Compare(l.Name, s) })
			if !ok {
				return Link{}, read, fmt.Errorf("%w %q in directory %s", ErrNoEntry, name, dir)
			}
			return ls[i], read, nil
		case KindDirIndex:
			// The last child whose first name is not after name.
			i, _ := slices.BinarySearchFunc(ls, name, func(l Link, s string) int {
				if l.Name <= s {
					return -1
				}
				return 1
			})
			if i == 0 {
				return Link{}, read, fmt.Errorf("%w %q in directory %s", ErrNoEntry, name, dir)
			}
			lo, hi = ls[i-1].Name, ""
			if i < len(ls) {
				hi = ls[i].Name
			}
			c = ls[i-1].CID
		default:
			return Link{}, read, fmt.Errorf("%w %s: a file", ErrNotDir, c)
		}
	}
	return Link{}, read, &CorruptError{CID: dir, Reason: fmt.Sprintf("directory index deeper than %d levels", MaxTreeDepth)}
}

// ResolvePath walks path ("a/b/c", slashes at either end ignored) from
// root through directories and returns the last entry (root itself for an
// empty path, with Size 0) and how many pieces it read.
func ResolvePath(ctx context.Context, g Getter, root cid.Cid, path string) (Link, int, error) {
	at := Link{CID: root}
	read := 0
	for step := range strings.SplitSeq(strings.Trim(path, "/"), "/") {
		if step == "" {
			continue
		}
		if err := CheckName(step); err != nil {
			return Link{}, read, err
		}
		l, n, err := Lookup(ctx, g, at.CID, step)
		read += n
		if err != nil {
			return Link{}, read, err
		}
		at = l
	}
	return at, read, nil
}

// Entries calls fn with each entry of the directory dir in name order,
// reading its shards as it reaches them. Each shard must hold the names
// its index link says, so a shard linked twice or out of place is an
// error, not a second listing; past MaxDirEntries entries it stops.
func Entries(ctx context.Context, g Getter, dir cid.Cid, fn func(Link) error) error {
	count := 0
	var visit func(c cid.Cid, depth int, lo, hi string) error
	visit = func(c cid.Cid, depth int, lo, hi string) error {
		if depth > MaxTreeDepth {
			return &CorruptError{CID: dir, Reason: fmt.Sprintf("directory index deeper than %d levels", MaxTreeDepth)}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := fetchNode(ctx, g, c)
		if err != nil {
			return err
		}
		if depth > 0 {
			if err := checkShard(n, lo, hi); err != nil {
				return err
			}
		}
		ls := n.p.Links
		switch n.p.Kind {
		case KindDir:
			if count += len(ls); count > MaxDirEntries {
				return fmt.Errorf("%w: directory %s lists more than %d entries", ErrTooLarge, dir, MaxDirEntries)
			}
			for _, l := range ls {
				if err := fn(l); err != nil {
					return err
				}
			}
		case KindDirIndex:
			for i, l := range ls {
				next := hi
				if i+1 < len(ls) {
					next = ls[i+1].Name
				}
				if err := visit(l.CID, depth+1, l.Name, next); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%w %s: a file", ErrNotDir, c)
		}
		return nil
	}
	return visit(dir, 0, "", "")
}

// checkShard says whether n, reached through an index link for the names
// [lo, hi) (hi "" for no end), is a shard holding just them: a file, an
// empty shard, or one that starts elsewhere or runs past hi is corrupt.
func checkShard(n *node, lo, hi string) error {
	ls := n.p.Links
	switch {
	case !n.p.Kind.IsDir():
		return &CorruptError{CID: n.cid, Reason: "a directory index links to a file"}
	case len(ls) == 0:
		return &CorruptError{CID: n.cid, Reason: "an empty directory shard"}
	case ls[0].Name != lo:
		return &CorruptError{CID: n.cid, Reason: fmt.Sprintf("shard starts at %q, its index link says %q", ls[0].Name, lo)}
	case hi != "" && ls[len(ls)-1].Name >= hi:
		return &CorruptError{CID: n.cid, Reason: fmt.Sprintf("shard holds %q, at or past the next shard's %q", ls[len(ls)-1].Name, hi)}
	}
	return nil
}

// EntryTag returns the value of an entry's metadata tag key, if any.
func EntryTag(l Link, key string) ([]byte, bool) {
	for _, t := range l.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// sameName reports whether two names are one on a filesystem that folds
// case, as the default ones of macOS and Windows do.
func sameName(a, b string) bool { return a != b && bytes.EqualFold([]byte(a), []byte(b)) }

// FoldCollision returns the first two names that differ only in case, or
// ok false: a tree holding them cannot be written to a case-folding
// filesystem without one overwriting the other.
func FoldCollision(names []string) (a, b string, ok bool) {
	seen := make(map[string]string, len(names))
	for _, n := range names {
		k := strings.ToLower(n)
		if prev, dup := seen[k]; dup && sameName(prev, n) {
			return prev, n, true
		}
		seen[k] = n
	}
	return "", "", false
}
