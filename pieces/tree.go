package pieces

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// TreeBuilder stores a tree of folders and files, given in any order, as
// directories: each file is built as Build does, each folder with
// BuildDir once its entries are known, at Finish.
type TreeBuilder struct {
	put   Putter
	opt   BuildOptions // for files; Tags go on the root directory
	dirs  map[string]*treeDir
	files int
}

type treeDir struct {
	meta    []Tag
	entries []Link
	names   map[string]bool
}

// NewTreeBuilder starts a tree stored through put; opt says how files are
// cut, and opt.Tags are the root directory's tags.
func NewTreeBuilder(put Putter, opt BuildOptions) (*TreeBuilder, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	b := &TreeBuilder{put: put, opt: opt, dirs: make(map[string]*treeDir)}
	b.dirs["."] = &treeDir{names: make(map[string]bool)}
	return b, nil
}

// CleanTreePath checks p, a path inside the tree ("a/b", "./a/b/"), and
// returns it cleaned: "." for the root. An absolute path, a ".." step or
// an unsafe name is refused, so nothing from a tree lands outside it.
func CleanTreePath(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: path %q is absolute", ErrBadName, p)
	}
	trimmed := strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/")
	if trimmed == "" || trimmed == "." {
		return ".", nil
	}
	for step := range strings.SplitSeq(trimmed, "/") {
		if err := CheckName(step); err != nil {
			return "", fmt.Errorf("path %q: %w", p, err)
		}
	}
	return trimmed, nil
}

// AddDir records the folder p (and its parents), with metadata tags for
// its entry; a folder with no entries stays in the tree as an empty one.
func (b *TreeBuilder) AddDir(p string, meta []Tag) error {
	clean, err := CleanTreePath(p)
	if err != nil {
		return err
	}
	d, err := b.dir(clean)
	if err != nil {
		return err
	}
	d.meta = meta
	return nil
}

// AddFile builds the file p from r and enters it in its folder.
func (b *TreeBuilder) AddFile(ctx context.Context, p string, r io.Reader, meta []Tag) (BuildResult, error) {
	clean, err := CleanTreePath(p)
	if err != nil {
		return BuildResult{}, err
	}
	if clean == "." {
		return BuildResult{}, fmt.Errorf("%w: a file at the tree's root path", ErrBadName)
	}
	parent, name := path.Dir(clean), path.Base(clean)
	d, err := b.dir(parent)
	if err != nil {
		return BuildResult{}, err
	}
	if d.names[name] || b.dirs[clean] != nil {
		return BuildResult{}, fmt.Errorf("%w: %q is in the tree twice", ErrBadName, clean)
	}
	opt := b.opt
	opt.Tags = nil
	res, err := Build(ctx, r, b.put, opt)
	if err != nil {
		return BuildResult{}, fmt.Errorf("%s: %w", clean, err)
	}
	d.names[name] = true
	d.entries = append(d.entries, Link{Name: name, CID: res.Root, Size: res.Size, Tags: meta})
	b.files++
	return res, nil
}

// dir returns the folder p, making it and its parents as needed.
func (b *TreeBuilder) dir(p string) (*treeDir, error) {
	if d := b.dirs[p]; d != nil {
		return d, nil
	}
	parent, err := b.dir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	if parent.names[path.Base(p)] {
		return nil, fmt.Errorf("%w: %q is a file and a folder", ErrBadName, p)
	}
	d := &treeDir{names: make(map[string]bool)}
	b.dirs[p] = d
	return d, nil
}

// TreeResult describes a tree the builder stored.
type TreeResult struct {
	DirResult
	Files int // files in the whole tree
	Dirs  int // folders in the whole tree, the root included
}

// Finish stores every folder, deepest first, and returns the root's.
func (b *TreeBuilder) Finish() (TreeResult, error) {
	paths := make([]string, 0, len(b.dirs))
	for p := range b.dirs {
		paths = append(paths, p)
	}
	depth := func(p string) int {
		if p == "." {
			return 0
		}
		return strings.Count(p, "/") + 1
	}
	slices.SortFunc(paths, func(a, c string) int { return depth(c) - depth(a) })
	res := TreeResult{Files: b.files, Dirs: len(paths)}
	pieces := 0
	for _, p := range paths {
		d := b.dirs[p]
		var tags []Tag
		if p == "." {
			tags = b.opt.Tags
		}
		r, err := BuildDir(d.entries, tags, b.put, b.opt.Hash)
		if err != nil {
			return TreeResult{}, fmt.Errorf("folder %s: %w", p, err)
		}
		pieces += r.Pieces
		if p == "." {
			res.DirResult = r
			res.Pieces = pieces
			return res, nil
		}
		parent := b.dirs[path.Dir(p)]
		meta := append([]Tag{{Key: TagEntryType, Value: []byte(EntryTypeDir)}}, d.meta...)
		parent.entries = append(parent.entries, Link{Name: path.Base(p), CID: r.Root, Size: r.Size, Tags: meta})
	}
	return TreeResult{}, fmt.Errorf("tree without a root folder") // unreachable: "." is always there
}
