// Package tartree moves trees of folders and files as tar streams: from
// a local folder to a put, from a tar stream into a pieces.TreeBuilder,
// from a stored directory to a tar stream, and from a tar stream into a
// local folder, never outside it. Tar is the transport between the CLI
// and the node, so one HTTP request carries a whole tree.
//
// Only folders and regular files travel. A symlink, device or other
// special file is refused with its path: ddc stores no links, and
// following them could put files from outside the tree.
package tartree

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ddc-project/ddc/pieces"
)

// TagMode is the entry tag keeping a file's permission bits, in octal;
// it is kept only for executable files, so a tree's CID does not depend
// on the umask of the machine it was put from.
const TagMode = "mode"

// ErrUnsupported marks an entry of a kind ddc does not store.
var ErrUnsupported = errors.New("not a folder or a regular file")

// WriteDir writes the folder root as a tar stream to w: every folder,
// empty ones included, and every regular file below it, in lexical order,
// named relative to root.
func WriteDir(ctx context.Context, w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if _, err := pieces.CleanTreePath(rel); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, Format: tar.FormatPAX})
		case info.Mode().IsRegular():
			return writeFile(tw, p, rel, info)
		default:
			return fmt.Errorf("%s: %w (%s); ddc stores no links or special files: copy what it points at, or remove it", p, ErrUnsupported, info.Mode().Type())
		}
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, p, rel string, info fs.FileInfo) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: info.Size(), Mode: int64(info.Mode().Perm()), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if n != info.Size() {
		return fmt.Errorf("%s changed while it was read (%d bytes, was %d): put it again", p, n, info.Size())
	}
	return nil
}

// Build reads a tar stream into b: folders and regular files, refusing
// any other entry and any path that is absolute, climbs out with "..",
// or holds an unsafe name.
func Build(ctx context.Context, r io.Reader, b *pieces.TreeBuilder) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tree stream: %w", err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := b.AddDir(hdr.Name, nil); err != nil {
				return err
			}
		case tar.TypeReg:
			if _, err := b.AddFile(ctx, hdr.Name, tr, modeTags(hdr.Mode)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: %w (tar type %q)", hdr.Name, ErrUnsupported, hdr.Typeflag)
		}
	}
}

func modeTags(mode int64) []pieces.Tag {
	if mode&0o111 == 0 {
		return nil
	}
	return []pieces.Tag{{Key: TagMode, Value: []byte(strconv.FormatInt(mode&0o777, 8)), Searchable: true}}
}

// fileMode is the permission bits a file entry is written with.
func fileMode(l pieces.Link) os.FileMode {
	if v, ok := pieces.EntryTag(l, TagMode); ok {
		if m, err := strconv.ParseUint(string(v), 8, 32); err == nil {
			return os.FileMode(m) & 0o777
		}
	}
	return 0o644
}
