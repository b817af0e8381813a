package tartree

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// Stats counts what a tree move carried.
type Stats struct {
	Files int
	Dirs  int
	Bytes uint64
}

// Window is how many entries of a folder WriteTree fetches ahead of the
// one it writes: a tree of small files is a piece per file, and a window
// of round trips in flight hides the network's latency.
const Window = 64

// WriteTree writes the stored directory root as a tar stream to w,
// reading every piece through g, each folder's entries fetched Window
// ahead of the one written. A file's permission bits come from its
// entry's mode tag.
func WriteTree(ctx context.Context, g pieces.Getter, root cid.Cid, w io.Writer) (Stats, error) {
	if _, err := pieces.OpenDir(ctx, g, root); err != nil {
		return Stats{}, err
	}
	tw := tar.NewWriter(w)
	t := &treeWriter{g: g, tw: tw}
	if err := t.dir(ctx, "", root, 0); err != nil {
		return t.st, err
	}
	return t.st, tw.Close()
}

type treeWriter struct {
	g  pieces.Getter
	tw *tar.Writer
	st Stats
}

// opened is an entry whose root was fetched: a file to copy, or a folder.
type opened struct {
	f   *pieces.File
	dir bool
	err error
}

func (t *treeWriter) dir(ctx context.Context, p string, c cid.Cid, depth int) error {
	if depth > pieces.MaxTreeDepth*4 {
		return fmt.Errorf("%s: folders nested deeper than %d", p, pieces.MaxTreeDepth*4)
	}
	t.st.Dirs++
	if p != "" {
		if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	var es []pieces.Link
	if err := pieces.Entries(ctx, t.g, c, func(l pieces.Link) error { es = append(es, l); return nil }); err != nil {
		return fmt.Errorf("folder %s: %w", orRoot(p), err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make([]chan opened, len(es))
	start := func(i int) {
		ready[i] = make(chan opened, 1)
		go func(l pieces.Link, out chan<- opened) {
			f, err := pieces.Open(ctx, t.g, l.CID)
			if errors.Is(err, pieces.ErrIsDir) {
				out <- opened{dir: true}
				return
			}
			out <- opened{f: f, err: err}
		}(es[i], ready[i])
	}
	for i := range min(Window, len(es)) {
		start(i)
	}
	defer func() { // close what was opened ahead and not written
		cancel()
		for i := range es {
			if ready[i] != nil {
				if o := <-ready[i]; o.f != nil {
					o.f.Close()
				}
				ready[i] = nil
			}
		}
	}()
	for i, l := range es {
		o := <-ready[i]
		ready[i] = nil
		if i+Window < len(es) {
			start(i + Window)
		}
		name := path.Join(p, l.Name)
		switch {
		case o.err != nil:
			return fmt.Errorf("%s: %w", name, o.err)
		case o.dir:
			if err := t.dir(ctx, name, l.CID, depth+1); err != nil {
				return err
			}
		default:
			err := t.file(name, l, o.f)
			o.f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *treeWriter) file(name string, l pieces.Link, f *pieces.File) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: f.Size(), Mode: int64(fileMode(l)), Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := f.WriteTo(t.tw)
	if err != nil {
		return fmt.Errorf("%s (%s): %w", name, l.CID, err)
	}
	t.st.Files++
	t.st.Bytes += uint64(n)
	return nil
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// Extract writes the tree in the tar stream r into the folder dir,
// creating it. Every path is checked as it arrives: an absolute one, a
// ".." step, an unsafe name or a link is refused, and the writes go
// through an os.Root, so nothing lands outside dir whatever the stream
// says. An existing file is not overwritten. On a filesystem that folds
// case, two names that differ only in case are refused, not merged.
func Extract(ctx context.Context, r io.Reader, dir string) (Stats, error) {
	st := Stats{Dirs: 1} // dir itself
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, err
	}
	defer root.Close()
	folds := foldsCase(root)
	seen := make(map[string]string)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("tree stream: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		name, err := pieces.CleanTreePath(hdr.Name)
		if err != nil {
			return st, fmt.Errorf("refused to write %q into %s: %w", hdr.Name, dir, err)
		}
		if folds {
			k := strings.ToLower(name)
			if prev, ok := seen[k]; ok && prev != name {
				return st, fmt.Errorf("%w: %q and %q differ only in case, and %s cannot tell them apart", pieces.ErrBadName, prev, name, dir)
			}
			seen[k] = name
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return st, err
			}
			st.Dirs++
		case tar.TypeReg:
			if err := extractFile(root, name, tr, hdr); err != nil {
				return st, fmt.Errorf("%s: %w", path.Join(dir, name), err)
			}
			st.Files++
			st.Bytes += uint64(hdr.Size)
		default:
			return st, fmt.Errorf("%s: %w (tar type %q)", name, ErrUnsupported, hdr.Typeflag)
		}
	}
}

func extractFile(root *os.Root, name string, r io.Reader, hdr *tar.Header) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(hdr.Mode)&0o777|0o200)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("got %d of %d bytes", n, hdr.Size)
	}
	return err
}

// foldsCase reports whether the filesystem under root treats names that
// differ in case as one, by making a probe file and looking for it under
// another case.
func foldsCase(root *os.Root) bool {
	const probe = ".ddc-case-probe"
	f, err := root.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	defer root.Remove(probe)
	_, err = root.Stat(strings.ToUpper(probe))
	return err == nil
}
